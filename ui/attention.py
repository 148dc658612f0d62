"""Drawing helpers of the Attention lab: the Train panel, attention heatmaps, head grids, the step-by-step tables.
The class-wide default GPT is the engine's (`zoo.attention_job`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch
from plotly.subplots import make_subplots

from mllm_core import corpora, training
from mllm_core import transformer as tf
from mllm_core.attention import AttentionSteps
from mllm_core.transformer import GPT, POS_ENCODINGS, GPTConfig, GPTTrainConfig
from mllm_core.transformer import estimated_seconds as tf_estimated_seconds
from ui import common, server

BLUES = "Blues"


# ---------------------------------------------------------------------------------------------
# Which model the page looks at


@dataclass(frozen=True)
class ModelView:
    """A model to inspect: the latest snapshot of a job, with its attention checkpoints."""

    label: str
    lm: Any  # TorchTextLM around a GPT
    checkpoints: list  # AttentionCheckpoint, oldest first
    probe_tokens: list[str]
    finished: bool


def model_view(job: training.TrainingJob | None, label: str) -> ModelView | None:
    """The job's current model (`TrainingJob.latest`), None until its first checkpoint."""
    lm = job.latest() if job is not None else None
    if lm is None:
        return None
    snap = job.snapshot()
    return ModelView(
        label, lm, snap.artifacts.get("checkpoints", []), snap.artifacts.get("probe_tokens", []), snap.finished
    )


def pick_model(job: training.TrainingJob | None, default: training.TrainingJob) -> ModelView | None:
    """The model the inspecting tabs draw: yours, else the class default; a sidebar radio chooses
    when both exist. None while neither has a checkpoint."""
    models = [m for m in (model_view(job, "your model"), model_view(default, "the class default")) if m]
    if len(models) < 2:
        return models[0] if models else None
    picked = st.sidebar.radio("Attention lab: inspect", [m.label for m in models], key="att_which")
    return next(m for m in models if m.label == picked)


def no_model() -> None:
    st.info(
        "The class default model is on its way (its progress is under **Train**); this tab draws it by itself "
        "when its first checkpoint arrives. Or train your own in the **Train** tab."
    )


# ---------------------------------------------------------------------------------------------
# The Train tab


@server.fragment()
def train_panel() -> None:
    """The Train tab as a fragment: a click on Train, Pause or Stop (a whole class in the same second)
    reruns this panel only, not the page's maps and tables (~0.4 s of server CPU per click)."""
    corpus = common.corpus_picker("att")
    config, train = model_settings()
    wait = ""
    if corpus:
        n_params, vocab = parameter_count(config, corpus, train.tokenizer, train.bpe_vocab_size, train.max_chars)
        st.caption(f"**{n_params:,} parameters** · vocabulary {vocab} · head size {config.n_embd // config.n_head}")
        wait = long_run_reason(replace(config, vocab_size=vocab), train)
    name = model_name(corpus, config, train)
    job = common.training_controls(
        "att",
        lambda: training.spec(tf.gpt_target, corpus.ref(), config, train, name=name),
        disabled=corpus is None,
        reason=wait,
    )
    common.live(job, progress)
    if job is None:
        st.info("Set the model and press **Train**. Meanwhile a default model trains once for the whole class.")
    elif (lm := common.offer_model(job)) is not None:
        st.success(f"**{lm.name}** is now available in the Generation lab.")


# ---------------------------------------------------------------------------------------------
# Heatmaps


def _axis(tokens: list[str]) -> dict:
    # numeric positions with token labels: repeated tokens ("t", "t") must stay separate columns
    return dict(
        tickmode="array",
        tickvals=list(range(len(tokens))),
        ticktext=[common.show_token(t) for t in tokens],
        tickangle=0,
    )


def attention_heatmap(
    weights: torch.Tensor, tokens: list[str], title: str = "", annotate: bool = False, height: int | None = None
) -> go.Figure:
    """One (T, T) attention matrix: row = the token that looks (query), column = where it looks (key)."""
    z = weights.detach().float().numpy()
    shown = [f"{i}: {common.show_token(t)}" for i, t in enumerate(tokens)]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            zmin=0,
            zmax=1,
            colorscale=BLUES,
            text=[[f"{q} → {k}" for k in shown] for q in shown],
            texttemplate="%{z:.2f}" if annotate else None,
            hovertemplate="%{text}: %{z:.3f}<extra></extra>",
        )
    )
    height = height or min(900, max(380, 16 * len(tokens) + 140))  # about 16 px per token, square-ish
    fig.update_layout(title=title, height=height, margin=common.MARGIN)
    fig.update_xaxes(title="key (looked at)", side="top", **_axis(tokens))
    fig.update_yaxes(title="query (looking)", autorange="reversed", **_axis(tokens))
    return fig


