"""The Scaling page: the class ladder with its fit and prediction, a student's ladder and its bad inputs,
the induction-head figures, in-context learning on text."""

import time

import pagetest
import plotly.graph_objects as go
import plotly.io as pio
import pytest
from streamlit.testing.v1 import AppTest

from mllm_core import training, zoo

PAGE = "pages/scaling.py"


def wait(job: training.TrainingJob, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not job.snapshot().finished:
        assert time.monotonic() < deadline, f"{job.name} did not finish"
        time.sleep(0.2)
    assert job.snapshot().state == training.DONE, job.snapshot().error


@pytest.fixture
def page() -> AppTest:
    at = pagetest.opened(PAGE)
    for job in (zoo.scaling_job(), zoo.induction_job(), zoo.default_job(zoo.GPT_NAME)):
        wait(job)
    return pagetest.run(at)


def chart(at: AppTest, key: str) -> go.Figure:
    return next(pio.from_json(c.proto.spec) for c in at.get("plotly_chart") if c.proto.id.endswith(f"-{key}"))


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def test_the_class_ladder_shows_its_fit_and_how_close_the_prediction_landed(page):
    assert page.title[0].value.endswith(" Scaling")
    assert not errors(page)
    result = zoo.scaling_job().result
    text = " ".join(m.value for m in page.markdown)
    assert f"reached **{result.prediction.actual:.3f}**" in text and f"**{result.prediction.predicted:.3f}**" in text
    fig = chart(page, "sc_default_params")
    assert list(fig.data[0].x) == [r.params for r in result.runs]
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert any(f"α = {result.law.alpha:.2f}" in (t.name or "") for t in fig.data)
    compute = chart(page, "sc_default_compute")
    assert "compute-efficient frontier" in [t.name for t in compute.data]
    assert len(chart(page, "sc_default_data").data) == 2


def test_a_ladder_of_three_or_zero_steps_is_explained_and_cannot_start(page):
    page.tabs  # noqa: B018 - every tab is rendered; widgets are reached by key
    page.multiselect(key="sc_rungs").set_value(page.multiselect(key="sc_rungs").value[:3]).run()
    assert any("at least 4 models" in e for e in errors(page))
    assert page.button(key="sc_start").disabled
    page.multiselect(key="sc_rungs").set_value(page.multiselect(key="sc_rungs").options[:4])
    page.number_input(key="sc_steps").set_value(0).run()
    assert any("steps must be at least 1" in e for e in errors(page))
    assert not page.exception


def test_a_corpus_too_small_for_the_context_gets_a_clear_message(page):
    page.selectbox(key="sc_corpus").set_value("fox").run()
    assert any("too small for this ladder" in e and "context of 65" in e for e in errors(page))
    assert page.button(key="sc_start").disabled


def test_a_student_trains_a_small_ladder_in_the_background(page):
    page.multiselect(key="sc_rungs").set_value(page.multiselect(key="sc_rungs").options[:4])
    page.number_input(key="sc_steps").set_value(10)
    page.selectbox(key="sc_block").set_value(16).run()
    page.button(key="sc_start").click().run()
    job = pagetest_job("sc")
    wait(job, timeout=180)
    pagetest.run(page)
    assert len(job.result.runs) == 4 and job.result.prediction.actual is not None
    assert list(chart(page, "sc_own_params").data[0].x) == [r.params for r in job.result.runs]


def pagetest_job(slot: str) -> training.TrainingJob:
    jobs = [j for j in training.executor().jobs() if j.name == slot]
    assert jobs, f"no job in slot {slot}"
    return jobs[-1]


def test_the_induction_tab_draws_both_models_and_the_best_heads_attention(page):
    runs = zoo.induction_job().result
    assert set(runs) == {"2-layer", "1-layer"}
    phase = chart(page, "sc_phase")
    assert {t.name for t in phase.data} >= {"2-layer: repeated half", "1-layer: repeated half"}
    positions = chart(page, "sc_positions")
    assert len(positions.data[0].y) == 2 * runs["2-layer"].config.half - 1
    best_layer, best_head, _ = runs["2-layer"].best_head
    assert chart(page, "sc_ind_map").layout.title.text.startswith(f"Layer {best_layer}, head {best_head}")
    page.radio(key="sc_ind_model").set_value("1-layer").run()
    assert chart(page, "sc_ind_scores").layout.title.text.startswith("1-layer")
    assert not page.exception and not errors(page)


def test_in_context_learning_on_text_shows_the_score_of_the_default_transformer(page):
    metric = next(m for m in page.metric if m.label == "In-context learning score")
    assert metric.value.endswith("nats")
    curve = chart(page, "sc_icl").data[0].y
    assert len(curve) == zoo.current_model(zoo.default_job(zoo.GPT_NAME), zoo.GPT_NAME).block_size
