"""In-context learning and induction heads: a 2-layer attention-only transformer learns to copy.

Olsson et al. (2022) trace much of a transformer's in-context learning to *induction heads*: at
token A, look back for the earlier occurrence of A and copy the token that came after it
("A B … A → B"). It takes two layers: a head in layer 0 writes "the token before me was A" into
every position, and a head in layer 1 matches the current A against that. During training the
heads form suddenly, a *phase change*, and the loss on text that repeats collapses with them.

The data here make that visible: random tokens from a small vocabulary, each segment followed by
its own copy (`repeated_sequences`, `token_stream`). The first copy cannot be predicted (loss
log V); the second can, but only by looking back. Segments vary in length, so no fixed offset
solves it. In training a separator follows every copy: the model reads it but is not scored on
predicting it (where a random segment ends cannot be known), so "copy the token after the
previous occurrence" is never punished at a segment's end; that makes the copy a confident one. `AttentionOnlyGPT` is `transformer.GPT` without its MLPs, trained by `lm_train.fit`;
`induction_score` measures, for every head, the attention to "the token after the previous
occurrence". A 1-layer twin, trained the same way, cannot form an induction head (its values are
tokens, not "the token after"), and does not solve the repeated half.

`loss_by_position` and `icl_score` look at the same effect on natural text: a trained language
model predicts better late in its context than early. For the scaling of loss with size, see
`scaling.py`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from mllm_core.lm_train import AnnealedTrainConfig, TokenSplit, fit
from mllm_core.training import NullContext, StageContext
from mllm_core.transformer import GPT, CausalSelfAttention, GPTConfig


@dataclass(frozen=True)
class InductionConfig:
    vocab_size: int = 64  # random tokens are drawn from this many (plus a separator); log V = 4.16 nats
    half: int = 10  # length of a probe sequence's first half; the model's context is 2 x half
    min_half: int = 3  # training segments are min_half..max_half tokens long: no fixed offset finds the copy
    # Longer than the probe's half: were `half` the longest, a 1-layer model could tell "no separator for
    # this long, so the copy started `half` back" and guess the offset (it reached 45% of log V so).
    max_half: int = 14
    n_layer: int = 2  # 2 layers can form an induction head; the page trains a 1-layer twin beside it
    n_head: int = 4  # heads per layer
    n_embd: int = 64  # width of the residual stream
    pos_encoding: str = (
        "sinusoidal"  # fixed clocks: "look one token back" is one linear map (learned: no head in 6000 steps)
    )
    steps: int = 6000  # updates; the phase change comes near step 1500 with these settings
    batch_size: int = 32  # windows per update
    lr: float = 3e-3  # AdamW's learning rate
    decay: float = 0.4  # the last 40% of the steps anneal the lr to 0 (cosine): a steadier end than at 3e-3
    eval_every: int = 50  # steps between probes of the repeated-half loss and the induction scores
    probes: int = 128  # probe sequences (first half random, second half its copy) for every measurement
    train_tokens: int = 200_000  # length of the token stream windows are cut from
    seed: int = 0  # data, initialisation and batch order

    def __post_init__(self) -> None:
        if self.vocab_size < 2:
            raise ValueError("the vocabulary needs at least 2 tokens")
        if not 2 <= self.min_half <= self.half <= self.max_half < 2 * self.half:
            raise ValueError(
                "segment lengths must satisfy 2 <= min_half <= half <= max_half < 2 x half (a copy starts within "
                f"one context), not {self.min_half}, {self.half} and {self.max_half}"
            )
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if self.probes < 1 or self.train_tokens < 4 * self.half:
            raise ValueError("need at least one probe and a stream of a few sequences")
        self.train_config()  # steps, batch, lr, eval_every: TrainConfig's checks and messages

    @property
    def block_size(self) -> int:
        return 2 * self.half

    @property
    def separator(self) -> int:
        """The token id between one segment's copy and the next segment: one past the random tokens."""
        return self.vocab_size

    def gpt_config(self) -> GPTConfig:
        return GPTConfig(  # the random tokens and the separator
            self.vocab_size + 1, self.block_size, self.n_layer, self.n_head, self.n_embd, pos_encoding=self.pos_encoding
        )

    def train_config(self) -> AnnealedTrainConfig:
        return AnnealedTrainConfig(
            self.steps, self.batch_size, self.lr, eval_every=self.eval_every, seed=self.seed, decay=self.decay
        )


