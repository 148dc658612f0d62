"""One training loop for every neural language model of the playground (makemore's habit).

A family (char-LSTM, transformer, and the ones to come) is a torch module answering
`forward(idx (B, T), targets (B, T)) -> (logits (B, T, V), loss)` plus a config. Everything
around the module lives here, once:

- the data: `encode_split` holds out the last lines of a text and encodes both parts;
- the batches: `get_batch` draws random windows, targets shifted by one token;
- the validation estimate: `estimate_loss` on the same seeded batches every time, so two
  checkpoints are compared on the same text;
- the update: AdamW (plain Adam when `weight_decay` is 0), gradient clipping, and an optional
  annealing of the learning rate over the last steps (`AnnealedTrainConfig`);
- the device: the model and its data go to the job's device (`cpu`, `cuda`, `mps`); on CUDA the
  forward pass runs under bf16 autocast where the GPU supports it;
- the reporting: `loss` every step and `val_loss` at every checkpoint go to the job's context,
  or to `training.NullContext` in a plain script.

The family keeps what is its own: building the tokenizer and the module, and what it shows at
a checkpoint (a sample, attention maps, a snapshot of the model) through the `callback`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from mllm_core.corpora import train_val_split
from mllm_core.training import NullContext

VAL_SEED = 1234  # the validation batches' seed: the same windows at every checkpoint


@dataclass(frozen=True)
class TrainConfig:
    """What the loop needs; each family's training config extends it with its own fields."""

    steps: int = 1000  # optimizer updates in total
    batch_size: int = 32  # sequences per update
    lr: float = 3e-3  # AdamW's learning rate; small models like it high
    weight_decay: float = 0.0  # AdamW's decoupled weight decay (0 = plain Adam)
    grad_clip: float = 1.0  # clip the gradient norm to this (0 = off); LSTMs occasionally spike
    eval_every: int = 50  # steps between checkpoints (validation loss + the family's callback)
    eval_batches: int = 2  # fixed validation batches averaged per checkpoint
    val_fraction: float = 0.1  # share of the text (its last lines) held out for val_loss
    seed: int = 0  # initialisation and batch order

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "eval_every", "eval_batches"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not self.lr > 0:
            raise ValueError("lr must be > 0")
        if self.grad_clip < 0 or self.weight_decay < 0:
            raise ValueError("grad_clip and weight_decay must be >= 0")
        if not 0 < self.val_fraction < 1:
            raise ValueError("val_fraction must be between 0 and 1")

    def lr_at(self, step: int) -> float:
        """The learning rate of update `step` (1..steps): `lr` throughout (`AnnealedTrainConfig` anneals it)."""
        return self.lr


@dataclass(frozen=True)
class AnnealedTrainConfig(TrainConfig):
    """A `TrainConfig` whose last steps anneal the learning rate to 0, for a steadier end than a
    constant lr gives. A family whose training config extends this one gets the schedule from `fit`.
    (A subclass, not a field of `TrainConfig`: a new field would change the `repr` of every family's
    config, so the names of all their saved defaults, `zoo.artefact_name`.)"""

    decay: float = 0.4  # the last share of the steps over which the lr falls to 0 along half a cosine

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.decay <= 1:
            raise ValueError("decay must be between 0 and 1 (the share of the steps that anneal the lr)")

    def lr_at(self, step: int) -> float:
        """`lr` until the last `decay` share of the steps, then half a cosine down to 0 at the last step.

        >>> c = AnnealedTrainConfig(steps=10, lr=1.0, decay=0.4)
        >>> [round(c.lr_at(s), 2) for s in range(1, 11)]
        [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.85, 0.5, 0.15, 0.0]
        """
        start = self.steps * (1 - self.decay)  # the last step at full lr
        if step <= start:
            return self.lr
        return self.lr * 0.5 * (1 + math.cos(math.pi * (step - start) / (self.steps - start)))


@dataclass(frozen=True)
class TokenSplit:
    train: torch.Tensor  # (N,) int64 token ids the model learns from
    val: torch.Tensor  # (M,) int64 held-out ids; the training ids when the text is too short to hold any out


