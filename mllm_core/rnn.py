"""Recurrent networks written out, and the experiments that show what they can and cannot remember.

Three cells, each a few lines of tensor algebra that match PyTorch's fused versions to 1e-6:

- `ElmanRNN`: h_t = tanh(x_t W_ihᵀ + b_ih + h_{t−1} W_hhᵀ + b_hh), the RNN of the talk;
- `LSTM`: the same loop with a cell state c_t and three gates, so gradients can flow far back;
- `GRU`: two gates and no separate cell state, in between the two.

`SequenceModel` puts one of them between one-hot inputs and a linear read-out and answers the
family interface `forward(idx (B, T), targets=None) -> (logits (B, T, V), loss)`. On top of it:

- the counting task (`CountingConfig`, `train_counting`, `predict_next`): after 7 8 9 10 comes 11;
- the length experiment (`length_experiment`): counting accuracy vs training length, RNN vs LSTM,
  over several seeds (`band` gives mean and range), with the seed's published points in
  `SEED_LENGTH_REFERENCE` for comparison;
- the memory task (`memory_experiment`): recall the first element of a random sequence;
- vanishing gradients (`vanishing_gradients`): ‖∂loss/∂x_t‖ for every time step t.

The character-level LSTM language model lives in its sibling `char_lstm.py` (it uses torch's
fused `nn.LSTM`, because there the point is the text, not the cell).
"""

from __future__ import annotations

import copy
import math
import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

CELLS = ("rnn", "lstm", "gru")
INITS = ("torch", "orthogonal")  # see `init_cell_`

# ---------------------------------------------------------------------------------------------
# The cells


