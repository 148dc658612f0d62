"""The one interface that `generate`, perplexity and the generation page use for every family.

Neural models (char-LSTM, transformer) answer `forward(idx, targets=None) -> (logits, loss)`
like nanoGPT's; count models (n-gram) have no forward pass but can still give the scores of
the next token. `TextLM` is the common ground: a tokenizer plus "logits of the next token given
these ids". `TorchTextLM` adapts any torch module with the shared `forward` to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class TextLM(Protocol):
    """A language model over a tokenizer, as the generation lab sees it."""

    name: str

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...

    @property
    def vocab_size(self) -> int: ...

    def next_logits(self, ids: list[int]) -> torch.Tensor:
        """(V,) unnormalised log-scores of the next token after `ids` (may be empty)."""
        ...


@dataclass
class TorchTextLM:
    """Wraps `module.forward(idx (1, T)) -> (logits (1, T, V), loss)` and a tokenizer.

    `block_size` crops the context to the module's window (None: no limit); `bos_id` is fed
    when the context is empty (None: an empty prompt is an error).
    """

    name: str
    module: Any  # torch.nn.Module with the shared forward(idx, targets=None)
    tokenizer: Any  # anything with encode / decode / vocab_size
    block_size: int | None = None
    bos_id: int | None = None

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text))

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(list(ids))

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    @torch.no_grad()
    def next_logits(self, ids: list[int]) -> torch.Tensor:
        if not ids:
            if self.bos_id is None:
                raise ValueError("this model needs a non-empty prompt")
            ids = [self.bos_id]
        if self.block_size is not None:
            ids = ids[-self.block_size :]
        device = next(self.module.parameters()).device
        idx = torch.tensor([ids], dtype=torch.long, device=device)  # (1, T)
        was_training = self.module.training
        self.module.eval()
        logits, _ = self.module(idx)  # (1, T, V)
        self.module.train(was_training)
        return logits[0, -1].float().cpu()  # (V,)
