"""Word tokenizer: lower-cased words and punctuation marks, one id each, `<unk>` for the rest.

Like torchtext's `basic_english`: "My name is John." -> my, name, is, john, . The sequences are
the shortest of the lab's tokenizers, but the vocabulary is large and the tokenizer is lossy by
design (case, spacing and words it never saw are gone). Compare `char.py` (tiny vocabulary, long
sequences) and `bpe.py` (lossless, in between).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

from mllm_core.tokenizers.base import ListVocabTokenizer

UNK, PAD, BOS, EOS = "<unk>", "<pad>", "<bos>", "<eos>"
SPECIALS = (UNK, PAD, BOS, EOS)  # ids 0, 1, 2, 3 in every word vocabulary

_WORD = re.compile(r"\w+|[^\w\s]")  # a run of letters/digits, or a single punctuation mark
_NO_SPACE_BEFORE = re.compile(r" ([.,!?;:%)\]}'])")
_NO_SPACE_AFTER = re.compile(r"([(\[{$]) ")


def basic_english(text: str) -> list[str]:
    """Lower-case and split into words and punctuation marks.

    >>> basic_english("My name is John.")
    ['my', 'name', 'is', 'john', '.']
    >>> basic_english("Don't panic!")
    ['don', "'", 't', 'panic', '!']
    """
    return _WORD.findall(text.lower())


class WordTokenizer(ListVocabTokenizer):
    """>>> tok = WordTokenizer().train("the cat sat. the dog sat.")
    >>> tok.tokens("The cat ran.")
    ['the', 'cat', '<unk>', '.']
    >>> tok.decode(tok.encode("The dog sat."))
    'the dog sat.'
    """

    kind = "word"

    def __init__(self, min_freq: int = 1) -> None:
        super().__init__()
        self.min_freq = min_freq  # words seen fewer times in training become <unk>
        self.set_vocab(list(SPECIALS))

    pad_id, bos_id, eos_id = 1, 2, 3  # unk_id = 0, as in every list vocabulary

    def train(self, text: str, vocab_size: int | None = None) -> WordTokenizer:
        """Keep words seen at least `min_freq` times, the most frequent first (at most `vocab_size` ids)."""
        if not text.strip():
            raise ValueError("cannot train a tokenizer on empty text")
        if self.min_freq < 1:
            raise ValueError(f"min_freq must be at least 1, not {self.min_freq}")
        if vocab_size is not None and vocab_size <= len(SPECIALS):
            raise ValueError(f"vocab_size must be above {len(SPECIALS)} (the special tokens come first)")
        self.counts = Counter(basic_english(text))
        # most frequent first; ties alphabetical so the vocabulary does not depend on text order
        words = sorted((w for w, c in self.counts.items() if c >= self.min_freq), key=lambda w: (-self.counts[w], w))
        if vocab_size is not None:
            words = words[: vocab_size - len(SPECIALS)]
        self.set_vocab([*SPECIALS, *words])
        return self

    def encode(self, text: str, bos: bool = False, eos: bool = False) -> list[int]:
        """Word ids; `bos`/`eos` wrap the sequence in `<bos>` ... `<eos>`."""
        ids = [self.stoi.get(w, self.unk_id) for w in basic_english(text)]
        return [self.bos_id] * bos + ids + [self.eos_id] * eos

    def decode(self, ids: Iterable[int]) -> str:
        """Words joined by spaces, punctuation glued back on; `<pad>`, `<bos>`, `<eos>` dropped."""
        try:
            words = [self.itos[i] for i in ids if i not in (self.pad_id, self.bos_id, self.eos_id)]
        except (IndexError, TypeError):
            raise ValueError(f"token ids must be integers in 0..{self.vocab_size - 1}") from None
        text = _NO_SPACE_BEFORE.sub(r"\1", " ".join(words))
        return _NO_SPACE_AFTER.sub(r"\1", text)

    def get_state(self) -> dict[str, Any]:
        return {**super().get_state(), "min_freq": self.min_freq}

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self.min_freq = int(state.get("min_freq", 1))