class _Recurrent(nn.Module):
    """Shared parameters and input handling of the three cells (`gates` blocks of size H).

    Inputs are either float vectors x (B, T, D) / (T, D), or integer ids (B, T) / (T,) meaning
    one-hot vectors: one_hot(i) @ W_ihᵀ is column i of W_ih, so ids are looked up instead of
    multiplied, which is exact and V times cheaper.
    """

    gates = 1

    def __init__(self, d_in: int, d_hidden: int):
        super().__init__()
        if d_in < 1 or d_hidden < 1:
            raise ValueError("d_in and d_hidden must be at least 1")
        self.d_in, self.d_hidden = d_in, d_hidden
        g = self.gates * d_hidden
        self.weight_ih = nn.Parameter(torch.empty(g, d_in))  # (G·H, D), torch's layout and names
        self.weight_hh = nn.Parameter(torch.empty(g, d_hidden))  # (G·H, H)
        self.bias_ih = nn.Parameter(torch.empty(g))
        self.bias_hh = nn.Parameter(torch.empty(g))
        bound = 1 / math.sqrt(d_hidden)  # torch's initialisation, so both start alike
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _project(self, x: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """x_t W_ihᵀ + b_ih for every step at once: (B, T, G·H), and whether x had no batch dim."""
        if x.dtype in (torch.int64, torch.int32):
            if x.numel() and (int(x.min()) < 0 or int(x.max()) >= self.d_in):
                raise ValueError(f"input ids must be in 0..{self.d_in - 1}")
            unbatched = x.dim() == 1
            xw = F.embedding(x.long(), self.weight_ih.t())  # (B, T, G·H) = one_hot(x) @ W_ihᵀ
        else:
            unbatched = x.dim() == 2
            xw = x @ self.weight_ih.t()  # (B, T, G·H)
        if unbatched:
            xw = xw.unsqueeze(0)
        return xw + self.bias_ih, unbatched


class ElmanRNN(_Recurrent):
    """The plain RNN: h_t = tanh(x_t W_ihᵀ + b_ih + h_{t−1} W_hhᵀ + b_hh).

    `forward(x, h0=None)` takes x (T, D) or (B, T, D) (or ids, see `_Recurrent`) and returns
    (outputs (T, H) or (B, T, H), h_last (H,) or (B, H)); h0 defaults to zeros.

    >>> rnn = ElmanRNN(3, 2)
    >>> out, h = rnn(torch.zeros(5, 3))
    >>> tuple(out.shape), tuple(h.shape), bool((out[-1] == h).all())
    ((5, 2), (2,), True)
    """

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        xw, unbatched = self._project(x)  # (B, T, H)
        h = _initial(h0, xw, self.d_hidden, unbatched)  # (B, H)
        outs = []
        for x_t in xw.unbind(1):  # unbind, not xw[:, t]: its backward would zero-fill (B, T, H) per step
            h = torch.tanh(x_t + h @ self.weight_hh.t() + self.bias_hh)  # (B, H)
            outs.append(h)
        return _finish(outs, h, xw, unbatched)


class LSTM(_Recurrent):
    """Long short-term memory, gates in torch's order (input i, forget f, candidate g, output o).

    c_t = f ⊙ c_{t−1} + i ⊙ g and h_t = o ⊙ tanh(c_t): the cell state c is only ever scaled by f
    and added to, so a forget gate near 1 carries it (and its gradient) across many steps.
    `forward(x, state=None)` with state = (h0, c0) returns (outputs, (h_last, c_last)).
    """

    gates = 4

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None):
        xw, unbatched = self._project(x)  # (B, T, 4H)
        h0, c0 = state if state is not None else (None, None)
        h = _initial(h0, xw, self.d_hidden, unbatched)  # (B, H)
        c = _initial(c0, xw, self.d_hidden, unbatched)  # (B, H)
        outs = []
        for x_t in xw.unbind(1):
            z = x_t + h @ self.weight_hh.t() + self.bias_hh  # (B, 4H)
            i, f, g, o = z.chunk(4, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outs.append(h)
        out, h_last = _finish(outs, h, xw, unbatched)
        return out, (h_last, c[0] if unbatched else c)


class GRU(_Recurrent):
    """Gated recurrent unit, gates in torch's order (reset r, update z, new n).

    n = tanh(x W_inᵀ + b_in + r ⊙ (h W_hnᵀ + b_hn)), h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}.
    `forward(x, h0=None)` returns (outputs, h_last) like `ElmanRNN`.
    """

    gates = 3

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        xw, unbatched = self._project(x)  # (B, T, 3H)
        h = _initial(h0, xw, self.d_hidden, unbatched)  # (B, H)
        outs = []
        for x_t in xw.unbind(1):
            x_r, x_z, x_n = x_t.chunk(3, dim=-1)
            h_r, h_z, h_n = (h @ self.weight_hh.t() + self.bias_hh).chunk(3, dim=-1)
            r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
            n = torch.tanh(x_n + r * h_n)
            h = (1 - z) * n + z * h
            outs.append(h)
        return _finish(outs, h, xw, unbatched)


def _initial(h0: torch.Tensor | None, xw: torch.Tensor, d_hidden: int, unbatched: bool) -> torch.Tensor:
    if h0 is None:
        return xw.new_zeros(xw.shape[0], d_hidden)
    h0 = h0.unsqueeze(0) if unbatched else h0
    if tuple(h0.shape) != (xw.shape[0], d_hidden):
        raise ValueError(f"initial state must have shape {(xw.shape[0], d_hidden)}, not {tuple(h0.shape)}")
    return h0


def _finish(outs: list[torch.Tensor], h: torch.Tensor, xw: torch.Tensor, unbatched: bool):
    out = torch.stack(outs, dim=1) if outs else xw.new_zeros(xw.shape[0], 0, h.shape[-1])  # (B, T, H)
    return (out[0], h[0]) if unbatched else (out, h)


def make_cell(cell: str, d_in: int, d_hidden: int) -> _Recurrent:
    """A fresh cell by name: "rnn" (`ElmanRNN`), "lstm" (`LSTM`) or "gru" (`GRU`)."""
    classes = {"rnn": ElmanRNN, "lstm": LSTM, "gru": GRU}
    if cell not in classes:
        raise ValueError(f"cell must be one of {', '.join(CELLS)}, not {cell!r}")
    return classes[cell](d_in, d_hidden)


def init_cell_(cell: _Recurrent, init: str) -> None:
    """Initialise a cell's weights in place. "torch": leave torch's uniform ±1/√H (as `nn.RNN`).

    "orthogonal": each gate's block of W_hh an orthogonal matrix, W_ih Xavier-uniform, biases 0,
    the usual choice for recurrent nets. Every singular value of W_hh is then 1, so at the start
    h_{t−1} passes through the recurrence at full strength, where torch's init shrinks it (its
    W_hh has spectral radius ≈ 1/√3): the state forgets its start more slowly.
    """
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}, not {init!r}")
    if init == "orthogonal":
        with torch.no_grad():
            for block in cell.weight_hh.chunk(cell.gates, dim=0):  # (H, H) per gate
                nn.init.orthogonal_(block)
            nn.init.xavier_uniform_(cell.weight_ih)
            cell.bias_ih.zero_()
            cell.bias_hh.zero_()


