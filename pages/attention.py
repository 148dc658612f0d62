"""Attention lab: train a tiny GPT live and look inside it, layer by layer and head by head."""

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

# ---- Train (a fragment: a click reruns this panel only) ---------------------------------------
with train_tab:
    view.train_panel()
    default = zoo.attention_job()
    if default.snapshot().state == training.DONE:
        common.register_model(zoo.ATTENTION_NAME, default.latest())
    common.default_status(default, f"Class default model ({zoo.ATTENTION_NAME})")

# ---- Which model the other tabs look at: yours, else the class default -------------------------
model = view.pick_model(common.get_job("att"), default)

# ---- Attention maps --------------------------------------------------------------------------
with maps_tab:
    if model is None:
        view.no_model()
    else:
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
        layer, head = view.layer_head(model.lm.module.config)
        view.sentence_maps(model, sentence, causal, layer, head)

# ---- Watch it learn ------------------------------------------------------------------------
with learn_tab:
    if model is None:
        view.no_model()
    elif len(model.checkpoints) < 2:
        st.info("Checkpoints appear every 50 steps while the model trains.")
    else:
        view.checkpoint_replay(model)

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
        view.worked_example(toy_example(sentence, causal=causal, positions=positions), causal, positions)

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
        view.learned_positions(model)
