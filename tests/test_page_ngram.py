"""The N-gram page: renders offline with its defaults, samples n = 1..5, explains bad input, hands models on."""

from __future__ import annotations

import html
import math
import re

import pytest
from pagetest import page as _page
from pagetest import run
from streamlit.testing.v1 import AppTest

from ui.common import MODELS_KEY

PAGE = "pages/ngram.py"


def page(**query) -> AppTest:
    """The page opened from a shared link with these query parameters (widget keys)."""
    return _page(PAGE, **query)


def samples(at: AppTest) -> list[str]:
    """The five samples' text (prompt included), from their HTML."""
    blocks = [m.value for m in at.markdown if m.value.startswith('<div style="font-size:0.85rem')]
    return [html.unescape(re.sub(r"<[^>]+>", "", b)) for b in blocks]


@pytest.fixture(scope="module")
def default_page() -> AppTest:
    return run(page())


def test_defaults_sample_wikipedia_for_every_n(default_page):
    at = default_page
    assert not at.error, [e.value for e in at.error]
    assert at.slider(key="ng_n").value == 3 and at.selectbox(key="ng_smooth").value == "MLE"
    texts = samples(at)
    assert len(texts) == 5 and all(t.startswith("The ") and len(t.split()) > 40 for t in texts)
    assert len(set(texts)) == 5  # one sample per n, all different
    assert any(c.value.startswith("Counted ") for c in at.caption)
    copied = next(m for m in at.metric if m.label.endswith("copied verbatim from the corpus"))
    assert copied.label.startswith("4-grams") and copied.value.endswith("%")
    assert len(at.get("plotly_chart")) == 4  # next-token distribution + three curves


def test_defaults_register_the_model_for_the_generation_lab(default_page):
    models = default_page.session_state[MODELS_KEY]
    (name, model), *_ = models.items()
    assert name == "3-gram word mle · wikipedia-sample"
    assert model.decode(model.encode("The Berry paradox")) == "The Berry paradox"


def test_fox_tab_matches_the_talk(default_page):
    metrics = {m.label: m.value for m in default_page.metric}
    assert metrics["p(quick | The)"] == "0.50" and metrics["p(fox | The)"] == "0.50"
    assert metrics["p(is | The fox)"] == "1.00" and metrics["p(jumps | brown fox)"] == "1.00"
    table = default_page.dataframe[-1].value
    row = table[(table["context"] == "The") & (table["next token"] == "quick")]
    assert row["p(next | context)"].tolist() == [0.5]


def test_mle_curves_say_validation_perplexity_is_infinite(default_page):
    curves = next(d.value for d in default_page.dataframe if "validation" in d.value.columns)
    assert list(curves["n"]) == [1, 2, 3, 4, 5]
    assert curves["train"].is_monotonic_decreasing and curves["unseen"].is_monotonic_increasing
    assert (curves["validation"] == math.inf).all()
    assert any("validation perplexity is infinite" in i.value for i in default_page.info)


def test_kneser_ney_gives_finite_held_out_perplexity():
    at = run(page(ng_corpus="lee-news", ng_smooth="Kneser-Ney", ng_n=2))
    curves = next(d.value for d in at.dataframe if "validation" in d.value.columns)
    assert curves["validation"].map(math.isfinite).all()
    assert curves["validation"].min() < curves["validation"].iloc[0]  # context helps on held-out text
    assert not any("infinite" in i.value for i in at.info)


def test_stepping_through_the_sample_shows_each_context():
    at = run(page(ng_corpus="fox", ng_prompt="The quick"))
    assert samples(at)[2].startswith("The quick brown fox jumps over the lazy dog")
    at.slider(key="ng_step").set_value(2)
    run(at)
    assert any("Context: `'quick brown'`" in m.value for m in at.markdown)
    assert any("Sampled: **'fox'** (p = 1)" in m.value for m in at.markdown)


def test_unseen_prompt_words_warn_and_mle_backs_off():
    at = run(page(ng_corpus="fox", ng_prompt="Zebra"))
    assert any("'Zebra'" in w.value for w in at.warning)
    assert any("fell back to a shorter context" in i.value for i in at.info)


def test_n_larger_than_the_text_is_a_clear_error():
    at = run(page(ng_corpus="hello", ng_n=3))  # "hello" is one word
    assert any("larger than the text" in e.value for e in at.error)


