"""Drawing helpers and caches of the N-gram lab: fitted counts, samples, curves, charts, highlighted text.

Everything `pages/ngram.py` shows that is more than a widget lives here. Counting is cached
once per server for every session (`fitted`); samples and curves are cached per setting.
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from mllm_core import corpora
from mllm_core.ngram import (
    EOS,
    Memorisation,
    NGramCounts,
    NGramModel,
    backoff_steps,
    count_ngrams,
    perplexity_curve,
    split_tokens,
)
from ui.common import MARGIN

ORDERS = (1, 2, 3, 4, 5)  # the n of the side-by-side samples and of the curves
CURVE_TOKENS = 100_000  # at most this many tokens scored per perplexity point (train and validation)
COPY_COLOR = "#fde68a"
LONGEST_COLOR = "#fb923c"


@dataclass(frozen=True)
class LabData:
    """A corpus cut into train / validation token sequences and counted up to order 5."""

    counts: NGramCounts
    train: list[list[str]]
    val: list[list[str]]  # empty for typed text: all of it is counted


@st.cache_resource(show_spinner="Counting n-grams (once per server)…", max_entries=4)  # ~100 MB each (word level)
def fitted(text_digest: str, level: str, hold_out: bool, _text: str) -> LabData:
    """Counts of orders 1..5, shared by every session: on the training 90% of the text when
    `hold_out`, else on all of it (a few typed sentences: half of the fox text is one sentence)."""
    train, val = corpora.train_val_split(_text) if hold_out else (_text, "")
    train_seqs, val_seqs = split_tokens(train, level), split_tokens(val, level) if val else []
    return LabData(count_ngrams(train_seqs, max(ORDERS)), train_seqs, val_seqs)


@st.cache_resource(show_spinner=False)
def fox_model() -> NGramModel:
    """The trigram model of the two fox sentences (word tokens), built once for every session."""
    return NGramModel(3).fit(split_tokens(corpora.FOX_TEXT, "word"))


def plural(n: int, word: str) -> str:
    """>>> plural(1, "sequence"), plural(1_200, "token")
    ('1 sequence', '1,200 tokens')
    """
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def counted_caption(data: LabData, n: int, vocab_size: int) -> str:
    """What was counted and what was held out, in words."""
    held = (
        f"the last {plural(sum(map(len, data.val)), 'token')} ({plural(len(data.val), 'sequence')}) are held out "
        "for the validation curves"
        if data.val
        else "typed text is counted in full, with nothing held out"
    )
    return (
        f"Counted {plural(data.counts.n_tokens, 'training token')} ({plural(len(data.train), 'sequence')}, "
        f"vocabulary {vocab_size:,}; {held}); {plural(data.counts.table_size(n), f'distinct {n}-gram')}. "
        "The model is offered to the Generation lab."
    )


@st.cache_data(show_spinner="Scoring n = 1..5 on train and validation text…", max_entries=32)
def curves(text_digest: str, level: str, smoothing: str, k: float, _data: LabData) -> pd.DataFrame:
    """Per n: train / validation perplexity, share of validation n-grams unseen, count-table size."""
    points = perplexity_curve(_data.counts, _data.train, _data.val, smoothing, k, ORDERS, CURVE_TOKENS)
    return pd.DataFrame([asdict(p) for p in points])


@st.cache_data(show_spinner="Sampling n = 1..5…", max_entries=64)
def samples(
    text_digest: str, level: str, smoothing: str, k: float, prompt: tuple[str, ...], settings: tuple, _data: LabData
) -> dict[int, list[str] | str]:
    """n -> sampled tokens (or the error message) for every n, same prompt and seed."""
    temperature, top_k, top_p, seed, length = settings
    out: dict[int, list[str] | str] = {}
    for n in ORDERS:
        try:
            model = NGramModel.from_counts(_data.counts, n, smoothing, k)
            out[n] = model.sample(list(prompt), length, temperature, top_k, top_p, seed)
        except ValueError as exc:
            out[n] = str(exc)
    return out


# ---------------------------------------------------------------------------------------------
# Text


def _escape(token: str) -> str:
    """A token as HTML; `$` too, so Streamlit's markdown never reads it as LaTeX."""
    return "↵" if token == EOS else html.escape(token).replace("$", "&#36;")


PROMPT_TAIL = 30  # prompt tokens shown before each sample (a 1,200-word prompt in five columns is a wall)


