"""The shared UI pieces: token labels, and the training controls driven through a tiny page
(train, watch, pause, resume, stop)."""

import time

import numpy as np
import pandas as pd
import pytest
import torch
from streamlit.testing.v1 import AppTest

from mllm_core import training
from ui import attention, common, embeddings, generation, ngram, rnn, tokenizer
from ui.common import MARGIN, curve, loss_chart, show_token


def snapshot(history: dict[str, list[tuple[int, float]]]) -> training.JobSnapshot:
    """A finished job's snapshot with this metric history."""
    return training.JobSnapshot("t", "done", 3, 3, 1.0, None, None, history, {}, "cpu")


def test_show_token_draws_whitespace_as_the_tokenizer_lab_does():
    assert show_token("a b\n\tc") == "a␣b↵⇥c"
    assert show_token("") == "∅"


def test_attention_and_generation_label_tokens_alike():
    tokens = ["a\n", " b"]
    heatmap = attention.attention_heatmap(torch.eye(2), tokens)
    assert list(heatmap.layout.xaxis.ticktext) == list(heatmap.layout.yaxis.ticktext) == ["a↵", "␣b"]
    step = generation.StepView("a\n", 0.5, tuple((t, 0.5, 0.5) for t in tokens))
    assert list(generation.next_token_chart(step, 1).data[0].x) == ["a↵", "␣b"]


def test_a_job_history_becomes_one_line_per_metric_with_points():
    snap = snapshot({"loss": [(1, 2.0), (2, 1.0)], "val_loss": [], "accuracy": [(2, 0.5)]})
    chart = loss_chart(snap, ("loss", "val_loss", "never reported"))
    assert [(t.name, t.x, t.y, t.mode) for t in chart.data] == [("loss", (1, 2), (2.0, 1.0), "lines+markers")]  # sparse
    counting = rnn.counting_chart(snap)
    assert [(t.name, t.yaxis) for t in counting.data] == [("loss", "y"), ("accuracy", "y2")]
    assert curve([]) == [] and curve([(3, 0.5)], name="x")[0].x == (3,)


@pytest.mark.parametrize("log_y", [False, True])
def test_the_unvalidated_loss_chart_is_what_plotly_validates(log_y):
    """loss_chart skips plotly's validation for speed; a validated build of it must not differ."""
    import plotly.graph_objects as go

    points = [(i, 3 - i / 1000) for i in range(1, 1001)]  # thinned to MAX_POINTS
    snap = snapshot({"loss": points, "val_loss": [(0, 3.1), (500, 2.0)]})
    fast = loss_chart(snap, ("loss", "val_loss"), "T", log_y=log_y, x_title="words")
    slow = go.Figure()
    for metric, mode in (("loss", "lines"), ("val_loss", "lines+markers")):
        slow.add_traces(curve(snap.history[metric], mode=mode, name=metric))
    slow.update_layout(title="T", xaxis_title="words", height=320, margin=MARGIN, legend=dict(orientation="h", y=-0.25))
    if log_y:
        slow.update_yaxes(type="log")
    assert go.Figure(fast.to_dict()).to_plotly_json() == slow.to_plotly_json()  # validated: no invalid key
    assert len(fast.data[0].x) <= common.MAX_POINTS + 1


def test_every_labs_charts_share_one_margin():
    history = {"loss": [(1, 2.0), (2, 1.0)], "accuracy": [(1, 0.5), (2, 1.0)]}
    figures = [
        loss_chart(snapshot(history)),
        tokenizer.zipf_chart([3, 2, 1], "Zipf"),
        ngram.bar_chart(pd.DataFrame({"n": [1, 2], "x": [0.1, 0.2]}), "x", "bars", "x"),
        embeddings.scatter(["a", "b"], np.eye(2), {"a": "#f00"}, "map"),
        rnn.counting_chart(snapshot(history)),
        attention.matrix_heatmap(torch.eye(2), "matrix", "x", "y"),
        generation.chosen_probability_chart([generation.StepView("a", 0.5, ())]),
    ]
    assert [fig.layout.margin.to_plotly_json() for fig in figures] == [MARGIN] * len(figures)


def controls_page():

    import streamlit as st

    from mllm_core import training
    from ui.common import live, loss_chart, training_controls

    def make_target():  # 100,000 steps of 2 ms: runs until stopped
        return training.spec(training.sum_target, [1.0] * 100_000, delay=0.002)

    st.title("controls")
    live(
        training_controls("demo", make_target),
        lambda snap: st.plotly_chart(loss_chart(snap, ("total",)), key="demo_chart"),
    )


