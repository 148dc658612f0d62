"""Attention lab: train a tiny GPT live and look inside it, layer by layer and head by head."""

from dataclasses import replace

import streamlit as st

from mllm_core import training, zoo
from mllm_core import transformer as tf
from mllm_core.attention import TOY_SENTENCE, toy_example
from ui import attention as view
from ui import common

common.page_header(
    "Attention",
    "A transformer lets every token look back at all the tokens before it. Each **head** scores how well "
    "a token's *query* matches every earlier token's *key*, turns the scores into weights with a softmax "
    "(softmax(QKᵀ/√d_k), with a **causal mask** hiding the future) and takes the weighted sum of their *values*. "
    "Train a tiny GPT below and watch where its heads look.",
    icon=":material/grid_on:",
)
train_tab, maps_tab, learn_tab, steps_tab, pos_tab = st.tabs(
    ["Train", "Attention maps", "Watch it learn", "Step by step", "Positional encoding"],
    key="att_tab",
    bind="query-params",
)


# ---- Train ---------------------------------------------------------------------------------
@st.fragment
def train_panel() -> None:
    """The Train tab as a fragment: a click on Train, Pause or Stop (a whole class in the same second)
    reruns this panel only, not the page's maps and tables (~0.4 s of server CPU per click)."""
    corpus = common.corpus_picker("att")
    config, train = view.model_settings()
    wait = ""
    if corpus:
        n_params, vocab = view.parameter_count(
            config, corpus.text, train.tokenizer, train.bpe_vocab_size, train.max_chars
        )
        st.caption(f"**{n_params:,} parameters** · vocabulary {vocab} · head size {config.n_embd // config.n_head}")
        wait = view.long_run_reason(replace(config, vocab_size=vocab), train)
    name = view.model_name(corpus, config, train)
    job = common.training_controls(
        "att",
        lambda: training.spec(tf.gpt_target, corpus.ref(), config, train, name=name),
        disabled=corpus is None,
        reason=wait,
    )
    common.live(job, view.progress)
    if job is None:
        st.info("Set the model and press **Train**. Meanwhile a default model trains once for the whole class.")
    elif (lm := common.offer_model(job)) is not None:
        st.success(f"**{lm.name}** is now available in the Generation lab.")


with train_tab:
    train_panel()
    default = zoo.attention_job()
    if default.snapshot().state == training.DONE:
        common.register_model(zoo.ATTENTION_NAME, default.latest())
    common.default_status(default, f"Class default model ({zoo.ATTENTION_NAME})")
job = common.get_job("att")

# ---- Which model the other tabs look at ----------------------------------------------------
models = [m for m in (view.model_view(job, "your model"), view.model_view(default, "the class default")) if m]
model = models[0] if models else None
if len(models) > 1:
    picked = st.sidebar.radio("Attention lab: inspect", [m.label for m in models], key="att_which")
    model = next(m for m in models if m.label == picked)


def no_model() -> None:
    st.info(
        "The class default model is on its way (its progress is under **Train**); this tab draws it by itself "
        "when its first checkpoint arrives. Or train your own in the **Train** tab."
    )


def layer_head(cfg: tf.GPTConfig, where) -> tuple[int, int]:
    view.keep_valid("att_layer", list(range(cfg.n_layer)))
    view.keep_valid("att_head", list(range(cfg.n_head)))
    c1, c2 = where.columns(2)
    return (
        c1.selectbox("Layer", range(cfg.n_layer), key="att_layer", bind="query-params"),
        c2.selectbox("Head", range(cfg.n_head), key="att_head", bind="query-params"),
    )


# ---- Attention maps --------------------------------------------------------------------------
with maps_tab:
    if model is None:
        no_model()
    else:
        gpt = model.lm.module
        st.caption(
            f"Inspecting **{model.lm.name}** ({model.label}{'' if model.finished else ', still training: the latest checkpoint'})."
        )
        sentence = st.text_input(
            "Sentence", tf.GPTTrainConfig().probe, key="att_text", bind="query-params", max_chars=500
        )
        causal = st.toggle(
            "Causal mask (a token may not look at later tokens)", True, key="att_causal", bind="query-params"
        )
        if not causal:
            st.warning(
                "Mask lifted: the model was trained with it, so what it does with the future is not meaningful, only visible."
            )
        layer, head = layer_head(gpt.config, st)
        with common.guard("Computing the attention"):
            _, one, grid = view.sentence_figures(model.lm, id(gpt), sentence, causal, layer, head)
            st.plotly_chart(one, key="att_map")
            st.caption("Each row is one token looking back; its weights sum to 1. Darker = more attention.")
            st.plotly_chart(grid, key="att_grid")

