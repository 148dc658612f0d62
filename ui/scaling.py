"""Drawing helpers of the Scaling lab: the ladder's three plots, the induction-head figures, the
loss-by-position curve of natural text. The class-wide results are the engine's (`zoo.scaling_job`,
`zoo.induction_job`); the page only draws them."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from mllm_core import induction, scaling, training
from mllm_core.induction import InductionRun
from mllm_core.scaling import LadderConfig, LadderResult
from ui import common

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


def _layout(fig: go.Figure, title: str, x: str, y: str, log_x: bool = False, log_y: bool = False) -> go.Figure:
    fig.update_layout(
        title=title,
        xaxis_title=x,
        yaxis_title=y,
        height=360,
        margin=common.MARGIN,
        legend=dict(orientation="h", y=-0.3),
    )
    if log_x:
        fig.update_xaxes(type="log")
    if log_y:
        fig.update_yaxes(type="log")
    return fig


# ---------------------------------------------------------------------------------------------
# The ladder


def params_figure(result: LadderResult) -> go.Figure:
    """Validation loss against N, log-log, with the law fitted on every finished model and, for the
    largest, the loss predicted before it trained."""
    fig = go.Figure()
    ns = [r.params for r in result.runs]
    fig.add_trace(
        go.Scatter(
            x=ns, y=[r.val_loss for r in result.runs], mode="markers", name="trained models", marker=dict(size=10)
        )
    )
    p = result.prediction
    top = max(ns + ([p.params] if p else []))
    grid = np.geomspace(min(ns) / 1.5, top * 3, 60)
    if len(result.runs) >= 3:
        law = result.law
        fig.add_trace(go.Scatter(x=grid, y=law(grid), mode="lines", name=f"fit on all: α = {law.alpha:.2f}"))
    if p is not None:
        fig.add_trace(
            go.Scatter(x=grid, y=p.law(grid), mode="lines", line=dict(dash="dot"), name="fit on the smaller models")
        )
        fig.add_trace(
            go.Scatter(
                x=[p.params],
                y=[p.predicted],
                mode="markers",
                marker=dict(symbol="star-open", size=16, color="black"),
                name=f"predicted for {scaling.human(p.params)}: {p.predicted:.3f}",
            )
        )
    return _layout(fig, "Validation loss against size", "non-embedding parameters N", "loss (nats/char)", True, True)


def compute_figure(result: LadderResult) -> go.Figure:
    """Every model's validation loss against training FLOPs, and the lower envelope of them all."""
    fig = go.Figure()
    points = result.compute_points()
    for i, (name, curve) in enumerate(points.items()):
        fig.add_traces(common.curve(curve, mode="lines", name=name, line=dict(color=COLORS[i % len(COLORS)])))
    edge = scaling.frontier([p for curve in points.values() for p in curve])
    fig.add_traces(
        common.curve(
            edge, mode="lines", name="compute-efficient frontier", line=dict(color="black", dash="dash", width=3)
        )
    )
    return _layout(fig, "Loss against compute (≈ 6·N·tokens)", "training FLOPs", "validation loss", True, True)


def data_figure(result: LadderResult) -> go.Figure:
    """The data rung's final train and validation loss against the tokens of text it could see."""
    runs = sorted(result.data_runs + [result.runs[result.config.data_rung]], key=lambda r: r.train_tokens)
    fig = go.Figure()
    x = [r.train_tokens for r in runs]
    fig.add_trace(go.Scatter(x=x, y=[r.val_loss for r in runs], mode="lines+markers", name="validation loss"))
    fig.add_trace(go.Scatter(x=x, y=[r.train_loss for r in runs], mode="lines+markers", name="loss on its own text"))
    return _layout(fig, f"One model ({runs[0].label}), more text", "training text (tokens)", "loss", log_x=True)


def prediction_caption(result: LadderResult) -> str:
    p = result.prediction
    if p is None:
        return "The prediction for the largest model appears once the smaller ones have trained."
    fitted = f"Fitted on the {len(result.runs) - (p.actual is not None)} smaller models: α = {p.law.alpha:.2f}, L∞ = {p.law.l_inf:.2f}."
    if p.actual is None:
        return f"{fitted} **Predicted** loss of the {scaling.human(p.params)} model, before it finishes: **{p.predicted:.3f}**."
    return (
        f"{fitted} Predicted for the {scaling.human(p.params)} model before it trained: **{p.predicted:.3f}**; "
        f"it reached **{p.actual:.3f}** ({100 * abs(p.error):.1f}% {'worse' if p.error > 0 else 'better'} than predicted)."
    )