# ---------------------------------------------------------------------------------------------
# Data


def repeated_sequences(n: int, half: int, vocab_size: int, generator: torch.Generator) -> torch.Tensor:
    """(n, 2·half) random tokens whose second half repeats the first.

    >>> repeated_sequences(2, 3, 10, torch.Generator().manual_seed(0)).tolist()
    [[4, 9, 3, 4, 9, 3], [0, 3, 9, 0, 3, 9]]
    """
    first = torch.randint(vocab_size, (n, half), generator=generator)  # (n, half)
    return torch.cat([first, first], dim=1)  # (n, 2·half)


def token_stream(
    n_tokens: int, min_half: int, max_half: int, vocab_size: int, generator: torch.Generator
) -> torch.Tensor:
    """(n_tokens,) segments of random tokens of random lengths in [min_half, max_half], each followed
    by its copy and the separator `vocab_size` (a token of its own, like the end-of-text token between
    documents): `lm_train.get_batch` cuts training windows from it.

    >>> s = token_stream(12, 2, 2, 5, torch.Generator().manual_seed(0))
    >>> s.tolist()
    [4, 3, 4, 3, 5, 3, 4, 3, 4, 5, 3, 2]
    """
    sep = torch.tensor([vocab_size])
    pieces, total = [], 0
    while total < n_tokens:
        h = int(torch.randint(min_half, max_half + 1, (1,), generator=generator))
        segment = torch.randint(vocab_size, (h,), generator=generator)
        pieces += [segment, segment, sep]
        total += 2 * h + 1
    return torch.cat(pieces)[:n_tokens]


# ---------------------------------------------------------------------------------------------
# The model: a GPT without MLPs


