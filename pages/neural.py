"""Neural net lab: from counting to a network: the HELLO toy, the loss, gradient descent, an MLP LM."""

import numpy as np
import streamlit as st

from mllm_core import mlp, neural, nll, sampling, training
from mllm_core.lm import unknown_note
from ui import neural as ui
from ui.common import corpus_picker, guard, live, offer_model, page_header, training_controls

page_header(
    "Neural net",
    "Counting answers only for contexts it has seen. A **neural network** computes p(next token) from the "
    "context with weights, a single number (the **loss**, −ln p of what really came next) says how wrong it is, "
    "and **gradient descent** turns every weight a little downhill. Start with four letters, end with the MLP "
    "language model of Bengio et al. (2003): a window of k tokens, an embedding table, a hidden layer.",
    icon=":material/hub:",
)
tab_toy, tab_loss, tab_gd, tab_grad, tab_mlp = st.tabs(
    ["HELLO toy", "Loss", "Gradient descent", "Backprop check", "MLP language model"], key="nn_tab", bind="query-params"
)

with tab_toy:
    c1, c2, c3 = st.columns(3)
    text = c1.text_input("Training text", neural.TOY_TEXT, key="nn_text", bind="query-params")
    window = c2.slider("Window k (letters of context)", 1, 4, 2, key="nn_k", bind="query-params")
    steps = c3.select_slider("Adam steps", [50, 100, 300, 1000], 300, key="nn_steps", bind="query-params")
    run = None
    with guard("Training the toy"):
        run = ui.toy(neural.ToyConfig(text=text, window=int(window), steps=int(steps)))
    if run is not None:
        left, right = st.columns([1, 2])
        left.markdown("**One-hot letters**: a 1 in the letter's own column.")
        left.dataframe(ui.one_hot_frame(run.letters), key="nn_onehot")
        right.plotly_chart(ui.network_figure(run), key="nn_net")
        st.plotly_chart(ui.weights_figure(run), key="nn_weights")
        at = st.slider("Show the softmax after step", 0, len(run.losses) - 1, len(run.losses) - 1, key="nn_at")
        st.plotly_chart(ui.softmax_figure(run, at), key="nn_bars")
        prompt = st.text_input("Ask it: the letters so far", text[:-1], key="nn_ask", bind="query-params")
        with guard("Predicting"):
            probs = run.predict(prompt)
            best = int(np.argmax(probs))
            st.metric(f"After “{prompt[-window:]}” it says", run.letters[best])
            st.caption(f"with p = {probs[best]:.3f}")
        with guard("Training the windows"):
            ui.window_limit(text, int(steps))

with tab_loss:
    fox = nll.fox_sequences()
    counted = nll.counted(fox, "quick", "The")
    learned = ui.fox_bigram()
    st.markdown(ui.LOSS_INTRO)
    c1, c2, c3 = st.columns(3)
    c1.metric("Counted p(quick | The)", f"{counted:.3f}")
    c2.metric("Learned by gradient descent", f"{learned.prob('quick', 'The'):.4f}")
    c3.metric("Its average loss", f"{learned.losses[-1]:.4f} nats")
    c3.caption(f"from {learned.losses[0]:.2f} before training, {len(learned.losses) - 1} Adam steps")
    which = st.radio("Probabilities", ["learned", "counted"], key="nn_fox_p", horizontal=True)
    prob = learned.prob if which == "learned" else (lambda t, c: nll.counted(fox, t, c))
    rows = nll.token_losses(prob, fox[0])
    st.dataframe(ui.token_loss_frame(rows), hide_index=True, key="nn_fox_table")
    st.markdown(ui.sum_of_logs(rows))
    qs = np.linspace(0.01, 0.99, 99)
    curve = nll.nll_curve(fox, "quick", "The", qs)
    st.plotly_chart(ui.nll_curve_figure(qs, curve, counted, learned.prob("quick", "The")), key="nn_nll_curve")

