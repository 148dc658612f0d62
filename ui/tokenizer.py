"""Drawing helpers and caches of the Tokenizer lab: token spans, charts, tables, trained tokenizers.

Everything the page shows that is more than a widget lives here, so `pages/tokenizer.py`
stays a thin read-widgets -> call-engine -> draw script.
"""

from __future__ import annotations

import html
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from mllm_core import corpora, training, zoo
from mllm_core.corpora import head_bytes, text_digest
from mllm_core.tokenizers import BPETokenizer, CharTokenizer, Tokenizer, WordTokenizer, encoding_stats
from mllm_core.tokenizers.bpe import GPT2_PATTERN, N_BYTES, Merge
from ui import server
from ui.common import MARGIN, corpus_picker

MB = 1_000_000
PALETTE = ["#fde68a", "#a7f3d0", "#bfdbfe", "#fbcfe8", "#ddd6fe", "#fed7aa", "#bbf7d0", "#e5e7eb"]
_VISIBLE_WS = str.maketrans({" ": "·", "\t": "→", "\n": "↵", "\r": "␍"})


# ---------------------------------------------------------------------------------------------
# Trained tokenizers, shared by every session


@st.cache_resource(show_spinner=False)
def _bpe_store() -> tuple[dict[tuple[str, int, bool], BPETokenizer], dict[tuple, threading.Lock], threading.Lock]:
    """(text digest, vocab size, split) -> trained BPE, for every session of this server; a lock
    per key being trained (a class on the same settings trains it once); the lock of both."""
    return {}, {}, threading.Lock()


def trained_bpe(
    text: str, vocab_size: int, split: bool = True, progress: Callable[[float, str], None] | None = None
) -> BPETokenizer:
    """BPE trained on `text` (pre-split with the GPT-2 regex when `split`), from the shared store
    or trained now, reporting progress in [0, 1]. A short text that allows fewer merges gives a
    smaller vocabulary (`vocab_size` says how big) instead of an error. A session asking for
    settings another is training waits for that one instead of training them again."""
    store, training_now, lock = _bpe_store()
    key = (text_digest(text), vocab_size, split)
    with lock:
        tok = store.get(key)
        if tok is None:
            key_lock = training_now.setdefault(key, threading.Lock())
    if tok is not None:
        return tok
    n_merges = vocab_size - 256

    def callback(m: Merge) -> None:
        if progress is not None and (m.rank % 25 == 0 or m.rank == n_merges - 1):
            progress((m.rank + 1) / n_merges, f"merge {m.rank + 1:,} / {n_merges:,}: count {m.count:,}")

    if not key_lock.acquire(blocking=False):  # another session trains these settings: wait for it in no turn
        with server.aside():
            key_lock.acquire()
    try:
        with lock:
            tok = store.get(key)
        if tok is not None:  # trained by the session this one waited for
            return tok
        tok = BPETokenizer(GPT2_PATTERN if split else None).train(text, vocab_size, callback=callback, allow_fewer=True)
    finally:
        key_lock.release()
    with lock:
        if len(store) >= 16:  # keep memory bounded: forget the oldest
            store.pop(next(iter(store)))
        store[key] = tok
        training_now.pop(key, None)
    return tok


def default_bpe(progress: Callable[[float, str], None]) -> BPETokenizer:
    """The lab's default BPE (`zoo.tokenizer_job`): loaded from disk, or trained once per server in
    the background, where leaving the page does not stop it; `progress` hears how far it is."""
    job = zoo.tokenizer_job()
    if not (snap := job.snapshot()).finished:  # the usual visit finds it loaded and keeps its turn
        with server.aside():  # it trains in the background: the wait takes no turn from the class
            while not (snap := job.snapshot()).finished:
                progress(snap.progress or 0.0, f"the class's default, {zoo.origin(snap)}")
                time.sleep(0.25)
    if snap.state != training.DONE:
        raise RuntimeError(f"the default BPE did not train: {snap.error or snap.state}")
    return job.latest()


