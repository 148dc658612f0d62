"""A neural network small enough to see whole: the "HELLO" toy, its loss surface and its gradients.

Four letters (H, E, L, O) are one-hot vectors; the network reads the last k letters (k one-hot
vectors side by side, zeros before the text starts), a tanh hidden layer mixes them and a linear
layer gives one logit per letter; softmax turns the logits into p(next letter). It is the MLP
language model of `mlp.py` with the embedding table replaced by the one-hot vectors themselves, and
written in float64 so that its gradients can be checked against finite differences to 1e-8.

What this module answers, each as a pure function of a trained `ToyRun`:
- `train_toy`: full-batch Adam on every (context, next letter) pair of the text, with the
  probabilities of every pair after every step;
- `loss_floor`: the best average loss any model with window k can reach on the text, the
  conditional entropy H(next | last k letters), computed exactly by counting;
- `loss_surface` / `gd_path`: the loss over two chosen weights ("knobs"), the others held at their
  trained values, and the path plain gradient descent takes over it;
- `gradient_check`: each weight's autograd gradient beside a central finite difference.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

TOY_TEXT = "HELLO"
DTYPE = torch.float64  # exact enough for finite differences at eps = 1e-6


@dataclass(frozen=True)
class ToyConfig:
    """The toy's data and network; the defaults learn HELLO in a fraction of a second."""

    text: str = TOY_TEXT  # the training text: every letter after the first is a target
    window: int = 2  # k: letters of context the network reads
    hidden: int = 8  # tanh units
    steps: int = 300  # full-batch Adam updates
    lr: float = 0.05  # Adam's learning rate
    seed: int = 0  # initialisation

    def __post_init__(self) -> None:
        if not isinstance(self.text, str) or not self.text.strip():
            raise ValueError("the toy text is empty: type a few letters, e.g. HELLO")
        if self.window < 1:
            raise ValueError("the window must be at least 1 letter")
        if self.window >= len(self.text):
            raise ValueError(
                f"the window ({self.window}) must be smaller than the text ({len(self.text)} letters): "
                "a window reaches back from the letter it predicts"
            )
        if self.hidden < 1 or self.steps < 0 or not self.lr > 0:
            raise ValueError("hidden must be >= 1, steps >= 0 and lr > 0")


def alphabet(text: str) -> str:
    """The letters of `text` in order of first appearance.

    >>> alphabet("HELLO")
    'HELO'
    """
    return "".join(dict.fromkeys(text))


def examples(text: str, window: int) -> list[tuple[str, str]]:
    """Every (context, next letter) pair: the context is the last `window` letters before it
    (fewer at the start of the text).

    >>> examples("HELLO", 2)
    [('H', 'E'), ('HE', 'L'), ('EL', 'L'), ('LL', 'O')]
    """
    return [(text[max(0, t - window) : t], text[t]) for t in range(1, len(text))]


def one_hot(context: str, letters: str, window: int) -> torch.Tensor:
    """(window * A,) the context's one-hot vectors side by side, right-aligned, zeros before the text.

    >>> one_hot("E", "HELO", 2).tolist()
    [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    """
    x = torch.zeros(window, len(letters), dtype=DTYPE)
    for slot, letter in enumerate(context[-window:], start=window - len(context[-window:])):
        x[slot, letters.index(letter)] = 1.0
    return x.reshape(-1)


