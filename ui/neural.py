"""Drawing helpers of the Neural-net lab: the HELLO toy's network and softmax bars, the fox loss,
the loss surface with gradient descent on it, the gradient check, and the MLP's embedding map.
`pages/neural.py` reads widgets, calls `mllm_core.neural`, `nll` and `mlp`, and draws these."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from mllm_core import neural, nll, training, zoo
from mllm_core.mlp import embedding_pca, map_ids, token_group
from ui import server
from ui.common import MARGIN, live, loss_chart, show_token

LAYOUT = dict(height=340, margin=MARGIN, legend=dict(orientation="h", y=-0.25))
GROUP_COLORS = {"vowel": "#d62728", "consonant": "#1f77b4", "digit": "#2ca02c", "other": "#7f7f7f"}


@st.cache_resource(show_spinner="Training the toy…", max_entries=32)
def toy(config: neural.ToyConfig) -> neural.ToyRun:
    """The toy trained once per setting and shared (it is never changed after training)."""
    return neural.train_toy(config)


def one_hot_frame(letters: str) -> pd.DataFrame:
    """Each letter's one-hot vector, a row each."""
    return pd.DataFrame(np.eye(len(letters), dtype=int), index=list(letters), columns=list(letters))


def network_figure(run: neural.ToyRun) -> go.Figure:
    """The network as a diagram: input slots (k one-hot letters), hidden units, output logits,
    every connection coloured by its trained weight (red positive, blue negative)."""
    m, letters, k = run.model, run.letters, run.config.window
    inputs = [f"t-{k - s}:{c}" for s in range(k) for c in letters]
    layers = [inputs, [f"h{j}" for j in range(m.W1.shape[1])], [f"p({c})" for c in letters]]
    ys = [np.linspace(1, 0, len(layer)) if len(layer) > 1 else np.array([0.5]) for layer in layers]
    fig = go.Figure()
    for li, W in enumerate((m.W1.detach().numpy(), m.W2.detach().numpy())):
        scale = np.abs(W).max() or 1.0
        for i in range(W.shape[0]):
            for j in range(W.shape[1]):
                w = W[i, j] / scale
                fig.add_trace(
                    go.Scatter(
                        x=[li, li + 1], y=[ys[li][i], ys[li + 1][j]], mode="lines", hoverinfo="skip",
                        line=dict(width=0.5 + 3 * abs(w), color=f"rgba({'214,39,40' if w > 0 else '31,119,180'},{0.15 + 0.7 * abs(w)})"),
                    )
                )  # fmt: skip
    for li, layer in enumerate(layers):
        fig.add_trace(
            go.Scatter(
                x=[li] * len(layer), y=ys[li], mode="markers+text", text=layer,
                textposition="middle left" if li == 0 else "middle right",
                marker=dict(size=14, color="#ffffff", line=dict(color="#333333", width=1.5)), hoverinfo="text",
            )
        )  # fmt: skip
    fig.update_layout(title="The network: one-hot letters → tanh hidden layer → softmax", showlegend=False, **LAYOUT)
    fig.update_xaxes(visible=False, range=[-0.6, 2.6])
    fig.update_yaxes(visible=False)
    return fig


def weights_figure(run: neural.ToyRun) -> go.Figure:
    """W1 (k·A × H) and W2 (H × A) as heatmaps, one colour scale centred on 0."""
    m, letters, k = run.model, run.letters, run.config.window
    W1, W2 = m.W1.detach().numpy(), m.W2.detach().numpy()
    zmax = float(max(np.abs(W1).max(), np.abs(W2).max()))
    fig = make_subplots(1, 2, subplot_titles=("W1: input → hidden", "W2: hidden → output"))
    style = dict(colorscale="RdBu", zmid=0, zmin=-zmax, zmax=zmax, reversescale=True)
    rows = [f"t-{k - s}:{c}" for s in range(k) for c in letters]
    fig.add_trace(go.Heatmap(z=W1, y=rows, x=[f"h{j}" for j in range(W1.shape[1])], **style), 1, 1)
    fig.add_trace(
        go.Heatmap(z=W2, y=[f"h{j}" for j in range(W2.shape[0])], x=list(letters), showscale=False, **style), 1, 2
    )
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category")
    fig.update_layout(**{**LAYOUT, "height": 300})
    return fig