def button(at, key):
    return next(b for b in at.button if b.key == key)


def session_job(name="demo"):
    jobs = [j for j in training.executor().jobs() if j.name == name]
    return jobs[-1] if jobs else None


@pytest.fixture(params=["thread", "process"])
def executor_kind(request, monkeypatch):
    """The page tests below run on both executors: threads (notebooks) and worker processes (the app)."""
    monkeypatch.setenv(training.EXECUTOR_ENV, request.param)
    return request.param


def test_train_pause_resume_stop_from_the_page(executor_kind, caplog):
    caplog.set_level("INFO", logger="ui.common")
    at = AppTest.from_function(controls_page, default_timeout=60)
    at.run()
    assert not at.exception
    assert button(at, "demo_stop").disabled  # nothing to stop yet

    button(at, "demo_start").click()
    at.run()
    assert not at.exception
    job = session_job()
    assert job is not None and job.alive
    deadline = time.monotonic() + 60
    while job.snapshot().step < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    at.run()
    assert at.get("plotly_chart"), "a live loss chart is drawn"
    assert any("running" in (p.proto.text or "") for p in at.get("progress")), [
        p.proto.text for p in at.get("progress")
    ]

    button(at, "demo_pause").click()
    at.run()
    assert job.snapshot().state == "paused"
    drew = [r.message for r in caplog.records if "live view drew step" in r.message]
    assert len(drew) == 1 and drew[0].startswith("job 'demo'"), drew  # logged once per job (bench.classroom)
    assert any(b.key == "demo_resume" for b in at.button)
    button(at, "demo_resume").click()
    at.run()
    assert job.snapshot().state == "running"

    button(at, "demo_stop").click()
    at.run()
    assert job.snapshot().state == "stopped" and not job.alive


def test_train_again_with_the_same_settings_keeps_the_fresh_job_and_later_restarts_it(monkeypatch):
    """A second Train on the same spec right after the first (or Streamlit replaying the click when a
    rerun preempts it) keeps the job that has just started; after `SAME_START_S` it restarts."""
    at = AppTest.from_function(controls_page, default_timeout=60)
    at.run()
    button(at, "demo_start").click()
    at.run()
    first = session_job()
    button(at, "demo_start").click()
    at.run()
    assert session_job() is first and first.alive
    monkeypatch.setattr(common, "SAME_START_S", 0.0)
    button(at, "demo_start").click()
    at.run()
    second = session_job()
    assert second is not first and second.alive
    assert first.join(30) and first.snapshot().state == "stopped"
    second.stop(timeout=10)


def test_closing_the_tab_stops_the_sessions_jobs(executor_kind, monkeypatch):
    """Streamlit releases a session's resource caches when its tab disconnects; on_release parks the
    jobs for a reload of the same tab, and `PARK_SECONDS` later stops them."""
    from streamlit.runtime.caching.cache_resource_api import clear_session_cache

    monkeypatch.setattr(common, "PARK_SECONDS", 0.5)
    at = AppTest.from_function(controls_page, default_timeout=60)
    at.run()
    button(at, "demo_start").click()
    at.run()
    job = session_job()
    assert job.alive
    clear_session_cache("test session id")  # what the runtime calls when the tab closes
    assert job.join(30) and job.snapshot().state == "stopped"


def test_a_reload_of_the_tab_finds_its_running_job_and_its_models(executor_kind):
    from streamlit.runtime.caching.cache_resource_api import clear_session_cache

    at = AppTest.from_function(controls_page, default_timeout=60)
    at.run()
    token = at.query_params[common.TAB_PARAM]
    assert token
    button(at, "demo_start").click()
    at.run()
    job = session_job()
    deadline = time.monotonic() + 60  # a worker process may take a while to start on a busy CI host
    while job.snapshot().state == "queued" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert job.snapshot().state == "running"
    clear_session_cache("test session id")  # the reload closes the old session...
    again = AppTest.from_function(controls_page, default_timeout=60)
    again.query_params[common.TAB_PARAM] = token  # ...and opens the same URL
    again.run()
    assert job.alive and job.snapshot().state == "running"
    assert button(again, "demo_pause").disabled is False  # the page shows the job as its own
    assert again.query_params[common.TAB_PARAM] == token


def test_a_shared_link_does_not_hand_over_a_live_tabs_jobs():
    first = common.parking().claim(None)
    second = common.parking().claim(first.token)  # someone opened a URL with the same tab name
    assert second is not first and second.token != first.token
