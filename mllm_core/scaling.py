"""Scaling laws at toy scale: a ladder of tiny GPTs, a fitted power law, and a prediction made in advance.

Kaplan et al. (2020) found that a language model's loss falls as a power law of its size,
L(N) = L∞ + (N_c / N)^α, with N the parameters outside the embeddings. This module trains a ladder
of `transformer.GPT`s of geometrically spaced size on the same text, tokens and batches (each run
through `lm_train.fit`), fits that law (`fit_power_law`), and does what made the law useful:
before the largest model finishes, it fits the smaller ones and publishes the loss it predicts
for the largest, so a page can show how close the prediction lands. The same job trains one
model of the ladder on 1/8, 1/4 and 1/2 of the text (data scaling), and every checkpoint is also
placed on a compute axis (≈ 6·N·tokens FLOPs, `flops`) with the compute-efficient frontier
(`frontier`).

Where `transformer.py` trains one GPT and shows what it attends to, this module trains several and
looks only at their losses. In-context learning lives in `induction.py`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

import numpy as np
import torch

from mllm_core.lm_train import TokenSplit, TrainConfig, encode_split, estimate_loss, fit
from mllm_core.training import NullContext, StageContext
from mllm_core.transformer import GPT, GPTConfig

# (n_layer, n_embd) of the default ladder: ~10K, 32K, 100K, 300K and 1M non-embedding parameters
DEFAULT_RUNGS = ((2, 20), (2, 36), (2, 64), (2, 112), (4, 144))
# sizes a student picks from (same shapes, plus a few in between)
RUNG_CHOICES = ((1, 16), (2, 20), (2, 28), (2, 36), (2, 48), (2, 64), (2, 88), (2, 112), (3, 128), (4, 144))
FINAL_EVAL_BATCHES = 32  # a rung's final validation loss averages this many fixed batches: the fit needs it steady


@dataclass(frozen=True)
class LadderConfig:
    rungs: tuple[tuple[int, int], ...] = DEFAULT_RUNGS  # (n_layer, n_embd) per model, smallest first
    n_head: int = 4  # attention heads in every model; each n_embd must be a multiple of it
    block_size: int = 64  # context of every model, in characters
    batch_size: int = 16  # sequences per step, the same for every model
    steps: int = 600  # updates per model: every model sees the same 600 x 16 x 64 = 614K tokens
    lr: float = 3e-3  # AdamW's learning rate up to width `lr_width`; a wider model gets lr·lr_width/n_embd
    lr_width: int = 64  # at 3e-3 for all, the 1M model ended worse (2.49) than the 100K one (2.20); at 1e-3, 2.14
    max_chars: int | None = 400_000  # first characters of the corpus used (small: data scaling must overfit)
    data_rung: int = 2  # index of the rung also trained on fractions of the text
    data_fractions: tuple[float, ...] = (1 / 8, 1 / 4, 1 / 2)  # with the rung's own run (all the text): data scaling
    eval_every: int = 50  # steps between validation checkpoints (the compute plot's points)
    eval_batches: int = 4  # fixed validation batches per checkpoint
    seed: int = 0  # every model's initialisation and batch order

    def __post_init__(self) -> None:
        if len(self.rungs) < 4:
            raise ValueError(
                f"a ladder needs at least 4 models ({len(self.rungs)} given): 3 to fit L∞, N_c and α, "
                "and a larger one to predict"
            )
        for n_layer, n_embd in self.rungs:
            if n_layer < 1 or n_embd < self.n_head or n_embd % self.n_head:
                raise ValueError(
                    f"a model of width {n_embd} cannot have {self.n_head} heads: "
                    f"the width must be a positive multiple of the heads"
                )
        sizes = [non_embedding_params(self.gpt_config(i, 1)) for i in range(len(self.rungs))]
        if any(b <= a for a, b in zip(sizes, sizes[1:], strict=False)):
            raise ValueError(f"the models must grow from rung to rung; their sizes are {sizes}")
        if self.block_size < 2:
            raise ValueError("the block size must be at least 2 tokens")
        if not 0 <= self.data_rung < len(self.rungs):
            raise ValueError(f"data_rung must index one of the {len(self.rungs)} models")
        if any(not 0 < f < 1 for f in self.data_fractions):
            raise ValueError(
                "data fractions must lie strictly between 0 and 1 (all of the text is the ladder's own run)"
            )
        TrainConfig(self.steps, self.batch_size, self.lr, eval_every=self.eval_every, eval_batches=self.eval_batches)

    def gpt_config(self, rung: int, vocab_size: int) -> GPTConfig:
        n_layer, n_embd = self.rungs[rung]
        return GPTConfig(vocab_size, self.block_size, n_layer, self.n_head, n_embd)

    def lr_of(self, rung: int) -> float:
        """The learning rate of a rung: Adam moves every weight by about lr per step, so wider
        layers, which add up more such moves, get a proportionally smaller one.

        >>> LadderConfig().lr_of(0), LadderConfig().lr_of(4)
        (0.003, 0.0013333333333333333)
        """
        return self.lr * min(1.0, self.lr_width / self.rungs[rung][1])

    def train_config(self, rung: int) -> TrainConfig:
        return TrainConfig(
            self.steps,
            self.batch_size,
            self.lr_of(rung),
            eval_every=self.eval_every,
            eval_batches=self.eval_batches,
            seed=self.seed,
        )

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.block_size


# ---------------------------------------------------------------------------------------------
# Counting: parameters and FLOPs


def non_embedding_params(config: GPTConfig) -> int:
    """Kaplan's N: the GPT's parameters outside the token and position embeddings (the tied head is the
    token embedding). Per block 12·C² + 13·C (Q, K, V and output projections 4·C² + 4·C, the MLP
    8·C² + 5·C, two LayerNorms 4·C), plus the final LayerNorm's 2·C.

    >>> non_embedding_params(GPTConfig(vocab_size=100, n_layer=2, n_embd=64))
    100096
    """
    with torch.device("meta"):  # shapes only: no memory, no initialisation (milliseconds for 1M parameters)
        model = GPT(config)
    return sum(p.numel() for name, p in model.named_parameters() if not name.startswith(("wte.", "wpe.")))


def flops(n_params: int, tokens: int) -> float:
    """Training compute, ≈ 6·N·D: a forward pass costs 2 FLOPs per parameter per token, the backward twice that.

    >>> flops(100_000, 1_000)
    600000000.0
    """
    return 6.0 * n_params * tokens


# ---------------------------------------------------------------------------------------------
# The law


@dataclass(frozen=True)
class PowerLaw:
    """L(N) = L∞ + (N_c / N)^α.

    >>> law = PowerLaw(l_inf=1.0, n_c=1e4, alpha=0.5)
    >>> float(law(1e4)), float(law(1e6))
    (2.0, 1.1)
    """

    l_inf: float  # the loss an infinitely large model would reach (the text's entropy, for this tokenizer)
    n_c: float  # the size at which the reducible part equals 1 nat
    alpha: float  # the slope on a log-log plot of L - L∞

    def __call__(self, n: Any) -> Any:
        return self.l_inf + (self.n_c / np.asarray(n, dtype=float)) ** self.alpha


def fit_power_law(n: Sequence[float], loss: Sequence[float]) -> PowerLaw:
    """Least-squares fit of L(N) = L∞ + (N_c / N)^α to (N, loss) points (at least 3), with 0 ≤ L∞ < min(loss).

    A grid over L∞ gives a start (for a fixed L∞ the law is a straight line in log(L - L∞) against
    log N), then `scipy.optimize.least_squares` refines all three parameters in log space.

    >>> ns = [1e3, 1e4, 1e5, 1e6]
    >>> law = fit_power_law(ns, [3.0 + (1e2 / n) ** 0.3 for n in ns])
    >>> round(law.l_inf, 3), round(law.alpha, 3), round(law.n_c)
    (3.0, 0.3, 100)
    """
    from scipy.optimize import least_squares

    logn, y = np.log(np.asarray(n, dtype=float)), np.asarray(loss, dtype=float)
    if len(y) < 3 or len(logn) != len(y):
        raise ValueError("fitting L∞, N_c and α needs at least 3 (size, loss) points")
    if not np.all(np.isfinite(y)) or y.min() <= 0:
        raise ValueError("losses must be positive numbers")
    ceiling = y.min() * (1 - 1e-6)

    def residuals(p: np.ndarray) -> np.ndarray:  # p = (L∞, α, α·log N_c); in log L so every size weighs alike
        return np.log(p[0] + np.exp(p[2] - p[1] * logn)) - np.log(y)

    def line(l_inf: float) -> np.ndarray:  # log(L - L∞) = α·log N_c - α·log N
        slope, intercept = np.polyfit(logn, np.log(y - l_inf), 1)
        return np.array([l_inf, max(-slope, 1e-3), intercept])

    starts = [line(l_inf) for l_inf in np.linspace(0, ceiling, 40, endpoint=False)]
    start = min(starts, key=lambda p: float(np.sum(residuals(p) ** 2)))
    lo, hi = [0.0, 1e-3, -np.inf], [ceiling, 5.0, np.inf]
    best = least_squares(residuals, np.clip(start, lo, [ceiling * (1 - 1e-9), 5.0, np.inf]), bounds=(lo, hi)).x
    l_inf, alpha, a_log_nc = (float(v) for v in best)
    return PowerLaw(l_inf, math.exp(a_log_nc / alpha), alpha)


def frontier(points: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The compute-efficient frontier of (compute, loss) points from any runs: the points that reach
    a lower loss than every point with less compute.

    >>> frontier([(1, 5.0), (2, 4.0), (2.5, 4.5), (4, 3.0), (8, 3.2)])
    [(1, 5.0), (2, 4.0), (4, 3.0)]
    """
    best, out = math.inf, []
    for c, loss in sorted(points):
        if loss < best:
            best = loss
            out.append((c, loss))
    return out


