"""The loss on the fox example: per-token NLL, the log of a product, and a learned bigram that
lands on the counted estimate."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mllm_core import nll
from mllm_core.ngram import NGramModel


def test_counted_probabilities_are_the_ngram_labs():
    fox = nll.fox_sequences()
    model = NGramModel(2).fit(fox)
    for token, context in [("quick", "The"), ("fox", "The"), ("jumps", "fox"), ("lazy", "the")]:
        assert nll.counted(fox, token, context) == pytest.approx(model.prob(token, [context]))


def test_gradient_descent_on_the_average_nll_lands_on_the_counted_estimate():
    fox = nll.fox_sequences()
    learned = nll.fit_bigram(fox)
    assert learned.prob("quick", "The") == pytest.approx(0.5, abs=0.01)
    assert learned.prob("fox", "The") == pytest.approx(0.5, abs=0.01)
    assert learned.prob("is", "fox") == pytest.approx(0.5, abs=0.01)
    assert learned.prob("brown", "quick") == pytest.approx(1.0, abs=0.01)
    pairs = nll.bigrams(fox)
    best = -sum(math.log(nll.counted(fox, n, c)) for c, n in pairs) / len(pairs)  # the counted model's loss
    assert learned.losses[-1] == pytest.approx(best, abs=0.01)
    assert learned.losses[0] > learned.losses[-1] + 2


def test_the_loss_of_a_sentence_is_the_sum_of_its_tokens_losses():
    fox = nll.fox_sequences()
    rows = nll.token_losses(lambda t, c: nll.counted(fox, t, c), fox[0])
    assert [r.token for r in rows] == fox[0][1:]
    assert rows[0].p == 0.5 and rows[0].nll == pytest.approx(math.log(2))
    product = math.prod(r.p for r in rows)
    assert sum(r.nll for r in rows) == pytest.approx(-math.log(product))


def test_the_average_nll_is_lowest_at_the_counted_frequency():
    seqs = [["a", "b"], ["a", "b"], ["a", "b"], ["a", "c"]]  # p(b | a) = 3/4 by counting
    qs = np.linspace(0.01, 0.99, 99)
    curve = nll.nll_curve(seqs, "b", "a", qs)
    assert qs[int(curve.argmin())] == pytest.approx(0.75)
    assert curve[int(curve.argmin())] == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))


def test_unknown_words_and_contexts_are_explained():
    learned = nll.fit_bigram(nll.fox_sequences(), steps=5)
    with pytest.raises(ValueError, match="not a word"):
        learned.prob("cat", "The")
    with pytest.raises(ValueError, match="never followed"):
        nll.counted(nll.fox_sequences(), "quick", "dog")
    with pytest.raises(ValueError, match="two words"):
        nll.fit_bigram([["alone"]])