TOY_SCALE = (
    "**Where toy scale bends the law.** Every model trains for the same number of steps, so the larger ones stop "
    "further from what they could reach (Kaplan's L(N) is for models trained to convergence): the top of the ladder "
    "flattens, and the largest model lands worse than the law fitted on the smaller ones predicted. The smallest "
    "models are little more than a table of character pairs. L∞ and α come from a handful of points at one budget "
    "and move with it: read L∞ as a floor for these models at this budget, not as the entropy of the text, and "
    "α (about 0.5 for the default ladder) as this ladder's slope, not comparable with the paper's 0.076."
)


def ladder(snap: training.JobSnapshot, config: LadderConfig, key: str) -> None:
    """The ladder's plots from a job's snapshot: finished or still training (then the live model's curve)."""
    result = scaling.partial_result(snap.artifacts, config)
    current = snap.artifacts.get("current")
    if current and current["curve"]:
        st.caption(f"Training **{current['label']}**: validation loss {current['curve'][-1][1]:.3f}")
    if result is None:
        st.info("The first model of the ladder is training; its point appears when it finishes.")
        return
    st.markdown(prediction_caption(result))
    c1, c2 = st.columns(2)
    c1.plotly_chart(params_figure(result), key=f"{key}_params")
    c2.plotly_chart(compute_figure(result), key=f"{key}_compute")
    if result.data_runs:
        st.plotly_chart(data_figure(result), key=f"{key}_data")
    st.dataframe(
        [
            {"model": r.label, "N": r.params, "val loss": round(r.val_loss, 4), "seconds": round(r.seconds, 1)}
            for r in result.runs
        ],
        key=f"{key}_table",
    )


def ladder_settings() -> LadderConfig | None:
    """The student's ladder: sizes, steps, context and batch; None after showing why they don't fit."""
    labels = {f"{n_layer} layers × {n_embd} wide": (n_layer, n_embd) for n_layer, n_embd in scaling.RUNG_CHOICES}
    default = list(labels)[:5]
    picked = st.multiselect("Models of the ladder", list(labels), default=default, key="sc_rungs")
    c1, c2, c3 = st.columns(3)
    steps = c1.number_input("Steps per model", 0, 5_000, 600, step=50, key="sc_steps")
    block = c2.selectbox("Context (block size)", [16, 32, 64, 128], index=2, key="sc_block")
    batch = c3.selectbox("Batch size", [8, 16, 32], index=1, key="sc_batch")
    rungs = tuple(sorted((labels[p] for p in picked), key=lambda r: scaling.RUNG_CHOICES.index(r)))
    with common.guard("The ladder's settings"):
        config = LadderConfig(
            rungs=rungs, steps=int(steps), block_size=block, batch_size=batch, data_rung=min(2, max(len(rungs) - 1, 0))
        )
        sizes = [scaling.non_embedding_params(config.gpt_config(i, 1)) for i in range(len(rungs))]
        st.caption(
            f"{len(rungs)} models of {', '.join(scaling.human(n) for n in sizes)} non-embedding parameters, "
            f"{config.steps * config.tokens_per_step:,} tokens each, plus the third on 1/8, 1/4 and 1/2 of the text."
        )
        return config
    return None


# ---------------------------------------------------------------------------------------------
# Induction heads


def phase_figure(runs: dict[str, InductionRun]) -> go.Figure:
    """Loss on the repeated half (solid) and first half (dotted) over training, the phase change marked."""
    fig = go.Figure()
    for i, (name, run) in enumerate(runs.items()):
        color = COLORS[i]
        steps = [c.step for c in run.checkpoints]
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=[c.repeat_loss for c in run.checkpoints],
                name=f"{name}: repeated half",
                line=dict(color=color),
            )
        )
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=[c.first_loss for c in run.checkpoints],
                name=f"{name}: first half",
                line=dict(color=color, dash="dot"),
            )
        )
        if run.phase_change is not None:
            fig.add_vline(
                x=run.phase_change, line=dict(color=color, dash="dash"), annotation_text=f"{name}: phase change"
            )
    first = next(iter(runs.values()))
    fig.add_hline(y=first.log_v, line=dict(color="grey", dash="dot"), annotation_text="log V")
    return _layout(fig, "Loss during training", "step", "loss (nats)")