def encode_split(text: str, tokenizer, val_fraction: float = 0.1, block_size: int = 1) -> TokenSplit:
    """Hold out the last lines of `text` (`corpora.train_val_split`) and encode both parts.

    A single line is split by tokens instead. When the held-out part is shorter than one
    window (`block_size` + 1 tokens), the validation loss is measured on the training ids
    rather than failing: a toy text still trains.

    >>> from mllm_core.tokenizers import CharTokenizer
    >>> s = encode_split("abab\\nbaba", CharTokenizer().train("ab\\n"), 0.5)
    >>> s.train.tolist(), s.val.tolist()
    ([2, 3, 2, 3], [3, 2, 3, 2])
    """
    train_text, val_text = train_val_split(text, val_fraction) if "\n" in text.strip() else (text, "")
    train = torch.tensor(tokenizer.encode(train_text), dtype=torch.long)
    val = torch.tensor(tokenizer.encode(val_text), dtype=torch.long) if val_text else train[:0]
    if len(val) == 0:
        cut = int(len(train) * (1 - val_fraction))
        train, val = train[:cut], train[cut:]
    if len(val) < block_size + 1:
        val = train
    return TokenSplit(train, val)


def get_batch(
    data: torch.Tensor, batch_size: int, block_size: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows of `data`: x (B, T) and y (B, T) = x shifted one token to the left.

    The window starts come from `generator` (a CPU generator, so a seed draws the same
    batches on every device); the windows are cut where `data` lives.

    >>> x, y = get_batch(torch.arange(10), 2, 3, torch.Generator().manual_seed(0))
    >>> bool((y == x + 1).all()), tuple(x.shape)
    (True, (2, 3))
    """
    if len(data) < block_size + 1:
        raise ValueError(f"the text has {len(data)} tokens, fewer than block_size + 1 = {block_size + 1}")
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator)  # (B,)
    offsets = starts[:, None] + torch.arange(block_size + 1)  # (B, T+1)
    window = data[offsets.to(data.device)]  # (B, T+1)
    return window[:, :-1], window[:, 1:]


def autocast(device: str | torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on a CUDA GPU that supports it; nothing elsewhere (CPU and MPS train in float32)."""
    if torch.device(device).type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def estimate_loss(
    model: nn.Module, data: torch.Tensor, batch_size: int, block_size: int, n_batches: int, seed: int = VAL_SEED
) -> float:
    """Mean loss over `n_batches` seeded batches of `data`, in eval mode (the same batches every call)."""
    gen = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    data = data.to(device)
    was_training = model.training
    model.eval()
    try:
        with autocast(device):
            losses = [model(*get_batch(data, batch_size, block_size, gen))[1].item() for _ in range(n_batches)]
    finally:
        model.train(was_training)
    return sum(losses) / len(losses)


# callback(step, loss, val_loss): after every step; val_loss is set at checkpoints (step 0 included), else None
Callback = Callable[[int, float, float | None], None]


def fit(
    model: nn.Module,
    data: TokenSplit,
    block_size: int,
    config: TrainConfig,
    ctx=None,
    callback: Callback | None = None,
) -> nn.Module:
    """Train `model` in place on `data` for `config.steps` updates and return it (in eval mode).

    Checkpoints come at step 0 (the untrained model), every `eval_every` steps and at the last
    step: `val_loss` is reported to `ctx` and passed to `callback`. With a job's context every
    step calls `ctx.check()` (pause, stop) and reports `loss`. The model and the data move to
    `ctx.device`; the caller seeds the model's initialisation (`torch.manual_seed(config.seed)`).
    """
    ctx = ctx if ctx is not None else NullContext()
    device = ctx.device
    model.to(device)
    train_ids, val_ids = data.train.to(device), data.val.to(device)
    get_batch(train_ids, 1, block_size, torch.Generator())  # a text shorter than one window: a clear error now
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    gen = torch.Generator().manual_seed(config.seed)
    ctx.set_total(config.steps)

    def checkpoint(step: int, loss: float) -> None:
        val = estimate_loss(model, val_ids, config.batch_size, block_size, config.eval_batches)
        ctx.report(step=step, val_loss=val)
        if callback is not None:
            callback(step, loss, val)

    checkpoint(0, estimate_loss(model, train_ids, config.batch_size, block_size, 1))
    model.train()
    for step in range(1, config.steps + 1):
        ctx.check()
        for group in optimizer.param_groups:
            group["lr"] = config.lr_at(step)
        x, y = get_batch(train_ids, config.batch_size, block_size, gen)  # (B, T), (B, T)
        with autocast(device):
            _, loss_t = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss_t.backward()
        if config.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        loss = loss_t.item()
        ctx.report(step=step, loss=loss)
        if step % config.eval_every == 0 or step == config.steps:
            checkpoint(step, loss)
        elif callback is not None:
            callback(step, loss, None)
    return model.eval()


__all__ = [
    "AnnealedTrainConfig",
    "TokenSplit",
    "TrainConfig",
    "autocast",
    "encode_split",
    "estimate_loss",
    "fit",
    "get_batch",
]
