"""Tokenizers: text -> token ids, one per module, all with the same interface.

`CharTokenizer` (char.py), `WordTokenizer` (word.py, like torchtext's basic_english) and
byte-level `BPETokenizer` (bpe.py); `encoding_stats` compares them on a text, `load_tokenizer`
reads back any saved one.

`train(text, vocab_size=None)`, `encode(text) -> list[int]`, `decode(ids) -> str`,
`vocab_size`, `id_to_token(i)`, `token_bytes(i) -> bytes`, `unk_id` (the id of `<unk>`, None
for byte-level BPE, which has none), `save(path)` / `load(path)`.

The dependencies go one way: base.py <- char.py, word.py, bpe.py <- this package, which alone
knows every kind. Each tokenizer module loads on first use.
"""

from __future__ import annotations

import json
from importlib import import_module
from pathlib import Path

from mllm_core.tokenizers.base import Tokenizer, encoding_stats

__all__ = ["BPETokenizer", "CharTokenizer", "Tokenizer", "WordTokenizer", "encoding_stats", "load_tokenizer"]

_MODULES = {"char": "CharTokenizer", "word": "WordTokenizer", "bpe": "BPETokenizer"}  # kind (= module) -> class


def _tokenizer_class(kind: str) -> type[Tokenizer]:
    return getattr(import_module(f"mllm_core.tokenizers.{kind}"), _MODULES[kind])


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Load any saved tokenizer, whatever its kind."""
    payload = json.loads(Path(path).read_text(encoding="utf-8"))
    kind = payload.get("kind")
    if kind not in _MODULES:
        raise ValueError(f"{path} holds an unknown tokenizer kind {kind!r}; known kinds: {', '.join(_MODULES)}")
    return _tokenizer_class(kind).from_dict(payload, path)


def __getattr__(name: str):  # the tokenizer classes load on first use
    for kind, class_name in _MODULES.items():
        if name == class_name:
            return _tokenizer_class(kind)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
