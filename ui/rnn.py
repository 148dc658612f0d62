"""Drawing helpers of the RNN lab: charts of curves, probabilities, hidden states and gradient norms.
hidden states and gradient norms. `pages/rnn.py` reads widgets, calls `mllm_core.rnn` and draws these.
"""

from __future__ import annotations

import plotly.graph_objects as go
import torch

from mllm_core.training import JobSnapshot
from ui.common import MARGIN, curve

COLORS = {"rnn": "#d62728", "lstm": "#1f77b4", "gru": "#2ca02c"}
NAMES = {"rnn": "RNN (hand-written)", "lstm": "LSTM", "gru": "GRU"}
LAYOUT = dict(height=340, margin=MARGIN, legend=dict(orientation="h", y=-0.25))


def counting_chart(snap: JobSnapshot) -> go.Figure:
    """Training loss (left axis) and training accuracy (right axis) per epoch."""
    fig = go.Figure()
    for metric, axis, color in (("loss", "y", "#636efa"), ("accuracy", "y2", "#00a36c")):
        fig.add_traces(curve(snap.history.get(metric, []), name=metric, yaxis=axis, line=dict(color=color)))
    fig.update_layout(
        title="Counting: loss and training accuracy per epoch",
        xaxis_title="epoch",
        yaxis=dict(title="cross-entropy"),
        yaxis2=dict(title="accuracy", overlaying="y", side="right", range=[0, 1.02]),
        **LAYOUT,
    )
    return fig


def probability_chart(probs: torch.Tensor, top: int = 12) -> go.Figure:
    """Bars of the `top` most likely next numbers."""
    values, ids = torch.topk(probs, min(top, probs.numel()))
    fig = go.Figure(go.Bar(x=[str(int(i)) for i in ids], y=values.tolist(), marker_color="#636efa"))
    fig.update_layout(title="p(next number)", xaxis_title="next number", yaxis_title="probability", **LAYOUT)
    fig.update_xaxes(type="category")
    return fig


def hidden_heatmap(states: torch.Tensor, sequence: list[int]) -> go.Figure:
    """h_t (T, H) as a heatmap: one row per hidden unit, one column per number read."""
    fig = go.Figure(
        go.Heatmap(
            z=states.t().tolist(),
            x=[f"{t + 1}: {v}" for t, v in enumerate(sequence)],
            colorscale="RdBu",
            zmid=0,
            zmin=-1,
            zmax=1,
            colorbar=dict(title="h"),
        )
    )
    fig.update_layout(title="Hidden state h_t after each number", xaxis_title="step: number read", **LAYOUT)
    fig.update_yaxes(title="hidden unit")
    fig.update_xaxes(type="category")
    return fig


def curves_chart(
    curves: dict[str, list[tuple[int, float]]] | None,
    title: str,
    x_title: str,
    reference: dict[str, list[tuple[int, float]]] | None = None,
    chance: float | None = None,
) -> go.Figure:
    """Accuracy vs length per cell (lines), optionally with reference points (crosses) and a chance line."""
    fig = go.Figure()
    lines = [(c, p, "seed's result", "markers", "x") for c, p in (reference or {}).items()]
    lines += [(c, p, "ours", "lines+markers", "circle") for c, p in (curves or {}).items()]
    for cell, points, source, mode, symbol in lines:
        color = COLORS.get(cell)
        marker = dict(color=color, symbol=symbol, size=9 if symbol == "x" else 6)
        name = f"{NAMES.get(cell, cell)}, {source}"
        fig.add_traces(curve(points, name=name, mode=mode, line=dict(color=color), marker=marker))
    if chance is not None:
        fig.add_hline(y=chance, line_dash="dash", line_color="grey", annotation_text="chance")
    fig.update_layout(title=title, xaxis_title=x_title, yaxis=dict(title="accuracy", range=[0, 1.02]), **LAYOUT)
    return fig


def gradient_chart(norms: dict[str, list[float]]) -> go.Figure:
    """‖∂loss/∂x_t‖ per time step on a log axis."""
    fig = go.Figure()
    for cell, values in norms.items():
        fig.add_trace(
            go.Scatter(
                x=list(range(1, len(values) + 1)),
                y=values,
                name=NAMES.get(cell, cell),
                line=dict(color=COLORS.get(cell)),
            )
        )
    fig.update_layout(
        title="How much of the error reaches each input: ‖∂loss/∂x_t‖",
        xaxis_title="time step t (the loss is at the last step)",
        yaxis=dict(title="gradient norm (log scale)", type="log", exponentformat="power"),
        **LAYOUT,
    )
    return fig
