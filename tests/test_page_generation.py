"""AppTest of the Generation page: shared URL setups, streaming with step inspection, bad input, side by side,
the leaderboard. Session models are injected so no test waits for training; the shared defaults are toy-sized
(MLLM_ZOO_TINY=1) and the conftest stops them after each test."""

import math
import time
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from mllm_core import training, zoo
from mllm_core.lm import TorchTextLM, toy_char_lm
from mllm_core.tokenizers import CharTokenizer
from ui.common import MODELS_KEY

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "generation.py")


class Favourite(torch.nn.Module):
    """Always predicts the character "b" with high probability, whatever the context."""

    def __init__(self, vocab_size, favourite):
        super().__init__()
        self.bias = torch.nn.Parameter(torch.zeros(vocab_size))
        with torch.no_grad():
            self.bias[favourite] = 5.0

    def forward(self, idx, targets=None):
        return self.bias.expand(*idx.shape, -1), None


def session_models():
    tok = CharTokenizer().train("abc ")
    return {
        "toy": toy_char_lm("abc "),
        "likes-b": TorchTextLM("likes-b", Favourite(tok.vocab_size, tok.encode("b")[0]), tok, block_size=8),
    }


@pytest.fixture
def app(monkeypatch):
    monkeypatch.setenv("MLLM_ZOO_TINY", "1")
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state[MODELS_KEY] = session_models()
    return at


def errors(at):
    return [e.value for e in at.exception] + [e.value for e in at.error]


def test_the_page_renders_with_its_defaults_and_offers_every_default_model(app):
    app.run()
    assert not errors(app)
    assert app.title[0].value.endswith("Generation")
    options = app.selectbox(key="gen_model").options
    assert set(zoo.NAMES) <= set(options) and {"toy (yours)", "likes-b (yours)"} <= set(options)
    assert app.selectbox(key="gen_model").value == zoo.GPT_NAME


def test_a_shared_link_opens_the_same_setup(app):
    app.query_params.update(
        gen_model="toy (yours)", gen_prompt="cab", gen_temp="0.5", gen_topk="3", gen_topp="0.9", gen_len="17",
        gen_seed="42", gen_greedy="true", gen_cmp=["toy (yours)", "likes-b (yours)"],
    )  # fmt: skip
    app.run()
    assert not errors(app)
    assert app.selectbox(key="gen_model").value == "toy (yours)"
    assert app.text_area(key="gen_prompt").value == "cab"
    assert app.slider(key="gen_temp").value == 0.5
    assert app.number_input(key="gen_topk").value == 3
    assert app.slider(key="gen_topp").value == 0.9
    assert app.number_input(key="gen_len").value == 17
    assert app.number_input(key="gen_seed").value == 42
    assert app.toggle(key="gen_greedy").value is True
    assert app.multiselect(key="gen_cmp").value == ["toy (yours)", "likes-b (yours)"]


def test_generation_streams_tokens_and_each_step_can_be_inspected(app):
    app.query_params.update(gen_model="likes-b (yours)", gen_prompt="ab", gen_len="12", gen_seed="1")
    app.run()
    app.button(key="gen_go").click().run()
    assert not errors(app)
    text = next(m.value for m in app.markdown if "font-family:monospace" in m.value)
    assert text.count('title="step ') == 12 and "step 12: p = " in text
    step = app.slider(key="gen_step")
    assert (step.value, step.max) == (1, 12)
    step.set_value(5).run()
    charts = app.get("plotly_chart")
    assert any("Step 5: drew" in chart.proto.spec for chart in charts)
    assert "outline:2px solid" in next(m.value for m in app.markdown if "font-family:monospace" in m.value)


def test_the_same_seed_gives_the_same_text(app):
    def generated(at):
        at.button(key="gen_go").click().run()
        return next(m.value for m in at.markdown if "font-family:monospace" in m.value)

    app.query_params.update(gen_model="toy (yours)", gen_prompt="a", gen_len="30", gen_seed="7")
    app.run()
    assert generated(app) == generated(app)


def test_bad_prompts_get_a_clear_message(app):
    app.query_params.update(gen_model="likes-b (yours)", gen_prompt="")
    app.run()
    app.button(key="gen_go").click().run()
    assert not app.exception
    assert any("non-empty prompt" in e.value for e in app.error), [e.value for e in app.error]


def test_unknown_prompt_pieces_read_as_unk_with_a_note_as_in_the_ngram_lab(app):
    """Issue 19: the N-gram lab read unseen words as <unk>, Generation refused the same model's prompt."""
    app.query_params.update(gen_model="toy (yours)", gen_prompt="abz!", gen_len="5")
    app.run()
    assert any("'z', '!'" in i.value and "read as <unk>" in i.value for i in app.info), [i.value for i in app.info]
    app.button(key="gen_go").click().run()
    assert not app.error, [e.value for e in app.error]
    assert any("font-family:monospace" in m.value for m in app.markdown)


def test_an_infinite_score_is_explained(app):
    from mllm_core.ngram import train_text_lm

    app.run()
    mle = train_text_lm("the cat sat", 2, level="char", smoothing="mle", name="mle bigram")
    app.session_state[MODELS_KEY] = {**app.session_state[MODELS_KEY], "mle bigram": mle}
    app.run()
    app.button(key="gen_score").click().run()
    assert any("mle bigram (yours)**: inf bits" in m.value for m in app.markdown)
    assert any("probability 0" in c.value and "MLE" in c.value for c in app.caption)


