"""Character tokenizer: one id per character seen in training, `<unk>` (id 0) for the rest.

The simplest tokenizer of the lab: lossless on its training alphabet, long sequences.
Compare `word.py` (short sequences, lossy) and `bpe.py` (in between, lossless on any text).
"""

from __future__ import annotations

from collections import Counter

from mllm_core.tokenizers.base import ListVocabTokenizer

UNK = "<unk>"


class CharTokenizer(ListVocabTokenizer):
    """>>> tok = CharTokenizer().train("hello")
    >>> tok.encode("hole"), tok.vocab_size
    ([2, 4, 3, 1], 5)
    >>> tok.decode(tok.encode("hello?"))
    'hello<unk>'
    """

    kind = "char"

    def __init__(self) -> None:
        super().__init__()
        self.set_vocab([UNK])

    def train(self, text: str, vocab_size: int | None = None) -> CharTokenizer:
        """Keep every character of `text`, or the `vocab_size - 1` most frequent ones."""
        if not text:
            raise ValueError("cannot train a tokenizer on empty text")
        self.counts = Counter(text)
        chars = sorted(self.counts)
        if vocab_size is not None:
            if vocab_size < 2:
                raise ValueError("vocab_size must be at least 2 (<unk> and one character)")
            chars = sorted(c for c, _ in self.counts.most_common(vocab_size - 1))
        self.set_vocab([UNK, *chars])
        return self

    def encode(self, text: str) -> list[int]:
        return [self.stoi.get(c, 0) for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(self.itos[i] for i in ids)