# ---------------------------------------------------------------------------------------------
# Results (plain data: they travel from a job to a page and to disk as JSON)


@dataclass(frozen=True)
class Run:
    """One model trained on (a fraction of) the ladder's text."""

    n_layer: int
    n_embd: int
    params: int  # non-embedding parameters N
    fraction: float  # share of the training text it saw (1.0 in the ladder itself)
    train_tokens: int  # size of that share, in tokens
    curve: list[tuple[int, float]]  # (step, validation loss) at every checkpoint
    val_loss: float  # final validation loss, on FINAL_EVAL_BATCHES fixed batches
    train_loss: float  # final loss on its own training text, the same way (a gap = overfitting)
    seconds: float

    @property
    def label(self) -> str:
        return f"{self.n_layer}×{self.n_embd} ({human(self.params)})"


@dataclass(frozen=True)
class Prediction:
    """The law fitted on every model but the largest, and what it said about the largest before it trained."""

    law: PowerLaw
    params: int  # the largest model's N
    predicted: float
    actual: float | None = None  # filled in once the largest model has trained

    @property
    def error(self) -> float | None:
        """(actual - predicted) / actual: negative when the model did worse than predicted."""
        return None if self.actual is None else (self.actual - self.predicted) / self.actual


@dataclass(frozen=True)
class LadderResult:
    config: LadderConfig
    vocab_size: int
    runs: list[Run]  # the ladder, smallest first
    data_runs: list[Run] = field(default_factory=list)  # the data_rung's model on fractions of the text, smallest first
    prediction: Prediction | None = None
    seconds: float = 0.0

    @property
    def law(self) -> PowerLaw:
        """The law fitted on every model of the ladder."""
        return fit_power_law([r.params for r in self.runs], [r.val_loss for r in self.runs])

    def compute_points(self) -> dict[str, list[tuple[float, float]]]:
        """{model label: [(FLOPs so far, validation loss), ...]} at every checkpoint past step 0."""
        tokens = self.config.tokens_per_step
        return {r.label: [(flops(r.params, s * tokens), v) for s, v in r.curve if s > 0] for r in self.runs}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> LadderResult:
        """The inverse of `to_dict` (after a JSON round trip: tuples come back as lists)."""
        config = d["config"]
        config = LadderConfig(
            **{**config, "rungs": tuple(map(tuple, config["rungs"])), "data_fractions": tuple(config["data_fractions"])}
        )

        def run(r: dict) -> Run:
            return Run(**{**r, "curve": [tuple(p) for p in r["curve"]]})

        p = d.get("prediction")
        prediction = None if p is None else Prediction(**{**p, "law": PowerLaw(**p["law"])})
        return cls(
            config,
            d["vocab_size"],
            [run(r) for r in d["runs"]],
            [run(r) for r in d["data_runs"]],
            prediction,
            d["seconds"],
        )