class AttentionBlock(nn.Module):
    """x + attention(LN(x)): a transformer block with no MLP, so every computation is a head's."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)

    def forward(self, x: torch.Tensor, **attn_kwargs: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        a, weights = self.attn(self.ln_1(x), **attn_kwargs)
        return x + a, weights  # (B, T, C), (B, nh, T, T) or None


class AttentionOnlyGPT(GPT):
    """`transformer.GPT` with `AttentionBlock`s: embeddings, attention layers, unembedding.

    `unscored`: a token id the model reads but is never scored on predicting (its targets are
    left out of the loss), the separator of `token_stream`.

    >>> m = AttentionOnlyGPT(GPTConfig(vocab_size=8, block_size=6, n_layer=2, n_head=2, n_embd=8))
    >>> tuple(m(torch.zeros(1, 6, dtype=torch.long))[0].shape), any("mlp" in n for n, _ in m.named_parameters())
    ((1, 6, 8), False)
    """

    block_class = AttentionBlock

    def __init__(self, config: GPTConfig, unscored: int | None = None):
        super().__init__(config)
        self.unscored = unscored
        # Its own unembedding: tied to the embedding, the direct path (no MLP to bend it) would predict
        # the current token again, a bias every head must first undo.
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        nn.init.normal_(self.lm_head.weight, mean=0.0, std=0.02)
        if config.pos_encoding == "sinusoidal":  # tokens on the scale of the sinusoids (±1), not 50x below them,
            nn.init.normal_(self.wte.weight, mean=0.0, std=1.0)  # or LayerNorm would leave little but position

    def init_args(self) -> tuple:
        return (self.config, self.unscored)

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if targets is not None and self.unscored is not None:
            targets = targets.masked_fill(targets == self.unscored, -100)  # F.cross_entropy's ignore_index
        return super().forward(idx, targets)


# ---------------------------------------------------------------------------------------------
# Measurements


def induction_score(maps: torch.Tensor, half: int) -> torch.Tensor:
    """Mean attention of every head to "the token after the previous occurrence", on sequences whose
    second half repeats the first: query t >= half looks at t - half + 1. 1 for a perfect induction
    head; about 1/t for a head that spreads its attention evenly.

    maps (..., B, nh, T, T) -> scores (..., nh).

    >>> stripe = torch.zeros(1, 1, 4, 4)
    >>> for t in (2, 3): stripe[0, 0, t, t - 1] = 1.0
    >>> induction_score(stripe, 2).tolist()
    [1.0]
    """
    T = maps.size(-1)
    queries = torch.arange(half, T)  # positions in the repeated half
    stripe = maps[..., queries, queries - half + 1]  # (..., B, nh, half)
    return stripe.mean(dim=(-3, -1))  # (..., nh)


@torch.no_grad()
def position_losses(model: nn.Module, seqs: torch.Tensor) -> torch.Tensor:
    """(T-1,) mean cross-entropy at each position of `seqs` (B, T), predicting token t+1 from 0..t."""
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        seqs = seqs.to(device)
        logits, _ = model(seqs[:, :-1])  # (B, T-1, V)
        loss = F.cross_entropy(logits.transpose(1, 2), seqs[:, 1:], reduction="none")  # (B, T-1)
    finally:
        model.train(was_training)
    return loss.mean(dim=0).cpu()


def halves(losses: torch.Tensor, half: int) -> tuple[float, float]:
    """(first-half loss, repeated-half loss) of `position_losses` on a sequence of 2·half tokens.

    Position t predicts token t+1: positions 0..half-2 predict the first half (token `half`, the
    first of the copy, cannot be known either, so position half-1 is in neither), positions
    half..2·half-2 predict the copy.

    >>> halves(torch.tensor([4.0, 4.0, 4.0, 0.5, 0.5]), 3)
    (4.0, 0.5)
    """
    return float(losses[: half - 1].mean()), float(losses[half:].mean())


@dataclass(frozen=True)
class Checkpoint:
    step: int
    loss: float  # training loss at this step
    first_loss: float  # probe loss on the first half (≈ log V: nothing to learn there)
    repeat_loss: float  # probe loss on the repeated half (→ 0 once an induction head works)
    scores: list[list[float]]  # (n_layer, n_head) induction scores


@dataclass(frozen=True)
class InductionRun:
    """One trained model's story: its checkpoints, its final loss by position and its attention on a probe."""

    config: InductionConfig
    checkpoints: list[Checkpoint]
    position_loss: list[float]  # (2·half - 1,) final loss at each position of the probes
    probe: list[int]  # one probe sequence, (2·half,)
    maps: list  # (n_layer, n_head, T, T) attention on that probe, rounded
    seconds: float

    @property
    def log_v(self) -> float:
        return math.log(self.config.vocab_size)

    @property
    def final(self) -> Checkpoint:
        return self.checkpoints[-1]

    @property
    def best_head(self) -> tuple[int, int, float]:
        """(layer, head, score) of the head with the highest final induction score."""
        scores = torch.tensor(self.final.scores)
        i = int(scores.argmax())
        layer, head = divmod(i, scores.size(1))
        return layer, head, float(scores.max())

    @property
    def phase_change(self) -> int | None:
        """The step at which the repeated-half loss first falls below halfway between its start and
        its end; None if it never fell below half of log V (no induction head formed)."""
        start, end = self.checkpoints[0].repeat_loss, self.final.repeat_loss
        if end > 0.5 * self.log_v:
            return None
        mid = (start + end) / 2
        return next(c.step for c in self.checkpoints if c.repeat_loss <= mid)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> InductionRun:
        """The inverse of `to_dict`, after a JSON round trip."""
        return cls(
            InductionConfig(**d["config"]),
            [Checkpoint(**c) for c in d["checkpoints"]],
            d["position_loss"],
            d["probe"],
            d["maps"],
            d["seconds"],
        )


def label(config: InductionConfig) -> str:
    """The name a model goes by on the page.

    >>> label(InductionConfig(n_layer=1))
    '1-layer'
    """
    return f"{config.n_layer}-layer"


