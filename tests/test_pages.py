"""AppTest smoke tests: the app and every page in its navigation render without an exception;
each of the home page's presets, followed as a link, sets up its result."""

from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest
from pagetest import opened
from streamlit.testing.v1 import AppTest

from mllm_core import zoo
from mllm_core.attention import TOY_SENTENCE
from ui.pages import LABS, PRESETS

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def test_home_links_every_lab():
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception
    assert at.title[0].value.endswith("LLM Playground")
    links = {link.proto.page for link in at.get("page_link")}
    assert {lab.path.split("/")[-1].removesuffix(".py") for lab in LABS} <= {
        p.split("/")[-1].removesuffix(".py") for p in links
    }
    assert any("Compute:" in c.value for c in at.sidebar.caption)


@pytest.mark.parametrize("lab", LABS, ids=[lab.title for lab in LABS])
def test_every_lab_renders_through_the_navigation(lab):
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.switch_page(lab.path)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert any(lab.title.lower() in t.value.lower() for t in at.title), [t.value for t in at.title]


# ---------------------------------------------------------------------------------------------
# Presets


def slug(path: str) -> str:
    """A page file's URL path: "pages/rnn.py" -> "rnn"."""
    return path.split("/")[-1].removesuffix(".py")


@pytest.fixture(scope="module")
def home() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception
    return at


def follow(home: AppTest, label: str) -> AppTest:
    """Open the page that the home page's link starting with `label` leads to, as the browser would."""
    link = next(link.proto for link in home.get("page_link") if link.proto.label.startswith(label))
    return opened(f"pages/{link.page}.py", **dict(parse_qsl(link.query_string)))


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_home_links_every_preset_with_its_settings(home):
    links = {(link.proto.page, link.proto.query_string) for link in home.get("page_link")}
    assert {(slug(preset.path), urlencode(preset.query)) for preset in PRESETS} <= links


def test_the_fox_preset_opens_the_fox_table(home):
    at = follow(home, "The fox table")
    assert at.session_state["ng_tab"] == "The fox example"  # the tab the browser shows
    assert at.selectbox(key="ng_corpus").value == "fox"
    assert metrics(at)["p(quick | The)"] == "0.50" and metrics(at)["p(fox | The)"] == "0.50"
    table = at.dataframe[-1].value
    assert table[(table["context"] == "The") & (table["next token"] == "quick")]["p(next | context)"].tolist() == [0.5]


def test_the_counting_preset_predicts_11_after_7_8_9_10(home):
    # the class default counter answers once trained (tests train it; a real server loads it from disk)
    assert zoo.counter_job().join(120)
    at = follow(home, "An RNN that counts")
    assert at.session_state["rnn_tab"] == "Counting"
    assert at.text_input(key="rnn_seq").value == "7 8 9 10"
    assert metrics(at)["Predicted next number"] == "11"


def test_the_length_preset_opens_rnn_vs_lstm_by_length(home):
    at = follow(home, "RNN vs LSTM")
    assert at.session_state["rnn_tab"] == "Length experiment"
    reference = next(c.proto.spec for c in at.get("plotly_chart") if "The seed's result" in c.proto.spec)
    assert "RNN (hand-written), seed's result" in reference and "LSTM, seed's result" in reference
    assert any(b.key == "rnn_lengths_start" for b in at.button)  # one more click runs it


def test_the_attention_preset_steps_through_your_cat_is_a_lovely_cat(home):
    at = follow(home, "Self-attention")
    assert at.session_state["att_tab"] == "Step by step"
    assert at.text_input(key="att_toy").value == TOY_SENTENCE == "your cat is a lovely cat"
    assert at.selectbox(key="att_follow").options == [f"{i}: {t}" for i, t in enumerate(TOY_SENTENCE.split())]