def training_settings() -> tuple[corpora.Corpus | None, float, int, bool, int]:
    """The "Training corpus and settings" expander: (corpus, MB of it, BPE vocabulary size, split
    first, the word tokenizer's minimum frequency), bound to the URL; defaults are `zoo.TOKENIZER_*`."""
    with st.expander("Training corpus and settings", expanded=True):
        c1, c2, c3, c4 = st.columns(4)
        with c1:
            corpus = corpus_picker("tok", label="Train on", allow_typed=True, typed_default="aaabdaaabac")
        mb = c2.slider(
            "Training text (MB)",
            0.1,
            3.0,
            zoo.TOKENIZER_MB,
            0.1,
            key="tok_mb",
            bind="query-params",
            help="The corpus's first MB.",
        )
        vocab_size = c3.slider(
            "BPE vocabulary size",
            N_BYTES + 1,
            8192,
            zoo.TOKENIZER_VOCAB,
            key="tok_vocab",
            bind="query-params",
            help="256 bytes + 1 per merge.",
        )
        split = c3.toggle(
            "Split words first",
            zoo.TOKENIZER_SPLIT,
            key="tok_split",
            bind="query-params",
            help="GPT-2 regex: merges never cross words.",
        )
        min_freq = c4.number_input(
            "Word: minimum frequency", 1, 1000, 2, key="tok_minfreq", bind="query-params", help="Rarer words → <unk>."
        )
    return corpus, mb, vocab_size, split, int(min_freq)


def trained_tokenizers(
    corpus: corpora.Corpus, mb: float, vocab_size: int, split: bool, min_freq: int
) -> tuple[int, BPETokenizer, WordTokenizer, CharTokenizer]:
    """(bytes of training text, BPE, word, character) on the corpus's first `mb` MB, shared by every
    session: the default BPE from `zoo.tokenizer_job`, any other trained here under a progress bar."""
    text, n_bytes = training_text(corpus.digest, mb, corpus.text)
    bar = st.empty()
    try:
        show = lambda f, msg: bar.progress(f, f"Training BPE: {msg}")  # noqa: E731
        if zoo.tokenizer_settings(corpus.name, mb, vocab_size, split):
            bpe = default_bpe(show)  # trained once per server, or loaded from models/
        else:
            bpe = trained_bpe(text, vocab_size, split, show)
    finally:
        bar.empty()  # never a stale bar, even when training fails
    word, char = trained_word_and_char(corpus.digest, mb, min_freq, text)
    return n_bytes, bpe, word, char


@st.cache_resource(show_spinner=False, max_entries=8)
def training_text(digest: str, mb: float, _text: str) -> tuple[str, int]:
    """The first `mb` MB of the corpus whose text is `_text` (`digest`) and its size in UTF-8 bytes,
    cut and counted once for every session (encoding a MB at every visit was a tenth of the page's cost)."""
    head = head_bytes(_text, int(mb * MB))
    return head, len(head.encode())


@st.cache_resource(show_spinner="Training the word and character tokenizers…", max_entries=8)
def trained_word_and_char(digest: str, mb: float, min_freq: int, _text: str) -> tuple[WordTokenizer, CharTokenizer]:
    """Both tokenizers trained on `_text`, the first `mb` MB of the corpus `digest` (keyed by the
    digest: hashing a MB of text at every rerun was a large share of the page's cost)."""
    return WordTokenizer(min_freq=min_freq).train(_text), CharTokenizer().train(_text)


# ---------------------------------------------------------------------------------------------
# Token spans


def visible(token: str, show_whitespace: bool = True) -> str:
    """`token` with spaces, tabs and newlines drawn as · → ↵ (when `show_whitespace`)."""
    return token.translate(_VISIBLE_WS) if show_whitespace else token


def pieces(tok: Tokenizer, text: str) -> list[tuple[int, str, bytes]]:
    """(id, text shown, bytes) of each token of `text`."""
    # `<unk>` stands for no bytes in particular, whatever its text
    return [(i, tok.id_to_token(i), b"" if i == tok.unk_id else tok.token_bytes(i)) for i in tok.encode(text)]