def train_induction(
    config: InductionConfig | None = None, ctx=None, on_checkpoint=None
) -> tuple[InductionRun, nn.Module]:
    """Train an `AttentionOnlyGPT` on `token_stream` windows with `lm_train.fit`; return its run and the model.

    At every checkpoint it probes `config.probes` fresh repeated sequences (the same ones every
    time): the loss on each half and every head's induction score; `on_checkpoint(checkpoints)`
    hears the list so far. Reports `first_loss` and `repeat_loss` to `ctx` beside `fit`'s `loss`.
    """
    config = config or InductionConfig()
    ctx = ctx if ctx is not None else NullContext()
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(config.seed)
    stream = token_stream(config.train_tokens, config.min_half, config.max_half, config.vocab_size, gen)
    val = token_stream(config.train_tokens // 10, config.min_half, config.max_half, config.vocab_size, gen)
    probes = repeated_sequences(config.probes, config.half, config.vocab_size, gen)  # (P, T)
    torch.manual_seed(config.seed)
    model = AttentionOnlyGPT(config.gpt_config(), unscored=config.separator)
    checkpoints: list[Checkpoint] = []

    def on_step(step: int, loss: float, val_loss: float | None) -> None:
        if val_loss is None:
            return
        first, repeat = halves(position_losses(model, probes), config.half)
        scores = induction_score(model.attention_maps(probes), config.half)  # (n_layer, nh)
        checkpoints.append(Checkpoint(step, loss, first, repeat, scores.tolist()))
        ctx.report(step=step, first_loss=first, repeat_loss=repeat)
        if on_checkpoint is not None:
            on_checkpoint(list(checkpoints))

    fit(model, TokenSplit(stream, val), config.block_size, config.train_config(), ctx, on_step)
    maps = model.attention_maps(probes[:1])[:, 0]  # (n_layer, nh, T, T)
    run = InductionRun(
        config,
        checkpoints,
        [round(v, 4) for v in position_losses(model, probes).tolist()],
        probes[0].tolist(),
        [[[[round(w, 3) for w in row] for row in head] for head in layer] for layer in maps.tolist()],
        time.perf_counter() - t0,
    )
    return run, model.cpu()


def induction_target(config: InductionConfig | None = None, layers: tuple[int, ...] = (2, 1)):
    """A `TrainingJob` loop: `training.spec(induction_target, InductionConfig())` trains one model per
    entry of `layers` (the config's other settings kept) and returns {"2-layer": InductionRun, ...}.
    Publishes `runs` (the finished ones) and `current` ({"label", "checkpoints"}) as it goes."""
    config = config or InductionConfig()

    def loop(ctx) -> dict[str, InductionRun]:
        runs: dict[str, InductionRun] = {}
        ctx.set_total(len(layers) * config.steps)
        for k, n_layer in enumerate(layers):
            cfg = replace(config, n_layer=n_layer)
            name = label(cfg)

            def publish(checkpoints: list[Checkpoint], name: str = name) -> None:
                ctx.publish(current={"label": name, "checkpoints": checkpoints})

            runs[name], _ = train_induction(cfg, StageContext(ctx, k * config.steps), publish)
            ctx.publish(runs=dict(runs), current=None)
        return runs

    return loop


# ---------------------------------------------------------------------------------------------
# In-context learning on natural text


@torch.no_grad()
def loss_by_position(
    module: nn.Module, ids: torch.Tensor, block_size: int, n_windows: int = 512, seed: int = 0
) -> list[float]:
    """Mean loss at each position 0..block_size-1 of `n_windows` seeded windows of `ids` (N,): how well
    a language model predicts the next token after seeing t tokens of context."""
    from mllm_core.lm_train import get_batch

    if len(ids) < block_size + 1:
        raise ValueError(f"the text has {len(ids)} tokens, fewer than one context of {block_size + 1}")
    x, y = get_batch(ids, n_windows, block_size, torch.Generator().manual_seed(seed))  # (W, T), (W, T)
    was_training = module.training
    module.eval()
    try:
        logits, _ = module(x.to(next(module.parameters()).device))  # (W, T, V)
        loss = F.cross_entropy(logits.float().transpose(1, 2), y.to(logits.device), reduction="none")  # (W, T)
    finally:
        module.train(was_training)
    return loss.mean(dim=0).cpu().tolist()


def icl_score(curve: list[float]) -> float:
    """In-context learning score: mean loss over the last eighth of the context minus the mean over
    the first eighth (at least one position each). Negative: the model predicts better with more context.

    >>> icl_score([3.0, 2.0, 1.5, 1.4, 1.3, 1.2, 1.1, 1.0])
    -2.0
    """
    k = max(1, len(curve) // 8)
    return sum(curve[-k:]) / k - sum(curve[:k]) / k


__all__ = [
    "AttentionOnlyGPT",
    "Checkpoint",
    "InductionConfig",
    "InductionRun",
    "halves",
    "icl_score",
    "induction_score",
    "induction_target",
    "loss_by_position",
    "position_losses",
    "repeated_sequences",
    "token_stream",
    "train_induction",
]