def human(n: float) -> str:
    """A parameter count for a label.

    >>> human(10_160), human(1_003_104), human(512)
    ('10K', '1.0M', '512')
    """
    if n >= 1e6:
        return f"{n / 1e6:.1f}M"
    return f"{n / 1e3:.0f}K" if n >= 1e3 else f"{n:.0f}"


# ---------------------------------------------------------------------------------------------
# Training the ladder


def check_text(text: str, config: LadderConfig) -> None:
    """Raise a ValueError a page can show when `text` is too small for the ladder: its smallest
    training share (characters, one token each) or its held-out tenth must hold one context + 1.

    >>> check_text("tiny", LadderConfig())
    Traceback (most recent call last):
    ValueError: the corpus is too small for this ladder: 1/8 of its training text is 0 characters, fewer than one context of 65; pick a larger corpus or a smaller block size
    """
    if config.max_chars is not None:
        text = text[: config.max_chars]
    if not text.strip():
        raise ValueError("the corpus is empty")
    _check_share(int(len(text) * 0.9), config)


def _check_share(n_train: int, config: LadderConfig) -> None:
    smallest = min(config.data_fractions, default=1.0)
    n = int(n_train * smallest)
    if n < config.block_size + 1:
        raise ValueError(
            f"the corpus is too small for this ladder: {Fraction(smallest).limit_denominator(100)} of its training "
            f"text is {n:,} characters, fewer than one context of {config.block_size + 1}; "
            "pick a larger corpus or a smaller block size"
        )


