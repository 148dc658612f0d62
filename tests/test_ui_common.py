"""The shared UI pieces: token labels, and the training controls driven through a tiny page
(train, watch, pause, resume, stop)."""

import time

import numpy as np
import pandas as pd
import torch
from streamlit.testing.v1 import AppTest

from mllm_core import training
from ui import attention, embeddings, generation, ngram, rnn, tokenizer
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
    import time

    import streamlit as st

    from ui.common import live, loss_chart, training_controls

    def make_target():
        def loop(ctx):
            ctx.set_total(100_000)
            i = 0
            while True:
                ctx.check()
                i += 1
                ctx.report(loss=1.0 / i)
                time.sleep(0.002)

        return loop

    st.title("controls")
    live(training_controls("demo", make_target), lambda snap: st.plotly_chart(loss_chart(snap), key="demo_chart"))


def button(at, key):
    return next(b for b in at.button if b.key == key)


def session_job(name="demo"):
    jobs = [j for j in training.MANAGER.jobs() if j.name == name]
    return jobs[-1] if jobs else None


def test_train_pause_resume_stop_from_the_page():
    at = AppTest.from_function(controls_page, default_timeout=60)
    at.run()
    assert not at.exception
    assert button(at, "demo_stop").disabled  # nothing to stop yet

    button(at, "demo_start").click()
    at.run()
    assert not at.exception
    job = session_job()
    assert job is not None and job.alive
    deadline = time.monotonic() + 10
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
    assert any(b.key == "demo_resume" for b in at.button)
    button(at, "demo_resume").click()
    at.run()
    assert job.snapshot().state == "running"

    button(at, "demo_stop").click()
    at.run()
    assert job.snapshot().state == "stopped" and not job.alive


def test_closing_the_tab_stops_the_sessions_jobs():
    """Streamlit releases a session's resource caches when its tab disconnects; on_release stops the jobs."""
    from streamlit.runtime.caching.cache_resource_api import clear_session_cache

    at = AppTest.from_function(controls_page, default_timeout=60)
    at.run()
    button(at, "demo_start").click()
    at.run()
    job = session_job()
    assert job.alive
    clear_session_cache("test session id")  # what the runtime calls when the tab closes
    assert not job.alive and job.snapshot().state == "stopped"
