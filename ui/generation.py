"""Drawing helpers of the Generation lab: token spans, next-token bar charts, the leaderboard.

Pure functions from engine results to HTML strings, plotly figures and DataFrames, and the panels
that draw them (a default model's status, the inspected result, the leaderboard); the page
(`pages/generation.py`) samples and decides where they go. Nothing here trains or samples.
"""

from __future__ import annotations

import html
import math
import time
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

from mllm_core import metrics, training, zoo
from mllm_core.sampling import GenerationStep
from mllm_core.zoo import LeaderboardRow
from ui import common, server
from ui.common import MARGIN, show_token

TOP_K_SHOWN = 10  # bars in the next-token chart
YOURS = " (yours)"  # marks this session's models (trained in the other labs) in the model lists
INFINITE_SCORE = (
    "Infinite: the model gives some token of the text probability 0, and −log₂ 0 = ∞. A plain-count (MLE) "
    "n-gram does that to every word or continuation it never saw; add-k or Kneser-Ney smoothing keeps "
    "some probability for them and scores finitely."
)


@dataclass(frozen=True)
class StepView:
    """What the page keeps of one `GenerationStep` (a few floats, not the (V,) tensors)."""

    token: str
    p: float  # probability of the drawn token under the distribution it was drawn from
    top: tuple[tuple[str, float, float], ...]  # (token, p after sampling settings, p of the model), most likely first


def step_view(step: GenerationStep, decode, k: int = TOP_K_SHOWN) -> StepView:
    """Keep the model's `k` most likely tokens (and the drawn one) with both probabilities."""
    order = torch.topk(step.raw_probs, min(k, step.raw_probs.numel())).indices.tolist()
    if step.token_id not in order:
        order.append(step.token_id)
    top = tuple((decode([i]), float(step.probs[i]), float(step.raw_probs[i])) for i in order)
    return StepView(step.token, float(step.probs[step.token_id]), top)


class Throttle:
    """Says yes at most once per `seconds`: redraw a growing text ~20 times a second, not per token.

    Every redraw resends the whole text, so drawing each of 1000 tokens would send ~75 MB.
    """

    def __init__(self, seconds: float = 0.05):
        self.seconds = seconds
        self.last = -math.inf

    def __call__(self) -> bool:
        now = time.perf_counter()
        if now - self.last < self.seconds:
            return False
        self.last = now
        return True


def _colour(p: float) -> str:
    """Red (surprising) to green (expected) through yellow, as a translucent background."""
    hue = int(120 * max(0.0, min(1.0, p)))
    return f"hsla({hue}, 75%, 55%, 0.35)"


def tokens_html(prompt: str, steps: list[StepView], selected: int | None = None) -> str:
    """The prompt, then each generated token as a span coloured by its probability (hover for it).

    >>> tokens_html("a", [StepView("<b>", 0.5, ())])[:40]
    '<div style="line-height:2;white-space:pr'
    """
    spans = [f'<span style="color:#667">{html.escape(prompt)}</span>']
    for i, step in enumerate(steps, start=1):
        border = "outline:2px solid #4F46E5;" if i == selected else ""
        spans.append(
            f'<span title="step {i}: p = {step.p:.3f}" style="background:{_colour(step.p)};{border}'
            f'border-radius:3px">{html.escape(step.token)}</span>'
        )
    return '<div style="line-height:2;white-space:pre-wrap;font-family:monospace">' + "".join(spans) + "</div>"


def _layout(fig: go.Figure, title: str, height: int = 320) -> go.Figure:
    fig.update_layout(title=title, height=height, margin=MARGIN, legend=dict(orientation="h"))
    return fig


def next_token_chart(step: StepView, index: int) -> go.Figure:
    """Bars of the most likely next tokens at one step: the model's probability and the one sampled from."""
    labels = [show_token(t) for t, _, _ in step.top]
    colours = ["#4F46E5" if t == step.token else "#A5B4FC" for t, _, _ in step.top]
    fig = go.Figure(
        [
            go.Bar(x=labels, y=[raw for _, _, raw in step.top], name="model", marker_color="#CBD5E1"),
            go.Bar(
                x=labels, y=[p for _, p, _ in step.top], name="after temperature / top-k / top-p", marker_color=colours
            ),
        ]
    )
    fig.update_layout(barmode="group", yaxis_title="probability", xaxis_type="category")
    return _layout(fig, f"Step {index}: drew {show_token(step.token)!r} (p = {step.p:.3f})")


def chosen_probability_chart(steps: list[StepView]) -> go.Figure:
    """One bar per step: the probability of the token that was drawn. Click a bar to inspect that step."""
    fig = go.Figure(
        go.Bar(
            x=list(range(1, len(steps) + 1)),
            y=[s.p for s in steps],
            text=[show_token(s.token) for s in steps],
            marker_color=[_colour(s.p).replace("0.35", "0.9") for s in steps],
            hovertemplate="step %{x}: %{text} p=%{y:.3f}<extra></extra>",
        )
    )
    fig.update_layout(xaxis_title="step (click a bar)", yaxis_title="p(drawn token)", yaxis_range=[0, 1])
    return _layout(fig, "How likely was each drawn token?", height=220)


def leaderboard_frame(rows: list[LeaderboardRow]) -> pd.DataFrame:
    """The leaderboard as a table: model, family, bits/char, per-character perplexity, status."""
    records = []
    for row in rows:
        ev = row.evaluation
        records.append(
            {
                "model": row.name,
                "family": row.family,
                "bits per char": None if ev is None else round(ev.bits_per_char, 3),
                "perplexity (per char)": None
                if ev is None or not math.isfinite(ev.perplexity)
                else round(ev.perplexity, 2),
                "tokens scored": None if ev is None else ev.n_tokens,
                "status": "scored" if ev is not None else row.state,
            }
        )
    return pd.DataFrame.from_records(records)