@st.cache_resource(max_entries=64, show_spinner=False)
def sentence_figures(
    _lm: Any, model_key: int, sentence: str, causal: bool, layer: int, head: int
) -> tuple[Any, go.Figure, go.Figure]:
    """(the model, one head's heatmap, every head's grid) for `sentence`, built once per model and
    setting for every session: a class looking at the shared default builds them once. `model_key`
    is `id(lm.module)`; holding the model in the value keeps that id from being reused."""
    gpt, tok = _lm.module, _lm.tokenizer
    ids = tf.probe_ids(tok, sentence, gpt.config.block_size)
    maps = gpt.attention_maps(torch.tensor([ids]), causal=causal)[:, 0]  # (n_layer, n_head, T, T)
    labels = [tok.decode([i]) for i in ids]
    return (
        _lm,
        attention_heatmap(maps[layer, head], labels, f"Layer {layer}, head {head}"),
        head_grid(maps, labels, "Every head"),
    )


@st.cache_resource(max_entries=32, show_spinner=False)
def positional_figures(n_pos: int, dim: int) -> tuple[go.Figure, go.Figure]:
    """The sinusoidal encoding's heatmap and its position similarity, built once per size for every session."""
    pe = tf.sinusoidal_encoding(n_pos, dim)
    return (
        matrix_heatmap(pe, "PE[position, dimension]", "dimension", "position"),
        matrix_heatmap(tf.position_similarity(pe), "Cosine similarity of positions", "position", "position"),
    )


@st.cache_resource(max_entries=256, show_spinner=False)
def checkpoint_grid(_checkpoint: Any, key: int, tokens: tuple[str, ...], title: str) -> tuple[Any, go.Figure]:
    """(the checkpoint, `head_grid` of its maps), built once per checkpoint (`key` = its id)."""
    return _checkpoint, head_grid(_checkpoint.maps, list(tokens), title)


def sentence_maps(model: ModelView, sentence: str, causal: bool, layer: int, head: int) -> None:
    """One head's map of `sentence` and the grid of every head (an engine error becomes `st.error`)."""
    with common.guard("Computing the attention"):
        _, one, grid = sentence_figures(model.lm, id(model.lm.module), sentence, causal, layer, head)
        st.plotly_chart(one, key="att_map")
        st.caption("Each row is one token looking back; its weights sum to 1. Darker = more attention.")
        st.plotly_chart(grid, key="att_grid")


def checkpoint_replay(model: ModelView) -> None:
    """A slider over the model's checkpoints (at least two) and every head on the probe sentence at that step."""
    ckpt_steps = [c.step for c in model.checkpoints]
    keep_valid("att_ckpt", ckpt_steps)
    at = st.select_slider("Training step", ckpt_steps, value=ckpt_steps[-1], key="att_ckpt")
    ckpt = model.checkpoints[ckpt_steps.index(at)]
    val = f", validation loss {ckpt.val_loss:.3f}" if ckpt.val_loss is not None else ""
    st.caption(
        f"Probe sentence at step {ckpt.step}: training loss {ckpt.loss:.3f}{val}. Drag the slider to replay how the patterns formed."
    )
    title = f"Attention of every head at step {ckpt.step}"
    _, grid = checkpoint_grid(ckpt, id(ckpt), tuple(model.probe_tokens), title)
    st.plotly_chart(grid, key="att_ckpt_grid")


def learned_positions(model: ModelView) -> None:
    """The cosine similarity of a model's learned position vectors (`pos_encoding == "learned"`)."""
    learned = tf.position_similarity(model.lm.module.wpe.weight.detach().cpu())
    st.plotly_chart(
        matrix_heatmap(learned, f"Learned positions of {model.lm.name}", "position", "position"),
        key="att_pe_learned",
    )


def head_grid(maps: torch.Tensor, tokens: list[str], title: str = "") -> go.Figure:
    """All heads at once: maps (n_layer, n_head, T, T), one row of small heatmaps per layer."""
    n_layer, n_head = maps.shape[:2]
    fig = make_subplots(
        n_layer,
        n_head,
        subplot_titles=[f"layer {layer} · head {head}" for layer in range(n_layer) for head in range(n_head)],
        horizontal_spacing=0.02,
        vertical_spacing=0.08,
    )
    for layer in range(n_layer):
        for head in range(n_head):
            trace = go.Heatmap(z=maps[layer, head].float().numpy(), zmin=0, zmax=1, colorscale=BLUES, showscale=False)
            fig.add_trace(trace, layer + 1, head + 1)
    fig.update_yaxes(autorange="reversed", showticklabels=False)
    fig.update_xaxes(showticklabels=False)
    if tokens:  # the tokens along the left column and under the bottom row (hover shows them everywhere)
        labels = dict(showticklabels=True, tickfont=dict(size=8), **_axis(tokens))
        fig.update_yaxes(col=1, **labels)
        fig.update_xaxes(row=n_layer, tickangle=-90, **{k: v for k, v in labels.items() if k != "tickangle"})
    fig.update_layout(title=title, height=max(260, 230 * n_layer), margin={**common.MARGIN, "t": 60})
    return fig