def test_a_failed_generation_does_not_leave_the_previous_text_on_screen(app):
    app.query_params.update(gen_model="toy (yours)", gen_prompt="ab", gen_len="5")
    app.run()
    app.button(key="gen_go").click().run()
    assert any("font-family:monospace" in m.value for m in app.markdown)
    app.query_params.update(gen_model="likes-b (yours)")
    app.selectbox(key="gen_model").set_value("likes-b (yours)")
    app.text_area(key="gen_prompt").set_value("").run()
    app.button(key="gen_go").click().run()
    assert any("non-empty prompt" in e.value for e in app.error)
    assert not any("font-family:monospace" in m.value for m in app.markdown)


def test_side_by_side_runs_the_same_prompt_through_several_models(app):
    app.query_params.update(
        gen_prompt="ab", gen_len="20", gen_cmp=["toy (yours)", "likes-b (yours)"], gen_greedy="true"
    )
    app.run()
    app.button(key="gen_cmp_go").click().run()
    assert not errors(app)
    outputs = [m.value for m in app.markdown if "font-family:monospace" in m.value]
    assert len(outputs) == 2
    assert outputs[1].count(">b</span>") == 20  # greedy on likes-b: always "b"
    app.run()  # any later rerun (another widget) keeps the comparison on screen
    assert [m.value for m in app.markdown if "font-family:monospace" in m.value] == outputs


def test_the_leaderboard_ranks_every_default_by_bits_per_character(app):
    app.run()
    jobs = zoo.default_jobs()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not all(j.snapshot().finished for j in jobs.values()):
        time.sleep(0.5)
    assert all(j.snapshot().state == training.DONE for j in jobs.values()), {
        n: (j.snapshot().state, j.snapshot().error) for n, j in jobs.items()
    }
    app.run()
    assert not errors(app)
    table = app.dataframe[0].value
    assert set(table["model"]) == set(zoo.NAMES)
    assert table["bits per char"].notna().all()
    # every model scores the same characters, as the page says (the GPT once scored one fewer)
    assert {row.evaluation.n_chars for row in zoo.leaderboard(jobs)} == {len(zoo.validation_text())}
    assert list(table["bits per char"]) == sorted(table["bits per char"])
    baseline = table.set_index("model").loc[zoo.BASELINE_NAME, "bits per char"]
    assert table.set_index("model").loc["3-gram", "bits per char"] < baseline
    assert app.selectbox(key="gen_model").value == zoo.GPT_NAME
    app.button(key="gen_go").click().run()  # a trained default generates too
    assert not errors(app)
    assert any("font-family:monospace" in m.value for m in app.markdown)
    app.button(key="gen_score").click().run()  # and this session's models join on the same text
    assert any("toy (yours)**: 2.322 bits per character" in m.value for m in app.markdown)


def test_token_spans_escape_html_and_show_their_probability():
    from ui.generation import StepView, tokens_html

    html = tokens_html("<i>", [StepView("<b>", 0.25, ()), StepView(" ", 1.0, ())], selected=2)
    assert "&lt;i&gt;" in html and "&lt;b&gt;" in html and "<b>" not in html
    assert 'title="step 1: p = 0.250"' in html and html.count("outline:2px") == 1


def test_the_leaderboard_table_leaves_unscored_models_blank():
    from mllm_core.metrics import Evaluation
    from ui.generation import leaderboard_chart, leaderboard_frame

    rows = [
        zoo.LeaderboardRow("5-gram", "n-gram", training.DONE, Evaluation("5-gram", 200.0, 100, 100)),
        zoo.LeaderboardRow("transformer", "transformer", training.RUNNING, None),
    ]
    table = leaderboard_frame(rows)
    assert table.loc[0, "bits per char"] == 2.0 and table.loc[0, "perplexity (per char)"] == 4.0
    assert math.isnan(table.loc[1, "bits per char"]) and table.loc[1, "status"] == "running"
    assert list(leaderboard_chart(rows).data[0].y) == ["5-gram"]


def test_a_long_prompt_stays_out_of_the_url(app):
    """Issue 19: a 20,000-character prompt made a 20,062-character URL."""
    app.run()
    app.text_area(key="gen_prompt").set_value("once upon a time").run()
    assert app.query_params["gen_prompt"] == "once upon a time"
    app.text_area(key="gen_prompt").set_value("x" * 20_000).run()
    assert "gen_prompt" not in app.query_params and len(app.text_area(key="gen_prompt").value) == 20_000


def test_the_cold_start_leaderboard_shows_dashes_and_no_empty_chart(monkeypatch, app):
    """Issue 19: before any score, the table showed "None" cells and the chart a squashed empty frame."""
    monkeypatch.setattr(
        zoo, "leaderboard", lambda jobs: [zoo.LeaderboardRow(n, "n-gram", training.RUNNING, None) for n in jobs]
    )
    app.run()
    assert not app.get("plotly_chart") or all("Leaderboard" not in c.proto.spec for c in app.get("plotly_chart"))
    assert any("first scores land" in c.value for c in app.caption)
    from ui.generation import leaderboard_frame, leaderboard_style

    html = leaderboard_style(leaderboard_frame(zoo.leaderboard({"3-gram": None}))).to_html()
    assert "None" not in html and "nan" not in html and "–" in html