def softmax_figure(run: neural.ToyRun, step: int) -> go.Figure:
    """p(next letter) for every example after `step` updates; the right answer in green."""
    pairs = run.pairs
    fig = make_subplots(1, len(pairs), subplot_titles=[f"“{c}” → {n}" for c, n in pairs], shared_yaxes=True)
    for i, (_, nxt) in enumerate(pairs):
        colors = ["#2ca02c" if c == nxt else "#c7c7c7" for c in run.letters]
        fig.add_trace(go.Bar(x=list(run.letters), y=run.probs[step, i], marker_color=colors), 1, i + 1)
    fig.update_yaxes(range=[0, 1])
    margin = {**MARGIN, "t": 70}  # room for the title above the panels' titles
    layout = {**LAYOUT, "height": 290, "margin": margin}
    fig.update_layout(title=f"Softmax output after step {step}", showlegend=False, **layout)
    return fig


def loss_figure(losses: dict[str, list[float]], floors: dict[str, float]) -> go.Figure:
    """Training loss per step, one line per run, each with its floor as a dashed line of the same colour."""
    fig = go.Figure()
    palette = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd"]
    for (name, values), color in zip(losses.items(), palette, strict=False):
        fig.add_trace(go.Scatter(y=values, name=name, line=dict(color=color)))
        fig.add_hline(y=floors[name], line_dash="dash", line_color=color, annotation_text=f"floor {floors[name]:.3f}")
    fig.update_layout(
        title="Average loss (nats per letter) and the best any model could do", xaxis_title="step", **LAYOUT
    )
    return fig


def window_limit(text: str, steps: int) -> None:
    """Where a fixed window fails: the toy trained at k = 1, 2, 3 on `text`, each loss against its floor."""
    st.subheader("Where a fixed window fails")
    st.markdown(WINDOW_LIMIT)
    runs = {f"k = {k}": toy(neural.ToyConfig(text=text, window=k, steps=steps)) for k in (1, 2, 3)}
    floors = {name: neural.loss_floor(text, r.config.window) for name, r in runs.items()}
    st.plotly_chart(loss_figure({n: r.losses for n, r in runs.items()}, floors), key="nn_floor")
    st.caption(" · ".join(f"{n}: trained {r.losses[-1]:.4f}, floor {floors[n]:.4f}" for n, r in runs.items()))


def class_default():
    """The class default MLP (k=3) with a caption saying where it comes from; None until it is ready
    (the view polls meanwhile and reruns the page once it is)."""
    default = zoo.default_job(zoo.MLP_NAME)
    st.caption(f"Showing the class default {zoo.MLP_NAME} ({zoo.origin(default.snapshot())}); train your own above.")
    if default.snapshot().state != training.DONE:
        live(default, lambda snap: None)
    return zoo.current_model(default, zoo.MLP_NAME)


def token_loss_frame(rows: list) -> pd.DataFrame:
    return pd.DataFrame(
        {"context": [r.context for r in rows], "next word": [r.token for r in rows],
         "p(next | context)": [r.p for r in rows], "loss −ln p": [r.nll for r in rows]}
    )  # fmt: skip


def nll_curve_figure(qs: np.ndarray, curve: np.ndarray, counted: float, learned: float) -> go.Figure:
    fig = go.Figure(go.Scatter(x=qs, y=curve, name="average loss of the words after “The”"))
    fig.add_vline(x=counted, line_dash="dash", line_color="#2ca02c", annotation_text=f"counted {counted:.2f}")
    fig.add_vline(x=learned, line_dash="dot", line_color="#d62728", annotation_text=f"learned {learned:.3f}")
    fig.update_layout(
        title="Average NLL after “The” as p(quick | The) varies", xaxis_title="p(quick | The)", yaxis_title="nats",
        **LAYOUT,
    )  # fmt: skip
    return fig


