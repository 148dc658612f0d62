"""One sampling function for every model family.

n-gram counts (turned into log-probabilities), the char-LSTM and the transformer all hand
`sample_next` a vector of logits over their vocabulary; temperature, top-k and top-p act the
same way on each of them. Greedy decoding is a separate choice (`greedy=True` in `generate`,
or `int(logits.argmax())`), not a temperature of zero.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch


def filter_logits(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> torch.Tensor:
    """Apply temperature, then top-k, then top-p (nucleus) to a (V,) logit vector.

    Returns (V,) logits with the excluded tokens at -inf. Softmax of the result is the
    distribution `sample_next` draws from.

    Worked example: logits log([0.5, 0.3, 0.2]) with top_p=0.7 keeps the smallest set whose
    probability reaches 0.7 -> tokens 0 and 1 -> renormalised [0.625, 0.375, 0].
    """
    if not temperature > 0:
        raise ValueError("temperature must be > 0 (use greedy decoding for the argmax)")
    if top_k is not None and (int(top_k) != top_k or top_k < 1):
        raise ValueError("top_k must be an integer >= 1")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError("top_p must be in (0, 1]")
    logits = torch.as_tensor(logits, dtype=torch.float32).reshape(-1)  # (V,)
    if logits.numel() == 0:
        raise ValueError("logits must not be empty")
    logits = logits / temperature
    if top_k is not None and top_k < logits.numel():
        kth = torch.topk(logits, int(top_k)).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1:
        sorted_logits, order = torch.sort(logits, descending=True)
        cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
        # drop a token when the tokens strictly before it already reach top_p
        drop_sorted = (cumulative - torch.softmax(sorted_logits, dim=-1)) >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(0, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    if not torch.isfinite(logits).any():
        raise ValueError("every token has zero probability")
    return logits


def sample_next(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> int:
    """Draw one token id from softmax(filter_logits(logits)).

    `logits` is a (V,) tensor (or anything `torch.as_tensor` accepts); a seeded
    `torch.Generator` reproduces the draws.

    >>> g = torch.Generator().manual_seed(0)
    >>> sample_next(torch.tensor([0.0, 10.0, 0.0]), top_k=1, generator=g)
    1
    """
    probs = torch.softmax(filter_logits(logits, temperature, top_k, top_p), dim=-1)  # (V,)
    return int(torch.multinomial(probs, 1, generator=generator))


def make_generator(seed: int | None) -> torch.Generator | None:
    """A seeded CPU generator, or None for torch's global one."""
    return None if seed is None else torch.Generator().manual_seed(int(seed))


@dataclass(frozen=True)
class GenerationStep:
    """One generated token and the distribution it was drawn from."""

    token_id: int
    token: str  # the decoded text of this token
    probs: torch.Tensor  # (V,) the filtered distribution the token was drawn from
    raw_probs: torch.Tensor  # (V,) the model's distribution before temperature/top-k/top-p


def generate(
    model,
    prompt: str,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    greedy: bool = False,
    seed: int | None = None,
) -> Iterator[GenerationStep]:
    """Yield `max_new_tokens` tokens from any `mllm_core.lm.TextLM`, one at a time.

    The prompt is encoded with the model's own tokenizer; the model sees at most its
    `block_size` most recent tokens.
    """
    if max_new_tokens < 0:
        raise ValueError("max_new_tokens must be >= 0")
    filter_logits(torch.zeros(1), temperature, top_k, top_p)  # validate before the first step
    generator = make_generator(seed)
    ids = list(model.encode(prompt))
    for _ in range(max_new_tokens):
        logits = model.next_logits(ids)  # (V,)
        filtered = filter_logits(logits, temperature, top_k, top_p)
        probs = torch.softmax(filtered, dim=-1)
        if greedy:
            next_id = int(torch.argmax(logits))
        else:
            next_id = int(torch.multinomial(probs, 1, generator=generator))
        ids.append(next_id)
        yield GenerationStep(next_id, model.decode([next_id]), probs, torch.softmax(logits.float(), dim=-1))
