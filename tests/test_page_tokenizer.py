"""The Tokenizer page: renders offline with its defaults, switches tokenizers, replays merges, explains bad input."""

from __future__ import annotations

import re

import pytest
from streamlit.testing.v1 import AppTest

PAGE = "../pages/tokenizer.py"


def run_page(**widgets) -> AppTest:
    """Render the page once with its defaults, then again with `widgets` (key -> value) set."""
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    if widgets:
        for key, value in widgets.items():
            at.session_state[key] = value
        at.run()
    return at


def metric(at: AppTest, label: str) -> float:
    return float(next(m.value for m in at.metric if m.label == label).replace(",", ""))


def spans(at: AppTest) -> list[tuple[str, str]]:
    """(hover title, shown text) of each token span of the Tokens tab, e.g. ("id 256 · bytes 20 74", "·t")."""
    return re.findall(r'<span title="([^"]*)"[^>]*>([^<]*)</span>', at.get("html")[0].proto.body)


@pytest.fixture(scope="module")
def default_page() -> AppTest:
    return run_page()


def test_defaults_render_bpe_spans_and_counts(default_page):
    at = default_page
    assert not at.error, [e.value for e in at.error]
    assert at.radio(key="tok_kind").value == "BPE"
    assert any("Trained on 1,000,000 bytes of *wikipedia-sample*: BPE 512 tokens" in c.value for c in at.caption)
    n_tokens, n_bytes = metric(at, "Tokens"), metric(at, "Bytes (UTF-8)")
    assert 0 < n_tokens < n_bytes  # merges compress
    assert metric(at, "Bytes per token") == pytest.approx(n_bytes / n_tokens, abs=0.01)
    tokens = spans(at)
    assert len(tokens) == n_tokens
    assert tokens[0] == ("id 84 · bytes 54", "T")  # "T" is byte 0x54 and id 84
    assert any("Lossless" in s.value for s in at.success)


def test_merges_table_step_slider_and_downloads(default_page):
    at = default_page
    merges = at.dataframe[0].value
    assert list(merges.columns) == ["rank", "left", "right", "merged", "id", "count"]
    assert len(merges) == 512 - 256
    assert merges["count"].is_monotonic_decreasing
    assert tuple(merges.iloc[0][["left", "right", "merged", "id"]]) == ("·", "t", "·t", 256)  # " t" comes first
    assert at.slider(key="tok_step").value == 256
    labels = {b.proto.label for b in at.get("download_button")}
    assert {"Vocabulary (JSON)", "Merges (text)", "Tokenizer (load_tokenizer)"} <= labels

    at.slider(key="tok_step").set_value(0).run()
    n_bytes = int(metric(at, "Bytes (UTF-8)"))
    assert any(c.value.startswith(f"After 0 merges: {n_bytes:,} tokens") for c in at.caption)  # bytes only

    at.slider(key="tok_step").set_value(1).run()
    outlined = re.findall(r'<span title="id (\d+)[^"]*" style="[^"]*outline', at.get("html")[1].proto.body)
    assert outlined and set(outlined) == {"256"}  # the first merge's token, " t", is outlined wherever it occurs


def test_side_by_side_compares_the_three_tokenizers(default_page):
    frame = default_page.dataframe[1].value
    assert list(frame.index) == ["BPE", "Word", "Character"]
    assert frame.loc["Word", "tokens"] < frame.loc["BPE", "tokens"] < frame.loc["Character", "tokens"]
    assert frame.loc["BPE", "unk share"] == 0
    assert frame.loc["Word", "vocab size"] > frame.loc["BPE", "vocab size"]


def test_word_tokenizer_is_shown_as_lossy():
    at = run_page(tok_kind="Word")
    assert not at.error
    assert any("Lossy by design" in i.value for i in at.info)
    tokens = spans(at)
    assert ("id 0", "&lt;unk&gt;") in tokens  # no bytes for <unk>
    shown = [text for _, text in tokens]
    assert "numbers" in shown and "Tokenizers" not in shown  # lower-cased words
    vocab = at.dataframe[2].value
    assert vocab["token"].iloc[0] in {"the", ","}  # the most frequent word first


def test_whitespace_toggle(default_page):
    assert "·t" in [text for _, text in spans(default_page)]
    at = run_page(tok_ws=False)
    shown = [text for _, text in spans(at)]
    assert " t" in shown and not any("·" in text for text in shown)


def test_settings_come_from_the_url():
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.query_params["tok_kind"] = "Character"  # the shared link ?tok_kind=Character
    at.run()
    assert not at.exception
    assert at.radio(key="tok_kind").value == "Character"
    assert metric(at, "Tokens") == metric(at, "Characters")


@pytest.mark.parametrize(
    ("widgets", "message"),
    [
        ({"tok_input": ""}, "text box is empty"),
    ],
    ids=["empty text"],
)
def test_bad_input_gets_a_clear_message(widgets, message):
    at = run_page(**widgets)
    assert not at.exception
    shown = [e.value for e in at.error] + [w.value for w in at.warning]
    assert any(message in s for s in shown), shown