class SequenceModel(nn.Module):
    """One-hot ids -> a recurrent cell -> a linear read-out over `n_out` classes at every step.

    `forward(idx (B, T), targets=None) -> (logits (B, T, n_out), loss)`: the family interface.
    `targets` (B, T) gives the mean cross-entropy over all steps; -100 marks steps to ignore.
    """

    def __init__(self, cell: str, vocab_size: int, hidden_size: int, n_out: int | None = None):
        super().__init__()
        self.cell_name, self.vocab_size = cell, vocab_size
        self.cell = make_cell(cell, vocab_size, hidden_size)
        self.head = nn.Linear(hidden_size, n_out or vocab_size)

    def init_args(self) -> tuple:
        """`SequenceModel(*model.init_args())` builds a model of the same shape."""
        return (self.cell_name, self.vocab_size, self.head.in_features, self.head.out_features)

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """The hidden state h_t after every step: (B, T, H) for ids (B, T) or one-hots (B, T, V)."""
        out, _ = self.cell(x)
        return out

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        logits = self.head(self.hidden(idx))  # (B, T, n_out)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)
        return logits, loss


# ---------------------------------------------------------------------------------------------
# Counting: after 7 8 9 10 comes 11


@dataclass
class CountingConfig:
    """The counting task and how to train on it (defaults are the seed's)."""

    vocab_size: int = 128  # V: the numbers 0..V−1, one-hot encoded
    seq_len: int = 6  # L: training sequences are L consecutive numbers, targets shifted by one
    hidden_size: int = 32  # H: size of the hidden state
    cell: str = "rnn"  # "rnn" (hand-written Elman), "lstm" or "gru"
    init: str = "torch"  # "torch" (uniform ±1/√H) or "orthogonal" W_hh: see `init_cell_`
    batch_size: int | None = None  # None: half the dataset, i.e. two updates per epoch
    lr: float = 0.01  # Adam's learning rate
    lr_decay: bool = False  # decay the learning rate linearly to 0 over max_epochs
    max_epochs: int = 300  # give up after this many passes over the data
    stop_at_full_accuracy: bool = True  # stop at the first epoch with 100% training accuracy
    seed: int = 0  # initialisation and batch order


@dataclass(frozen=True)
class EpochStats:
    """What a trainer reports after each epoch."""

    epoch: int  # 1-based
    loss: float  # mean training loss of the epoch's batches
    accuracy: float  # next-number accuracy over every position of every training sequence


