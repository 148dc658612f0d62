"""Tokenizer lab: word, character and byte-level BPE on the same text; BPE trained live, merge by merge."""

import streamlit as st

from ui import tokenizer as ui
from ui.common import download_text, guard, page_header

DEFAULT_TEXT = (
    "Tokenizers turn text into numbers. Unbelievably, 'tokenization' isn't magic!\n"
    "Emoji 🤖👩‍💻, accents (café), 日本語, and numbers like 1234567 all become bytes first."
)
KINDS = ["BPE", "Word", "Character"]  # also the URL values: ?tok_kind=Word
JSON = "application/json"

page_header(
    "Tokenizer",
    "Every language model first turns text into a sequence of integer ids. A **word** tokenizer gives "
    "short sequences but a huge vocabulary and `<unk>` for unseen words; a **character** tokenizer has a "
    "tiny vocabulary but long sequences; **byte-level BPE** starts from the 256 bytes and merges the most "
    "frequent adjacent pair again and again, in between the two and lossless on any text. Train it below, "
    "then step through its merges.",
    icon=":material/content_cut:",
)

left, right = st.columns([3, 1])
text = left.text_area("Text to tokenize", DEFAULT_TEXT, height=110, key="tok_input")
kind = right.radio("Tokenizer", KINDS, key="tok_kind", bind="query-params", help="BPE here is byte-level BPE.")
show_ws = right.toggle("Show whitespace", True, key="tok_ws", bind="query-params", help="· space, → tab, ↵ newline")

corpus, mb, vocab_size, split, min_freq = ui.training_settings()

if corpus is None:
    st.stop()
toks = None
with guard("Training the tokenizers"):
    train_bytes, bpe, word, char = ui.trained_tokenizers(corpus, mb, vocab_size, split, min_freq)
    toks = dict(zip(KINDS, (bpe, word, char), strict=True))
    settings = (corpus.digest, mb, vocab_size, split, min_freq)  # with a kind, names a trained tokenizer
if toks is None:
    st.stop()
if bpe.vocab_size < vocab_size:
    st.caption(
        f":material/info: This text allows only {len(bpe.merges):,} merges (every adjacent pair is merged already), "
        f"so the BPE vocabulary stops at {bpe.vocab_size:,} instead of {vocab_size:,}. Use more text for more merges."
    )
st.caption(
    f"Trained on {train_bytes:,} bytes of *{corpus.name}*: BPE {bpe.vocab_size:,} tokens, "
    f"word {word.vocab_size:,}, character {char.vocab_size:,}."
)
if not text:
    st.warning("The text box is empty: type or paste some text to tokenize.")
    st.stop()

tab_tokens, tab_merges, tab_compare, tab_vocab = st.tabs(
    ["Tokens", "BPE merges", "Side by side", "Vocabulary"], key="tok_tab", bind="query-params"
)  # keyed: the tab survives a visit to another lab

with tab_tokens:
    tok = toks[kind]
    pieces = ui.pieces(tok, text)
    n_bytes = len(text.encode("utf-8", errors="surrogatepass"))
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Characters", f"{len(text):,}")
    m2.metric("Bytes (UTF-8)", f"{n_bytes:,}")
    m3.metric("Tokens", f"{len(pieces):,}")
    m4.metric("Bytes per token", f"{n_bytes / max(1, len(pieces)):.2f}")
    st.html(ui.spans_html(pieces, show_ws, gap=kind == "Word"))
    st.caption("Hover a token to see its id and bytes.")
    ids = [i for i, _, _ in pieces]
    st.code(str(ids[: ui.MAX_SPANS]), language=None, wrap_lines=True)
    if len(ids) > ui.MAX_SPANS:
        st.caption(f"The first {ui.MAX_SPANS:,} of {len(ids):,} ids; the counts above cover them all.")
    decoded = tok.decode(ids)
    if decoded == text:
        st.success("Lossless: decode(encode(text)) gives the text back exactly.", icon=":material/check_circle:")
    else:
        why = "lower-cased, spacing normalised, unseen words → <unk>" if kind == "Word" else "unseen characters → <unk>"
        st.info(f"Lossy by design ({why}): decoding gives back", icon=":material/info:")
        st.code(decoded if len(decoded) <= 200 else decoded[:200] + " …", language=None, wrap_lines=True)

with tab_merges:
    st.markdown(
        "Each row is one training step: the most frequent adjacent pair became a new token. "
        "Counts only go down, and early merges are common word pieces (`·t`, `he`, `·the`; · is a space)."
    )
    bpe_views = ui.views(("BPE", *settings), show_ws, bpe)
    st.dataframe(bpe_views.merges, height=260, hide_index=True)
    n_merges = len(bpe.merges)
    if st.session_state.get("tok_step_of") != n_merges:  # a new vocabulary: replay from its end
        st.session_state["tok_step"], st.session_state["tok_step_of"] = n_merges, n_merges
    step = st.slider("Merges applied", 0, n_merges, key="tok_step", help="Replay training: the text after k merges.")
    step_pieces = ui.pieces(bpe.truncated(step), text)
    last = bpe.merges[step - 1] if step else None
    st.caption(
        f"After {step:,} merges: {len(step_pieces):,} tokens ({n_bytes:,} bytes)"
        + (
            f" · newest token (outlined) {bpe.id_to_token(last.new_id)!r}: id {last.new_id}, seen {last.count:,} times"
            if last
            else ""
        )
    )
    st.html(ui.spans_html(step_pieces, show_ws, highlight=last.new_id if last else None))
    d1, d2, d3 = st.columns(3)
    with d1:
        download_text("Vocabulary (JSON)", bpe_views.vocab_json, "bpe_vocab.json", JSON, key="tok_dl_vocab")
    with d2:
        download_text("Merges (text)", bpe_views.merges_text, "bpe_merges.txt", key="tok_dl_merges")
    with d3:
        download_text(
            "Tokenizer (load_tokenizer)", bpe_views.tokenizer_json, "bpe_tokenizer.json", JSON, key="tok_dl_tokenizer"
        )

with tab_compare:
    frame = ui.comparison_frame(toks, text)
    st.dataframe(frame, column_config=ui.COMPARISON_COLUMNS)
    st.plotly_chart(ui.comparison_chart(frame), key="tok_compare_chart")
    st.caption(ui.comparison_caption(frame))

with tab_vocab:
    kind_views = ui.views((kind, *settings), show_ws, toks[kind])
    st.markdown(f"**{kind}** vocabulary: {len(kind_views.vocab):,} tokens, most frequent first (training-text counts).")
    st.dataframe(kind_views.vocab, height=300, hide_index=True)
    st.plotly_chart(kind_views.zipf, key="tok_zipf_chart")
    st.caption("On log-log axes Zipf's law is a straight line: the r-th most common token appears about 1/r as often.")