def sample_html(prompt: list[str], tokens: list[str], level: str) -> str:
    """A sample as small proportional text, the prompt (its last `PROMPT_TAIL` tokens) in grey."""
    sep = " " if level == "word" else ""
    head = ("… " if len(prompt) > PROMPT_TAIL else "") + sep.join(_escape(t) for t in prompt[-PROMPT_TAIL:])
    body = sep.join(_escape(t) for t in tokens)
    return (
        f'<div style="font-size:0.85rem;line-height:1.5;white-space:pre-wrap">'
        f'<span style="color:#6b7280">{head}</span>{sep if head else ""}{body}</div>'
    )


def highlighted(tokens: list[str], mem: Memorisation, level: str) -> str:
    """HTML of a sample with copied k-grams on yellow and the longest copied span on orange."""
    sep = " " if level == "word" else ""
    spans = []
    for i, t in enumerate(tokens):
        text = _escape(t)
        if mem.start <= i < mem.start + mem.longest and mem.longest >= mem.k:
            spans.append(f'<span style="background:{LONGEST_COLOR}">{text}</span>')
        elif mem.copied[i]:
            spans.append(f'<span style="background:{COPY_COLOR}">{text}</span>')
        else:
            spans.append(text)
    return f'<div style="line-height:1.9;white-space:pre-wrap">{sep.join(spans)}</div>'


def unknown_warning(prompt: list[str], data: LabData, smoothing: str, smoothing_name: str) -> None:
    """Warn about prompt tokens the training text never had, and what the smoothing does with them."""
    unknown = list(dict.fromkeys(t for t in prompt if t not in data.counts.index and t != "</s>"))
    if unknown:
        st.warning(
            f"Never seen in the training text: {', '.join(repr(t) for t in unknown[:8])}. They count as `<unk>`, "
            "so contexts holding them were never seen either: "
            + ("MLE falls back to shorter contexts." if smoothing == "mle" else f"{smoothing_name} smooths.")
        )


def sample_columns(prompt: list[str], out: dict[int, list[str] | str], n: int, level: str) -> None:
    """The samples of n = 1..5 side by side (an error message in place of a sample that failed)."""
    for col, order in zip(st.columns(len(ORDERS)), ORDERS, strict=True):
        col.markdown(f"**n = {order}**" + (" (current)" if order == n else ""))
        if isinstance(out[order], str):
            col.error(out[order])
        else:
            col.container(border=True).markdown(sample_html(prompt, out[order], level), unsafe_allow_html=True)


def memorisation_meter(generated: list[str], mem: Memorisation, n: int, level: str) -> None:
    """How much of a sample is copied verbatim from the corpus, and the sample with the copies marked."""
    m1, m2 = st.columns(2)
    m1.metric(f"{n + 1}-grams copied verbatim from the corpus", f"{mem.share:.0%}")
    m2.metric("Longest copied span", f"{mem.longest} tokens")
    st.progress(min(1.0, mem.share))
    st.markdown(highlighted(generated, mem, level), unsafe_allow_html=True)
    st.caption("Yellow: inside an (n + 1)-gram that occurs in the training text; orange: the longest copied span.")


def fox_example() -> None:
    """The fox sentences, four of their probabilities and the bigram or trigram table."""
    fox = fox_model()
    st.markdown("> " + corpora.FOX_TEXT.replace("\n", "  \n> "))
    f1, f2, f3, f4 = st.columns(4)
    f1.metric("p(quick | The)", f"{fox.prob('quick', ['The']):.2f}")
    f2.metric("p(fox | The)", f"{fox.prob('fox', ['The']):.2f}")
    f3.metric("p(is | The fox)", f"{fox.prob('is', ['The', 'fox']):.2f}")
    f4.metric("p(jumps | brown fox)", f"{fox.prob('jumps', ['brown', 'fox']):.2f}")
    order = st.radio("Table", [2, 3], format_func={2: "bigrams", 3: "trigrams"}.get, key="ng_fox", horizontal=True)
    st.dataframe(fox_table(fox, order), hide_index=True)
    st.caption("<s> pads the start of each sentence and </s> marks its end; case is kept, so 'The' ≠ 'the'.")


def fox_table(model: NGramModel, order: int) -> pd.DataFrame:
    rows = model.probability_table(order)
    return pd.DataFrame(
        [(" ".join(ctx), tok, count, p) for ctx, tok, count, p in rows],
        columns=["context", "next token", "count", "p(next | context)"],
    )


# ---------------------------------------------------------------------------------------------
# Charts

_LAYOUT = dict(height=300, margin=MARGIN, legend=dict(orientation="h", y=-0.3))