def surface_figure(
    surface: tuple[np.ndarray, np.ndarray, np.ndarray], path: list[neural.GDStep], names: tuple[str, str], lr: float
) -> go.Figure:
    """The loss over two knobs (contours), the descent so far and −gradient at its last point."""
    a, b, Z = surface
    fig = go.Figure(go.Contour(x=a, y=b, z=Z, colorscale="Viridis", ncontours=30, colorbar=dict(title="loss")))
    fig.add_trace(
        go.Scatter(
            x=[p.a for p in path], y=[p.b for p in path], mode="lines+markers", name="gradient descent",
            line=dict(color="#ffffff"), marker=dict(size=5, color="#ff7f0e"),
        )
    )  # fmt: skip
    here = path[-1]
    norm = float(np.hypot(here.grad_a, here.grad_b))
    if norm > 0:
        length = 0.15 * (a[-1] - a[0])  # the arrow shows the direction; its length is fixed
        fig.add_annotation(
            x=here.a - length * here.grad_a / norm, y=here.b - length * here.grad_b / norm, ax=here.a, ay=here.b,
            xref="x", yref="y", axref="x", ayref="y", showarrow=True, arrowhead=3, arrowwidth=2, arrowcolor="#ff7f0e",
        )  # fmt: skip
    fig.update_layout(
        title=f"Step {len(path) - 1}: loss {here.loss:.4f}, |∇| {norm:.3f}, lr {lr:g}",
        xaxis_title=names[0], yaxis_title=names[1], **{**LAYOUT, "height": 460},
    )  # fmt: skip
    fig.update_xaxes(range=[a[0], a[-1]])
    fig.update_yaxes(range=[b[0], b[-1]])
    return fig


def grad_check_frame(rows: list[neural.GradCheck]) -> pd.DataFrame:
    return pd.DataFrame(
        {"weight": [r.name for r in rows], "autograd ∂L/∂w": [r.autograd for r in rows],
         "finite difference": [r.numeric for r in rows],
         "|difference|": [abs(r.autograd - r.numeric) for r in rows]}
    )  # fmt: skip


def embedding_figure(tokens: list[str], coords: np.ndarray) -> go.Figure:
    """The rows of C on their first two principal components, coloured vowel / consonant / digit / other."""
    groups = [token_group(t) for t in tokens]
    fig = go.Figure()
    for group, color in GROUP_COLORS.items():
        idx = [i for i, g in enumerate(groups) if g == group]
        if idx:
            fig.add_trace(
                go.Scatter(
                    x=coords[idx, 0], y=coords[idx, 1], mode="text", text=[show_token(tokens[i]) for i in idx],
                    textfont=dict(color=color, size=15), name=group,
                )
            )  # fmt: skip
    fig.update_layout(title="The embedding table C, PCA to 2-D", **{**LAYOUT, "height": 480})
    return fig


def gd_player(
    surface: tuple[np.ndarray, np.ndarray, np.ndarray], path: list[neural.GDStep], names: tuple[str, str], lr: float
) -> None:
    """Step / Play / Pause / Reset over a precomputed descent; a new path starts again at step 0."""
    state = st.session_state
    signature = (names, lr, path[0].a, path[0].b)
    if state.get("nn_gd_sig") != signature:
        state.update(nn_gd_sig=signature, nn_gd_i=0, nn_gd_play=False)
    last = len(path) - 1

    def step() -> None:
        state.nn_gd_i = min(state.nn_gd_i + 1, last)

    def play(playing: bool) -> None:
        state.nn_gd_play = playing and state.nn_gd_i < last

    c1, c2, c3, c4 = st.columns(4)
    c1.button("Step", key="nn_gd_step", on_click=step, disabled=state.nn_gd_i >= last, width="stretch")
    c2.button("Play", key="nn_gd_play_btn", on_click=play, args=(True,), disabled=state.nn_gd_play, width="stretch")
    c3.button("Pause", key="nn_gd_pause", on_click=play, args=(False,), disabled=not state.nn_gd_play, width="stretch")
    c4.button("Reset", key="nn_gd_reset", on_click=lambda: state.update(nn_gd_i=0, nn_gd_play=False), width="stretch")

    @server.fragment(run_every=0.4 if state.nn_gd_play else None)
    def view() -> None:
        if state.nn_gd_play:
            step()
            if state.nn_gd_i >= last:
                state.nn_gd_play = False
                st.rerun()
        st.plotly_chart(surface_figure(surface, path[: state.nn_gd_i + 1], names, lr), key="nn_surface")

    view()


@st.cache_resource(show_spinner="Training the neural bigram…")
def fox_bigram() -> nll.NeuralBigram:
    """The fox example's neural bigram, trained once per server."""
    return nll.fit_bigram(nll.fox_sequences())


def sum_of_logs(rows: list) -> str:
    """The sentence's probability as a product and its loss as a sum, with this sentence's numbers."""
    product = float(np.prod([r.p for r in rows]))
    total = sum(r.nll for r in rows)
    return (
        f"The probability of the whole sentence is the **product** of its {len(rows)} probabilities: "
        f"{' × '.join(f'{r.p:.2f}' for r in rows)} = **{product:.3g}**. Its loss is the **sum** of the losses: "
        f"−ln {product:.3g} = {' + '.join(f'{r.nll:.2f}' for r in rows)} = **{total:.3f}** nats. "
        f"A product of thousands of numbers below 1 underflows to 0; a sum of logs does not. Averaged over the "
        f"{len(rows)} tokens of this batch: **{total / len(rows):.3f}** nats per token."
    )


