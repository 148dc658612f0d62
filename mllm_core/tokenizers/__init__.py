"""Tokenizers: text -> token ids, one per module, all with the same interface.

`CharTokenizer` (char.py), `WordTokenizer` (word.py, like torchtext's basic_english) and
byte-level `BPETokenizer` (bpe.py); `encoding_stats` compares them on a text, `load_tokenizer`
reads back any saved one.

`train(text, vocab_size=None)`, `encode(text) -> list[int]`, `decode(ids) -> str`,
`vocab_size`, `id_to_token(i)`, `token_bytes(i) -> bytes`, `unk_id` (the id of `<unk>`, None
for byte-level BPE, which has none), `save(path)` / `load(path)`.
"""

from mllm_core.tokenizers.base import Tokenizer, encoding_stats, load_tokenizer
from mllm_core.tokenizers.char import CharTokenizer

__all__ = ["BPETokenizer", "CharTokenizer", "Tokenizer", "WordTokenizer", "encoding_stats", "load_tokenizer"]


def __getattr__(name):  # the word and BPE tokenizers load on first use
    if name == "WordTokenizer":
        from mllm_core.tokenizers.word import WordTokenizer

        return WordTokenizer
    if name == "BPETokenizer":
        from mllm_core.tokenizers.bpe import BPETokenizer

        return BPETokenizer
    raise AttributeError(name)