def inputs(text: str, window: int, letters: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """X (N, window * A) one-hot contexts and y (N,) the next letters' ids, one row per example."""
    letters = letters or alphabet(text)
    pairs = examples(text, window)
    X = torch.stack([one_hot(c, letters, window) for c, _ in pairs])  # (N, k*A)
    y = torch.tensor([letters.index(n) for _, n in pairs])  # (N,)
    return X, y


class ToyMLP(nn.Module):
    """logits = tanh(x W1 + b1) W2 + b2, with x the k one-hot letters side by side."""

    def __init__(self, n_in: int, hidden: int, n_out: int):
        super().__init__()
        self.W1 = nn.Parameter(torch.randn(n_in, hidden, dtype=DTYPE) / math.sqrt(n_in))  # (k*A, H)
        self.b1 = nn.Parameter(torch.zeros(hidden, dtype=DTYPE))  # (H,)
        self.W2 = nn.Parameter(torch.randn(hidden, n_out, dtype=DTYPE) / math.sqrt(hidden))  # (H, A)
        self.b2 = nn.Parameter(torch.zeros(n_out, dtype=DTYPE))  # (A,)

    def hidden_layer(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x @ self.W1 + self.b1)  # (N, H)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hidden_layer(x) @ self.W2 + self.b2  # (N, A) logits


@dataclass
class ToyRun:
    """A trained toy and what the page draws of its training."""

    config: ToyConfig
    letters: str  # the alphabet, e.g. "HELO"
    pairs: list[tuple[str, str]]  # (context, next letter), one per example
    model: ToyMLP  # the trained network
    losses: list[float]  # average loss before step 1 and after every step (steps + 1 values)
    probs: np.ndarray  # (steps + 1, N, A) p(next letter) of every example, before step 1 and after every step

    @property
    def data(self) -> tuple[torch.Tensor, torch.Tensor]:
        return inputs(self.config.text, self.config.window, self.letters)

    def predict(self, context: str) -> np.ndarray:
        """(A,) p(next letter | the last k letters of `context`)."""
        unknown = sorted(set(context) - set(self.letters))
        if unknown:
            raise ValueError(f"the toy only knows the letters {', '.join(self.letters)}, not {', '.join(unknown)}")
        with torch.no_grad():
            x = one_hot(context, self.letters, self.config.window)[None]  # (1, k*A)
            return F.softmax(self.model(x), dim=-1)[0].numpy()


def train_toy(config: ToyConfig = ToyConfig()) -> ToyRun:
    """Train the toy on every example of `config.text` at once (full batch), Adam, `steps` updates.

    >>> run = train_toy(ToyConfig())
    >>> float(run.predict("HE")[run.letters.index("L")]) > 0.9, float(run.predict("HELL")[3]) > 0.9
    (True, True)
    """
    letters = alphabet(config.text)
    X, y = inputs(config.text, config.window, letters)
    torch.manual_seed(config.seed)
    model = ToyMLP(X.shape[1], config.hidden, len(letters))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    losses, probs = [], []
    for step in range(config.steps + 1):
        logits = model(X)  # (N, A)
        loss = F.cross_entropy(logits, y)
        losses.append(loss.item())
        probs.append(F.softmax(logits, dim=-1).detach().numpy())
        if step == config.steps:
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return ToyRun(config, letters, examples(config.text, config.window), model.eval(), losses, np.stack(probs))


def loss_floor(text: str, window: int) -> float:
    """The lowest average cross-entropy (nats per letter) any model reading the last `window`
    letters can reach on `text`: H(next | context), counted.

    A context followed by different letters can only be answered with their frequencies: after
    "L" in HELLO comes "L" once and "O" once, so the best is p = ½ each, ln 2 nats for both
    examples, and ln 2 · 2/4 on average over the 4 examples. Two letters of context tell them apart.

    >>> round(loss_floor("HELLO", 1), 4), loss_floor("HELLO", 2)
    (0.3466, 0.0)
    """
    followers: dict[str, Counter] = defaultdict(Counter)
    pairs = examples(text, window)
    for context, nxt in pairs:
        followers[context][nxt] += 1
    total = 0.0
    for counts in followers.values():
        n = sum(counts.values())
        total -= sum(c * math.log(c / n) for c in counts.values())
    return total / len(pairs) if pairs else 0.0


# ---------------------------------------------------------------------------------------------
# Two knobs: the loss surface over two weights and gradient descent on it


def weight_names(model: ToyMLP, letters: str) -> list[str]:
    """Every single weight by name, e.g. "W2[3→L]" (hidden unit 3 to the logit of L), "b2[O]".

    W1's rows are named by the input they read: "W1[t-1:H→2]" is the one-hot of H one letter
    back, into hidden unit 2.
    """
    k = model.W1.shape[0] // len(letters)
    rows = [f"t-{k - slot}:{c}" for slot in range(k) for c in letters]
    names = [f"W1[{r}→{j}]" for r in rows for j in range(model.W1.shape[1])]
    names += [f"b1[{j}]" for j in range(model.b1.shape[0])]
    names += [f"W2[{j}→{c}]" for j in range(model.W2.shape[0]) for c in letters]
    return names + [f"b2[{c}]" for c in letters]


def _flat(model: ToyMLP) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])  # (P,) in weight_names order


