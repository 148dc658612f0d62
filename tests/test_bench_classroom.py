"""The classroom benchmark's pure helpers: reading the job status line, summarising timings with
time-outs, when the CPU settles, a process tree. No browser and no Streamlit server start here."""

from __future__ import annotations

import doctest
import os

import pytest

from bench import classroom
from bench.classroom import (
    descendants,
    median_max,
    parse_status,
    report_lines,
    settle_time,
    summarise,
    table,
    tree_usage,
)
from mllm_core.training import JobSnapshot
from ui import common


def snapshot(state: str, step: int, total: int | None) -> JobSnapshot:
    return JobSnapshot("att", state, step, total, 12.0, None, None, {}, {}, "cpu")


@pytest.mark.parametrize(
    "state,step,total", [("queued", 0, None), ("running", 0, 1000), ("running", 1012, 2000), ("done", 1000, 1000)]
)
def test_parse_status_reads_what_job_status_writes(monkeypatch, state, step, total):
    drawn = []
    monkeypatch.setattr(common.st, "progress", lambda value, text: drawn.append(text))
    monkeypatch.setattr(common.st, "caption", drawn.append)
    common.job_status(snapshot(state, step, total))
    assert parse_status(f"Parameters\n{drawn[0]}\nTrain loss") == (state, step)


def test_docstring_examples():  # pytest skips bench/ when it collects doctests
    assert doctest.testmod(classroom).failed == 0


def test_parse_status_ignores_the_sidebar_and_the_class_default():
    assert parse_status("• att: running, step 12, ETA 1:10") is None
    assert parse_status("Class default model (GPT): running, step 3/1000") is None
    assert parse_status("") is None and parse_status(None) is None


def test_median_and_max_of_exact_timings():
    assert median_max([(3.0, True)]) == ((3.0, True), (3.0, True))
    assert median_max([(1.0, True), (5.0, True), (2.0, True), (4.0, True)]) == ((3.0, True), (5.0, True))
    assert median_max([]) is None


def test_a_time_out_ranks_above_every_exact_timing():
    # 8 of 10 students still queued at the 120-s limit: the median is a lower bound, not 120 s exactly
    timings = [(93.0, True), (20.0, True)] + [(120.0, False)] * 8
    assert median_max(timings) == ((120.0, False), (120.0, False))
    # a switch cut short at 10 s still ranks above a 30-s switch that finished
    assert median_max([(30.0, True), (10.0, False)])[1] == (10.0, False)


def test_settle_time_needs_the_cpu_quiet_for_consecutive_seconds():
    busy_then_quiet = [(float(t), min(t, 5) * 0.9 + t * 0.01) for t in range(12)]
    assert settle_time(busy_then_quiet, start=2.0) == pytest.approx(3.0)  # quiet from t = 5
    blip = [(0, 0.0), (1, 0.01), (2, 0.9), (3, 0.91), (4, 0.92), (5, 0.93)]
    assert settle_time(blip, start=0.0, hold=3) == 2.0  # the quiet second before the blip does not count
    assert settle_time(blip, start=0.0, hold=4) is None
    assert settle_time([(float(t), 0.0) for t in range(6)], start=1.5) == 0.0  # quiet already


def test_descendants_follow_the_parent_links_only():
    parents = {2: 1, 3: 2, 4: 3, 5: 1, 6: 5}
    assert descendants(parents, 2) == {2, 3, 4}
    assert descendants(parents, 4) == {4}


def test_tree_usage_of_this_process():
    usage = tree_usage(os.getpid())
    assert usage["processes"] >= 1 and usage["threads"] >= 1
    assert usage["rss"] > 10 * 2**20 and usage["cpu"] > 0
    assert tree_usage(2**22 + 1) is None  # above Linux's largest pid


def raw_run(students: list[tuple[float | None, str | None]]) -> dict:
    """Raw timings of a class: per student (first step or None, last state seen or None = never ready)."""
    students = [
        {
            "ready_s": None if state is None else 10.0 + i,
            "first_step_s": first,
            "samples": [{"t": 50.0, "status": f"{state} · step {7 if first else 0} / 1,000"}] if state else [],
            "exceptions": 0,
            "traceback": False,
            "failed": state == "failed",
            "error": None,
        }
        for i, (first, state) in enumerate(students)
    ]
    switcher = {
        "load": (4.0, True),
        "switches": [{"s": 2.0}, {"s": 3.0}, {"s": None, "waited_s": 60.0}],
        "exceptions": 1,
        "traceback": True,
        "failed": False,
        "error": None,
    }
    return {
        "config": {"pin": True, "timeout": 120.0, "first_step_limit_s": 120.0},
        "students": students,
        "switcher": switcher,
        "health": [(1.0, 0.02), (1.5, 0.4), (2.0, None)],
        "server": [(t, {"rss": 500 * 2**20 + t, "cpu": min(t, 60) * 0.9}) for t in range(0, 100)],
        "client": [(t, {"cores": {"cpu0": (t * 50, t * 100)}, "cpu": t * 0.25}) for t in range(0, 100)],
        "marks": {"open": 10.0, "closed": 60.0},
        "server_tracebacks": 0,
    }