def _prepare(text: str, config: LadderConfig) -> tuple[int, TokenSplit]:
    from mllm_core.tokenizers import CharTokenizer

    check_text(text, config)
    if config.max_chars is not None:
        text = text[: config.max_chars]
    tokenizer = CharTokenizer().train(text)
    data = encode_split(text, tokenizer, 0.1, config.block_size)
    _check_share(len(data.train), config)  # the exact count, after the split by lines
    return tokenizer.vocab_size, data


def _train_run(
    data: TokenSplit, vocab_size: int, rung: int, fraction: float, config: LadderConfig, ctx, on_curve
) -> Run:
    t0 = time.perf_counter()
    gpt_config = config.gpt_config(rung, vocab_size)
    torch.manual_seed(config.seed)
    model = GPT(gpt_config)
    train_ids = data.train[: int(len(data.train) * fraction)]
    curve: list[tuple[int, float]] = []

    def on_step(step: int, loss: float, val_loss: float | None) -> None:
        if val_loss is not None:
            curve.append((step, val_loss))
            on_curve(list(curve))

    fit(model, TokenSplit(train_ids, data.val), config.block_size, config.train_config(rung), ctx, on_step)
    final = {
        name: estimate_loss(model, ids, config.batch_size, config.block_size, FINAL_EVAL_BATCHES)
        for name, ids in (("val", data.val.to(ctx.device)), ("train", train_ids.to(ctx.device)))
    }
    n_layer, n_embd = config.rungs[rung]
    return Run(
        n_layer,
        n_embd,
        non_embedding_params(gpt_config),
        fraction,
        len(train_ids),
        curve,
        final["val"],
        final["train"],
        time.perf_counter() - t0,
    )