def test_known_answer_on_typed_training_text():
    at = run_page(tok_corpus="typed", tok_vocab=259, tok_split=False, tok_input="aaabdaaabac")
    at.text_area(key="tok_text").set_value("aaabdaaabac").run()  # the training text
    assert not at.error, [e.value for e in at.error]
    assert at.code[0].value == "[258, 100, 258, 97, 99]"
    assert [text for _, text in spans(at)] == ["aaab", "d", "aaab", "a", "c"]


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"), (b"caf\xe9 au lait", "not UTF-8")],
    ids=["binary", "latin-1"],
)
def test_bad_upload_gets_a_clear_message(content, message):
    at = run_page(tok_corpus="upload")
    at.file_uploader(key="tok_upload").set_value(("data.txt", content, "text/plain")).run()
    assert not at.exception
    assert any(message in e.value for e in at.error), [e.value for e in at.error]


def test_an_uploaded_text_trains_the_tokenizers():
    at = run_page(tok_corpus="upload", tok_vocab=260)
    at.file_uploader(key="tok_upload").set_value(("notes.txt", b"the theme of the thesis " * 50, "text/plain"))
    at.run()
    assert not at.error, [e.value for e in at.error]
    assert any("*notes*: BPE 260 tokens" in c.value for c in at.caption)


def test_spans_and_vocabulary_bytes_come_from_the_tokenizer_interface():
    from mllm_core.tokenizers import BPETokenizer, CharTokenizer
    from ui.tokenizer import pieces, vocab_frame

    char = CharTokenizer().train("héllo")  # <unk>, h, l, o, é
    assert pieces(char, "hé?") == [(1, "h", b"h"), (4, "é", "é".encode()), (0, "<unk>", b"")]  # no bytes for <unk>
    assert vocab_frame(char)["bytes"].tolist() == [5, 1, 1, 1, 2]  # len("<unk>") for <unk>
    bpe = BPETokenizer().train("the theme", vocab_size=257)
    assert pieces(bpe, "é") == [(0xC3, "\\xc3", b"\xc3"), (0xA9, "\\xa9", b"\xa9")]  # half characters
    assert vocab_frame(bpe)["bytes"].tolist() == [1] * 256 + [len(bpe.token_bytes(256))]


def test_the_typed_example_clamps_the_vocabulary_and_the_replay_follows_it():
    """Issue 19: "aaabdaaabac" with vocabulary 512 gave an error, no tokens, a stale progress bar and a
    merge-replay slider stuck at 1 when the vocabulary changed."""
    at = run_page(tok_corpus="typed", tok_split=False)
    assert not at.error, [e.value for e in at.error]
    assert any("allows only 7 merges" in c.value and "stops at 263 instead of 512" in c.value for c in at.caption)
    assert not at.get("progress")  # no "Training BPE: merge 1 / 256" left on screen
    assert at.slider(key="tok_step").value == 7 and metric(at, "Tokens") > 0
    at.slider(key="tok_step").set_value(1).run()
    at.slider(key="tok_vocab").set_value(259).run()  # a new vocabulary: the replay starts at its end
    assert at.slider(key="tok_step").value == 3
    assert not any("allows only" in c.value for c in at.caption)


def test_small_things_lossy_text_long_id_lists_and_the_longest_sequence():
    """Issue 19's small things: a raw backtick and a silent cut in the lossy message, a silent cut of
    the id list at 5,000, and "Character: longest sequences" when BPE was longer (CJK, emoji)."""
    from ui.tokenizer import MAX_SPANS

    at = run_page(tok_kind="Character", tok_input="`x` 日本語🤖 " * 40)
    (info,) = [i.value for i in at.info if "Lossy" in i.value]
    assert "`" not in info and at.code[-1].value.endswith(" …") and len(at.code[-1].value) == 202
    at = run_page(tok_kind="Character", tok_input="ab " * (MAX_SPANS // 2))
    assert any(f"The first {MAX_SPANS:,} of" in c.value for c in at.caption)
    at = run_page(tok_corpus="typed", tok_vocab=259, tok_input="🤖🤖🤖 日本語")
    caption = next(c.value for c in at.caption if c.value.startswith("On this text"))
    assert "BPE the most" in caption


def test_a_class_on_the_same_settings_trains_bpe_once(monkeypatch):
    """Sessions asking for settings another session is training wait for it instead of training again."""
    import threading
    import time

    from mllm_core.tokenizers import BPETokenizer
    from ui import tokenizer as ui

    calls, train = [], BPETokenizer.train

    def slow_train(self, *args, **kwargs):
        calls.append(1)
        time.sleep(0.3)  # long enough for every other session to ask meanwhile
        return train(self, *args, **kwargs)

    monkeypatch.setattr(BPETokenizer, "train", slow_train)
    text = "a class of students, all on the same settings " * 20
    results = [None] * 5

    def ask(i: int) -> None:
        results[i] = ui.trained_bpe(text, 270, split=True)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(calls) == 1 and all(r is results[0] for r in results)


def test_the_default_settings_show_the_shipped_bpe(default_page):
    from mllm_core import zoo

    job = zoo.tokenizer_job()
    assert job.join(60) and job.snapshot().state == "done"  # the server's one default (models/ ships it)
    from mllm_core import corpora
    from ui import tokenizer as ui

    text = corpora.head_bytes(corpora.load(corpora.DEFAULT).text, int(zoo.TOKENIZER_MB * 1_000_000))
    assert (corpora.text_digest(text), zoo.TOKENIZER_VOCAB, True) not in ui._bpe_store()[0]  # not trained in the page
    ids = [int(re.match(r"id (\d+)", title).group(1)) for title, _ in spans(default_page)]
    assert ids == job.latest().encode(default_page.text_area(key="tok_input").value)