def test_empty_typed_text_is_a_clear_error():
    at = run(page(ng_corpus="Type your own text"))
    at.text_area(key="ng_text").set_value("   ")
    run(at)
    assert any("empty" in e.value for e in at.error)


def test_char_level_samples_characters():
    at = run(page(ng_corpus="lee-news", ng_level="char", ng_n=5, ng_prompt="The "))
    texts = samples(at)
    assert len(texts) == 5 and all(t.startswith("The ") for t in texts)
    assert any(m.label == "Longest copied span" for m in at.metric)


def test_typed_text_is_counted_in_full_and_agrees_with_the_fox_table():
    """Issue 19: the two typed fox sentences once trained on the first only ("1 sequences")."""
    at = run(page(ng_corpus="Type your own text", ng_tab="The fox example"))
    caption = next(c.value for c in at.caption if c.value.startswith("Counted "))
    assert "Counted 20 training tokens (2 sequences" in caption and "nothing held out" in caption
    (model,) = at.session_state[MODELS_KEY].values()
    fox = next(m for m in at.metric if m.label == "p(quick | The)")
    assert model.model.prob("quick", ["The"]) == pytest.approx(0.5) and fox.value == "0.50"
    assert any("no held-out text" in i.value for i in at.info)


def test_a_corpus_says_what_it_holds_out_in_singular_and_plural():
    at = run(page(ng_corpus="hello", ng_n=1))  # one line: the split falls back to characters
    caption = next(c.value for c in at.caption if c.value.startswith("Counted "))
    assert re.search(r"\(1 sequence, .*the last 1 token \(1 sequence\) are held out", caption), caption


def test_a_link_with_bad_settings_gets_one_notice_naming_what_was_ignored():
    """Issue 19: ng_n=9, a temperature of "abc" and a seed of 1.5 silently became the defaults (or 1).

    app.py runs every page between `given = st.query_params.to_dict()` and `url_notice(given)`; here
    the same two calls wrap this page's URL-bound widgets (an AppTest of app.py runs a page alone
    once `ui` is imported in the test process)."""

    def lab():
        import streamlit as st

        from ui.common import corpus_picker, sampling_controls, url_notice

        given = st.query_params.to_dict()
        corpus_picker("ng")
        st.slider("n", 1, 5, 3, key="ng_n", bind="query-params")
        sampling_controls("ng")
        url_notice(given)

    at = AppTest.from_function(lab, default_timeout=60)
    at.query_params.update(ng_n="9", ng_temp="abc", ng_seed="1.5", ng_topp="0.5", ng_corpus="nope", ng_len="60")
    run(at)
    (notice,) = [c.value for c in at.caption if "Ignored from the link" in c.value]
    assert "`ng_n=9`, `ng_temp=abc`, `ng_seed=1.5`, `ng_corpus=nope`" in notice
    assert "ng_topp" not in notice and "ng_len" not in notice  # taken (0.5), or the default (60)
    run(at)
    assert not any("Ignored from the link" in c.value for c in at.caption)  # shown once, for the link


def test_corpus_links_use_names_and_read_old_labels():
    """Issue 19: the URL held display labels (tiny-shakespeare+%28online%29), so ?ng_corpus=<name> fell back."""
    at = run(page(ng_corpus="Type your own text"))  # an older link, by label
    assert at.selectbox(key="ng_corpus").value == "typed" and at.query_params["ng_corpus"] == "typed"
    at = run(page(ng_corpus="lee-news"))
    assert at.selectbox(key="ng_corpus").value == "lee-news" and at.query_params["ng_corpus"] == "lee-news"
    at = run(page(ng_corpus="no-such-corpus"))
    assert at.selectbox(key="ng_corpus").value == "wikipedia-sample" and "ng_corpus" not in at.query_params


def test_a_long_prompt_shows_only_its_tail_in_the_five_columns():
    """Issue 19: a 1,200-word prompt was repeated in full in all five n-gram columns."""
    from ui.ngram import PROMPT_TAIL

    prompt = " ".join(["the"] * 1_199 + ["end"])
    at = run(page(ng_corpus="lee-news", ng_prompt=prompt, ng_len=5))
    texts = samples(at)
    assert len(texts) == 5 and all(t.startswith("… ") and t.count("the") <= PROMPT_TAIL for t in texts)
    assert all("end" in t for t in texts)
