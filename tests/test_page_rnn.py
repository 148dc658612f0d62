"""The RNN page: counts with its defaults offline, explains bad input, trains and hands a char-LSTM on."""

from __future__ import annotations

import time

import pytest
from pagetest import opened as _opened
from pagetest import run
from streamlit.testing.v1 import AppTest

from mllm_core import training, zoo
from ui import rnn as view
from ui.common import MODELS_KEY

PAGE = "pages/rnn.py"


def opened(**query) -> AppTest:
    """The page opened from a shared link with these query parameters (widget keys), run once."""
    return _opened(PAGE, **query)


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def run_until(at: AppTest, done, timeout: float = 90) -> AppTest:
    """Rerun the page until `done(at)` holds (a background job finished and its result is drawn)."""
    deadline = time.monotonic() + timeout
    while not done(run(at)):
        assert not errors(at), errors(at)
        assert time.monotonic() < deadline, "the job did not finish in time"
        time.sleep(0.5)
    return at


@pytest.fixture(scope="module")
def default_page() -> AppTest:
    """The page once the class-wide default counter has trained (it trains in the background)."""
    return run_until(opened(), lambda at: "Predicted next number" in metrics(at), timeout=120)


def test_the_default_counter_trains_in_the_background_without_blocking_the_page():
    at = opened()  # the first visit on this server (only this page starts the default counter)
    assert not errors(at), errors(at)
    assert any("one for the whole class" in c.value and "updates by itself" in c.value for c in at.caption)
    assert "Predicted next number" not in metrics(at)
    assert zoo.counter_job().join(120)
    assert metrics(run(at))["Predicted next number"] == "11"


def test_defaults_predict_11_after_7_8_9_10(default_page):
    at = default_page
    assert not errors(at), errors(at)
    assert at.text_input(key="rnn_seq").value == "7 8 9 10"
    assert metrics(at)["Predicted next number"] == "11"
    assert any(c.value.startswith("Querying the default counter") for c in at.caption)
    charts = [c.proto.spec for c in at.get("plotly_chart")]
    assert any("p(next number)" in s for s in charts) and any("Hidden state" in s for s in charts)
    assert any("seed's result" in s for s in charts)  # the reference curve is shown before any run
    assert at.selectbox(key="rnn_linit").value == "torch" and at.select_slider(key="rnn_lstep").value == 38
    assert any("Where this run differs from the seed's" in m.value for m in at.markdown)


@pytest.mark.parametrize(
    "typed, message",
    [("7 eight 9", "whole numbers"), ("7 8 500", "outside 0..127"), ("   ", "at least one"), ("3.5 4", "whole")],
)
def test_bad_sequences_get_a_clear_message(default_page, typed, message):
    at = default_page
    at.text_input(key="rnn_seq").set_value(typed)
    run(at)
    assert any(message in e for e in errors(at)), errors(at)
    at.text_input(key="rnn_seq").set_value("7 8 9 10")
    run(at)
    assert not errors(at)


def test_sequences_of_any_length_can_be_queried(default_page):
    at = default_page
    for typed, expected in (("41", "42"), ("60 61 62 63 64 65 66 67 68 69", "70")):
        at.text_input(key="rnn_seq").set_value(typed)
        run(at)
        assert metrics(at)["Predicted next number"] == expected
    heatmap = [c.proto.spec for c in at.get("plotly_chart") if "Hidden state" in c.proto.spec][0]
    assert "10: 69" in heatmap  # one column per number read


def test_training_a_counter_shows_live_curves_and_queries_the_new_model():
    at = opened(rnn_v=32, rnn_len=4, rnn_seq="7 8 9 10")
    at.button(key="rnn_count_start").click()
    run_until(at, lambda a: any(p.proto.text.startswith("done") for p in a.get("progress")))
    assert any(c.value.startswith("Querying your") for c in at.caption)
    assert metrics(at)["Predicted next number"] == "11"
    assert any("training accuracy per epoch" in c.proto.spec for c in at.get("plotly_chart"))
    at.text_input(key="rnn_seq").set_value("7 40")
    run(at)
    assert any("outside 0..31" in e for e in errors(at))  # the new model knows 32 numbers


