"""N-gram sampler: language modelling as counting, from the two fox sentences to Wikipedia."""

import streamlit as st

from mllm_core import corpora
from mllm_core.ngram import NGramModel, NGramTextLM, memorisation, text_tokens
from ui import ngram as ui
from ui.common import bound_text, corpus_picker, guard, page_header, register_model, sampling_controls

SMOOTHINGS = {"MLE": "mle", "add-k": "add-k", "Kneser-Ney": "kneser-ney"}  # shown (and URL) name -> engine name
PROMPTS = {"tiny-shakespeare": "Pardon me,", "fox": "The"}  # default prompt per corpus ("The" otherwise)

page_header(
    "N-gram sampler",
    "An n-gram model predicts the next token from the previous **n − 1** tokens by counting: "
    "p(quick | The) = C(The quick) / C(The). Counting is instant, but most long contexts were never seen "
    "(**sparsity**), so a big n copies the training text verbatim and a plain count (MLE) gives unseen text "
    "probability zero, unless we **smooth**. Compare samples for n = 1…5 below.",
    icon=":material/casino:",
)

c1, c2, c3, c4 = st.columns([2, 1, 1, 1])
with c1:
    corpus = corpus_picker("ng", allow_typed=True, typed_default=corpora.FOX_TEXT)
level = c2.radio("Tokens", ["word", "char"], key="ng_level", bind="query-params", horizontal=True)
n = c3.slider("n", 1, 5, 3, key="ng_n", bind="query-params", help="The model sees the previous n − 1 tokens.")
smoothing_name = c4.selectbox(
    "Smoothing",
    list(SMOOTHINGS),
    key="ng_smooth",
    bind="query-params",
    help="MLE: plain counts. Add-k: k added to every count. Kneser-Ney: discounted counts mixed with lower orders.",
)
smoothing = SMOOTHINGS[smoothing_name]
k = 1.0
if smoothing == "add-k":
    k = c4.number_input("k", 0.001, 10.0, 1.0, 0.1, format="%.3f", key="ng_k", bind="query-params")
default_prompt = PROMPTS.get(corpus.name if corpus else "", "The")
prompt = bound_text(st, "Prompt", default_prompt, "ng_prompt", help="Empty: start a document.")
with st.expander("Sampling settings (temperature, top-k, top-p, seed, length)"):
    settings = sampling_controls("ng", max_new_tokens=60, max_limit=1000)

if corpus is None:
    st.stop()
digest, data, model = corpora.text_digest(corpus.text), None, None
with guard("Counting the n-grams"):
    data = ui.fitted(digest, level, corpus.source != "typed", corpus.text)
    model = NGramModel.from_counts(data.counts, n, smoothing, k)
if model is None:
    st.stop()
name = f"{n}-gram {level} {smoothing} · {corpus.name}"
register_model(name, NGramTextLM(model, level, name=name))
st.caption(ui.counted_caption(data, n, model.vocab_size))

tab_sample, tab_curves, tab_fox = st.tabs(
    ["Samples", "Perplexity & sparsity", "The fox example"], key="ng_tab", bind="query-params"
)

with tab_sample:
    prompt_tokens = text_tokens(prompt, level)
    ui.unknown_warning(prompt_tokens, data, smoothing, smoothing_name)
    top_k = 1 if settings.greedy else settings.top_k
    sampling = (settings.temperature, top_k, settings.top_p, settings.seed, settings.max_new_tokens)
    out = None
    with guard("Sampling"):
        out = ui.samples(digest, level, smoothing, k, tuple(prompt_tokens), sampling, data)
    if out is None:
        st.stop()
    ui.sample_columns(prompt_tokens, out, n, level)
    generated = out[n] if not isinstance(out[n], str) else []
    if generated:
        st.subheader(f"Step through the n = {n} sample")
        ui.step_through(model, prompt_tokens, generated, smoothing, level)
        st.subheader("Memorisation meter")
        ui.memorisation_meter(generated, memorisation(data.counts, generated, n + 1), n, level)

with tab_curves:
    if not data.val:
        st.info("Typed text is counted in full, so there is no held-out text: only training perplexity is drawn.")
    df = None
    with guard("Scoring"):
        df = ui.curves(digest, level, smoothing, k, data)
    if df is not None and len(df):
        ui.curves_panel(df, smoothing_name)

with tab_fox:
    ui.fox_example()