MAX_SPANS = 5000  # more spans than this make the browser crawl; the counts still cover everything


def spans_html(
    tokens: list[tuple[int, str, bytes]], show_whitespace: bool, gap: bool = False, highlight: int | None = None
) -> str:
    """Coloured token spans; hovering shows the id and the bytes. `gap` separates tokens by a space;
    tokens with id `highlight` (the newest merge, say) are outlined.

    Each token is an inline block, so lines may break between any two tokens; a newline inside a
    token ends the line after it (shown as ↵ when `show_whitespace`). Only the first `MAX_SPANS`
    tokens are drawn.
    """
    parts = []
    for k, (i, shown, raw) in enumerate(tokens[:MAX_SPANS]):
        breaks = "<br>" * shown.count("\n")
        shown = visible(shown) if show_whitespace else shown.replace("\n", "")
        title = f"id {i} · bytes {raw.hex(' ')}" if raw else f"id {i}"
        outline = "outline:2px solid #4F46E5;" if i == highlight else ""
        parts.append(
            f'<span title="{html.escape(title)}" style="background:{PALETTE[k % len(PALETTE)]};display:inline-block;'
            f'{outline}min-width:4px;border-radius:3px;margin:1px 0;white-space:pre">{html.escape(shown)}</span>{breaks}'
        )
    body = (" " if gap else "").join(parts) or "<i>(no tokens)</i>"
    if len(tokens) > MAX_SPANS:
        body += f" <i>… and {len(tokens) - MAX_SPANS:,} more tokens</i>"
    return f'<div style="font-family:monospace;line-height:1.6;font-size:0.95rem;color:#111">{body}</div>'


# ---------------------------------------------------------------------------------------------
# Tables and charts


def merges_frame(tok: BPETokenizer, show_whitespace: bool = False) -> pd.DataFrame:
    def t(i: int) -> str:
        return visible(tok.id_to_token(i), show_whitespace)

    return pd.DataFrame(
        {
            "rank": [m.rank for m in tok.merges],
            "left": [t(m.pair[0]) for m in tok.merges],
            "right": [t(m.pair[1]) for m in tok.merges],
            "merged": [t(m.new_id) for m in tok.merges],
            "id": [m.new_id for m in tok.merges],
            "count": [m.count for m in tok.merges],
        }
    )


def vocab_frame(tok: Tokenizer, show_whitespace: bool = False) -> pd.DataFrame:
    """One row per id: the token, its length in bytes and its frequency in the training text."""
    ids = range(tok.vocab_size)
    return pd.DataFrame(
        {
            "id": ids,
            "token": [visible(tok.id_to_token(i), show_whitespace) for i in ids],
            "bytes": [len(tok.token_bytes(i)) for i in ids],
            "frequency": tok.token_frequencies(),
        }
    )


def vocab_json(tok: Tokenizer) -> dict[str, str]:
    return {str(i): tok.id_to_token(i) for i in range(tok.vocab_size)}


@dataclass(frozen=True)
class Views:
    """What the page draws of one trained tokenizer and offers to download (`views`)."""

    vocab: pd.DataFrame  # `vocab_frame`, most frequent first
    zipf: go.Figure
    vocab_json: str  # id -> token, as JSON
    tokenizer_json: str  # `to_dict()` as JSON: what `load_tokenizer` reads
    merges: pd.DataFrame | None = None  # BPE only: `merges_frame`
    merges_text: str | None = None


@st.cache_resource(show_spinner=False, max_entries=48)
def views(key: tuple, show_whitespace: bool, _tok: Tokenizer) -> Views:
    """`Views` of the tokenizer `_tok`, named by `key` (its kind and training settings), made once
    for every session: a visit of the page otherwise rebuilt its tables, chart and downloads, and
    with a class training it was the server's largest cost (py-spy)."""
    vocab = vocab_frame(_tok, show_whitespace).sort_values("frequency", ascending=False, kind="stable")
    bpe = isinstance(_tok, BPETokenizer)
    return Views(
        vocab=vocab,
        zipf=zipf_chart(vocab["frequency"].tolist(), f"{key[0]} tokens: rank vs frequency (Zipf)"),
        vocab_json=json.dumps(vocab_json(_tok), ensure_ascii=False, indent=1),
        tokenizer_json=json.dumps(_tok.to_dict(), ensure_ascii=False, indent=1),
        merges=merges_frame(_tok, show_whitespace) if bpe else None,
        merges_text=_tok.merges_text() if bpe else None,
    )


