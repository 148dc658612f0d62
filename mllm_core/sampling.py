"""One sampling function for every model family.

n-gram counts (turned into log-probabilities), the char-LSTM and the transformer all hand
`sample_next` a vector of logits over their vocabulary; temperature, top-k and top-p act the
same way on each of them. Greedy decoding is a separate choice (`greedy=True` in `generate`,
or `int(logits.argmax())`), not a temperature of zero.

`generate` drives any `mllm_core.lm.TextLM` with it, one token at a time, and yields the
distribution each token was drawn from so a page can show it. How well a model predicts
held-out text (bits per character) lives in `mllm_core.metrics`.
"""

from __future__ import annotations

import math
import numbers
import operator
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch

# top-p keeps the smallest nucleus whose mass reaches top_p; sums within this tolerance of
# top_p count as reaching it, so 0.5 + 0.3 "reaches" 0.8 despite float rounding.
_TOP_P_TOLERANCE = 1e-6


def check_sampling(temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None) -> None:
    """Raise ValueError unless temperature > 0, top_k is an integer >= 1 and 0 < top_p <= 1.

    >>> check_sampling(0.0)
    Traceback (most recent call last):
    ...
    ValueError: temperature must be > 0 (got 0.0); use greedy decoding for the most likely token
    """
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or not math.isfinite(temperature):
        raise ValueError(f"temperature must be a finite number > 0 (got {temperature!r})")
    if temperature <= 0:
        raise ValueError(
            f"temperature must be > 0 (got {temperature!r}); use greedy decoding for the most likely token"
        )
    if top_k is not None:
        try:
            k = operator.index(top_k)  # ints and numpy ints; 2.0 and "2" are refused
        except TypeError:
            raise ValueError(f"top_k must be an integer >= 1 (got {top_k!r})") from None
        if isinstance(top_k, bool) or k < 1:
            raise ValueError(f"top_k must be an integer >= 1 (got {top_k!r})")
    bad_p = isinstance(top_p, bool) or not isinstance(top_p, numbers.Real) or not 0 < top_p <= 1
    if top_p is not None and bad_p:
        raise ValueError(f"top_p must be in (0, 1] (got {top_p!r})")


