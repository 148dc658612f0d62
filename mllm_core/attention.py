"""Single-head self-attention, one step at a time, on a sentence small enough to read.

`transformer.py` runs many heads over batches inside a trained GPT and keeps only the weights;
this module computes ONE head on ONE sentence and keeps every intermediate (Q, K, V, the score
matrix, the softmax weights, the weighted sum) so a page can show each of them. The formula is
the same: out = softmax(QKᵀ/√d_k)·V, with the causal mask setting scores above the diagonal to -inf.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mllm_core.transformer import sinusoidal_encoding

TOY_SENTENCE = "your cat is a lovely cat"


@dataclass(frozen=True)
class AttentionSteps:
    """Every intermediate of one head of self-attention over T tokens."""

    tokens: list[str]  # the T tokens, for labels
    x: torch.Tensor  # (T, d_model) input vectors (token embedding, plus position if added)
    q: torch.Tensor  # (T, d_k) queries: what each token is looking for, x @ W_q
    k: torch.Tensor  # (T, d_k) keys: what each token offers to be found by, x @ W_k
    v: torch.Tensor  # (T, d_k) values: what each token passes on when attended to, x @ W_v
    scores: torch.Tensor  # (T, T) QKᵀ/√d_k, -inf above the diagonal when causal
    weights: torch.Tensor  # (T, T) softmax of each score row: every row sums to 1
    out: torch.Tensor  # (T, d_k) weights @ V: each token's mix of the values it attends to


def self_attention_steps(
    x: torch.Tensor,
    w_q: torch.Tensor,
    w_k: torch.Tensor,
    w_v: torch.Tensor,
    causal: bool = True,
    tokens: list[str] | None = None,
) -> AttentionSteps:
    """One head of scaled dot-product self-attention with every step kept.

    x (T, d_model); w_q, w_k, w_v (d_model, d_k). Worked example with the identity as every
    projection: the second token scores 0 against the first and 1/√2 against itself, so it
    puts softmax([0, 0.707]) = [0.330, 0.670] of its attention on them.

    >>> s = self_attention_steps(torch.eye(2), torch.eye(2), torch.eye(2), torch.eye(2))
    >>> s.scores
    tensor([[0.7071,   -inf],
            [0.0000, 0.7071]])
    >>> s.weights
    tensor([[1.0000, 0.0000],
            [0.3302, 0.6698]])
    >>> s.out
    tensor([[1.0000, 0.0000],
            [0.3302, 0.6698]])
    """
    if x.dim() != 2 or w_q.shape != w_k.shape or w_q.shape[0] != x.shape[1] or w_v.shape[0] != x.shape[1]:
        raise ValueError("expected x (T, d_model) and projections (d_model, d_k)")
    T = x.shape[0]
    q, k, v = x @ w_q, x @ w_k, x @ w_v  # (T, d_k) each
    scores = (q @ k.T) / math.sqrt(k.shape[1])  # (T, T)
    if causal:
        future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)  # (T, T) True above the diagonal
        scores = scores.masked_fill(future, float("-inf"))
    weights = torch.softmax(scores, dim=-1)  # (T, T)
    out = weights @ v  # (T, d_k)
    return AttentionSteps(list(tokens or [str(i) for i in range(T)]), x, q, k, v, scores, weights, out)


def toy_example(
    sentence: str = TOY_SENTENCE,
    d_model: int = 4,
    d_k: int = 3,
    causal: bool = True,
    positions: bool = False,
    seed: int = 0,
) -> AttentionSteps:
    """Self-attention over the words of `sentence` with small seeded random embeddings and weights.

    Numbers are rounded to one decimal so they can be followed by hand. The same word gets the
    same embedding, so without `positions` both "cat"s have identical Q, K and V; adding the
    sinusoidal encoding tells them apart.

    >>> s = toy_example()
    >>> s.tokens, tuple(s.q.shape)
    (['your', 'cat', 'is', 'a', 'lovely', 'cat'], (6, 3))
    >>> bool(torch.equal(s.k[1], s.k[5]))
    True
    """
    words = sentence.split()
    if not words:
        raise ValueError("type a sentence first")
    if len(words) > 32:
        raise ValueError(f"the step-by-step example takes at most 32 words, not {len(words)}")
    gen = torch.Generator().manual_seed(seed)
    vocab = sorted(set(words))
    table = torch.randn(len(vocab), d_model, generator=gen).round(decimals=1)  # (V, d_model)
    x = table[[vocab.index(w) for w in words]]  # (T, d_model)
    if positions:
        x = x + sinusoidal_encoding(len(words), d_model).round(decimals=1)
    scale = 1 / math.sqrt(d_model)  # keeps scores moderate, so the softmax rows are not all one-hot
    w_q, w_k, w_v = ((torch.randn(d_model, d_k, generator=gen) * scale).round(decimals=1) for _ in range(3))
    return self_attention_steps(x, w_q, w_k, w_v, causal=causal, tokens=words)


__all__ = ["TOY_SENTENCE", "AttentionSteps", "self_attention_steps", "toy_example"]