COMPARISON_COLUMNS = {  # the comparison table's formats, drawn by the browser (a pandas Styler cost ~0.06 s a visit)
    "bytes per token": st.column_config.NumberColumn(format="%.2f"),
    "unk share": st.column_config.NumberColumn(format="percent"),
}


def comparison_frame(toks: dict[str, Tokenizer], text: str) -> pd.DataFrame:
    rows = [{"tokenizer": name, **encoding_stats(tok, text)} for name, tok in toks.items()]
    return pd.DataFrame(rows).set_index("tokenizer")


def comparison_caption(frame: pd.DataFrame) -> str:
    """What the side-by-side table shows on this text (which tokenizer is really longest)."""
    longest, shortest = frame["tokens"].idxmax(), frame["tokens"].idxmin()
    return (
        f"On this text {shortest} gives the fewest tokens and {longest} the most. Word: largest vocabulary, loses "
        "case and unseen words. Character: one token per character. BPE: lossless, and its sequence length "
        "shrinks as the vocabulary grows (emoji and CJK cost several bytes, so a BPE sequence can outgrow the "
        "character one)."
    )


def comparison_chart(frame: pd.DataFrame) -> go.Figure:
    """Bars of the three tokenizers' sequence length, vocabulary, bytes per token and unk share;
    built once per distinct table for every session (`make_subplots` costs about as much as the rest of the page)."""
    return _comparison_chart(frame.to_json(), frame)


@st.cache_resource(max_entries=64, show_spinner=False)
def _comparison_chart(key: str, _frame: pd.DataFrame) -> go.Figure:
    frame, columns = _frame, ["tokens", "vocab size", "bytes per token", "unk share"]
    fig = make_subplots(rows=1, cols=len(columns), subplot_titles=["sequence length", *columns[1:]])
    for c, col in enumerate(columns, start=1):
        fig.add_trace(go.Bar(x=frame.index, y=frame[col], marker_color=PALETTE[:3], showlegend=False), row=1, col=c)
    fig.update_layout(height=300, margin=MARGIN)
    return fig


ZIPF_POINTS = 300  # ranks drawn on the Zipf chart, spaced evenly on its log axis


def zipf_chart(frequencies: list[int], title: str) -> go.Figure:
    """Rank-frequency on log-log axes, with the Zipf line f(r) = f(1) / r for reference. At most
    `ZIPF_POINTS` ranks, log-spaced (a word vocabulary has tens of thousands, which on log axes
    draw the same picture), built as plain data: the figure is made for every visit of the page."""
    freqs = sorted((f for f in frequencies if f > 0), reverse=True)
    n = len(freqs)
    if n > ZIPF_POINTS:
        ranks = sorted({round(n ** (k / (ZIPF_POINTS - 1))) for k in range(ZIPF_POINTS)})
    else:
        ranks = list(range(1, n + 1))
    data = [
        dict(
            type="scatter", x=ranks, y=[freqs[r - 1] for r in ranks], mode="markers", marker=dict(size=4), name="tokens"
        )
    ]
    if freqs:
        data.append(
            dict(
                type="scatter",
                x=ranks,
                y=[freqs[0] / r for r in ranks],
                mode="lines",
                line=dict(dash="dash"),
                name="f(1) / rank",
            )
        )
    layout = dict(
        title=dict(text=title),
        height=360,
        margin=MARGIN,
        xaxis=dict(type="log", title=dict(text="rank")),
        yaxis=dict(type="log", title=dict(text="frequency in the training text")),
    )
    return go.Figure({"data": data, "layout": layout}, _validate=False)