def counting_data(vocab_size: int, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All windows of L + 1 consecutive numbers below V: inputs (N, L) and targets (N, L), N = V − L.

    >>> x, y = counting_data(5, 3)
    >>> x.tolist(), y.tolist()
    ([[0, 1, 2], [1, 2, 3]], [[1, 2, 3], [2, 3, 4]])
    """
    if seq_len < 1:
        raise ValueError("sequence length must be at least 1")
    if vocab_size <= seq_len:
        raise ValueError(f"need more than L = {seq_len} numbers to make a counting sequence, got V = {vocab_size}")
    windows = torch.arange(vocab_size - seq_len).unsqueeze(1) + torch.arange(seq_len + 1)  # (N, L+1)
    return windows[:, :-1], windows[:, 1:]


def check_counting(config: CountingConfig) -> None:
    """Raise the ValueError `train_counting` would, before any training starts.

    >>> check_counting(CountingConfig(vocab_size=8, seq_len=40))
    Traceback (most recent call last):
    ...
    ValueError: need more than L = 40 numbers to make a counting sequence, got V = 8
    """
    _validate_counting(config)
    if config.seq_len < 1:
        raise ValueError("sequence length must be at least 1")
    if config.vocab_size <= config.seq_len:
        raise ValueError(
            f"need more than L = {config.seq_len} numbers to make a counting sequence, got V = {config.vocab_size}"
        )


def _validate_counting(config: CountingConfig) -> None:
    if config.hidden_size < 1:
        raise ValueError("hidden size must be at least 1")
    if config.lr <= 0:
        raise ValueError("learning rate must be positive")
    if config.max_epochs < 1:
        raise ValueError("max_epochs must be at least 1")
    if config.batch_size is not None and config.batch_size < 1:
        raise ValueError("batch size must be at least 1")
    make_cell(config.cell, 1, 1)  # validates the cell name
    if config.init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}, not {config.init!r}")


def train_counting(
    config: CountingConfig | None = None, callback: Callable[[SequenceModel, EpochStats], None] | None = None
) -> SequenceModel:
    """Train a `SequenceModel` to predict the next number, with teacher forcing at every step.

    `callback(model, stats)` runs after every epoch (raise from it to stop early). Training
    stops at the first epoch with 100% training accuracy when `stop_at_full_accuracy` is set.
    """
    config = config or CountingConfig()
    check_counting(config)
    x, y = counting_data(config.vocab_size, config.seq_len)  # (N, L), (N, L)
    gen = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    model = SequenceModel(config.cell, config.vocab_size, config.hidden_size)
    init_cell_(model.cell, config.init)
    batch = config.batch_size or max(1, math.ceil(len(x) / 2))
    n_batches = math.ceil(len(x) / batch)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    total_updates = config.max_epochs * n_batches
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1 - k / total_updates) if config.lr_decay else None
    for epoch in range(1, config.max_epochs + 1):
        order = torch.randperm(len(x), generator=gen)
        losses = []
        for b in range(n_batches):
            rows = order[b * batch : (b + 1) * batch]
            _, loss = model(x[rows], y[rows])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            losses.append(loss.item())
        if callback is None and not config.stop_at_full_accuracy:
            continue  # nobody looks at the accuracy: skip the extra forward pass
        acc = accuracy(model, x, y)
        if callback is not None:
            callback(model, EpochStats(epoch, sum(losses) / len(losses), acc))
        if config.stop_at_full_accuracy and acc == 1.0:
            break
    return model


@torch.no_grad()
def accuracy(model: SequenceModel, x: torch.Tensor, y: torch.Tensor, last_only: bool = False) -> float:
    """Fraction of positions (or only last positions) where argmax(logits) equals the target."""
    logits, _ = model(x)  # (N, T, V)
    pred = logits.argmax(-1)  # (N, T)
    if last_only:
        pred, y = pred[:, -1], y[:, -1]
    return (pred == y).float().mean().item()


def counting_target(config: CountingConfig | None = None):
    """`train_counting` as a `TrainingJob` target: reports loss and accuracy per epoch, publishes `model`."""
    config = config or CountingConfig()

    def target(ctx):
        ctx.set_total(config.max_epochs)

        def callback(model, stats):
            ctx.check()
            ctx.report(step=stats.epoch, loss=stats.loss, accuracy=stats.accuracy)
            ctx.publish(model=copy.deepcopy(model))
            if config.stop_at_full_accuracy and stats.accuracy == 1.0:
                ctx.set_total(stats.epoch)  # stopping early: the run is complete

        return train_counting(config, callback)

    return target


def parse_sequence(text: str) -> list[int]:
    """Read numbers typed by a person: "7 8 9 10", "7, 8, 9, 10" -> [7, 8, 9, 10].

    >>> parse_sequence("7, 8 9,10")
    [7, 8, 9, 10]
    """
    parts = text.replace(",", " ").split()
    if not parts:
        raise ValueError("type at least one number, e.g. 7 8 9 10")
    bad = [p for p in parts if not re.fullmatch(r"-?[0-9]+", p)]
    if bad:
        raise ValueError(f"only whole numbers please, not {bad[0]!r}")
    return [int(p) for p in parts]


def _whole_number(v) -> int:
    """7, 7.0, torch.tensor(7) -> 7; True, 7.5, "7" and None are errors."""
    if isinstance(v, bool | str) or v is None:
        raise ValueError(f"only whole numbers please, not {v!r}")
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"only whole numbers please, not {v!r}") from None
    if not f.is_integer():
        raise ValueError(f"only whole numbers please, not {v!r}")
    return int(f)


def _check_sequence(model: SequenceModel, sequence: Sequence[int]) -> torch.Tensor:
    seq = [_whole_number(v) for v in sequence]
    if not seq:
        raise ValueError("the sequence needs at least one number")
    for v in seq:
        if not 0 <= v < model.vocab_size:
            raise ValueError(f"{v} is outside 0..{model.vocab_size - 1}, the numbers this model knows")
    return torch.tensor(seq, dtype=torch.long)  # (T,)


@torch.no_grad()
def next_distribution(model: SequenceModel, sequence: Sequence[int]) -> torch.Tensor:
    """(V,) probabilities of the number after `sequence` (any length ≥ 1)."""
    logits, _ = model(_check_sequence(model, sequence).unsqueeze(0))  # (1, T, V)
    return torch.softmax(logits[0, -1], dim=-1)


def predict_next(model: SequenceModel, sequence: Sequence[int]) -> int:
    """The most likely next number: `predict_next(model, [7, 8, 9, 10])` is 11 after training.

    Raises ValueError for an empty sequence, non-integers or numbers outside 0..V−1.
    """
    return int(next_distribution(model, sequence).argmax())


@torch.no_grad()
def hidden_states(model: SequenceModel, sequence: Sequence[int]) -> torch.Tensor:
    """(T, H) hidden state after each number of `sequence`, for the heatmap."""
    return model.hidden(_check_sequence(model, sequence).unsqueeze(0))[0]


# ---------------------------------------------------------------------------------------------
# Length experiment: does a longer training sequence help or hurt?

# The seed's published accuracy-vs-length result (its accuracy notebook), NOT our measurement:
# L -> next-number accuracy on all length-3 windows, approximate points. Only what the seed states
# is here: the RNN at 0.998 for L = 4, its collapse to 0.12 at L = 96, and 0.87-0.90 beyond L = 100
# (drawn as 0.90 falling to 0.87); the LSTM "stays at about 0.97 or better", given as that floor.
# Nothing is known in between, so charts should draw these as points, not a line.
SEED_LENGTH_REFERENCE: dict[str, list[tuple[int, float]]] = {
    "rnn": [(4, 0.998), (96, 0.12), (100, 0.90), (106, 0.89), (112, 0.88), (118, 0.87)],
    "lstm": [(4, 0.97), (40, 0.97), (80, 0.97), (118, 0.97)],
}  # fmt: skip


@dataclass
class LengthConfig:
    """The seed's accuracy notebook: counting accuracy vs training length, per cell, over seeds.

    The loss is on every step; the test reads 3-number windows from a fresh state, i.e. the first 3
    steps of a sequence, which get only 3/L of the training loss. With torch's init (W_hh's spectral
    radius ≈ 0.6) the state soon forgets its start, those steps are like the rest, and the RNN keeps
    0.979 at L = 118 (LSTM 0.955; means of 3 seeds) where the seed reports 0.87–0.90. With
    `init="orthogonal"` the start lingers and the seed's picture appears: RNN 0.908 (0.815–0.976),
    LSTM 0.957. The seed's own init is not known, so the default stays torch's, as `nn.RNN` has it.
    """

    lengths: tuple[int, ...] = tuple(range(4, 120, 2))  # training lengths L = 4, 6, ..., 118
    cells: tuple[str, ...] = ("rnn", "lstm")  # hand-written Elman RNN vs LSTM
    vocab_size: int = 512  # numbers 0..511
    hidden_size: int = 32  # hidden state size
    init: str = "torch"  # "torch" (uniform ±1/√H) or "orthogonal" W_hh: see `init_cell_`
    epochs: int = 25  # full-batch epochs (one update each) per length
    lr: float = 0.1  # Adam, decaying linearly to 0 over the epochs
    test_window: int = 3  # accuracy is measured on every window of this many numbers
    seed: int = 0  # initialisation of the first run; full batch, so the data order plays no part
    seeds: int = 3  # runs per (cell, length) with seeds seed, seed + 1, ...: a band, not one line


def length_accuracy(config: LengthConfig, cell: str, length: int) -> float:
    """Train one counting model at training length `length`; accuracy on all `test_window` windows."""
    model = train_counting(
        CountingConfig(
            vocab_size=config.vocab_size,
            seq_len=length,
            hidden_size=config.hidden_size,
            cell=cell,
            init=config.init,
            batch_size=config.vocab_size,  # at least the dataset: full batch
            lr=config.lr,
            lr_decay=True,
            max_epochs=config.epochs,
            stop_at_full_accuracy=False,
            seed=config.seed,
        )
    )
    x, y = counting_data(config.vocab_size, config.test_window)
    return accuracy(model, x, y, last_only=True)


def _sweep(
    config,
    measure: Callable[..., float],
    callback: Callable[[str, int, float], None] | None,
    seeds: int = 1,
) -> dict[str, list[tuple[int, float]]]:
    """{cell: [(L, measure(config, cell, L)), ...]}: every cell at every length, once per seed.

    Run i uses `config.seed + i`. Seeds are the outer loop, so a whole curve exists after the first
    seed and later seeds widen it into a band; the list holds one (L, value) per run, in run order.
    """
    if not config.lengths or min(config.lengths) < 1:
        raise ValueError("lengths must be a non-empty list of positive numbers")
    if seeds < 1:
        raise ValueError("seeds must be at least 1")
    for cell in config.cells:
        make_cell(cell, 1, 1)  # fail before the first long run
    curves: dict[str, list[tuple[int, float]]] = {c: [] for c in config.cells}
    for i in range(seeds):
        run_config = replace(config, seed=config.seed + i)
        for length in config.lengths:
            for cell in config.cells:
                acc = measure(run_config, cell, length)
                curves[cell].append((length, acc))
                if callback is not None:
                    callback(cell, length, acc)
    return curves


@dataclass(frozen=True)
class BandPoint:
    """The runs at one x (one per seed): their mean, sample standard deviation and range."""

    x: int
    mean: float
    sd: float  # 0 for a single run
    lo: float  # the worst run
    hi: float  # the best run
    n: int  # number of runs


def band(points: Sequence[tuple[int, float]]) -> list[BandPoint]:
    """Group (x, value) runs by x, in increasing x: what a chart draws as a line inside a band.

    >>> [(p.x, p.mean, round(p.sd, 3), p.lo, p.hi, p.n) for p in band([(8, 0.5), (4, 1.0), (4, 0.8)])]
    [(4, 0.9, 0.141, 0.8, 1.0, 2), (8, 0.5, 0.0, 0.5, 0.5, 1)]
    """
    runs: dict[int, list[float]] = {}
    for x, value in points:
        runs.setdefault(x, []).append(value)
    return [
        BandPoint(x, statistics.fmean(v), statistics.stdev(v) if len(v) > 1 else 0.0, min(v), max(v), len(v))
        for x, v in sorted(runs.items())
    ]


def length_experiment(
    config: LengthConfig | None = None, callback: Callable[[str, int, float], None] | None = None
) -> dict[str, list[tuple[int, float]]]:
    """{cell: [(L, accuracy), ...]}, one point per run (`config.seeds` per length, seed by seed);
    `callback(cell, L, acc)` after each run. `band(curves[cell])` gives the mean and range per L.
    """
    config = config or LengthConfig()
    if config.lengths and max(config.lengths) >= config.vocab_size:
        raise ValueError(f"every length must be below the vocabulary size {config.vocab_size}")
    return _sweep(config, length_accuracy, callback, config.seeds)


def _curve_target(run: Callable, config, n_runs: int):
    """A TrainingJob target for an experiment: one progress step per run, partial curves published."""

    def target(ctx):
        ctx.set_total(n_runs)
        partial: dict[str, list[tuple[int, float]]] = {}

        def callback(cell, x, acc):
            ctx.check()
            partial.setdefault(cell, []).append((x, acc))
            ctx.report(**{f"accuracy_{cell}": acc})
            ctx.publish(curves={k: list(v) for k, v in partial.items()})
            ctx.check()

        return run(config, callback)

    return target


def length_experiment_target(config: LengthConfig | None = None):
    """`length_experiment` as a TrainingJob target (progress: one step per (seed, length, cell))."""
    config = config or LengthConfig()
    return _curve_target(length_experiment, config, config.seeds * len(config.lengths) * len(config.cells))


# ---------------------------------------------------------------------------------------------
# Memory task: what was the first element?


@dataclass
class MemoryConfig:
    """Recall the first of L random symbols, read out after the last one (the seed's LSTM teaser)."""

    lengths: tuple[int, ...] = (5, 10, 20, 30, 40)  # sequence lengths L to try
    cells: tuple[str, ...] = CELLS  # RNN vs LSTM vs GRU
    n_symbols: int = 8  # K symbols; chance accuracy is 1/K
    hidden_size: int = 32  # hidden state size
    steps: int = 300  # Adam updates, each on a fresh random batch
    batch_size: int = 64  # sequences per update
    lr: float = 0.01  # Adam's learning rate
    n_test: int = 512  # fresh sequences to measure accuracy on
    seed: int = 0  # data and initialisation


def memory_batch(
    n: int, length: int, n_symbols: int, generator: torch.Generator, dense: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """n random sequences (n, L) and their targets (n, L): the first element, at every step (dense) or
    only at the last one (-100 elsewhere, ignored by the loss).

    Dense targets teach remembering step by step (first 1 step back, then 2, ...); accuracy is
    always read at the last step, L − 1 steps after the element to recall.

    >>> x, y = memory_batch(1, 3, 4, torch.Generator().manual_seed(0), dense=False)
    >>> y[0, :-1].tolist(), y[0, -1].item() == x[0, 0].item()
    ([-100, -100], True)
    """
    x = torch.randint(0, n_symbols, (n, length), generator=generator)  # (n, L)
    if dense:
        return x, x[:, :1].expand(n, length).clone()
    y = torch.full_like(x, -100)
    y[:, -1] = x[:, 0]
    return x, y


def train_memory(
    config: MemoryConfig, cell: str, length: int, on_step: Callable[[], None] | None = None
) -> SequenceModel:
    """Train one model on the memory task at sequence length `length`; `on_step()` before each update."""
    if length < 1:
        raise ValueError("length must be at least 1")
    gen = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    model = SequenceModel(cell, config.n_symbols, config.hidden_size)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    for _ in range(config.steps):
        if on_step is not None:
            on_step()
        x, y = memory_batch(config.batch_size, length, config.n_symbols, gen)
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return model


def memory_accuracy(config: MemoryConfig, cell: str, length: int) -> float:
    """Accuracy at recalling the first element, on `n_test` fresh sequences."""
    model = train_memory(config, cell, length)
    x, y = memory_batch(config.n_test, length, config.n_symbols, torch.Generator().manual_seed(config.seed + 1))
    return accuracy(model, x, y, last_only=True)


def memory_experiment(
    config: MemoryConfig | None = None, callback: Callable[[str, int, float], None] | None = None
) -> dict[str, list[tuple[int, float]]]:
    """{cell: [(L, accuracy), ...]}; `callback(cell, L, acc)` after each run."""
    config = config or MemoryConfig()
    if config.n_symbols < 2:
        raise ValueError("need at least 2 symbols")
    return _sweep(config, memory_accuracy, callback)


def memory_experiment_target(config: MemoryConfig | None = None):
    """`memory_experiment` as a TrainingJob target (progress: one step per (length, cell))."""
    config = config or MemoryConfig()
    return _curve_target(memory_experiment, config, len(config.lengths) * len(config.cells))


# ---------------------------------------------------------------------------------------------
# Vanishing gradients


def gradient_norms(model: SequenceModel, x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """Mean over the batch of ‖∂loss/∂x_t‖ for every time step t, where x_t is the one-hot input.

    x: ids (B, T); y: targets (B, T) with -100 where there is no loss. A step whose norm is tiny
    cannot be learned from: the error signal no longer reaches it.
    """
    onehot = F.one_hot(x, model.vocab_size).float().requires_grad_(True)  # (B, T, V)
    logits = model.head(model.hidden(onehot))  # (B, T, n_out)
    # summed, not averaged, over the batch so every sequence's gradient keeps its own size
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-100, reduction="sum")
    (grad,) = torch.autograd.grad(loss, onehot)  # (B, T, V)
    return grad.norm(dim=-1).mean(dim=0).tolist()


@dataclass
class GradientConfig:
    """Measure ‖∂loss/∂x_t‖ on the memory task (the loss sits at the last step)."""

    length: int = 30  # sequence length T
    cells: tuple[str, ...] = ("rnn", "lstm")  # cells to compare
    train_steps: int = 200  # memory-task updates before measuring (0: at initialisation)
    n_symbols: int = 8  # K symbols
    hidden_size: int = 32  # hidden state size
    batch_size: int = 64  # sequences averaged over
    seed: int = 0  # data and initialisation


def vanishing_gradients(
    config: GradientConfig | None = None, on_step: Callable[[], None] | None = None
) -> dict[str, list[float]]:
    """{cell: [‖∂loss/∂x_1‖, ..., ‖∂loss/∂x_T‖]}: how much of the error reaches each input.

    `on_step()` is called before each training update and after each cell is measured (progress).
    """
    tick = on_step or (lambda: None)
    config = config or GradientConfig()
    if config.length < 2:
        raise ValueError("length must be at least 2")
    memory = MemoryConfig(
        n_symbols=config.n_symbols,
        hidden_size=config.hidden_size,
        steps=config.train_steps,
        batch_size=config.batch_size,
        seed=config.seed,
    )
    gen = torch.Generator().manual_seed(config.seed + 1)
    x, y = memory_batch(config.batch_size, config.length, config.n_symbols, gen, dense=False)  # loss at the end only
    norms = {}
    for cell in config.cells:
        norms[cell] = gradient_norms(train_memory(memory, cell, config.length, tick), x, y)
        tick()
    return norms


def vanishing_gradients_target(config: GradientConfig | None = None):
    """`vanishing_gradients` as a TrainingJob target: one progress step per update and per cell measured."""
    config = config or GradientConfig()

    def target(ctx) -> dict[str, list[float]]:
        ctx.set_total(len(config.cells) * (config.train_steps + 1))

        def tick() -> None:
            ctx.check()
            ctx.report()

        return vanishing_gradients(config, tick)

    return target