def position_figure(runs: dict[str, InductionRun]) -> go.Figure:
    """Final loss at each position of the probe sequences; the repeated half is shaded."""
    fig = go.Figure()
    for i, (name, run) in enumerate(runs.items()):
        fig.add_trace(go.Scatter(y=run.position_loss, mode="lines+markers", name=name, line=dict(color=COLORS[i])))
    first = next(iter(runs.values()))
    half = first.config.half
    fig.add_vrect(x0=half - 0.5, x1=2 * half - 1.5, fillcolor="green", opacity=0.08, line_width=0)
    fig.add_hline(y=first.log_v, line=dict(color="grey", dash="dot"), annotation_text=f"log V = {first.log_v:.2f}")
    return _layout(fig, "Loss at each position (shaded: the repeated half)", "position t (predicting t + 1)", "loss")


def attention_figure(run: InductionRun, layer: int, head: int) -> go.Figure:
    """One head's attention on the probe sequence; the induction stripe is outlined."""
    maps = run.maps[layer][head]
    T, half = len(maps), run.config.half
    fig = go.Figure(go.Heatmap(z=maps, x=list(range(T)), y=list(range(T)), colorscale="Blues", zmin=0, zmax=1))
    queries = list(range(half, T))
    fig.add_trace(
        go.Scatter(
            x=[t - half + 1 for t in queries],
            y=queries,
            mode="markers",
            marker=dict(symbol="square-open", size=11, color="#d62728", line=dict(width=2)),
            name="the token after the previous occurrence",
        )
    )
    ticks = dict(tickmode="array", tickvals=list(range(T)), ticktext=[f"{t}:{tok}" for t, tok in enumerate(run.probe)])
    fig.update_xaxes(**ticks)
    fig.update_yaxes(autorange="reversed", **ticks)
    return _layout(fig, f"Layer {layer}, head {head}: where each token (row) looks", "key", "query")


def score_figure(run: InductionRun, name: str) -> go.Figure:
    scores = np.array(run.final.scores)
    fig = go.Figure(
        go.Heatmap(
            z=scores,
            x=[f"head {h}" for h in range(scores.shape[1])],
            y=[f"layer {layer}" for layer in range(scores.shape[0])],
            colorscale="Reds",
            zmin=0,
            zmax=1,
            text=np.round(scores, 2),
            texttemplate="%{text}",
        )
    )
    fig.update_layout(height=120 + 60 * scores.shape[0])
    return _layout(fig, f"{name}: induction score per head", "", "")


def induction_summary(runs: dict[str, InductionRun]) -> str:
    lines = []
    for name, run in runs.items():
        layer, head, score = run.best_head
        phase = f"phase change at step {run.phase_change}" if run.phase_change is not None else "no phase change"
        lines.append(
            f"- **{name}**: repeated-half loss {run.final.repeat_loss:.3f} "
            f"({100 * run.final.repeat_loss / run.log_v:.0f}% of log V), first half {run.final.first_loss:.2f}; "
            f"best head L{layer}H{head} with induction score {score:.2f}; {phase}; trained in {run.seconds:.0f} s."
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# In-context learning on natural text


def icl_figure(curve: list[float], name: str) -> go.Figure:
    fig = go.Figure(go.Scatter(y=curve, mode="lines+markers", name=name))
    k = max(1, len(curve) // 8)
    for x0, x1, text in ((0, k - 1, "early"), (len(curve) - k, len(curve) - 1, "late")):
        fig.add_vrect(x0=x0 - 0.5, x1=x1 + 0.5, fillcolor="orange", opacity=0.12, line_width=0, annotation_text=text)
    return _layout(fig, f"{name}: loss by position in its context", "position in the context", "loss (nats/char)")


def induction_progress(snap: training.JobSnapshot) -> None:
    """While the default induction runs train: the repeated-half loss of the model training now."""
    current = snap.artifacts.get("current")
    if current and current["checkpoints"]:
        last = current["checkpoints"][-1]
        st.caption(
            f"Training the **{current['label']}** model: step {last.step}, repeated-half loss {last.repeat_loss:.3f}, "
            f"first half {last.first_loss:.3f}."
        )


@st.cache_data(show_spinner="Scoring the text position by position…", max_entries=8)
def text_loss_by_position(_model, name: str, text: str) -> list[float]:
    """`induction.loss_by_position` of a trained `TorchTextLM` on `text`, once per (model name, text)."""
    import torch

    ids = torch.tensor(_model.tokenizer.encode(text), dtype=torch.long)
    return induction.loss_by_position(_model.module, ids, _model.block_size)