# ---- Watch it learn ------------------------------------------------------------------------
with learn_tab:
    if model is None:
        no_model()
    elif len(model.checkpoints) < 2:
        st.info("Checkpoints appear every 50 steps while the model trains.")
    else:
        ckpt_steps = [c.step for c in model.checkpoints]
        view.keep_valid("att_ckpt", ckpt_steps)
        at = st.select_slider("Training step", ckpt_steps, value=ckpt_steps[-1], key="att_ckpt")
        ckpt = model.checkpoints[ckpt_steps.index(at)]
        val = f", validation loss {ckpt.val_loss:.3f}" if ckpt.val_loss is not None else ""
        st.caption(
            f"Probe sentence at step {ckpt.step}: training loss {ckpt.loss:.3f}{val}. Drag the slider to replay how the patterns formed."
        )
        title = f"Attention of every head at step {ckpt.step}"
        _, grid = view.checkpoint_grid(ckpt, id(ckpt), tuple(model.probe_tokens), title)
        st.plotly_chart(grid, key="att_ckpt_grid")

# ---- Self-attention step by step -----------------------------------------------------------
with steps_tab:
    st.markdown(
        "One head, one sentence, every number. Each word gets a small vector **x** (random here, the same for "
        "the same word); three matrices turn it into a **query** (what it looks for), a **key** (what it offers) "
        "and a **value** (what it passes on)."
    )
    sentence = st.text_input("Sentence", TOY_SENTENCE, key="att_toy", bind="query-params", max_chars=200)
    c1, c2 = st.columns(2)
    causal = c1.toggle("Causal mask", True, key="att_toy_causal", bind="query-params")
    positions = c2.toggle("Add sinusoidal positions to x", False, key="att_toy_pos", bind="query-params")
    with common.guard("The worked example"):
        s = toy_example(sentence, causal=causal, positions=positions)
        st.markdown("**1. Inputs and projections** Q = x·W_q, K = x·W_k, V = x·W_v")
        st.dataframe(view.frame(s.x, s.tokens, prefix="x"), key="att_x")
        for col, (label, m) in zip(st.columns(3), (("Q", s.q), ("K", s.k), ("V", s.v)), strict=True):
            col.markdown(f"**{label}**")
            col.dataframe(view.frame(m, s.tokens, prefix=label.lower()))
        if not positions:
            st.caption("Both *cat*s have identical Q, K and V: without positions attention cannot tell them apart.")
        st.markdown(
            "**2. Scores** QKᵀ/√d_k: how well each query (row) matches each key (column)"
            + (", -inf above the diagonal" if causal else "")
        )
        st.dataframe(view.frame(s.scores, s.tokens, [f"{i}: {t}" for i, t in enumerate(s.tokens)]), key="att_scores")
        st.markdown("**3. Softmax of each row**: weights between 0 and 1 that sum to 1")
        st.dataframe(view.weights_table(s), key="att_weights")
        st.plotly_chart(view.attention_heatmap(s.weights, s.tokens, annotate=True, height=380), key="att_toy_map")
        st.markdown("**4. Weighted sum of the values**: out = weights · V")
        follow = st.selectbox(
            "Follow a token",
            range(len(s.tokens)),
            index=len(s.tokens) - 1,
            format_func=lambda i: f"{i}: {s.tokens[i]}",
            key="att_follow",
        )
        st.markdown(view.explain_row(s, follow))
        st.dataframe(view.frame(s.out, s.tokens, prefix="out"), key="att_out")

# ---- Positional encoding -------------------------------------------------------------------
with pos_tab:
    st.markdown(
        "Attention itself ignores order, so each position adds a vector to its token. The sinusoidal encoding "
        "gives dimension pair i a sine and cosine of frequency 1/10000^(2i/d): fast clocks in the first columns, slow ones at the end."
    )
    c1, c2 = st.columns(2)
    n_pos = c1.slider("Positions", 8, 256, 64, key="att_pe_n", bind="query-params")
    dim = c2.selectbox("Dimensions", [8, 16, 32, 64, 128], index=3, key="att_pe_d", bind="query-params")
    pe_fig, sim_fig = view.positional_figures(int(n_pos), int(dim))
    c1, c2 = st.columns(2)
    c1.plotly_chart(pe_fig, key="att_pe")
    c2.plotly_chart(sim_fig, key="att_pe_sim")
    st.caption(
        "Each row has the same length, neighbours are most alike, and the similarity depends only on the distance."
    )
    if model is not None and model.lm.module.config.pos_encoding == "learned":
        learned = tf.position_similarity(model.lm.module.wpe.weight.detach().cpu())
        st.plotly_chart(
            view.matrix_heatmap(learned, f"Learned positions of {model.lm.name}", "position", "position"),
            key="att_pe_learned",
        )