def distribution_chart(dist: dict[str, float], chosen: str | None, title: str) -> go.Figure:
    """Horizontal bars of the most likely next tokens, the sampled one highlighted."""
    labels = [("↵" if t == EOS else t) for t in dist]
    colors = ["#f97316" if t == chosen else "#60a5fa" for t in dist]
    fig = go.Figure(go.Bar(x=list(dist.values()), y=labels, orientation="h", marker_color=colors))
    fig.update_layout(title=title, xaxis_title="probability", **{**_LAYOUT, "height": 120 + 22 * len(dist)})
    fig.update_yaxes(autorange="reversed", type="category")
    return fig


def perplexity_chart(df: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    for column, color in (("train", "#2563eb"), ("validation", "#dc2626")):
        finite = df[df[column].apply(lambda v: v == v and v != float("inf"))]
        fig.add_trace(go.Scatter(x=finite["n"], y=finite[column], mode="lines+markers", name=column, line_color=color))
    fig.update_layout(title="Perplexity vs n", xaxis_title="n", yaxis_title="perplexity (log scale)", **_LAYOUT)
    fig.update_yaxes(type="log")
    fig.update_xaxes(dtick=1)
    return fig


def curves_panel(df: pd.DataFrame, smoothing_name: str) -> None:
    """Perplexity, sparsity and table size against n, a note when the validation perplexity is
    infinite, and the numbers."""
    g1, g2, g3 = st.columns(3)
    g1.plotly_chart(perplexity_chart(df), key="ng_ppl")
    g2.plotly_chart(bar_chart(df, "unseen", "Validation n-grams never seen", "% unseen", True), key="ng_sparse")
    g3.plotly_chart(bar_chart(df, "table", "Count-table size", "distinct n-grams"), key="ng_table")
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
        f"Scored on at most {CURVE_TOKENS:,} tokens of each split."
    )
    st.dataframe(df, hide_index=True)


def bar_chart(df: pd.DataFrame, column: str, title: str, y_title: str, percent: bool = False) -> go.Figure:
    fig = go.Figure(go.Bar(x=df["n"], y=df[column] * (100 if percent else 1), marker_color="#60a5fa"))
    fig.update_layout(title=title, xaxis_title="n", yaxis_title=y_title, **_LAYOUT)
    fig.update_xaxes(dtick=1)
    return fig


# ---------------------------------------------------------------------------------------------
# Stepping through a sample


def step_html(prompt: list[str], generated: list[str], step: int, level: str) -> str:
    """The prompt in grey, the sample up to `step`, this step's token highlighted, the rest faded."""
    sep = " " if level == "word" else ""

    def span(tokens: list[str], style: str) -> str:
        text = sep.join(_escape(t) for t in tokens)
        return f'<span style="{style}">{text}</span>' if text else ""

    parts = [
        span(prompt, "color:#6b7280"),
        span(generated[: step - 1], ""),
        span(generated[step - 1 : step], f"background:{LONGEST_COLOR};font-weight:600"),
        span(generated[step:], "color:#9ca3af"),
    ]
    return f'<div style="line-height:1.9;white-space:pre-wrap">{sep.join(p for p in parts if p)}</div>'


def step_through(model: NGramModel, prompt: list[str], generated: list[str], smoothing: str, level: str) -> None:
    """A slider over the sample's steps: the next-token distribution at that step, the text with the
    step's token marked, its context, and where MLE fell back to a shorter context."""
    backoffs = backoff_steps(model, prompt, generated) if smoothing == "mle" else []
    if backoffs:
        st.info(
            f"MLE fell back to a shorter context at {len(backoffs)} of {len(generated)} steps "
            f"(steps {', '.join(str(s + 1) for s in backoffs[:12])}{' …' if len(backoffs) > 12 else ''}): "
            "the full context never occurs in the training text."
        )
    if st.session_state.get("ng_step", 1) > len(generated):
        st.session_state["ng_step"] = len(generated)
    step = st.slider("Step", 1, len(generated), 1, key="ng_step") if len(generated) > 1 else 1
    context = model.context_for(prompt + generated[: step - 1])
    chosen, p_chosen = generated[step - 1], model.prob(generated[step - 1], context)
    dist = model.next_distribution(context, top=15)
    dist.setdefault(chosen, p_chosen)  # the sampled token is drawn even when it is not a favourite
    left, right = st.columns([3, 2])
    left.plotly_chart(distribution_chart(dist, chosen, "Next-token distribution"), key="ng_dist")
    right.markdown(step_html(prompt, generated, step, level), unsafe_allow_html=True)
    right.markdown(f"Context: `{' '.join(context) if level == 'word' else ''.join(context)!r}`")
    used = model.backoff_context(context)
    if smoothing == "mle" and len(used) < len(context):
        right.info(f"This context was never seen: MLE uses the shorter context {used!r} instead.")
    right.markdown(f"Sampled: **{chosen!r}** (p = {p_chosen:.3g})")