def matrix_heatmap(
    z: torch.Tensor, title: str, x_title: str, y_title: str, colorscale: str = "RdBu", zmid: float | None = 0.0
) -> go.Figure:
    """A plain numeric matrix (positional encodings, similarities)."""
    fig = go.Figure(go.Heatmap(z=z.float().numpy(), colorscale=colorscale, zmid=zmid))
    fig.update_layout(title=title, height=380, margin=common.MARGIN)
    fig.update_xaxes(title=x_title)
    fig.update_yaxes(title=y_title, autorange="reversed")
    return fig


# ---------------------------------------------------------------------------------------------
# Self-attention step by step


def frame(matrix: torch.Tensor, rows: list[str], columns: list[str] | None = None, prefix: str = "") -> pd.DataFrame:
    """A matrix as a table with token row labels (numbered, so repeated words stay apart)."""
    columns = columns or [f"{prefix}{j}" for j in range(matrix.shape[1])]
    index = [f"{i}: {t}" for i, t in enumerate(rows)]
    return pd.DataFrame(matrix.detach().float().numpy(), index=index, columns=columns).round(3)


def weights_table(steps: AttentionSteps) -> pd.DataFrame:
    """softmax rows with a final column showing each row's sum (always 1)."""
    labels = [f"{i}: {t}" for i, t in enumerate(steps.tokens)]
    table = frame(steps.weights, steps.tokens, labels)
    table["row sum"] = steps.weights.sum(-1).numpy().round(3)
    return table


def worked_example(s: AttentionSteps, causal: bool, positions: bool) -> None:
    """Every number of one head on a toy sentence: inputs and projections, scores, softmax, weighted sum."""
    st.markdown("**1. Inputs and projections** Q = x·W_q, K = x·W_k, V = x·W_v")
    st.dataframe(frame(s.x, s.tokens, prefix="x"), key="att_x")
    for col, (label, m) in zip(st.columns(3), (("Q", s.q), ("K", s.k), ("V", s.v)), strict=True):
        col.markdown(f"**{label}**")
        col.dataframe(frame(m, s.tokens, prefix=label.lower()))
    if not positions:
        st.caption("Both *cat*s have identical Q, K and V: without positions attention cannot tell them apart.")
    st.markdown(
        "**2. Scores** QKᵀ/√d_k: how well each query (row) matches each key (column)"
        + (", -inf above the diagonal" if causal else "")
    )
    st.dataframe(frame(s.scores, s.tokens, [f"{i}: {t}" for i, t in enumerate(s.tokens)]), key="att_scores")
    st.markdown("**3. Softmax of each row**: weights between 0 and 1 that sum to 1")
    st.dataframe(weights_table(s), key="att_weights")
    st.plotly_chart(attention_heatmap(s.weights, s.tokens, annotate=True, height=380), key="att_toy_map")
    st.markdown("**4. Weighted sum of the values**: out = weights · V")
    follow = st.selectbox(
        "Follow a token",
        range(len(s.tokens)),
        index=len(s.tokens) - 1,
        format_func=lambda i: f"{i}: {s.tokens[i]}",
        key="att_follow",
    )
    st.markdown(explain_row(s, follow))
    st.dataframe(frame(s.out, s.tokens, prefix="out"), key="att_out")


def explain_row(steps: AttentionSteps, i: int) -> str:
    """Markdown: how token i's output is the weighted sum of the values it attends to."""
    token = steps.tokens[i]
    parts = [f"{w:.2f}·v[{j}: {steps.tokens[j]}]" for j, w in enumerate(steps.weights[i].tolist()) if w > 0.0]
    top = int(steps.weights[i].argmax())
    return (
        f"**{i}: {token}** attends most to **{top}: {steps.tokens[top]}** ({steps.weights[i, top]:.2f}).  \n"
        f"out[{i}] = {' + '.join(parts)} = `{[round(v, 3) for v in steps.out[i].tolist()]}`"
    )


# ---------------------------------------------------------------------------------------------
# Widgets whose options depend on the model


def keep_valid(key: str, options: list) -> None:
    """Forget a widget's remembered value when the options changed under it (another model)."""
    if key in st.session_state and st.session_state[key] not in options:
        del st.session_state[key]


