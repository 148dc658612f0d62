"""N-gram sampler: language modelling as counting, from the two fox sentences to Wikipedia."""

import streamlit as st

from mllm_core import corpora
from mllm_core.ngram import NGramModel, NGramTextLM, backoff_steps, memorisation, split_tokens, text_tokens
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


@st.cache_resource(show_spinner=False)
def fox_model() -> NGramModel:
    return NGramModel(3).fit(split_tokens(corpora.FOX_TEXT, "word"))


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
    unknown = list(dict.fromkeys(t for t in prompt_tokens if t not in data.counts.index and t != "</s>"))
    if unknown:
        st.warning(
            f"Never seen in the training text: {', '.join(repr(t) for t in unknown[:8])}. They count as `<unk>`, "
            "so contexts holding them were never seen either: "
            + ("MLE falls back to shorter contexts." if smoothing == "mle" else f"{smoothing_name} smooths.")
        )
    top_k = 1 if settings.greedy else settings.top_k
    sampling = (settings.temperature, top_k, settings.top_p, settings.seed, settings.max_new_tokens)
    out = None
    with guard("Sampling"):
        out = ui.samples(digest, level, smoothing, k, tuple(prompt_tokens), sampling, data)
    if out is None:
        st.stop()
    for col, order in zip(st.columns(len(ui.ORDERS)), ui.ORDERS, strict=True):
        col.markdown(f"**n = {order}**" + (" (current)" if order == n else ""))
        if isinstance(out[order], str):
            col.error(out[order])
        else:
            col.container(border=True).markdown(
                ui.sample_html(prompt_tokens, out[order], level), unsafe_allow_html=True
            )

    generated = out[n] if not isinstance(out[n], str) else []
    if generated:
        st.subheader(f"Step through the n = {n} sample")
        backoffs = backoff_steps(model, prompt_tokens, generated) if smoothing == "mle" else []
        if backoffs:
            st.info(
                f"MLE fell back to a shorter context at {len(backoffs)} of {len(generated)} steps "
                f"(steps {', '.join(str(s + 1) for s in backoffs[:12])}{' …' if len(backoffs) > 12 else ''}): "
                "the full context never occurs in the training text."
            )
        if st.session_state.get("ng_step", 1) > len(generated):
            st.session_state["ng_step"] = len(generated)
        step = st.slider("Step", 1, len(generated), 1, key="ng_step") if len(generated) > 1 else 1
        context = model.context_for(prompt_tokens + generated[: step - 1])
        chosen, p_chosen = generated[step - 1], model.prob(generated[step - 1], context)
        dist = model.next_distribution(context, top=15)
        dist.setdefault(chosen, p_chosen)  # the sampled token is drawn even when it is not a favourite
        left, right = st.columns([3, 2])
        left.plotly_chart(ui.distribution_chart(dist, chosen, "Next-token distribution"), key="ng_dist")
        right.markdown(ui.step_html(prompt_tokens, generated, step, level), unsafe_allow_html=True)
        right.markdown(f"Context: `{' '.join(context) if level == 'word' else ''.join(context)!r}`")
        used = model.backoff_context(context)
        if smoothing == "mle" and len(used) < len(context):
            right.info(f"This context was never seen: MLE uses the shorter context {used!r} instead.")
        right.markdown(f"Sampled: **{chosen!r}** (p = {p_chosen:.3g})")

        st.subheader("Memorisation meter")
        mem = memorisation(data.counts, generated, n + 1)
        m1, m2 = st.columns(2)
        m1.metric(f"{n + 1}-grams copied verbatim from the corpus", f"{mem.share:.0%}")
        m2.metric("Longest copied span", f"{mem.longest} tokens")
        st.progress(min(1.0, mem.share))
        st.markdown(ui.highlighted(generated, mem, level), unsafe_allow_html=True)
        st.caption("Yellow: inside an (n + 1)-gram that occurs in the training text; orange: the longest copied span.")

with tab_curves:
    if not data.val:
        st.info("Typed text is counted in full, so there is no held-out text: only training perplexity is drawn.")
    df = None
    with guard("Scoring"):
        df = ui.curves(digest, level, smoothing, k, data)
    if df is not None and len(df):
        g1, g2, g3 = st.columns(3)
        g1.plotly_chart(ui.perplexity_chart(df), key="ng_ppl")
        g2.plotly_chart(ui.bar_chart(df, "unseen", "Validation n-grams never seen", "% unseen", True), key="ng_sparse")
        g3.plotly_chart(ui.bar_chart(df, "table", "Count-table size", "distinct n-grams"), key="ng_table")
        infinite = df[df["zero_share"] > 0]
        if len(infinite):
            worst = infinite.iloc[-1]
            st.info(
                f"{smoothing_name} gives probability 0 to {worst['zero_share']:.1%} of the validation tokens at "
                f"n = {int(worst['n'])} (unseen words or continuations), so its validation perplexity is infinite "
                "and not drawn. Choose add-k or Kneser-Ney to see it."
            )
        st.caption(
            "Train perplexity falls as n grows while validation perplexity stops improving: the model memorises. "
            f"Scored on at most {ui.CURVE_TOKENS:,} tokens of each split."
        )
        st.dataframe(df, hide_index=True)

with tab_fox:
    fox = fox_model()
    st.markdown("> " + corpora.FOX_TEXT.replace("\n", "  \n> "))
    f1, f2, f3, f4 = st.columns(4)
    f1.metric("p(quick | The)", f"{fox.prob('quick', ['The']):.2f}")
    f2.metric("p(fox | The)", f"{fox.prob('fox', ['The']):.2f}")
    f3.metric("p(is | The fox)", f"{fox.prob('is', ['The', 'fox']):.2f}")
    f4.metric("p(jumps | brown fox)", f"{fox.prob('jumps', ['brown', 'fox']):.2f}")
    order = st.radio("Table", [2, 3], format_func={2: "bigrams", 3: "trigrams"}.get, key="ng_fox", horizontal=True)
    st.dataframe(ui.fox_table(fox, order), hide_index=True)
    st.caption("<s> pads the start of each sentence and </s> marks its end; case is kept, so 'The' ≠ 'the'.")
