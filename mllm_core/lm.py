"""The one interface that `generate`, perplexity and the generation page use for every family.

Neural models (char-LSTM, transformer) answer `forward(idx, targets=None) -> (logits, loss)`
like nanoGPT's; count models (n-gram) have no forward pass but can still give the scores of
the next token. `TextLM` is the common ground: a tokenizer plus "logits of the next token given
these ids". `TorchTextLM` adapts any torch module with the shared `forward` to it, and
`UniformLM` is the baseline every real model must beat (log2 V bits per token).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class TextLM(Protocol):
    """A language model over a tokenizer, as the generation lab sees it.

    Optional extras that `mllm_core.metrics` uses when present: `block_size` (the most recent
    tokens the model reads; None: all) and, on `TorchTextLM`, the batched `module` forward.
    """

    name: str

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...

    @property
    def vocab_size(self) -> int: ...

    @property
    def unk_id(self) -> int | None:
        """The id that text outside the vocabulary encodes to; None when nothing is (byte-level BPE)."""
        ...

    def next_logits(self, ids: list[int]) -> torch.Tensor:
        """(V,) unnormalised log-scores of the next token after `ids` (may be empty)."""
        ...


class _TokenizerText:
    """encode / decode / vocab_size / unk_id delegated to `self.tokenizer`."""

    tokenizer: Any

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text))

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(list(ids))

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    @property
    def unk_id(self) -> int | None:
        return self.tokenizer.unk_id


@dataclass
class TorchTextLM(_TokenizerText):
    """Wraps `module.forward(idx (1, T)) -> (logits (1, T, V), loss)` and a tokenizer.

    `block_size` crops the context to the module's window (None: no limit); `bos_id` is fed
    when the context is empty (None: an empty prompt is an error).

    Do not hand the page a module that a training thread is still updating: `next_logits`
    switches it to eval mode for the call. Training loops publish a copy.
    """

    name: str
    module: Any  # torch.nn.Module with the shared forward(idx, targets=None)
    tokenizer: Any  # anything with encode / decode / vocab_size / unk_id
    block_size: int | None = None
    bos_id: int | None = None

    @property
    def device(self) -> torch.device:
        param = next(self.module.parameters(), None)
        return param.device if param is not None else torch.device("cpu")

    @torch.no_grad()
    def forward_logits(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, T) ids -> (B, T, V) float32 logits on the CPU, in eval mode (T <= block_size)."""
        was_training = self.module.training
        self.module.eval()
        try:
            logits, _ = self.module(idx.to(self.device))  # (B, T, V)
        finally:
            self.module.train(was_training)
        return logits.detach().float().cpu()

    def next_logits(self, ids: list[int]) -> torch.Tensor:
        if not ids:
            if self.bos_id is None:
                raise ValueError(f"{self.name} needs a non-empty prompt: type a few characters for it to continue")
            ids = [self.bos_id]
        if self.block_size is not None:
            ids = ids[-self.block_size :]
        idx = torch.tensor([list(ids)], dtype=torch.long)  # (1, T)
        return self.forward_logits(idx)[0, -1]  # (V,)


class UniformLM(_TokenizerText):
    """Every token of a tokenizer's vocabulary equally likely: the baseline of the leaderboard.

    On any text it costs log2(V) bits per token, e.g. 5 characters -> log2(5) = 2.32 bits/char.

    >>> from mllm_core.tokenizers import CharTokenizer
    >>> lm = UniformLM(CharTokenizer().train("abcd"))  # 4 characters + <unk>
    >>> lm.vocab_size, lm.next_logits([1, 2]).tolist()
    (5, [0.0, 0.0, 0.0, 0.0, 0.0])
    """

    block_size = 0  # reads no context at all

    def __init__(self, tokenizer: Any, name: str = "uniform"):
        self.name = name
        self.tokenizer = tokenizer

    def next_logits(self, ids: list[int]) -> torch.Tensor:
        return torch.zeros(self.vocab_size)  # (V,)


def toy_char_lm(alphabet: str, name: str = "uniform") -> UniformLM:
    """A `UniformLM` over the characters of `alphabet` (plus `<unk>`), for examples and tests."""
    from mllm_core.tokenizers import CharTokenizer

    return UniformLM(CharTokenizer().train(alphabet), name=name)


def unknown_pieces(model: TextLM, text: str) -> list[str]:
    """The parts of `text` the model reads as its unknown token (`model.unk_id`), in order of appearance.

    Character-level models report characters, word-level models report words; a model without
    an unknown token (byte-level BPE) reports nothing.

    >>> unknown_pieces(toy_char_lm("abc "), "cab? abba!")
    ['?', '!']
    """
    unk = model.unk_id
    if unk is None:
        return []
    ids = model.encode(text)
    if unk not in ids:
        return []
    if len(ids) == len(text):  # one token per character
        pieces = [c for c, i in zip(text, ids, strict=True) if i == unk]
    else:
        pieces = [w for w in text.split() if unk in model.encode(w)] or [model.decode([unk])]
    return list(dict.fromkeys(pieces))


def unknown_note(model: TextLM, prompt: str) -> str:
    """ "" or a sentence naming the pieces of `prompt` that `model` never saw in training.

    One rule for every model: such pieces read as the model's unknown token `<unk>` (as the
    N-gram lab counts them); nothing refuses the prompt, the page shows this note instead.

    >>> unknown_note(toy_char_lm("abc"), "cab")
    ''
    >>> unknown_note(toy_char_lm("abc"), "cabé")
    "The prompt uses characters uniform never saw in training: 'é'. They read as <unk>, the unknown token."
    """
    unknown = unknown_pieces(model, prompt)
    if not unknown:
        return ""
    shown = ", ".join(repr(p) for p in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
    kind = "characters" if len(model.encode(prompt)) == len(prompt) else "words"
    return f"The prompt uses {kind} {model.name} never saw in training: {shown}. They read as <unk>, the unknown token."