def _loss_of(model: ToyMLP, flat: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The average loss with the weights set to `flat`: (P,) -> a scalar, differentiable in `flat`,
    or (G, P) -> (G,), one loss per row (a whole grid of weight settings in one pass)."""
    rows = flat.reshape(-1, flat.shape[-1])  # (G, P)
    params, start = [], 0
    for p in model.parameters():
        params.append(rows[:, start : start + p.numel()].reshape(len(rows), *p.shape))
        start += p.numel()
    W1, b1, W2, b2 = params  # (G, k*A, H), (G, H), (G, H, A), (G, A)
    h = torch.tanh(torch.einsum("ni,gih->gnh", X, W1) + b1[:, None])  # (G, N, H)
    logits = torch.einsum("gnh,gha->gna", h, W2) + b2[:, None]  # (G, N, A)
    nll = -logits.log_softmax(-1).gather(-1, y.expand(len(rows), -1)[..., None])[..., 0]  # (G, N)
    losses = nll.mean(-1)  # (G,)
    return losses[0] if flat.dim() == 1 else losses


@dataclass(frozen=True)
class GDStep:
    a: float  # the first knob's value
    b: float  # the second knob's value
    loss: float  # the average loss there
    grad_a: float  # ∂loss/∂a
    grad_b: float  # ∂loss/∂b


class Knobs:
    """The toy's loss as a function of two of its weights, every other weight at its trained value."""

    def __init__(self, run: ToyRun, first: str, second: str):
        names = weight_names(run.model, run.letters)
        for name in (first, second):
            if name not in names:
                raise ValueError(f"no weight called {name!r}")
        if first == second:
            raise ValueError("pick two different weights")
        self.names = (first, second)
        self.index = (names.index(first), names.index(second))
        self.model, (self.X, self.y) = run.model, run.data
        self.base = _flat(run.model)  # (P,) the trained weights
        self.trained = (float(self.base[self.index[0]]), float(self.base[self.index[1]]))

    def loss_and_grad(self, a: float, b: float) -> tuple[float, float, float]:
        """(loss, ∂loss/∂a, ∂loss/∂b) with the two knobs at (a, b), by autograd."""
        ab = torch.tensor([a, b], dtype=DTYPE, requires_grad=True)
        flat = self.base.clone()
        flat[list(self.index)] = ab
        loss = _loss_of(self.model, flat, self.X, self.y)
        loss.backward()
        return loss.item(), float(ab.grad[0]), float(ab.grad[1])

    def surface(self, span: float = 6.0, n: int = 41) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(a values (n,), b values (n,), loss (n, n) with rows over b) on a square of half-width
        `span` around the trained point; every grid point in one batched forward pass."""
        a = np.linspace(self.trained[0] - span, self.trained[0] + span, n)
        b = np.linspace(self.trained[1] - span, self.trained[1] + span, n)
        flats = self.base.repeat(n * n, 1)  # (n*n, P)
        bb, aa = np.meshgrid(b, a, indexing="ij")  # (n, n) each, rows over b
        flats[:, self.index[0]] = torch.from_numpy(aa.reshape(-1))
        flats[:, self.index[1]] = torch.from_numpy(bb.reshape(-1))
        with torch.no_grad():
            losses = _loss_of(self.model, flats, self.X, self.y)  # (n*n,)
        return a, b, losses.reshape(n, n).numpy()

    def random_start(self, seed: int = 0, span: float = 6.0) -> tuple[float, float]:
        """A seeded start 0.8 · `span` from the trained point, on the uphill half of that circle
        (a start in the flat floor of a valley would show no descent)."""
        angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        points = [
            (self.trained[0] + 0.8 * span * math.cos(t), self.trained[1] + 0.8 * span * math.sin(t)) for t in angles
        ]
        losses = [self.loss_and_grad(a, b)[0] for a, b in points]
        uphill = sorted(range(len(points)), key=lambda i: -losses[i])[: len(points) // 2]
        return points[int(np.random.default_rng(seed).choice(uphill))]

    def gd_path(self, start: tuple[float, float], lr: float, steps: int = 50) -> list[GDStep]:
        """Plain gradient descent on the two knobs: (a, b) ← (a, b) − lr · ∇loss, `steps` times.

        Returns steps + 1 points, the start first. A too large `lr` overshoots the valley and the
        loss grows; the path stops early if a knob runs past 1e6 (it has diverged).
        """
        if not lr > 0:
            raise ValueError("the learning rate must be > 0")
        a, b = start
        path = []
        for _ in range(steps + 1):
            loss, ga, gb = self.loss_and_grad(a, b)
            path.append(GDStep(a, b, loss, ga, gb))
            if max(abs(a), abs(b)) > 1e6 or not math.isfinite(loss):
                break
            a, b = a - lr * ga, b - lr * gb
        return path


def verdict(path: list[GDStep], minimum: float) -> str:
    """How a descent went: "diverged" (the loss ended above its start), "overshooting" (the loss
    went up on some step: it jumps across the valley), "converged" (within 0.01 nats of the lowest
    loss of the map) or "crawling" (still on its way down).

    >>> verdict([GDStep(0, 0, 1.0, 0, 0), GDStep(0, 0, 2.0, 0, 0)], 0.5)
    'diverged'
    >>> verdict([GDStep(0, 0, 1.0, 0, 0), GDStep(0, 0, 0.6, 0, 0), GDStep(0, 0, 0.8, 0, 0)], 0.5)
    'overshooting'
    """
    losses = [p.loss for p in path]
    if losses[-1] > losses[0]:
        return "diverged"
    if any(after > before + 1e-9 for before, after in zip(losses, losses[1:], strict=False)):
        return "overshooting"
    return "converged" if losses[-1] <= minimum + 0.01 else "crawling"


# ---------------------------------------------------------------------------------------------
# Backpropagation checked


@dataclass(frozen=True)
class GradCheck:
    name: str  # the weight, as `weight_names` calls it
    autograd: float  # ∂loss/∂w by backpropagation
    numeric: float  # (loss(w + ε) − loss(w − ε)) / 2ε


def gradient_check(run: ToyRun, eps: float = 1e-6, weights: np.ndarray | None = None) -> list[GradCheck]:
    """Every weight's gradient two ways, at the trained weights (or at `weights` (P,)).

    Central differences in float64 agree with backpropagation to about ε² ≈ 1e-12 plus rounding
    (≈ 1e-10 at ε = 1e-6).
    """
    X, y = run.data
    flat = _flat(run.model) if weights is None else torch.as_tensor(weights, dtype=DTYPE)
    w = flat.clone().requires_grad_(True)
    _loss_of(run.model, w, X, y).backward()
    numeric = []
    with torch.no_grad():
        for i in range(len(flat)):
            up, down = flat.clone(), flat.clone()
            up[i] += eps
            down[i] -= eps
            numeric.append((_loss_of(run.model, up, X, y) - _loss_of(run.model, down, X, y)).item() / (2 * eps))
    names = weight_names(run.model, run.letters)
    return [GradCheck(n, float(g), d) for n, g, d in zip(names, w.grad, numeric, strict=True)]


def initial_weights(run: ToyRun) -> np.ndarray:
    """(P,) the toy's weights before training (same seed), where the gradients are far from zero."""
    torch.manual_seed(run.config.seed)
    X, _ = run.data
    return _flat(ToyMLP(X.shape[1], run.config.hidden, len(run.letters))).numpy()


__all__ = [
    "TOY_TEXT",
    "GDStep",
    "GradCheck",
    "Knobs",
    "ToyConfig",
    "ToyMLP",
    "ToyRun",
    "alphabet",
    "examples",
    "gradient_check",
    "initial_weights",
    "inputs",
    "loss_floor",
    "one_hot",
    "train_toy",
    "verdict",
    "weight_names",
]