def test_experiments_run_in_the_background_with_progress_and_can_be_stopped():
    at = opened(rnn_lstep=38)
    at.button(key="rnn_lengths_start").click()
    run(at)
    jobs = [j for j in training.executor().jobs() if j.name == "rnn_lengths"]
    assert len(jobs) == 1 and jobs[0].snapshot().total_steps == 24  # 3 seeds x L = 4, 42, 80, 118 x RNN, LSTM
    assert any("step" in p.proto.text for p in at.get("progress"))
    at.button(key="rnn_lengths_stop").click()
    run(at)
    assert not jobs[0].alive and jobs[0].snapshot().state == "stopped"


def test_length_chart_draws_each_cell_as_a_mean_in_a_band_from_worst_to_best_seed():
    curves = {"rnn": [(4, 1.0), (118, 0.8), (4, 0.98), (118, 0.9)], "lstm": [(4, 1.0), (118, 0.96)]}
    fig = view.curves_chart(curves, "t", "L")
    band, mean = fig.data[0], fig.data[1]
    assert band.fill == "toself" and "worst to best of 2 seeds" in band.name
    assert list(band.x) == [4, 118, 118, 4] and list(band.y) == [1.0, 0.9, 0.8, 0.98]  # hi out, lo back
    assert list(mean.x) == [4, 118] and list(mean.y) == pytest.approx([0.99, 0.85])
    assert [d.name for d in fig.data[2:]] == ["LSTM, ours"]  # one seed: a line, no band
    summary = view.band_summary(curves)
    assert summary.startswith("At L = 118, over 1 seed:") and "RNN (hand-written) 0.850 (0.800–0.900)" in summary


def test_gradient_norms_are_measured_per_step():
    at = opened(rnn_glen=6, rnn_gsteps=0)
    at.button(key="rnn_grad_start").click()
    run_until(at, lambda a: any("gradient norm" in c.proto.spec for c in a.get("plotly_chart")))
    assert any("step 1 gets" in c.value for c in at.caption)


def test_char_lstm_on_too_little_text_is_explained():
    at = opened(rnn_corpus="fox")
    at.button(key="rnn_lstm_start").click()
    run(at)
    assert any("too short" in e for e in errors(at)), errors(at)


def test_char_lstm_trains_with_samples_and_is_offered_to_generation():
    at = opened(rnn_corpus="lee-news", rnn_lh=64, rnn_lsteps=20, rnn_levery=10)
    at.button(key="rnn_lstm_start").click()
    run_until(at, lambda a: bool(a.success), timeout=120)
    name = "char-LSTM · lee-news (RNN lab, 64)"
    assert name in at.success[0].value
    lm = at.session_state[MODELS_KEY][name]
    assert lm.decode(lm.encode("the news")) == "the news"
    assert at.code and any("Sample at step 20" in m.value for m in at.markdown)


def test_an_impossible_counting_task_disables_train_and_says_why():
    """Issue 19: V = 8, L = 40 said "all 0 runs", kept Train enabled and failed after starting."""
    at = opened(rnn_v=8, rnn_len=40)
    assert at.button(key="rnn_count_start").disabled
    assert not any("all 0 runs" in c.value or "all -32 runs" in c.value for c in at.caption)
    assert any("need more than L = 40 numbers" in c.value for c in at.tabs[0].caption)
    assert not opened(rnn_v=41, rnn_len=40).button(key="rnn_count_start").disabled  # one run is enough


def test_an_error_from_train_shows_under_its_button_in_its_tab():
    """Issue 19: a one-word file's error showed above the title and the tabs jumped back to Counting."""
    at = opened(rnn_tab="Char-LSTM", rnn_corpus="hello")
    at.button(key="rnn_lstm_start").click()
    run(at)
    lstm = at.tabs[4]
    body = list(lstm)  # depth first, in page order
    button = next(i for i, e in enumerate(body) if getattr(e, "key", None) == "rnn_lstm_start")
    error = next(i for i, e in enumerate(body) if e.type == "error" and "too short" in e.value)
    assert error > button and not [e for e in at.main.children.values() if e.type == "error"]
    assert at.session_state["rnn_tab"] == "Char-LSTM"
    assert all(j.name != "rnn_lstm" for j in training.executor().jobs())
