"""How well a language model predicts held-out text: bits per character and perplexity.

Every family is scored the same way, through the `TextLM` interface: the text is encoded with
the model's own tokenizer, each token costs -log2 p(token | the tokens before it), and the
total is divided by the number of CHARACTERS of the text, not of tokens. A word model spends
few, expensive tokens and a char model many cheap ones; per character they compare fairly
(`Evaluation.bits_per_token` and `token_perplexity` are there for the per-token view).
Sibling modules: `sampling` draws from the same distributions this module scores.

Two paths, same numbers:
- `TorchTextLM` (char-LSTM, transformer): sliding windows of `block_size` tokens batched
  through the module's forward; every token after the first window keeps at least half a
  window of context.
- any other `TextLM` (n-gram, baselines): one `next_logits` call per token with the last
  `block_size` (or `DEFAULT_CONTEXT`) tokens as context.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from mllm_core.lm import TextLM, TorchTextLM

DEFAULT_CONTEXT = 256  # tokens of context for models that declare no block_size
_LOGIT_BUDGET = 1 << 22  # floats of (B, T, V) logits per forward batch (16 MB)


@dataclass(frozen=True)
class Evaluation:
    """The cost of a text under a model, in bits."""

    model: str
    bits: float  # total -log2 p over the scored tokens
    n_chars: int  # characters those tokens cover
    n_tokens: int  # tokens scored

    @property
    def bits_per_char(self) -> float:
        return self.bits / self.n_chars

    @property
    def perplexity(self) -> float:
        """Per-character perplexity 2 ** bits_per_char: "as unsure as a fair die with this many faces"."""
        return 2.0**self.bits_per_char if math.isfinite(self.bits_per_char) else math.inf

    @property
    def bits_per_token(self) -> float:
        return self.bits / self.n_tokens

    @property
    def token_perplexity(self) -> float:
        return 2.0**self.bits_per_token if math.isfinite(self.bits_per_token) else math.inf


def evaluate(
    model: TextLM,
    text: str,
    max_chars: int | None = None,
    check: Callable[[], None] | None = None,
) -> Evaluation:
    """Score `text` (its first `max_chars` characters) under `model`.

    The first token is scored from an empty context when the model accepts one (a
    `TorchTextLM` with a `bos_id`, an n-gram); a model that needs context (a GPT without a
    start token) pays a uniform guess for it, log2(vocabulary size) bits, so every model covers
    every character of the same text. `check` is called between batches/steps (a job's
    `ctx.check` stops it).

    >>> from mllm_core.lm import toy_char_lm
    >>> round(evaluate(toy_char_lm("abc"), "abcabc").bits_per_char, 4)  # 4 ids incl. <unk>: log2 4
    2.0
    """
    if max_chars is not None:
        text = text[:max_chars]
    ids = model.encode(text)
    if isinstance(model, TorchTextLM):
        bits, first_scored = _torch_bits(model, ids, check)
    else:
        bits, first_scored = _stepwise_bits(model, ids, check)
    if not ids:
        raise ValueError("the text is too short to score: it needs at least one token")
    if not first_scored:
        bits += first_token_guess(model)
    return Evaluation(model.name, float(bits), len(text), len(ids))


def first_token_guess(model: TextLM) -> float:
    """Bits charged for a first token the model cannot predict without context: a uniform guess.

    >>> from mllm_core.lm import toy_char_lm
    >>> first_token_guess(toy_char_lm("abc"))  # 4 ids incl. <unk>
    2.0
    """
    return math.log2(model.vocab_size)


def bits_per_char(model: TextLM, text: str, max_chars: int | None = None) -> float:
    """Total -log2 p of `text` under `model` divided by its number of characters."""
    return evaluate(model, text, max_chars).bits_per_char


def perplexity(model: TextLM, text: str, max_chars: int | None = None) -> float:
    """Per-character perplexity, 2 ** bits_per_char (comparable across tokenizers)."""
    return evaluate(model, text, max_chars).perplexity


def _accepts_empty_context(model: TextLM) -> bool:
    try:
        model.next_logits([])
    except ValueError:
        return False
    return True


def _stepwise_bits(model: TextLM, ids: list[int], check) -> tuple[float, bool]:
    """One `next_logits` call per token; returns (total bits, whether token 0 was scored)."""
    context = getattr(model, "block_size", None)
    context = DEFAULT_CONTEXT if context is None else context
    first = 0 if _accepts_empty_context(model) else 1
    nats = 0.0
    for t in range(first, len(ids)):
        if check is not None and t % 256 == 0:
            check()
        logits = torch.as_tensor(model.next_logits(ids[max(0, t - context) : t])).reshape(-1).double()  # (V,)
        nats -= float(torch.log_softmax(logits, dim=-1)[ids[t]])
    return nats / math.log(2), first == 0


def sliding_windows(n_targets: int, window: int, stride: int) -> list[tuple[int, int, int]]:
    """Plan (start, length, first_new) windows that score targets 1..n_targets of a sequence once each.

    Window (s, T, j) feeds seq[s : s+T] and predicts seq[s+1 : s+T+1]; only predictions
    j.. are new. After the first window each target keeps >= window - stride tokens of context.

    >>> sliding_windows(n_targets=10, window=4, stride=2)
    [(0, 4, 0), (2, 4, 2), (4, 4, 2), (6, 4, 2)]
    """
    if window < 1 or not 1 <= stride <= window:
        raise ValueError("need window >= 1 and 1 <= stride <= window")
    plan, covered, start = [], 0, 0  # covered: targets scored so far (seq indices 1..covered)
    while covered < n_targets:
        end = min(start + window, n_targets)
        plan.append((start, end - start, covered - start))
        covered, start = end, start + stride
    return plan


def _torch_bits(model: TorchTextLM, ids: list[int], check) -> tuple[float, bool]:
    """Batched sliding-window scoring through the module; returns (total bits, token 0 scored)."""
    first_scored = model.bos_id is not None and len(ids) > 0
    nats = 0.0
    if first_scored:  # token 0 from the bos token alone, exactly as next_logits([]) sees it
        nats -= float(torch.log_softmax(model.next_logits([]).double(), dim=-1)[ids[0]])
    seq = torch.tensor(list(ids), dtype=torch.long)  # (L,)
    n_targets = seq.numel() - 1
    if n_targets < 1:
        return nats / math.log(2), first_scored
    window = model.block_size or DEFAULT_CONTEXT
    plan = sliding_windows(n_targets, window, max(1, window // 2))
    by_length: dict[int, list[tuple[int, int]]] = {}
    for start, length, first_new in plan:
        by_length.setdefault(length, []).append((start, first_new))
    batch = max(1, _LOGIT_BUDGET // (window * model.vocab_size))
    for length, rows in by_length.items():
        offsets = torch.arange(length)  # (T,)
        for b in range(0, len(rows), batch):
            if check is not None:
                check()
            chunk = rows[b : b + batch]
            starts = torch.tensor([s for s, _ in chunk])[:, None]  # (B, 1)
            x, y = seq[starts + offsets], seq[starts + offsets + 1]  # (B, T), (B, T)
            logp = torch.log_softmax(model.forward_logits(x).double(), dim=-1)  # (B, T, V)
            token_logp = logp.gather(-1, y[..., None])[..., 0]  # (B, T)
            new = offsets[None, :] >= torch.tensor([j for _, j in chunk])[:, None]  # (B, T)
            nats -= float(token_logp[new].sum())
    return nats / math.log(2), first_scored
