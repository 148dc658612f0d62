"""Embeddings lab: word2vec trained live on real text; neighbours, analogies and a map of the vectors."""

import streamlit as st

from mllm_core import training, word2vec, zoo
from mllm_core.word2vec import UnknownWordError, Word2VecConfig
from ui import embeddings as ui
from ui.common import corpus_picker, get_job, guard, live, loss_chart, page_header, training_controls

MODES = {"CBOW": "cbow", "skip-gram": "skipgram"}
LOSSES = {"negative sampling": "negative-sampling", "full softmax": "full-softmax"}
WHICH = {"input + output": "sum", "context (input) vectors": "context", "centre (output) vectors": "center"}

page_header(
    "Embeddings (word2vec)",
    "word2vec learns one vector per word by predicting a word from its neighbours (**CBOW**: the average of "
    "the context vectors scores every word) or the neighbours from the word (**skip-gram**). Words used in "
    "similar contexts end up with similar vectors, so cosine similarity finds related words and vector "
    "arithmetic finds analogies. Watch the vectors improve while it trains: the WordSim-353 score compares "
    "their cosines with human judgements of relatedness.",
    icon=":material/scatter_plot:",
)

# keyed, so the open state is the server's and survives a rerun (an error once collapsed it)
with st.expander("Corpus and training settings", expanded=False, key="emb_settings", on_change="rerun"):
    corpus = corpus_picker("emb")
    c1, c2, c3, c4 = st.columns(4)
    mode = c1.radio("Model", list(MODES), key="emb_mode", bind="query-params", horizontal=True)
    loss = c2.radio(
        "Output layer",
        list(LOSSES),
        key="emb_loss",
        bind="query-params",
        help="Full softmax scores every vocabulary word (exact, slow for big vocabularies).",
    )
    dim = c3.select_slider("Dimensions", [25, 50, 100, 200, 300], 100, key="emb_dim", bind="query-params")
    secs = c4.slider("Training seconds", 5, 300, 30, 5, key="emb_secs", bind="query-params")
    c1, c2, c3, c4 = st.columns(4)
    window = c1.slider("Window", 1, 10, 5, key="emb_win", bind="query-params", help="Context words on each side.")
    min_count = c2.number_input("Min count", 1, 100, 5, key="emb_minc", bind="query-params")
    negatives = c3.number_input("Negatives", 1, 30, 5, key="emb_neg", bind="query-params")
    max_norm = c4.number_input(
        "max_norm (0 = off)",
        0.0,
        100.0,
        0.0,
        0.5,
        key="emb_norm",
        bind="query-params",
        help="As nn.Embedding(max_norm=)",
    )
    config = Word2VecConfig(
        dim=int(dim),
        window=int(window),
        min_count=int(min_count),
        negatives=int(negatives),
        mode=MODES[mode],
        loss=LOSSES[loss],
        max_norm=float(max_norm) or None,
    )

    def make_target():
        word2vec.check_corpus(config, corpus.text)  # a too-small corpus is reported before a job starts
        return training.spec(word2vec.training_target, config, corpus.ref(), max_seconds=float(secs))

    training_controls("emb_train", make_target, disabled=corpus is None)

job = get_job("emb_train")
if job is None:
    job = zoo.embeddings_job()
    st.caption(
        f"Showing the **default model** (CBOW, 100 dimensions, wikipedia-sample, {ui.budget_text()}), one for "
        f"everyone on this server, {zoo.origin(job.snapshot())}. Change the settings above and press **Train** to "
        "train your own."
    )

q1, q2, q3 = st.columns([2, 2, 1])
query = q1.text_input("Query word", "music", key="emb_q", bind="query-params").strip().lower()
which = WHICH[q2.radio("Vectors", list(WHICH), key="emb_which", bind="query-params", horizontal=True)]
topn = q3.number_input("Neighbours", 1, 50, 10, key="emb_topn", bind="query-params")
a1, a2, a3 = st.columns(3)
a = a1.text_input("a", "father", key="emb_a", bind="query-params").strip().lower()
b = a2.text_input("is to b", "mother", key="emb_b", bind="query-params").strip().lower()
c = a3.text_input("as c is to ?", "son", key="emb_c", bind="query-params").strip().lower()
m1, m2, m3, m4 = st.columns(4)
method = m1.radio("Map", ["PCA", "t-SNE"], key="emb_proj", bind="query-params", horizontal=True)
dims = 3 if m2.radio("Axes", ["2-D", "3-D"], key="emb_axes", bind="query-params", horizontal=True) == "3-D" else 2
n_plot = m3.slider("Most frequent words", 50, 1000, 300, 50, key="emb_nplot", bind="query-params")
find = m4.text_input("Highlight words", "", key="emb_find", help="Space-separated words to mark in green")


def render(snap) -> None:
    ui.progress_metrics(snap)
    g1, g2 = st.columns(2)
    g1.plotly_chart(loss_chart(snap, ("loss",), "Loss per centre word", x_title="words seen"), key="emb_lossc")
    g2.plotly_chart(loss_chart(snap, ("wordsim", "simlex"), "Spearman ρ", x_title="words seen"), key="emb_rho")
    model = job.latest()
    if model is None:
        return
    left, right = st.columns(2)
    neighbours = []
    with left, guard("The neighbour search"):
        try:
            if not query:
                st.info("Type a query word to see its nearest neighbours.")
            else:
                pairs = model.most_similar(query, topn=int(topn), which=which)
                neighbours = [w for w, _ in pairs]
                st.markdown(f"**Nearest to “{query}”** (cosine in the full {model.config.dim}-D space)")
                st.dataframe(ui.neighbours_frame(pairs), hide_index=True, key="emb_nbrs")
        except UnknownWordError as err:
            ui.unknown_word(err)
    with right, guard("The analogy"):
        try:
            if not (a and b and c):
                st.info("Fill in a, b and c to ask for an analogy.")
            else:
                pairs = model.analogy(a, b, c, topn=5, which=which)
                st.markdown(f"**{a} : {b} :: {c} : ?** (nearest to {b} − {a} + {c})")
                st.dataframe(ui.neighbours_frame(pairs), hide_index=True, key="emb_analogy")
        except UnknownWordError as err:
            ui.unknown_word(err)
    st.caption(ui.which_scores(model, which))
    words, colors = ui.plot_words(model, n_plot, query, neighbours, find)
    vectors = model.vectors(which)[[model.index[w] for w in words]].numpy()
    if method == "t-SNE" and not snap.finished:
        st.info("t-SNE runs once training has finished (it takes a few seconds); PCA follows the training live.")
    with guard("The projection"):
        if method == "t-SNE" and snap.finished:
            coords = ui.tsne_cached((snap.name, id(model), which, tuple(words), dims), vectors, dims)
        else:
            coords = ui.project(vectors, dims, "PCA")
        title = f"{method if snap.finished else 'PCA'} of {len(words)} words ({which} vectors)"
        st.plotly_chart(ui.scatter(words, coords, colors, title), key="emb_map")
    if snap.finished:
        d1, d2 = st.columns(2)
        d1.download_button("vectors.tsv", lambda: model.to_tsv(which)[0], "vectors.tsv", key="emb_dlv")
        d2.download_button("metadata.tsv", lambda: model.to_tsv(which)[1], "metadata.tsv", key="emb_dlm")
        st.caption("Load both files in the Embedding Projector (projector.tensorflow.org) to explore in 3-D.")


live(job, render)