def run_ladder(text: str, config: LadderConfig | None = None, ctx=None) -> LadderResult:
    """Train the ladder on `text` (char tokens), then the data-scaling runs; with or without a job.

    Publishes as it goes: `runs` (the finished ladder models), `current` ({"label", "curve"} of the
    model training now), `prediction` (a `Prediction` for the largest model, published before that
    model starts), `data_runs`, and `vocab_size` at the start. Reports `loss` and `val_loss` with
    steps counted across all runs.
    """
    config = config or LadderConfig()
    ctx = ctx if ctx is not None else NullContext()
    t0 = time.perf_counter()
    vocab_size, data = _prepare(text, config)
    n_runs = len(config.rungs) + len(config.data_fractions)
    ctx.set_total(n_runs * config.steps)
    ctx.publish(vocab_size=vocab_size, runs=[], data_runs=[], prediction=None)
    runs: list[Run] = []
    prediction = None
    jobs = [(i, 1.0) for i in range(len(config.rungs))] + [(config.data_rung, f) for f in sorted(config.data_fractions)]
    data_runs: list[Run] = []
    for k, (rung, fraction) in enumerate(jobs):
        if fraction == 1.0 and rung == len(config.rungs) - 1:  # the largest: predict it before it trains
            law = fit_power_law([r.params for r in runs], [r.val_loss for r in runs])
            n = non_embedding_params(config.gpt_config(rung, vocab_size))
            prediction = Prediction(law, n, float(law(n)))
            ctx.publish(prediction=prediction)
        n_layer, n_embd = config.rungs[rung]
        label = f"{n_layer}×{n_embd}" + ("" if fraction == 1.0 else f" on {fraction:g} of the text")

        def on_curve(curve: list[tuple[int, float]], label: str = label) -> None:
            ctx.publish(current={"label": label, "curve": curve})

        run = _train_run(data, vocab_size, rung, fraction, config, StageContext(ctx, k * config.steps), on_curve)
        if fraction == 1.0:
            runs.append(run)
            ctx.publish(runs=list(runs))
            if prediction is not None and rung == len(config.rungs) - 1:
                prediction = replace(prediction, actual=run.val_loss)
                ctx.publish(prediction=prediction)
        else:
            data_runs.append(run)
            ctx.publish(data_runs=list(data_runs))
    ctx.publish(current=None)
    return LadderResult(config, vocab_size, runs, data_runs, prediction, time.perf_counter() - t0)


def ladder_target(text: str, config: LadderConfig | None = None):
    """A `TrainingJob` loop for the ladder: `training.spec(ladder_target, corpus.ref(), LadderConfig())`.
    The job's result is a `LadderResult`."""

    def loop(ctx) -> LadderResult:
        return run_ladder(text, config, ctx)

    return loop


def partial_result(artifacts: dict, config: LadderConfig) -> LadderResult | None:
    """A `LadderResult` of what a running job has published so far (None before its first model)."""
    if not artifacts.get("runs"):
        return None
    return LadderResult(
        config,
        artifacts.get("vocab_size", 0),
        artifacts["runs"],
        artifacts.get("data_runs", []),
        artifacts.get("prediction"),
    )


__all__ = [
    "DEFAULT_RUNGS",
    "LadderConfig",
    "LadderResult",
    "check_text",
    "PowerLaw",
    "Prediction",
    "Run",
    "fit_power_law",
    "flops",
    "frontier",
    "ladder_target",
    "non_embedding_params",
    "partial_result",
    "run_ladder",
]
