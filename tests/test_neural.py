"""The HELLO toy: it learns, its loss floor is the conditional entropy, its gradients match finite
differences, and gradient descent on two knobs crawls, converges or diverges with the learning rate."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mllm_core import neural


@pytest.fixture(scope="module")
def hello() -> neural.ToyRun:
    return neural.train_toy(neural.ToyConfig())  # window 2


@pytest.fixture(scope="module")
def window_one() -> neural.ToyRun:
    return neural.train_toy(neural.ToyConfig(window=1))


def test_the_toy_learns_hello(hello):
    assert hello.letters == "HELO"
    assert hello.predict("HE")[hello.letters.index("L")] >= 0.9
    assert hello.predict("HELL")[hello.letters.index("O")] >= 0.9
    assert hello.losses[-1] < 0.05 < hello.losses[0]
    assert hello.probs.shape == (hello.config.steps + 1, 4, 4)
    assert np.allclose(hello.probs.sum(-1), 1)


def test_the_forward_pass_is_the_formula_written_out(hello):
    X, y = hello.data
    m = hello.model
    for x, target in zip(X, y, strict=True):  # one example at a time, no batching, no torch.nn
        h = [math.tanh(sum(x[i].item() * m.W1[i, j].item() for i in range(len(x))) + m.b1[j].item()) for j in range(8)]
        logits = [sum(h[j] * m.W2[j, a].item() for j in range(8)) + m.b2[a].item() for a in range(4)]
        expected = math.log(sum(math.exp(z) for z in logits)) - logits[target]
        assert F.cross_entropy(m(x[None]), target[None]).item() == pytest.approx(expected, abs=1e-12)


def test_one_hot_inputs_put_zeros_before_the_text():
    X, y = neural.inputs("HELLO", 3)
    assert X.shape == (4, 12) and y.tolist() == [1, 2, 2, 3]
    assert X[0].tolist() == [0.0] * 8 + [1.0, 0, 0, 0]  # "H": two empty slots, then H


def _best_sum_of_losses(ys: torch.Tensor, n_letters: int) -> float:
    """min over one distribution p of the summed −ln p(y) over `ys`, by L-BFGS on its logits."""
    logits = torch.zeros(n_letters, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([logits], max_iter=200)

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(logits.expand(len(ys), -1), ys, reduction="sum")
        loss.backward()
        return loss

    opt.step(closure)
    return closure().item()


def brute_force_floor(text: str, k: int) -> float:
    """The best average loss, found by fitting a free distribution per context with gradient descent."""
    groups = defaultdict(list)
    for context, nxt in neural.examples(text, k):
        groups[context].append(nxt)
    letters = neural.alphabet(text)
    total = 0.0
    for targets in groups.values():
        total += _best_sum_of_losses(torch.tensor([letters.index(t) for t in targets]), len(letters))
    return total / len(neural.examples(text, k))


@pytest.mark.parametrize("text", ["HELLO", "ABRACADABRA", "MISSISSIPPI"])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_the_loss_floor_is_the_best_any_model_can_do(text, k):
    assert neural.loss_floor(text, k) == pytest.approx(brute_force_floor(text, k), abs=1e-3)


def test_window_one_cannot_go_below_the_entropy_of_the_l_context(window_one):
    floor = neural.loss_floor("HELLO", 1)
    assert floor == pytest.approx(math.log(2) * 2 / 4)  # two of four examples are a coin toss
    assert min(window_one.losses) >= floor - 1e-9
    assert window_one.losses[-1] == pytest.approx(floor, abs=5e-3)  # and training does reach it
    p = window_one.predict("HEL")
    assert p[2] == pytest.approx(0.5, abs=0.02) and p[3] == pytest.approx(0.5, abs=0.02)
    assert neural.loss_floor("HELLO", 2) == neural.loss_floor("HELLO", 3) == 0.0


def test_gradients_match_finite_differences(hello):
    for weights in (neural.initial_weights(hello), None):
        rows = neural.gradient_check(hello, weights=weights)
        assert len(rows) == 8 * 8 + 8 + 8 * 4 + 4
        assert max(abs(r.autograd - r.numeric) for r in rows) < 1e-7
    assert max(abs(r.autograd) for r in neural.gradient_check(hello, weights=neural.initial_weights(hello))) > 1e-2


def test_the_surface_is_the_loss_at_each_grid_point(window_one):
    knobs = neural.Knobs(window_one, "W2[3→L]", "b2[O]")
    a, b, Z = knobs.surface(span=2.0, n=5)
    for i in (0, 2, 4):
        for j in (1, 3):
            assert Z[j, i] == pytest.approx(knobs.loss_and_grad(a[i], b[j])[0], abs=1e-12)
    assert knobs.loss_and_grad(*knobs.trained)[0] == pytest.approx(window_one.losses[-1], abs=1e-6)
    _, ga, gb = knobs.loss_and_grad(a[0], b[4])  # the knobs' gradient is the full gradient's two entries
    full = {r.name: r.numeric for r in neural.gradient_check(window_one, weights=_with(knobs, a[0], b[4]))}
    assert (ga, gb) == pytest.approx((full["W2[3→L]"], full["b2[O]"]), abs=1e-7)


def _with(knobs: neural.Knobs, a: float, b: float) -> np.ndarray:
    flat = knobs.base.clone()
    flat[list(knobs.index)] = torch.tensor([a, b], dtype=torch.float64)
    return flat.numpy()


def test_the_learning_rate_decides_crawl_converge_or_diverge(window_one):
    knobs = neural.Knobs(window_one, "b2[L]", "b2[O]")
    minimum = float(knobs.surface()[2].min())
    start = knobs.random_start(0)
    verdicts = {lr: neural.verdict(knobs.gd_path(start, lr, 40), minimum) for lr in (0.03, 1.0, 300.0)}
    assert verdicts == {0.03: "crawling", 1.0: "converged", 300.0: "diverged"}
    path = knobs.gd_path(start, 1.0, 40)
    assert path[1].a == pytest.approx(path[0].a - 1.0 * path[0].grad_a)  # one plain GD step
    assert [p.loss for p in path] == sorted([p.loss for p in path], reverse=True)


@pytest.mark.parametrize(
    "config, message",
    [
        (dict(text=""), "empty"),
        (dict(text="HELLO", window=5), "smaller than the text"),
        (dict(text="HI", window=2), "smaller than the text"),
    ],
)
def test_bad_toy_settings_are_explained(config, message):
    with pytest.raises(ValueError, match=message):
        neural.ToyConfig(**config)


def test_unknown_letters_and_bad_knobs_are_explained(hello):
    with pytest.raises(ValueError, match="only knows the letters H, E, L, O, not X"):
        hello.predict("HEX")
    with pytest.raises(ValueError, match="two different"):
        neural.Knobs(hello, "b2[L]", "b2[L]")
    with pytest.raises(ValueError, match="no weight"):
        neural.Knobs(hello, "b2[Z]", "b2[L]")