def leaderboard_style(frame: pd.DataFrame):
    """The table as shown: a dash, not "None", for a model not scored yet."""
    formats = {"bits per char": "{:.3f}", "perplexity (per char)": "{:.2f}", "tokens scored": "{:,.0f}"}
    return frame.style.format(formats, na_rep="–")


def leaderboard_chart(rows: list[LeaderboardRow]) -> go.Figure:
    """Horizontal bars of bits per character (lower is better) for the scored models."""
    scored = [r for r in rows if r.evaluation is not None and math.isfinite(r.bits_per_char)]
    palette = {"baseline": "#94A3B8", "n-gram": "#F59E0B", "MLP": "#EC4899", "RNN": "#10B981", "transformer": "#4F46E5"}
    fig = go.Figure(
        go.Bar(
            y=[r.name for r in scored],
            x=[r.bits_per_char for r in scored],
            orientation="h",
            marker_color=[palette.get(r.family, "#64748B") for r in scored],
            text=[f"{r.bits_per_char:.2f}" for r in scored],
            textposition="auto",
        )
    )
    fig.update_layout(xaxis_title="bits per character on the validation text (lower is better)")
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, "Leaderboard", height=60 + 40 * max(1, len(scored)))


# ---------------------------------------------------------------------------------------------
# Panels


def status(name: str, job: training.TrainingJob | None, model) -> None:
    """Say where a default model stands (`job` None: one of yours); poll while it trains and rerun once it is done."""
    snap = job.snapshot() if job else None
    if snap is None or snap.state == training.DONE:
        return
    if snap.state == training.FAILED:
        st.error(f"Training {name} failed: {snap.error}", icon=":material/error:")
        return
    if model is None:
        st.info(f"**{name}** is {snap.state} ({zoo.origin(snap)}): one for everyone, it appears here when ready.")
    else:
        st.caption(f"**{name}** is still training: you are sampling its latest snapshot.")
    common.live(job, lambda s: None, every=2.0)


def inspect_result(result: tuple[str, str, list[StepView]] | None, out) -> None:
    """The last generated text (model, prompt, steps) in `out`, with a step to inspect: picked by
    clicking its bar or with the slider, outlined in the text, its next-token chart below."""
    if not result:
        return
    used_model, used_prompt, views = result
    if not views:
        st.info("Nothing generated: ask for at least one token.")
        return
    pick = st.plotly_chart(chosen_probability_chart(views), key="gen_pick", on_select="rerun", selection_mode="points")
    points = pick.selection.points if pick else []
    if points and points[0]["x"] != st.session_state.get("gen_last_pick"):
        st.session_state["gen_last_pick"] = st.session_state["gen_step"] = int(points[0]["x"])
    st.session_state["gen_step"] = min(st.session_state.get("gen_step", 1), len(views))
    index = st.slider("Inspect step", 1, max(2, len(views)), key="gen_step", disabled=len(views) < 2)
    out.markdown(tokens_html(used_prompt, views, selected=index), unsafe_allow_html=True)
    st.caption(f"{used_model}: {len(views)} tokens. Colour = probability of the drawn token (hover a token).")
    st.plotly_chart(next_token_chart(views[index - 1], index), key="gen_next")
    common.download_text("Download the text", used_prompt + "".join(v.token for v in views), "generated.txt")


def saved_side_by_side(prompt: str, outputs: dict[str, list[StepView]]) -> None:
    """The last side-by-side comparison, one column per model, as it ended."""
    for (name, views), col in zip(outputs.items(), st.columns(max(1, len(outputs))), strict=False):
        col.markdown(f"**{name}**")
        col.markdown(tokens_html(prompt, views), unsafe_allow_html=True)


def leaderboard(jobs: dict[str, training.TrainingJob]) -> None:
    """The leaderboard of the class defaults (`zoo.leaderboard`), polling while any of them trains."""
    polling = any(not job.snapshot().finished for job in set(jobs.values()))

    @server.fragment(run_every=2.0 if polling else None)
    def board() -> None:
        rows = zoo.leaderboard(jobs)
        if polling and all(row.state == training.DONE for row in rows):
            st.rerun()  # everything is scored: one full rerun stops the polling
        st.dataframe(leaderboard_style(leaderboard_frame(rows)), hide_index=True, key="gen_board_table")
        if any(row.evaluation is not None for row in rows):
            st.plotly_chart(leaderboard_chart(rows), key="gen_board_chart")
        else:
            st.caption("The chart appears as the first scores land.")

    board()


def session_scores(mine: dict, config: zoo.ZooConfig) -> None:
    """A button that scores this session's models on the leaderboard's text, and their scores so far."""
    if mine and st.button("Score this session's models on the same text", key="gen_score"):
        scores = st.session_state.setdefault("gen_scores", {})
        for name, lm in mine.items():
            with common.guard(f"Scoring {name}"), st.spinner(f"Scoring {name}…"):
                scores[name] = metrics.evaluate(lm, zoo.validation_text(config))
    for name, ev in st.session_state.get("gen_scores", {}).items():
        st.write(f"**{name}{YOURS}**: {ev.bits_per_char:.3f} bits per character ({ev.n_tokens:,} tokens scored)")
        if not math.isfinite(ev.bits_per_char):
            st.caption(INFINITE_SCORE)