def test_summary_and_table_row_of_a_class_of_four():
    raw = raw_run([(9.5, "running"), (None, "queued"), (None, "failed"), (None, None)])
    s = summarise(raw)
    assert s["all_ready"] == (120.0, False)  # one tab never got ready
    assert (s["showed_step"], s["stayed_queued"], s["failed_jobs"]) == (1, 1, 1)
    assert s["first_step"] == ((120.0, False), (120.0, False))
    assert s["switch"] == ((3.0, True), (60.0, False))
    assert (s["health_max_s"], s["health_failures"]) == (0.4, 1)
    assert s["tracebacks"] == 1
    assert s["idle_after_close_s"] == 0.0
    assert (s["cores_busy"], s["client_cores"]) == ({"cpu0": 0.5}, 0.25)
    row = table(s).splitlines()[-1]
    assert row.startswith(
        "| 4 (pinned) | > 120 s | 1 / 4 (1 stayed queued, 1 never loaded) | > 120 s / > 120 s | 3.0 s / > 60 s"
    )
    assert "| 0.40 s (1 failed) | 500 MiB |" in row


def test_the_report_names_the_student_on_a_machine_of_their_own():
    raw = raw_run([(9.5, "running"), (3.2, "running")]) | {
        "warm_up": {"s": 11.0, "still_training": ""},
        "shared_after_close": None,
        "server_exit": None,
        "server": [],
    }
    raw["students"][1] |= {"own_machine": True, "ready_s": 1.4}
    lines = report_lines(raw, summarise(raw)).splitlines()
    own = [line for line in lines if "machine of their own" in line]
    assert own == [
        "- the student on a machine of their own (the observer's second browser): the lab drawn in 1.4 s "
        "(opened with the class); the first step shown 3.2 s after their click"
    ]


def test_the_observer_process_polls_health_and_reports_on_stop():
    """The health probe runs in a process of its own and hands back its samples when stopped."""
    import http.server
    import threading
    import time

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the stdlib's name)
            self.send_response(200 if self.path == "/_stcore/health" else 404)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        observer = classroom.Observer(time.monotonic())
        observer.watch_health(f"http://127.0.0.1:{server.server_address[1]}")
        time.sleep(1.2)
        samples = observer.stop()
    finally:
        server.shutdown()
    assert len(samples) >= 2 and all(0 < latency < 5 for _, latency in samples)
    assert observer.proc.returncode == 0


PRIORITIES = """
import os, sys
from bench import classroom

class Started(Exception):
    pass

class Observer:  # no process: only the order of start and lowering is looked at here
    pid = None
    def __init__(self, *args, **kwargs): pass
    def stop(self): return []
    def watch_health(self, url):
        print("bench", os.getpriority(os.PRIO_PROCESS, 0), flush=True)
        raise Started

def start_server(pin, log):
    print("server", os.getpriority(os.PRIO_PROCESS, 0), flush=True)  # what the server's process inherits
    return Proc(), "http://127.0.0.1:1"

class Proc:
    pid = os.getpid()

classroom.Observer, classroom.start_server, classroom.stop_server = Observer, start_server, lambda proc: None
classroom.CHROMIUM = sys.executable
try:
    classroom.main(["--sessions", "1", "--spread"])
except Started:
    pass
"""


def test_the_server_starts_before_the_bench_lowers_its_priority():
    """With --spread the bench and its browsers run at nice 19; the server it starts must not
    inherit that, or it competes on equal terms with its own training workers (nice +10, capped at 19)."""
    import subprocess
    import sys

    before = os.getpriority(os.PRIO_PROCESS, 0)
    out = subprocess.run(
        [sys.executable, "-c", PRIORITIES], capture_output=True, text=True, timeout=60, cwd=classroom.ROOT
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["server", str(before), "bench", "19"]