def mlp_progress(snap, temperature: float) -> None:
    """The live view of an MLP training job: train and validation loss, the latest sample."""
    st.plotly_chart(loss_chart(snap, ("loss", "val_loss"), "MLP loss (nats per token)"), key="nn_mlp_loss")
    if snap.artifacts.get("sample"):
        st.markdown(f"**Sample at step {snap.artifacts['sample_step']:,}** (temperature {temperature}):")
        st.code(snap.artifacts["sample"], language=None, wrap_lines=True)


def embedding_map(lm) -> None:
    """The PCA map of the model's embedding table: its letters, digits and common punctuation
    (characters), or its most frequent words."""
    tokens, coords = embedding_pca(lm, map_ids(lm))
    st.plotly_chart(embedding_figure(tokens, coords), key="nn_pca")
    st.caption(
        f"{lm.name}: each of its {lm.vocab_size:,} tokens is a row of C ({lm.module.config.n_embd} numbers), "
        f"learned only to predict the next token; {len(tokens)} of them are drawn. Tokens that behave alike "
        "(vowels, digits) end up close."
    )


WINDOW_LIMIT = (
    "After “L” comes “L” (in HE**L**LO) and “O” (in HEL**L**O). A network that sees only **one** letter gets "
    "the same input both times, so the best it can say is ½ each: ln 2 nats on each of those two examples, and "
    "ln 2 · 2 / 4 ≈ 0.347 nats per letter on average, however long it trains. That floor is the conditional "
    "entropy of the text, H(next | last k letters), counted exactly; dashed below. Two letters (“EL” vs “LL”) "
    "tell them apart, and the floor drops to 0. Real text always has a longer dependency than any fixed window: "
    "that is what the RNN lab's memory is for."
)
LOSS_INTRO = (
    "The model is trained on the two fox sentences. In its training text “The” is followed by “quick” once and "
    "by “fox” once. The loss of one word is −ln p(word | previous word): 0 when the model was sure and right, "
    "large when it gave the truth little probability. A **neural bigram** (a table of logits W, one row per "
    "context word, p = softmax(W[The])) is trained by gradient descent on the **average** loss, and it ends at "
    "the counted ½. The curve below explains why: the average loss of “The quick” and “The fox” is "
    "−½ ln q − ½ ln(1 − q), lowest at q = ½. Minimising the average NLL *is* counting, as in the N-gram lab."
)
GD_INTRO = (
    "Take the toy at window 1 (its best loss is above 0, so the valley has a floor), keep every weight at its "
    "trained value except two **knobs**, and draw the average loss over them. Gradient descent starts at a random "
    "point and moves both knobs against the gradient: knob ← knob − lr · ∂loss/∂knob. The arrow is −∇loss at the "
    "current point. Try a learning rate of 0.03 (it crawls), 1 (it arrives), 30 (it jumps across the valley) "
    "and 300 (it diverges)."
)
LEARNING_RATES = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0]
VERDICTS = {
    "diverged": "After {steps} steps the loss is **higher than at the start**: each step overshoots further. Lower the "
    "learning rate.",
    "overshooting": "The loss went **up** on some steps: the steps are so large that they jump across the valley.",
    "converged": "After {steps} steps the descent has reached the bottom of the valley.",
    "crawling": "After {steps} steps the descent is still on its way down: the learning rate is small, so it crawls.",
}
GRAD_INTRO = (
    "Backpropagation gives ∂loss/∂w for every weight in one backward pass. A finite difference estimates each "
    "one separately: (loss(w + ε) − loss(w − ε)) / 2ε, with ε = 10⁻⁶, every other weight fixed. In float64 the two "
    "agree to about 10⁻⁹: autograd computes the same derivative, only much faster (one pass instead of two per "
    "weight)."
)
MLP_INTRO = (
    "The MLP language model (Bengio et al. 2003; makemore part 2): each of the last **k** tokens is looked up in "
    "an embedding table **C**, the k rows are concatenated, a tanh hidden layer mixes them and a linear layer "
    "gives the logits of the next token. Unlike counting it generalises to contexts it never saw, because "
    "similar tokens get similar rows of C; unlike the RNN, it sees nothing beyond its window."
)
