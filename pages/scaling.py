"""Scaling lab: loss falls predictably as models grow, and transformers learn from their context."""

import streamlit as st

from mllm_core import induction, scaling, training, zoo
from ui import common
from ui import scaling as view

common.page_header(
    "Scaling",
    "Two ideas behind modern LLMs, live at toy scale. **Scaling laws**: train the same GPT at five sizes and the "
    "loss falls on a power law, L(N) = L∞ + (N_c / N)^α, so the loss of a bigger model can be *predicted* before "
    "it is trained (Kaplan et al. 2020). **In-context learning**: a 2-layer transformer learns to copy what it saw "
    "earlier in its context, through *induction heads* that appear suddenly during training (Olsson et al. 2022).",
    icon=":material/trending_down:",
)
ladder_tab, own_tab, heads_tab, text_tab = st.tabs(
    ["Scaling laws", "Your ladder", "Induction heads", "In-context learning on text"], key="sc_tab", bind="query-params"
)

# ---- The class default ladder -------------------------------------------------------------------
with ladder_tab:
    default = zoo.scaling_job()
    config = zoo.scaling_config()
    snap = default.snapshot()
    st.caption(
        f"Class default ladder: {len(config.rungs)} GPTs on the first {config.max_chars:,} characters of "
        f"wikipedia-sample (char tokens), {config.steps} steps of {config.batch_size}×{config.block_size} tokens each; "
        f"{snap.state}, {zoo.origin(snap)}."
    )
    common.live(default, lambda s: view.ladder(s, config, "sc_default"))
    st.markdown(view.TOY_SCALE)

# ---- A student's own ladder -----------------------------------------------------------------------
with own_tab:
    st.markdown("Pick at least 4 sizes; the law is fitted on all but the largest, which it then predicts.")
    corpus = common.corpus_picker("sc")
    own = view.ladder_settings()
    fits = False
    if own is not None and corpus is not None:
        with common.guard("Checking the corpus"):
            scaling.check_text(corpus.text, own)
            fits = True
    job = common.training_controls(
        "sc",
        lambda: training.spec(scaling.ladder_target, corpus.ref(), own),
        label="Train the ladder",
        disabled=not fits,
    )
    if job is not None:
        common.live(job, lambda s: view.ladder(s, own or config, "sc_own"))

# ---- Induction heads ----------------------------------------------------------------------------
with heads_tab:
    ind_job = zoo.induction_job()
    isnap = ind_job.snapshot()
    icfg = zoo.induction_config()
    st.markdown(
        f"Sequences of {2 * icfg.half} random tokens from a vocabulary of {icfg.vocab_size}, whose second half repeats "
        "the first. The first half cannot be predicted (loss log V); the second can, but only by looking back: find "
        "the previous occurrence of the current token and copy the one after it. A 2-layer attention-only "
        "transformer learns that; a 1-layer one, trained the same way, cannot. Both train on a stream of such "
        f"segments, {icfg.min_half} to {icfg.max_half} tokens long, each copy followed by a separator token that "
        "they read but are not scored on (where a random segment ends cannot be known)."
    )
    st.caption(f"Class default: {isnap.state}, {zoo.origin(isnap)}.")
    common.live(ind_job, lambda s: view.induction_progress(s), every=2.0)
    runs = isnap.artifacts.get("runs") or {}
    if runs:
        st.markdown(view.induction_summary(runs))
        c1, c2 = st.columns(2)
        c1.plotly_chart(view.phase_figure(runs), key="sc_phase")
        c2.plotly_chart(view.position_figure(runs), key="sc_positions")
        name = st.radio("Model", list(runs), horizontal=True, key="sc_ind_model")
        run = runs[name]
        best_layer, best_head, _ = run.best_head
        c1, c2 = st.columns(2)
        layer = c1.selectbox("Layer", range(run.config.n_layer), index=best_layer, key="sc_ind_layer")
        head = c2.selectbox("Head", range(run.config.n_head), index=best_head, key="sc_ind_head")
        c1, c2 = st.columns([3, 2])
        c1.plotly_chart(view.attention_figure(run, layer, head), key="sc_ind_map")
        c2.plotly_chart(view.score_figure(run, name), key="sc_ind_scores")
        st.caption(
            "Induction score: the head's mean attention, over the repeated half, to the token right after the previous "
            "occurrence of the current token (the red squares). 1 = a perfect induction head."
        )

# ---- In-context learning on natural text ----------------------------------------------------------------
with text_tab:
    gpt_job = zoo.default_job(zoo.GPT_NAME)
    model = zoo.current_model(gpt_job, zoo.GPT_NAME)
    if gpt_job.snapshot().state != training.DONE or model is None:
        st.info("The shared default transformer is still training (it is shared with the Generation lab); reload soon.")
    else:
        with common.guard("Measuring the loss by position"):
            curve = view.text_loss_by_position(model, model.name, zoo.validation_text())
            score = induction.icl_score(curve)
            st.metric(
                "In-context learning score", f"{score:+.3f} nats", help="late-context loss minus early-context loss"
            )
            st.plotly_chart(view.icl_figure(curve, model.name), key="sc_icl")
            st.caption(
                f"The shared default transformer ({zoo.origin(gpt_job.snapshot())}) on held-out text: with more "
                "context behind it, each character is easier to predict. The score is the mean loss over the last "
                "eighth of its context minus the first eighth; negative means it learns from its context."
            )