with tab_gd:
    st.markdown(ui.GD_INTRO)
    knob_run = ui.toy(neural.ToyConfig(window=1))
    names = neural.weight_names(knob_run.model, knob_run.letters)
    c1, c2, c3, c4 = st.columns(4)
    first = c1.selectbox("Knob 1", names, names.index("b2[L]"), key="nn_knob1", bind="query-params")
    second = c2.selectbox("Knob 2", names, names.index("b2[O]"), key="nn_knob2", bind="query-params")
    lr = c3.select_slider("Learning rate", ui.LEARNING_RATES, 1.0, key="nn_lr", bind="query-params")
    seed = c4.number_input("Random start (seed)", 0, 999, 0, key="nn_seed", bind="query-params")
    with guard("Drawing the surface"):
        knobs = neural.Knobs(knob_run, first, second)
        surface = knobs.surface()
        path = knobs.gd_path(knobs.random_start(int(seed)), float(lr), steps=40)
        ui.gd_player(surface, path, knobs.names, float(lr))
        st.info(ui.VERDICTS[neural.verdict(path, float(surface[2].min()))].format(steps=len(path) - 1))

with tab_grad:
    st.markdown(ui.GRAD_INTRO)
    at_init = st.toggle("At the initial weights (else: trained)", True, key="nn_grad_init")
    check_run = ui.toy(neural.ToyConfig())
    rows = neural.gradient_check(check_run, weights=neural.initial_weights(check_run) if at_init else None)
    worst = max(abs(r.autograd - r.numeric) for r in rows)
    st.metric(f"Largest |autograd − finite difference| over all {len(rows)} weights", f"{worst:.1e}")
    st.dataframe(ui.grad_check_frame(rows), hide_index=True, key="nn_grad_table")

with tab_mlp:
    st.markdown(ui.MLP_INTRO)
    corpus = corpus_picker("nn")
    c1, c2, c3, c4, c5 = st.columns(5)
    level = c1.radio("Tokens", mlp.LEVELS, key="nn_level", bind="query-params", horizontal=True)
    k = c2.slider("Window k", 1, 8, 3, key="nn_window", bind="query-params")
    n_embd = c3.select_slider("Embedding width", [2, 5, 10, 24, 64], 10, key="nn_embd", bind="query-params")
    hidden = c4.select_slider("Hidden width", [32, 64, 128, 200, 300], 200, key="nn_hidden", bind="query-params")
    max_steps = c5.number_input("Steps", 20, 20_000, 3000, 100, key="nn_msteps", bind="query-params")
    config = mlp.MLPConfig(window=int(k), n_embd=int(n_embd), hidden=int(hidden))
    train = mlp.MLPTrainConfig(steps=int(max_steps), level=level, max_vocab=128 if level == "char" else 5000)
    name = f"MLP (k={k}, {level}) · {corpus.name if corpus else 'text'}"
    usable = False
    with guard("Checking the text"):
        usable = corpus is not None and mlp.check_input(corpus.text, config, train) is None
    job = training_controls(
        "nn_mlp", lambda: training.spec(mlp.mlp_target, corpus.ref(), config, train, name), label="Train MLP",
        disabled=not usable,
    )  # fmt: skip
    live(job, lambda snap: ui.mlp_progress(snap, train.temperature))
    model = (job.latest() if job else None) or ui.class_default()
    if (lm := offer_model(job)) is not None:
        st.success(f"“{lm.name}” is now available in the Generation lab.")
    if model is not None:
        ui.embedding_map(model)
        prompt = st.text_input("Continue a prompt", "The ", key="nn_prompt", bind="query-params")
        with guard("Sampling"):
            if note := unknown_note(model, prompt):
                st.caption(note)
            steps = sampling.generate(model, prompt, 120, temperature=0.8, seed=0)
            st.code(prompt + "".join(s.token for s in steps), language=None, wrap_lines=True)
