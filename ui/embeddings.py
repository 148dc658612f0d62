"""Drawing helpers of the Embeddings lab: tables, PCA / t-SNE scatter plots.

Everything `pages/embeddings.py` shows that is more than a widget lives here. The default
model (default settings on the default corpus) is the engine's `zoo.embeddings_job`, trained
once per server, so a class opening the page at once trains one model, not thirty.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from mllm_core import training, zoo
from mllm_core.word2vec import UnknownWordError, Word2Vec
from ui.common import MARGIN

HIGHLIGHT, QUERY, FOUND, OTHER = "#f97316", "#dc2626", "#16a34a", "#94a3b8"


def budget_text() -> str:
    """The default model's training budget in words, e.g. "30 s"."""
    budget = zoo.embeddings_budget()
    return f"{budget['max_seconds']:.0f} s" if "max_seconds" in budget else f"{budget['epochs']:.0f} epochs"


def progress_metrics(snap: training.JobSnapshot) -> None:
    p = snap.artifacts.get("progress")
    if p is None:
        st.caption("Building the vocabulary and the first batches…")
        return
    cols = st.columns(4)
    cols[0].metric(
        "WordSim-353 ρ", _fmt(p.wordsim), help="Spearman ρ of the input vectors' cosines vs human relatedness scores"
    )
    cols[1].metric("SimLex-999 ρ", _fmt(p.simlex), help="Spearman ρ vs human similarity scores (harder)")
    cols[2].metric("Words / second", f"{p.words_per_second:,.0f}")
    cols[3].metric("Epochs", f"{p.epoch:,}", help="Passes over the corpus so far")
    if p.fraction < 1:
        st.caption(f"Learning-rate schedule {p.fraction:.0%} done.")


def which_scores(model, which: str) -> str:
    """What the chosen vectors score, beside the charts (which follow the input vectors)."""
    scores = f"WordSim-353 ρ {_fmt(model.evaluate('wordsim353', which))}, SimLex-999 ρ {_fmt(model.evaluate('simlex999', which))}"
    if which == "context":
        return f"These input vectors: {scores}."
    return (
        f"These vectors ({'input + output' if which == 'sum' else 'output'}): {scores}; the charts above follow the "
        "input vectors. Adding each word's output vector (what it predicts) to its input vector (what predicts it) "
        "is GloVe's choice and Levy et al.'s (2015) advice for word2vec."
    )


def _fmt(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.3f}"


def unknown_word(err: UnknownWordError) -> None:
    st.warning(str(err), icon=":material/search_off:")


def neighbours_frame(pairs: list[tuple[str, float]]) -> pd.DataFrame:
    return pd.DataFrame({"word": [w for w, _ in pairs], "cosine": [round(c, 3) for _, c in pairs]})


def project(vectors: np.ndarray, dims: int, method: str, progress=None) -> np.ndarray:
    """(N, D) vectors -> (N, dims) coordinates with PCA, or t-SNE on the first 50 PCA components.

    Cosine neighbours are always computed in the original space; this is only for the eye.
    """
    from sklearn.decomposition import PCA

    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    if method == "PCA":
        return PCA(n_components=dims, random_state=0).fit_transform(unit)
    from sklearn.manifold import TSNE

    if progress:
        progress(0.1, "PCA to 50 dimensions first…")
    reduced = PCA(n_components=min(50, *unit.shape), random_state=0).fit_transform(unit)
    if progress:
        progress(0.3, f"t-SNE on {len(unit)} words (a few seconds)…")
    perplexity = min(30.0, max(2.0, (len(unit) - 1) / 3))
    coords = TSNE(n_components=dims, perplexity=perplexity, init="pca", random_state=0).fit_transform(reduced)
    if progress:
        progress(1.0, "t-SNE done")
    return coords


@st.cache_data(show_spinner=False, max_entries=16)
def tsne_cached(key: tuple, _vectors: np.ndarray, dims: int) -> np.ndarray:
    bar = st.progress(0.0, text="t-SNE…")
    coords = project(_vectors, dims, "t-SNE", lambda f, text: bar.progress(f, text=text))
    bar.empty()
    return coords


def scatter(words: list[str], coords: np.ndarray, colors: dict[str, str], title: str) -> go.Figure:
    """A 2-D or 3-D scatter of `words` at `coords`; words in `colors` are labelled and coloured."""
    color = [colors.get(w, OTHER) for w in words]
    size = [11 if w in colors else 5 for w in words]
    text = [w if w in colors else "" for w in words]
    common = dict(mode="markers+text", text=text, hovertext=words, hoverinfo="text", textposition="top center")
    marker = dict(color=color, size=size, opacity=0.85)
    if coords.shape[1] == 3:
        trace = go.Scatter3d(x=coords[:, 0], y=coords[:, 1], z=coords[:, 2], marker=marker, **common)
    else:
        trace = go.Scatter(x=coords[:, 0], y=coords[:, 1], marker=marker, **common)
    fig = go.Figure(trace)
    fig.update_layout(title=title, height=560, margin=MARGIN, showlegend=False)
    return fig


def plot_words(model: Word2Vec, n: int, query: str, neighbours: list[str], find: str) -> tuple[list[str], dict]:
    """The `n` most frequent words plus the query and its neighbours, and their highlight colours."""
    words = list(dict.fromkeys(model.vocab[:n] + [w for w in [query, *neighbours] if w in model]))
    colors = {w: HIGHLIGHT for w in neighbours}
    if query in model:
        colors[query] = QUERY
    for w in find.split():
        if w.lower() in model:
            colors[w.lower()] = FOUND
            if w.lower() not in words:
                words.append(w.lower())
    return words, colors