def filter_logits(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> torch.Tensor:
    """Apply temperature, then top-k, then top-p (nucleus) to a (V,) logit vector.

    Returns (V,) float32 logits with the excluded tokens at -inf; softmax of the result is
    the distribution `sample_next` draws from. Tokens already at -inf (an n-gram's unseen
    continuations) stay excluded. top-k keeps exactly k tokens (ties go to the lower id);
    top-p keeps the smallest set of most likely tokens whose probability reaches top_p (ties
    go to the lower id; the most likely token always stays).

    Worked example: logits log([0.5, 0.3, 0.2]) with top_p=0.7 keeps tokens 0 and 1
    (0.5 < 0.7 <= 0.5 + 0.3) -> renormalised [0.625, 0.375, 0].

    >>> probs = torch.softmax(filter_logits(torch.tensor([0.5, 0.3, 0.2]).log(), top_p=0.7), -1)
    >>> [round(p, 3) for p in probs.tolist()]
    [0.625, 0.375, 0.0]
    """
    check_sampling(temperature, top_k, top_p)
    logits = torch.as_tensor(logits).detach().reshape(-1).to(torch.float32)  # (V,)
    if logits.numel() == 0:
        raise ValueError("logits must not be empty")
    if torch.isnan(logits).any():
        raise ValueError("logits contain NaN; the model's output is broken")
    if not torch.isfinite(logits).any() and not (logits == float("inf")).any():
        raise ValueError("every token has zero probability")
    if (logits == float("inf")).any():  # +inf means "certain": keep only those tokens
        logits = torch.where(logits == float("inf"), 0.0, float("-inf"))
    logits = logits / temperature
    if top_k is not None and top_k < logits.numel():
        logits = logits.masked_fill(~_top_k_mask(logits, int(top_k)), float("-inf"))
    if top_p is not None and top_p < 1:
        logits = logits.masked_fill(~_nucleus_mask(logits, top_p), float("-inf"))
    return logits


def _top_k_mask(logits: torch.Tensor, k: int) -> torch.Tensor:
    """(V,) bool: exactly the k largest logits, ties at the k-th value going to the lower ids.

    `torch.topk` finds the k-th value in O(V), where a full sort of a 50K vocabulary is 20x slower.
    """
    return _first_k(logits, k, torch.topk(logits, k).values[-1])


def _nucleus_mask(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """(V,) bool: the nucleus, the smallest prefix of the ranking whose probability reaches top_p.

    Tokens are ranked by (probability descending, id ascending): equal probabilities, which
    add-k and Kneser-Ney smoothing give to many tokens, go to the lower id, as in top-k. The
    prefix reaches top_p when its mass is within `_TOP_P_TOLERANCE` of it, and it always holds
    at least the first token, however small top_p.

    Worked example: probs [0.2, 0.4, 0.2, 0.2] rank as ids 1, 0, 2, 3 with prefix masses
    0.4, 0.6, 0.8, 1.0; top_p=0.6 keeps {0, 1}, top_p=0.7 keeps {0, 1, 2} (2 wins its tie
    with 3), top_p=1e-9 keeps {1}.

    >>> _nucleus_mask(torch.tensor([0.2, 0.4, 0.2, 0.2]).log(), 0.7).tolist()
    [True, True, True, False]
    >>> _nucleus_mask(torch.tensor([0.2, 0.4, 0.2, 0.2]).log(), 1e-9).tolist()
    [False, True, False, False]

    Looks at the 64 largest probabilities first and widens only if their mass falls short, so a
    peaked distribution over a large vocabulary is never fully sorted.
    """
    probs = torch.softmax(logits.double(), dim=-1)  # (V,)
    size, target = probs.numel(), top_p - _TOP_P_TOLERANCE
    k = min(size, 64)
    while True:
        # only the values are used: which of several equal probabilities topk returns is not specified
        top = torch.topk(probs, k).values  # (k,) descending
        mass = top.cumsum(dim=-1)  # (k,) mass of each prefix of the ranking
        if k == size or float(mass[-1]) >= target:
            break
        k = min(size, 8 * k)
    # the first token always; each next one while the mass ranked above it is still short of top_p
    n = 1 + int((mass[:-1] < target).sum())
    return _first_k(probs, n, top[n - 1])


def _first_k(values: torch.Tensor, k: int, kth: torch.Tensor) -> torch.Tensor:
    """(V,) bool: the first k ids ranked by (value descending, id ascending), given the k-th value.

    Every id above `kth` is kept and the lowest ids equal to it fill the remaining places, so
    a tie group cut by the k-th place is split by id, not by the order `torch.topk` found it in.

    >>> _first_k(torch.tensor([1.0, 3.0, 1.0, 1.0]), 3, torch.tensor(1.0)).tolist()
    [True, True, True, False]
    """
    keep = values > kth  # (V,)
    ties = (values == kth).nonzero()[:, 0]  # ascending ids
    keep[ties[: k - int(keep.sum())]] = True
    return keep


def _draw(probs: torch.Tensor, generator: torch.Generator | None) -> int:
    """One id from a (V,) distribution by inverting its CDF (O(V); `torch.multinomial` is slower on large V).

    Zero-probability ids are never drawn: their CDF step is empty.
    """
    cdf = probs.double().cumsum(dim=-1)  # (V,)
    u = torch.rand(1, generator=generator, dtype=torch.float64) * cdf[-1]  # uniform in [0, total mass)
    return int(torch.searchsorted(cdf, u, right=True))


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
    return _draw(probs, generator)


def make_generator(seed: int | None) -> torch.Generator | None:
    """A seeded CPU generator, or None for torch's global one."""
    return None if seed is None else torch.Generator().manual_seed(int(seed))


@dataclass(frozen=True)
class GenerationStep:
    """One generated token and the distribution it was drawn from."""

    token_id: int
    token: str  # the text this token adds to the decoded text so far (" quick" after "The" for words)
    probs: torch.Tensor  # (V,) the distribution the token was drawn from (after temperature/top-k/top-p)
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

    The prompt is encoded with the model's own tokenizer; the model decides how much of the
    context it reads (its `block_size`, its n-gram order). Bad settings, an empty prompt for a
    model that needs one and prompt characters outside the vocabulary raise ValueError here,
    at the call, not at the first `next()`. With `greedy` the most likely token is taken at
    every step (temperature, top-k and top-p still validated, then ignored) and `probs` is the
    model's own distribution.

    >>> from mllm_core.lm import toy_char_lm
    >>> lm = toy_char_lm("ab")  # uniform over "a", "b"
    >>> "".join(step.token for step in generate(lm, "a", 6, seed=0)) == "".join(
    ...     step.token for step in generate(lm, "a", 6, seed=0))
    True
    """
    if isinstance(max_new_tokens, bool) or operator.index(max_new_tokens) < 0:
        raise ValueError("max_new_tokens must be an integer >= 0")
    check_sampling(temperature, top_k, top_p)
    if not isinstance(prompt, str):
        raise ValueError("the prompt must be text")
    ids = model.encode(prompt)  # pieces the model never saw read as <unk> (`lm.unknown_note` names them)
    first = model.next_logits(ids) if max_new_tokens else None  # raises now for an empty prompt
    return _generate_steps(model, ids, first, max_new_tokens, temperature, top_k, top_p, greedy, seed)


def _generate_steps(model, ids, first_logits, max_new_tokens, temperature, top_k, top_p, greedy, seed):
    generator = make_generator(seed)
    ids = list(ids)
    logits = first_logits
    for i in range(max_new_tokens):
        if i:
            logits = model.next_logits(ids)  # (V,)
        logits = torch.as_tensor(logits).detach().reshape(-1).float()
        raw_probs = torch.softmax(logits, dim=-1)  # (V,)
        if greedy:
            next_id, probs = int(torch.argmax(logits)), raw_probs
        else:
            probs = torch.softmax(filter_logits(logits, temperature, top_k, top_p), dim=-1)  # (V,)
            next_id = _draw(probs, generator)
        ids.append(next_id)
        yield GenerationStep(next_id, added_text(model.decode, ids), probs, raw_probs)


def added_text(decode, ids: list[int], window: int = 8) -> str:
    """The text the last id adds to `decode(ids[:-1])`, read off the last `window` ids.

    Decoding a token alone loses what joins it to its neighbours: a word model puts a space
    between words, and a byte-level BPE piece may be half of a character. Comparing the
    decoding of a short window with and without the last id keeps both, at constant cost.
    A character whose bytes are not all there yet adds nothing until its last byte arrives,
    so the pieces of a stream add up to the decoded text.

    >>> words = ["<s>", "The", "quick"]
    >>> added_text(lambda ids: " ".join(words[i] for i in ids), [1, 2])
    ' quick'
    """
    tail = list(ids[-window:])
    # a trailing U+FFFD is an incomplete UTF-8 character: hold it back until it completes
    before, after = decode(tail[:-1]).rstrip("\ufffd"), decode(tail).rstrip("\ufffd")
    return after[len(os.path.commonprefix([before, after])) :]
