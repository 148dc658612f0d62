"""The loss, made concrete: negative log-likelihood on the fox example, and why its minimum is counting.

A language model is scored by the probability it gives to the text that really came next. The
loss of one token is −log p(token | context); a batch's loss is the average over its tokens.
The log turns the probability of a whole text, a product of many numbers below 1, into a sum
that does not underflow, and the average of a sum is what gradient descent can follow.

The link to the Counting lab (`ngram.py`): for one context, the average NLL of its observed
continuations is lowest exactly at their counted frequencies. So a "neural bigram", a free table
of logits W (V, V) trained by gradient descent (makemore part 1), ends where counting starts:
p(quick | The) → ½. `neural.py` does the same with a hidden layer; `mlp.py` on real text.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from mllm_core.corpora import FOX_TEXT


def fox_sequences() -> list[list[str]]:
    """The fox example as word tokens, one list per sentence (as the N-gram lab counts it).

    >>> [s[:3] for s in fox_sequences()]
    [['The', 'quick', 'brown'], ['The', 'fox', 'is']]
    """
    return [line.split() for line in FOX_TEXT.split("\n")]


def bigrams(sequences: list[list[str]]) -> list[tuple[str, str]]:
    """Every (context, next word) pair inside a sentence.

    >>> bigrams([["a", "b", "a"]])
    [('a', 'b'), ('b', 'a')]
    """
    return [(s[i], s[i + 1]) for s in sequences for i in range(len(s) - 1)]


def counted(sequences: list[list[str]], token: str, context: str) -> float:
    """p(token | context) by counting: count(context token) / count(context followed by anything).

    >>> counted(fox_sequences(), "quick", "The")
    0.5
    """
    followers = Counter(n for c, n in bigrams(sequences) if c == context)
    if not followers:
        raise ValueError(f"{context!r} is never followed by a word in this text")
    return followers[token] / sum(followers.values())


@dataclass
class NeuralBigram:
    """A table of logits, one row per context word: p(· | w) = softmax(W[w]); trained, not counted."""

    vocab: list[str]  # the words, in order of first appearance
    W: torch.Tensor  # (V, V) logits: row = context, column = next word
    losses: list[float]  # the average NLL before training and after every step

    def prob(self, token: str, context: str) -> float:
        for word in (token, context):
            if word not in self.vocab:
                raise ValueError(f"{word!r} is not a word of the training text")
        row = F.softmax(self.W[self.vocab.index(context)], dim=-1)  # (V,)
        return float(row[self.vocab.index(token)])


def fit_bigram(sequences: list[list[str]], steps: int = 300, lr: float = 0.5, seed: int = 0) -> NeuralBigram:
    """Train W by Adam on the average NLL of every bigram of `sequences`, full batch.

    >>> round(fit_bigram(fox_sequences()).prob("quick", "The"), 2)
    0.5
    """
    pairs = bigrams(sequences)
    if not pairs:
        raise ValueError("the text needs at least one sentence of two words")
    vocab = list(dict.fromkeys(w for s in sequences for w in s))
    x = torch.tensor([vocab.index(c) for c, _ in pairs])  # (N,) contexts
    y = torch.tensor([vocab.index(n) for _, n in pairs])  # (N,) next words
    torch.manual_seed(seed)
    W = (0.01 * torch.randn(len(vocab), len(vocab))).requires_grad_(True)  # (V, V), near uniform
    optimizer = torch.optim.Adam([W], lr=lr)
    losses = []
    for step in range(steps + 1):
        loss = F.cross_entropy(W[x], y)  # W[x] is (N, V): the one-hot context times W
        losses.append(loss.item())
        if step == steps:
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return NeuralBigram(vocab, W.detach(), losses)


@dataclass(frozen=True)
class TokenLoss:
    context: str
    token: str
    p: float  # p(token | context)
    nll: float  # −ln p, in nats


def token_losses(prob, sentence: list[str]) -> list[TokenLoss]:
    """The loss of every word of `sentence` after the first, under `prob(token, context)`.

    >>> [round(t.nll, 3) for t in token_losses(lambda t, c: 0.5, ["a", "b", "c"])]
    [0.693, 0.693]
    """
    out = []
    for context, token in bigrams([sentence]):
        p = prob(token, context)
        out.append(TokenLoss(context, token, p, -math.log(p) if p > 0 else math.inf))
    return out


def nll_curve(sequences: list[list[str]], token: str, context: str, qs: np.ndarray) -> np.ndarray:
    """(len(qs),) the average NLL of the words after `context` when p(token | context) = q and the
    other continuations share 1 − q in their counted proportions. Lowest at q = the counted p.

    >>> qs = np.array([0.25, 0.5, 0.75])
    >>> nll_curve(fox_sequences(), "quick", "The", qs).round(3).tolist()  # −½ ln q − ½ ln(1 − q)
    [0.837, 0.693, 0.837]
    """
    followers = Counter(n for c, n in bigrams(sequences) if c == context)
    n = sum(followers.values())
    if not n:
        raise ValueError(f"{context!r} is never followed by a word in this text")
    c_t = followers[token]
    rest = {w: c for w, c in followers.items() if w != token}
    qs = np.asarray(qs, dtype=float)
    with np.errstate(divide="ignore"):
        total = -c_t * np.log(qs)
        for c in rest.values():
            total = total - c * np.log((1 - qs) * c / (n - c_t))
    return total / n


__all__ = [
    "NeuralBigram",
    "TokenLoss",
    "bigrams",
    "counted",
    "fit_bigram",
    "fox_sequences",
    "nll_curve",
    "token_losses",
]
