"""RNN lab: an RNN learns to count, what it remembers as sequences grow, and a character-level LSTM."""

import streamlit as st

from mllm_core import char_lstm, rnn, training, zoo
from ui import rnn as ui
from ui.common import corpus_picker, live, offer_model, page_header, training_controls

page_header(
    "RNN",
    "A recurrent network reads one token at a time and carries a **hidden state** "
    r"$h_t = \tanh(x_t W_{ih}^\top + b_{ih} + h_{t-1} W_{hh}^\top + b_{hh})$ from step to step: a memory of "
    "everything so far. "
    "Watch one learn to **count**, see how far back it can remember, why its gradients **vanish**, and how the "
    "**LSTM**'s cell state fixes that. Then train a character-level LSTM and hand it to the Generation lab.",
    icon=":material/autorenew:",
)
tab_count, tab_length, tab_memory, tab_grad, tab_lstm = st.tabs(
    ["Counting", "Length experiment", "Memory", "Vanishing gradients", "Char-LSTM"], key="rnn_tab", bind="query-params"
)

with tab_count:
    c1, c2, c3 = st.columns(3)
    vocab = c1.number_input("Numbers 0..V−1: V", 8, 1024, 128, key="rnn_v", bind="query-params")
    seq_len = c2.slider("Training length L", 2, 40, 6, key="rnn_len", bind="query-params")
    cell = c3.selectbox("Cell", rnn.CELLS, format_func=ui.NAMES.get, key="rnn_cell", bind="query-params")
    config = rnn.CountingConfig(vocab_size=int(vocab), seq_len=int(seq_len), cell=cell)
    st.caption(ui.counting_data_caption(config))
    job = training_controls(
        "rnn_count",
        lambda: training.spec(rnn.counting_target, config),
        label="Train counter",
        reason=ui.counting_problem(config),
    )
    live(job, lambda snap: st.plotly_chart(ui.counting_chart(snap), key="rnn_count_chart"))
    model = job.latest() if job else None  # your counter, at its latest epoch while it trains
    if model is not None:
        st.caption(f"Querying your {ui.NAMES[model.cell_name]} (V = {model.vocab_size}).")
    else:
        model = ui.default_counter(zoo.counter_job())  # None until the class's counter is trained
    text = st.text_input(
        "Type a sequence of numbers", "7 8 9 10", key="rnn_seq", bind="query-params",
        help="Any length: shorter or longer than the training length.",
    )  # fmt: skip
    if model is not None:
        ui.prediction(model, text)

with tab_length:
    st.markdown(ui.LENGTH_INTRO)
    c1, c2, c3 = st.columns(3)
    step = c1.select_slider(
        "Lengths L = 4, 4 + s, … 118: step s", [2, 6, 10, 16, 38], 38, key="rnn_lstep", bind="query-params",
        help=ui.LENGTH_STEP_HELP,
    )  # fmt: skip
    init = c2.selectbox(
        "Initialisation", rnn.INITS, format_func=ui.INIT_NAMES.get, key="rnn_linit", bind="query-params"
    )
    show_ref = c3.toggle("Overlay the seed's published curve", True, key="rnn_ref", bind="query-params")
    length_config = rnn.LengthConfig(lengths=tuple(range(4, 120, step)), init=init)
    job = training_controls(
        "rnn_lengths", lambda: training.spec(rnn.length_experiment_target, length_config), label="Run"
    )
    ui.length_results(job, rnn.SEED_LENGTH_REFERENCE if show_ref else None)

with tab_memory:
    st.markdown(
        "Recall **the first element** of a sequence of random symbols, read out after the last one. The answer must "
        "survive L − 1 updates of the hidden state."
    )
    c1, c2 = st.columns(2)
    cells = c1.multiselect("Cells", rnn.CELLS, list(rnn.CELLS), format_func=ui.NAMES.get, key="rnn_mcells")
    steps = c2.select_slider("Training steps per run", [100, 200, 300, 600], 300, key="rnn_msteps", bind="query-params")
    memory_config = rnn.MemoryConfig(cells=tuple(cells), steps=int(steps))
    job = training_controls(
        "rnn_memory",
        lambda: training.spec(rnn.memory_experiment_target, memory_config),
        label="Run",
        reason="" if cells else "Choose at least one cell.",
    )
    ui.memory_results(job, memory_config)

with tab_grad:
    st.markdown(
        r"Backpropagation multiplies the error by $\partial h_t / \partial h_{t-1}$ once per step back. In an RNN "
        "that factor is usually below 1, so the error reaching the first inputs shrinks exponentially; the LSTM's "
        "cell state is only scaled by its forget gate, which learns to stay near 1."
    )
    c1, c2 = st.columns(2)
    glen = c1.slider("Sequence length T", 5, 60, 30, key="rnn_glen", bind="query-params")
    gsteps = c2.radio(
        "Measured", [0, 200], 1, format_func=lambda s: "after 200 memory-task updates" if s else "at initialisation",
        key="rnn_gsteps", bind="query-params", horizontal=True,
    )  # fmt: skip
    grad_config = rnn.GradientConfig(length=int(glen), train_steps=int(gsteps))
    job = training_controls(
        "rnn_grad", lambda: training.spec(rnn.vanishing_gradients_target, grad_config), label="Measure"
    )
    ui.gradient_results(job)

with tab_lstm:
    corpus = corpus_picker("rnn")
    c1, c2, c3 = st.columns(3)
    hidden = c1.select_slider("LSTM size", [64, 128, 256], 128, key="rnn_lh", bind="query-params")
    max_steps = c2.number_input("Training steps", 20, 20_000, 2000, 100, key="rnn_lsteps", bind="query-params")
    every = c3.number_input("Sample every N steps", 10, 5000, 250, 50, key="rnn_levery", bind="query-params")
    name = f"char-LSTM · {corpus.name if corpus else 'text'} (RNN lab, {hidden})"
    lstm_model = char_lstm.CharLSTMConfig(hidden_size=int(hidden))
    lstm_train = char_lstm.CharLSTMTrainConfig(steps=int(max_steps), sample_every=int(every))

    def lstm_target() -> training.JobSpec:
        char_lstm.char_lstm_target(corpus.text, lstm_model, lstm_train, name)  # unusable text: its error, at once
        return training.spec(char_lstm.char_lstm_target, corpus.ref(), lstm_model, lstm_train, name)

    job = training_controls("rnn_lstm", lstm_target, label="Train char-LSTM", disabled=corpus is None)
    live(job, lambda snap: ui.lstm_progress(snap, lstm_train.temperature))
    if (lm := offer_model(job)) is not None:
        st.success(f"“{lm.name}” is now available in the Generation lab.")
