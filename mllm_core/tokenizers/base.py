"""The interface every tokenizer shares, and its versioned save format.

A saved tokenizer is a JSON file (`kind`, `version`, the tokenizer's own `state`) plus a
readable companion `.vocab` file with one token per line, for people rather than programs.
This module knows none of its subclasses: `load_tokenizer` (in the package) picks the class
from `kind`.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

FORMAT_VERSION = 1


class Tokenizer:
    """Base class: subclasses implement `train`, `encode`, `decode`, `id_to_token`, `token_bytes` and the state."""

    kind: ClassVar[str] = "base"
    unk_id: ClassVar[int | None] = None  # the id unknown input maps to; None for lossless tokenizers

    def train(self, text: str, vocab_size: int | None = None) -> Tokenizer:
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode(self, ids: list[int]) -> str:
        raise NotImplementedError

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    def id_to_token(self, i: int) -> str:
        raise NotImplementedError

    def token_bytes(self, i: int) -> bytes:
        """The UTF-8 bytes token `i` stands for (`<unk>`: the bytes of its text, b"<unk>")."""
        raise NotImplementedError

    def tokens(self, text: str) -> list[str]:
        """The text of each token of `encode(text)`, for display."""
        return [self.id_to_token(i) for i in self.encode(text)]

    def token_frequencies(self) -> list[int]:
        """How often each id occurred in the training text (index = id), for a vocabulary browser."""
        raise NotImplementedError

    # -- persistence -------------------------------------------------------------------------

    def get_state(self) -> dict[str, Any]:
        raise NotImplementedError

    def set_state(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """The saved form: `{"kind", "version", "state"}` (what `save` writes as JSON)."""
        return {"kind": self.kind, "version": FORMAT_VERSION, "state": self.get_state()}

    def save(self, path: str | Path) -> Path:
        """Write `path` (JSON) and `path` with suffix `.vocab` (one readable token per line)."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")
        lines = (f"{i}\t{self.id_to_token(i)!r}" for i in range(self.vocab_size))
        path.with_suffix(".vocab").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Tokenizer:
        """Read back what `save` wrote: a tokenizer of this class's kind (`load_tokenizer` reads any kind)."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")), path)

    @classmethod
    def from_dict(cls, payload: dict[str, Any], source: object = "the dict") -> Tokenizer:
        """The tokenizer `to_dict` gave; ValueError for another format version or kind (`source` names the origin)."""
        if payload.get("version") != FORMAT_VERSION:
            raise ValueError(f"unsupported tokenizer file version {payload.get('version')!r}")
        if payload.get("kind") != cls.kind:
            raise ValueError(f"{source} holds a {payload.get('kind')} tokenizer, not a {cls.kind} one")
        tok = cls()
        tok.set_state(payload["state"])
        return tok


class ListVocabTokenizer(Tokenizer):
    """A tokenizer whose vocabulary is a list of strings (`itos`) and its inverse (`stoi`),
    with the training counts (`counts`) kept for the vocabulary browser; shared by char and word.
    """

    unk_id = 0  # `<unk>` comes first in every list vocabulary

    def __init__(self) -> None:
        self.set_vocab([])
        self.counts: Counter[str] = Counter()  # unit -> occurrences in the training text

    def set_vocab(self, itos: list[str]) -> None:
        self.itos = list(itos)  # id -> token
        self.stoi = {s: i for i, s in enumerate(self.itos)}  # token -> id

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def id_to_token(self, i: int) -> str:
        return self.itos[i]

    def token_bytes(self, i: int) -> bytes:
        return self.itos[i].encode("utf-8", errors="surrogatepass")  # lone surrogates too, as in BPE

    def token_frequencies(self) -> list[int]:
        return [self.counts.get(s, 0) for s in self.itos]

    def get_state(self) -> dict[str, Any]:
        return {"itos": self.itos, "counts": dict(self.counts)}

    def set_state(self, state: dict[str, Any]) -> None:
        self.set_vocab(state["itos"])
        self.counts = Counter(state.get("counts", {}))


def encoding_stats(tok: Tokenizer, text: str) -> dict[str, float]:
    """What a tokenizer makes of `text`: vocabulary size, sequence length, compression, `<unk>` share.

    >>> from mllm_core.tokenizers.char import CharTokenizer
    >>> encoding_stats(CharTokenizer().train("abc"), "abcd")
    {'vocab size': 4, 'tokens': 4, 'bytes per token': 1.0, 'unk share': 0.25}
    """
    ids = tok.encode(text)
    n_unk = sum(i == tok.unk_id for i in ids) if tok.unk_id is not None else 0
    return {
        "vocab size": tok.vocab_size,
        "tokens": len(ids),
        "bytes per token": len(text.encode("utf-8", errors="surrogatepass")) / len(ids) if ids else 0.0,
        "unk share": n_unk / len(ids) if ids else 0.0,
    }