def layer_head(cfg: GPTConfig) -> tuple[int, int]:
    """The layer and head selectboxes, side by side, bound to the URL."""
    keep_valid("att_layer", list(range(cfg.n_layer)))
    keep_valid("att_head", list(range(cfg.n_head)))
    c1, c2 = st.columns(2)
    return (
        c1.selectbox("Layer", range(cfg.n_layer), key="att_layer", bind="query-params"),
        c2.selectbox("Head", range(cfg.n_head), key="att_head", bind="query-params"),
    )


@st.cache_resource(show_spinner=False, max_entries=64)
def _n_chars(digest: str, max_chars: int | None, _text: str) -> int:
    return len(set(_text[:max_chars]))


@st.cache_resource(show_spinner=False, max_entries=64)
def _n_params(config: GPTConfig) -> int:
    return GPT(config).num_params()


def parameter_count(
    config: GPTConfig, corpus: corpora.Corpus, tokenizer: str, bpe_vocab_size: int, max_chars: int | None
) -> tuple[int, int]:
    """(parameters, vocabulary size) the settings would give on `corpus`, before training. Cached by
    the corpus's digest, not its text: hashing 10 MB of text at every click was most of a click's cost."""
    vocab = _n_chars(corpus.digest, max_chars, corpus.text) + 1 if tokenizer == "char" else bpe_vocab_size
    return _n_params(replace(config, vocab_size=vocab)), vocab


def model_settings() -> tuple[GPTConfig, GPTTrainConfig]:
    """The model and training widgets, bound to the URL (every choice they offer is a valid model)."""
    c1, c2, c3, c4 = st.columns(4)
    tokens = c1.selectbox(
        "Tokens", ["char", "bpe"], key="att_tok", bind="query-params", help="Characters or learned BPE subwords (512)."
    )
    pos = c2.selectbox(
        "Positions",
        POS_ENCODINGS,
        key="att_pos",
        bind="query-params",
        help="A trained table (GPT-2) or fixed sinusoids (2017 paper).",
    )
    n_layer = c3.slider("Layers", 1, 6, 2, key="att_layers", bind="query-params")
    n_head = c4.selectbox("Heads per layer", [1, 2, 4, 8], index=2, key="att_heads", bind="query-params")
    c1, c2, c3, c4 = st.columns(4)
    n_embd = c1.selectbox("Width (n_embd)", [32, 64, 128, 256], index=1, key="att_embd", bind="query-params")
    block = c2.selectbox("Block size (context)", [16, 32, 64, 128], index=2, key="att_block", bind="query-params")
    steps = c3.number_input("Steps", 20, 20_000, 1000, step=100, key="att_steps", bind="query-params")
    lr = c4.select_slider("Learning rate", [3e-4, 1e-3, 3e-3, 1e-2], value=3e-3, key="att_lr", bind="query-params")
    config = GPTConfig(block_size=block, n_layer=n_layer, n_head=n_head, n_embd=n_embd, pos_encoding=pos)
    return config, GPTTrainConfig(tokenizer=tokens, steps=int(steps), lr=lr)


LONG_RUN = 180  # seconds: a run estimated longer than this waits for the user's go-ahead


def long_run_reason(config: GPTConfig, train: GPTTrainConfig) -> str:
    """Warn about a run estimated over `LONG_RUN` on this server's CPU; "" or why Train waits."""
    if training.resolve_device() != "cpu":
        return ""
    seconds = tf_estimated_seconds(config, train)
    if seconds <= LONG_RUN:
        return ""
    st.warning(
        f"These settings would train for about **{common.duration(seconds)}** (h:mm:ss) on one CPU core of this "
        "server, longer if others train too. Fewer steps, layers or a smaller width train in minutes.",
        icon=":material/hourglass_top:",
    )
    if st.checkbox("Start it anyway", key="att_long_ok"):
        return ""
    return f"Estimated {common.duration(seconds)}: tick “Start it anyway” to train with these settings."


def model_name(corpus: corpora.Corpus | None, config: GPTConfig, train: GPTTrainConfig) -> str:
    """How the trained model is listed in the Generation lab, e.g. "GPT wikipedia-sample (char, 2L 4H 64d)"."""
    return (
        f"GPT {corpus.name if corpus else ''} ({train.tokenizer}, {config.n_layer}L {config.n_head}H {config.n_embd}d)"
    )


def progress(snap: training.JobSnapshot) -> None:
    """The live view of a training run: parameter count, both losses and their curves."""
    c1, c2, c3 = st.columns(3)
    loss, val = snap.latest("loss"), snap.latest("val_loss")
    c1.metric("Parameters", f"{snap.artifacts.get('num_params', 0):,}")
    c2.metric("Train loss", "–" if loss is None else f"{loss:.3f}")
    c3.metric("Validation loss", "–" if val is None else f"{val:.3f}")
    chart = common.loss_chart(snap, ("loss", "val_loss"), title="Cross-entropy (nats per token)")
    st.plotly_chart(chart, key="att_loss")
