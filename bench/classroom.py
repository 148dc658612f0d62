"""python -m bench.classroom --sessions N [--pin]: a class presses Train at the same moment.

The scenario of issue 13 ("Classroom at scale"), in real headless Chromium driven by playwright:

1. warm: `streamlit run app.py` (default settings) on a free localhost port; one tab opens Home
   and the Attention lab, and waits until the shared default models have finished training (or
   `--warmup` seconds);
2. N students open the Attention lab at once ("all pages ready" = the last one showing an idle
   page with its Train button) and, at one barrier, all press **Train**. Each student's "first
   step" is the first time the job status line (`ui.common.job_status`: "running · step 12 /
   1,000 · ...") shows a step > 0; the class trains for `--duration` seconds, then every tab
   closes. With --own-student, one of them is a student on a machine of their own, in the
   observer (step 3), whose page is drawn by a browser that is not starved;
3. meanwhile one more user arrives (a timed page load of Home) and switches between Home and
   the Tokenizer through the sidebar, timing each switch until the new title is drawn and
   Streamlit's "running" indicator has gone, and `/_stcore/health` is polled every 0.5 s; both
   run in an observer process with a browser of its own, at the priority the bench was started with
   (the students' tabs run at nice 10, or 19 with --spread, and their Chromium at 19 with either:
   `lower_browsers`), on core 1 with --pin (see `Observer`): they stand for people on other machines;
4. a sampler reads the server's process tree from /proc every second (RSS, CPU time, threads),
   which gives the peak RSS and how long the CPU takes to go idle after the tabs close.

Clicks are DOM events sent to the button or link (see `train`). All tabs share one machine, unlike
a real class, so the run also reports how busy each core was and how much CPU the browsers took:
a figure measured with the client core saturated says as much about Chromium as about the server.

`--pin` puts the server on core 0 (`taskset -c 0`, roughly a small Community Cloud container)
and this process, so the browser it launches, on core 1. One core cannot draw 25 Streamlit tabs
(none finishes loading in 120 s while the server sits at 9% of its core); `--spread` lets the
browsers use both cores at nice 19, so on core 0 they only get what the server leaves. `--url` measures a running server
instead (`--pid` names its process for the RSS and CPU figures).

Prints the issue's table (header and one row) and writes every raw timing to `--json PATH`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import functools
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack, suppress
from pathlib import Path

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout
from playwright.async_api import async_playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking"]

LAB_PATH = "attention"  # ui.pages.LABS: pages/attention.py
LAB_SLOT = "att"  # the name of its training job (pages/attention.py)
FIRST_STEP_GOAL_S = 15.0  # issue 13: each student sees the first loss point within 15 s of clicking
HOME_TITLE = "LLM Playground"  # pages/home.py's st.title
SWITCH_PAGES = (("Tokenizer", "Tokenizer"), ("Home", HOME_TITLE))  # (sidebar link, page title)
SWITCH_PATHS = (("tokenizer", "Tokenizer"), ("", HOME_TITLE))  # the same pages' URL paths
SHARED_TRAINING = "Shared models training"  # ui.common.sidebar_status, while a default model trains
SWITCH_LIMIT_S = 60.0  # a page switch still waiting after this counts as "never loaded"
SWITCH_PAUSE_S = 1.0  # the other user reads for a second between two switches
SAMPLE_EVERY_S = 2.0  # how often a student's status line is recorded once it has shown a step
IDLE_WINDOW_S = 30.0  # how long after the tabs close the server's CPU is watched
IDLE_CPU = 0.05  # "idle": under 5% of one core...
IDLE_HOLD = 3  # ...for this many consecutive one-second samples

# job_status's line: "<state> · step <n>[ / <total>] · ..." (the sidebar writes "state, step n")
STATUS_RE = re.compile(r"(queued|running|paused|done|failed|stopped) · step ([\d,]+)")

# In the page: the job's status line, Streamlit's exception boxes and a "Training failed" message.
JS_SAMPLE = """pattern => {
    const main = document.querySelector("[data-testid='stMain']") || document.body;
    const text = main.innerText;
    const m = text.match(new RegExp(pattern));
    return {
        status: m ? m[0] : null,
        exceptions: document.querySelectorAll("[data-testid='stException']").length,
        traceback: document.body.innerText.includes("Traceback"),
        failed: text.includes("Training failed"),
    };
}"""
# Resolves once the status line shows a step > 0, a finished state, or a failure.
JS_FIRST_STEP = """pattern => {
    const main = document.querySelector("[data-testid='stMain']") || document.body;
    const text = main.innerText;
    const m = text.match(new RegExp(pattern));
    if (m && (m[2] !== "0" || ["done", "failed", "stopped"].includes(m[1]))) return m[0];
    return text.includes("Training failed") ? "failed · step 0" : null;
}"""
JS_IDLE = "() => !document.querySelector(\"[data-testid='stStatusWidget']\")"
JS_TITLE_IDLE = """title => !document.querySelector("[data-testid='stStatusWidget']")
    && [...document.querySelectorAll("[data-testid='stMain'] h1")].some(h => h.textContent.includes(title))"""


# ---------------------------------------------------------------------------------------------
# Pure helpers (tests/test_bench_classroom.py)


def parse_status(text: str | None) -> tuple[str, int] | None:
    """(state, step) from a job status line, or None.

    >>> parse_status("running · step 1,012 / 2,000 · 41s elapsed · ETA 40s")
    ('running', 1012)
    >>> parse_status("queued · step 0 · 0s elapsed"), parse_status("att: running, step 3")
    (('queued', 0), None)
    """
    m = STATUS_RE.search(text or "")
    return (m.group(1), int(m.group(2).replace(",", ""))) if m else None


Timing = tuple[float, bool]  # (seconds, exact); not exact = a lower bound (timed out, or cut short)


def median_max(timings: list[Timing]) -> tuple[Timing, Timing] | None:
    """The median and the maximum of timings some of which are lower bounds.

    A lower bound ranks above every exact value (it timed out, so it would have been longer);
    a median or maximum that is a lower bound stays marked as one.

    >>> median_max([(2.0, True), (4.0, True), (9.0, True)])
    ((4.0, True), (9.0, True))
    >>> median_max([(2.0, True), (60.0, False), (3.0, True), (5.0, True)])
    ((4.0, True), (60.0, False))
    >>> median_max([(2.0, True), (60.0, False), (60.0, False)])
    ((60.0, False), (60.0, False))
    """
    if not timings:
        return None
    ranked = sorted(timings, key=lambda t: (not t[1], t[0]))
    n = len(ranked)
    middle = ranked[(n - 1) // 2 : n // 2 + 1]
    median = (statistics.fmean(s for s, _ in middle), all(exact for _, exact in middle))
    return median, ranked[-1]


def settle_time(samples: list[tuple[float, float]], start: float, cores: float = IDLE_CPU, hold: int = IDLE_HOLD):
    """Seconds after `start` until CPU use stays under `cores` for `hold` consecutive intervals.

    `samples` are (time, cumulative CPU seconds) about a second apart; None if it never settles.

    >>> settle_time([(0, 0.0), (1, 0.9), (2, 1.8), (3, 1.81), (4, 1.82), (5, 1.83)], start=0.5)
    1.5
    >>> settle_time([(0, 0.0), (1, 0.9), (2, 1.8)], start=0) is None
    True
    """
    run = 0
    for i in range(1, len(samples)):
        (t0, c0), (t1, c1) = samples[i - 1], samples[i]
        if t1 <= start:
            continue
        run = run + 1 if max(0.0, c1 - c0) / (t1 - t0) < cores else 0
        if run == hold:
            return max(0.0, samples[i - hold][0] - start)
    return None


def span(samples: list[tuple[float, object]], t0: float, t1: float) -> tuple[tuple, tuple] | None:
    """The first and the last of the (t, value) samples taken between `t0` and `t1` (None if under two).

    >>> span([(0, "a"), (1, "b"), (2, "c"), (3, "d")], 0.5, 2.5)
    ((1, 'b'), (2, 'c'))
    """
    inside = [sample for sample in samples if t0 <= sample[0] <= t1]
    return (inside[0], inside[-1]) if len(inside) >= 2 else None


def busy_between(samples: list[tuple[float, dict]], t0: float, t1: float) -> dict[str, float]:
    """The fraction of time each core was busy between `t0` and `t1`, from samples of cumulative
    {core: (busy, total)} jiffies (`core_times()`); {} without two samples in the interval.

    >>> busy_between([(0, {"cpu0": (0, 0)}), (5, {"cpu0": (50, 100)}), (10, {"cpu0": (140, 200)})], 0, 10)
    {'cpu0': 0.7}
    """
    ends = span(samples, t0, t1)
    if ends is None:
        return {}
    (_, a), (_, b) = ends
    return {c: round((b[c][0] - a[c][0]) / max(1, b[c][1] - a[c][1]), 3) for c in a if c in b}


def descendants(parents: dict[int, int], root: int) -> set[int]:
    """`root` and every process below it, from a {pid: parent pid} map.

    >>> sorted(descendants({10: 1, 11: 10, 12: 11, 13: 1}, 10))
    [10, 11, 12]
    """
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return tree


def fmt_s(t: Timing | None) -> str:
    """'4.2 s', or '> 60 s' for a lower bound, or '–'.

    >>> fmt_s((4.24, True)), fmt_s((60.0, False)), fmt_s(None)
    ('4.2 s', '> 60 s', '–')
    """
    if t is None:
        return "–"
    return f"{t[0]:.1f} s" if t[1] else f"> {t[0]:.0f} s"


JOB_EVENT = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*job '(?P<job>[^']+)': (?P<event>first step|live view drew step)",
    re.M,
)
FIRST_STEP, DREW_STEP = "first step", "live view drew step"  # `training.TrainingJob`, `ui.common.live`


def server_first_steps(log: str, click_wall: float | None, job: str = LAB_SLOT, event: str = FIRST_STEP) -> list[float]:
    """Seconds from the click to each student job's first step, as the server logged them: the
    job's first reported step (`FIRST_STEP`, logged where it trains), or the first time its live
    view drew a step > 0 (`DREW_STEP`: the server has sent the tab its first loss point). Unlike the
    page's status line, neither depends on how fast the browsers draw.

    >>> line = "2026-12-01 10:00:05,500 worker 7 mllm_core.training job 'att': first step 2.0 s after its start"
    >>> drew = "2026-12-01 10:00:09,000 ui.common job 'att': live view drew step 12"
    >>> click = datetime.datetime(2026, 12, 1, 10, 0, 1).timestamp()
    >>> server_first_steps(line, click), server_first_steps(line + "\\n" + drew, click, event=DREW_STEP)
    ([4.5], [8.0])
    """
    if click_wall is None:
        return []
    stamps = []
    for m in JOB_EVENT.finditer(log):
        if m["job"] == job and m["event"] == event:
            at = datetime.datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            if at >= click_wall:
                stamps.append(round(at - click_wall, 3))
    return sorted(stamps)


def summarise(raw: dict) -> dict:
    """The table's figures from the raw timings `run_class` recorded."""
    students, limit = raw["students"], raw["config"]["first_step_limit_s"]
    ready = [(s["ready_s"], True) if s["ready_s"] is not None else (raw["config"]["timeout"], False) for s in students]
    first = [(s["first_step_s"], True) if s["first_step_s"] is not None else (limit, False) for s in students]
    last_states = [parse_status(s["samples"][-1]["status"]) if s["samples"] else None for s in students]
    switches = [(w["s"], True) if w["s"] is not None else (w["waited_s"], False) for w in raw["switcher"]["switches"]]
    health = [h for _, h in raw["health"]]
    rss = [r["rss"] for _, r in raw["server"]] or [None]
    cpu = [(t, r["cpu"]) for t, r in raw["server"]]
    closed = raw["marks"].get("closed")
    everyone = students + [raw["switcher"]]
    return {
        "sessions": len(students),
        "pinned": raw["config"]["pin"],
        "spread": raw["config"].get("spread", False),
        "all_ready": max(ready, key=lambda t: (not t[1], t[0])) if ready else None,
        "first_step_limit_s": limit,
        "showed_step": sum(exact for _, exact in first),
        "never_ready": sum(s["ready_s"] is None for s in students),
        "stayed_queued": sum(1 for s in last_states if s and s[0] == "queued"),
        "first_step": median_max(first),
        "server_first_steps": raw.get("server_first_steps"),
        "server_first_drawn": raw.get("server_first_drawn"),
        "switch": median_max(switches),
        "switches": len(switches),
        "newcomer_load": raw["switcher"]["load"],
        "health_max_s": max((h for h in health if h is not None), default=None),
        "health_failures": sum(h is None for h in health),
        "peak_rss": max(rss, key=lambda r: r or 0),
        "tracebacks": sum(max(s["exceptions"], int(s["traceback"])) for s in everyone),
        "server_tracebacks": raw["server_tracebacks"],
        "failed_jobs": sum(
            s["failed"] or bool(st and st[0] == "failed") for s, st in zip(students, last_states, strict=True)
        ),
        "errors": sum(bool(s["error"]) for s in everyone),
        "watched_server": bool(cpu),
        "cores_busy": busy_between([(t, c["cores"]) for t, c in raw["client"]], raw["marks"]["open"], closed),
        "client_cores": client_cores(raw["client"], raw["marks"]["open"], closed),
        "idle_after_close_s": settle_time(cpu, closed) if cpu and closed is not None else None,
    }


def client_cores(samples: list[tuple[float, dict]], t0: float, t1: float) -> float | None:
    """Cores the bench and its browsers used on average between `t0` and `t1`."""
    ends = span(samples, t0, t1)
    if ends is None:
        return None
    (ta, a), (tb, b) = ends
    return round((b["cpu"] - a["cpu"]) / (tb - ta), 3)


def table(summary: dict) -> str:
    """The issue's table with one row (its header included), plus the other figures."""
    s = summary
    limit = f"{s['first_step_limit_s']:.0f}"
    header = (
        "| sessions | all pages ready | students whose job showed step > 0 within "
        f"{limit} s | first step after click (median / max) | page switch for another user (median / max) "
        "| /_stcore/health max | peak server RSS | tracebacks | failed jobs | CPU idle after close |"
    )
    notes = [f"{s['stayed_queued']} stayed queued"] if s["stayed_queued"] else []
    notes += [f"{s['never_ready']} never loaded"] if s["never_ready"] else []
    queued = f" ({', '.join(notes)})" if notes else ""
    health = "–" if s["health_max_s"] is None else f"{s['health_max_s']:.2f} s"
    if s["health_failures"]:
        health += f" ({s['health_failures']} failed)"
    rss = "–" if s["peak_rss"] is None else f"{s['peak_rss'] / 2**20:,.0f} MiB"
    idle = s["idle_after_close_s"]
    if not s["watched_server"]:
        idle_cell = "–"
    else:
        idle_cell = f"{idle:.0f} s" if idle is not None else f"> {IDLE_WINDOW_S:.0f} s"
    cells = [
        f"{s['sessions']}{' (pinned)' if s['pinned'] else ''}{' (browsers spread)' if s.get('spread') else ''}",
        fmt_s(s["all_ready"]),
        f"{s['showed_step']} / {s['sessions']}{queued}",
        " / ".join(fmt_s(t) for t in s["first_step"]) if s["first_step"] else "–",
        " / ".join(fmt_s(t) for t in s["switch"]) + f" ({s['switches']} switch{'es' * (s['switches'] != 1)})"
        if s["switch"]
        else "–",
        health,
        rss,
        f"{s['tracebacks']} in pages"
        + ("" if s["server_tracebacks"] is None else f", {s['server_tracebacks']} in the server log"),
        str(s["failed_jobs"]),
        idle_cell,
    ]
    return "\n".join([header, "|" + "---|" * len(cells), "| " + " | ".join(cells) + " |"])


# ---------------------------------------------------------------------------------------------
# The server and its process tree


def proc_stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat from field 3 (state, ppid, pgrp, ...) on, or None if the process is gone."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return data[data.rindex(")") + 2 :].split()


def all_stats() -> dict[int, list[str]]:
    stats = {int(e): proc_stat(int(e)) for e in os.listdir("/proc") if e.isdigit()}
    return {pid: fields for pid, fields in stats.items() if fields}


def tree_usage(root: int) -> dict | None:
    """RSS (bytes), CPU time (s), processes and threads of `root` and everything below it."""
    stats = all_stats()
    if root not in stats:
        return None
    tree = descendants({pid: int(f[1]) for pid, f in stats.items()}, root)
    # fields from 3: ppid 4, pgrp 5, utime 14, stime 15, num_threads 20, rss 24 (pages)
    return {
        "rss": sum(int(stats[p][21]) for p in tree) * os.sysconf("SC_PAGE_SIZE"),
        "cpu": sum(int(stats[p][11]) + int(stats[p][12]) for p in tree) / os.sysconf("SC_CLK_TCK"),
        "processes": len(tree),
        "threads": sum(int(stats[p][17]) for p in tree),
    }


def lower_browsers(exclude: int | None) -> int:
    """Put the students' Chromium below the server, as if it ran on the students' own machines.

    `os.nice` is not enough: Chromium starts in a session of its own, so with the kernel's
    autogroups (`/proc/sys/kernel/sched_autogroup_enabled`) its processes form a group that gets
    the same share of a core as the server's whole group, whatever their nice; and run as root it
    raises its browser and GPU processes to nice -8. Measured so, 25 tabs left the server and its
    workers 27% of their core. This sets the nice of the group of every Chromium process below this
    one (not below `exclude`, the observer) to 19; tabs opened later join the same group.
    Returns how many processes it found."""
    stats = all_stats()
    tree = descendants({pid: int(f[1]) for pid, f in stats.items()}, os.getpid())
    if exclude is not None:
        tree -= descendants({pid: int(f[1]) for pid, f in stats.items()}, exclude)
    found = 0
    for pid in tree:
        with suppress(OSError):
            if b"chromium" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue
            found += 1
            Path(f"/proc/{pid}/autogroup").write_text("19")
    return found


def lower_this_process(args: argparse.Namespace) -> None:
    """Give the bench (and so the students' browsers it starts) a lower priority than the server.

    Call it after `start_server`: a child inherits its parent's nice, and a server started at
    nice 19 competes on equal terms with its own training workers (they ask for nice +10 and
    stop at 19), which is not how it runs in class."""
    if args.pin and not args.spread:
        os.sched_setaffinity(0, {1})
        os.nice(10)  # the students' tabs yield core 1 to the observer (the other user, on "their own machine")
    if args.spread:  # the lowest priority: on core 0 the browsers get only what the server and its workers leave
        os.nice(19)


def core_times() -> dict[str, tuple[int, int]]:
    """{"cpu0": (busy, total), ...} jiffies since boot, from /proc/stat (the whole machine)."""
    cores = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name != "cpu":
            v = [int(x) for x in values[:8]]  # user nice system idle iowait irq softirq steal
            cores[name] = (sum(v) - v[3] - v[4], sum(v))
    return cores


def client_usage() -> dict:
    """What the client side costs: every core's jiffies, and this process's tree's CPU seconds
    (the bench, playwright's driver and Chromium)."""
    return {"cores": core_times(), "cpu": tree_usage(os.getpid())["cpu"]}


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def health_latency(url: str, timeout_s: float = 30) -> float | None:
    """Seconds `/_stcore/health` took to answer 200, or None (error or timeout)."""
    t0 = time.perf_counter()
    try:
        with _NO_PROXY.open(f"{url}/_stcore/health", timeout=timeout_s) as r:
            r.read()
            ok = r.status == 200
    except OSError:
        return None
    return time.perf_counter() - t0 if ok else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(pin: bool, log: Path) -> tuple[subprocess.Popen, str]:
    """`streamlit run app.py` with the app's own settings, in a process group of its own."""
    port = free_port()
    cmd = ["taskset", "-c", "0"] if pin else []  # taskset execs: the pid stays the server's
    cmd += [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)]
    cmd += ["--server.address", "127.0.0.1", "--server.headless", "true"]
    with open(log, "w") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env={"MLLM_LOG_LEVEL": "INFO", **os.environ, "PYTHONUNBUFFERED": "1"},  # INFO: each job's first step
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the bench only; stop_server ends the group
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while health_latency(url, timeout_s=2) is None:
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_server(proc)
            raise RuntimeError(f"streamlit did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    return proc, url


def stop_server(proc: subprocess.Popen) -> dict:
    """SIGTERM the server's process group, SIGKILL after 30 s; what was left of the group is killed
    and counted (a training worker the server failed to end). Safe to call twice."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    left = [pid for pid, f in all_stats().items() if int(f[2]) == proc.pid]
    for pid in left:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return {"returncode": proc.returncode, "left_behind": len(left)}


class Sampler(threading.Thread):
    """Calls `probe()` every `every` seconds until stopped; keeps [(t, value), ...]."""

    def __init__(self, probe: Callable[[], object], every: float, clock: Callable[[], float]):
        super().__init__(daemon=True)
        self.probe, self.every, self.clock = probe, every, clock
        self.samples: list[tuple[float, object]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            t = self.clock()
            self.samples.append((round(t, 3), self.probe()))
            self._halt.wait(max(0.0, t + self.every - self.clock()))

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=35)  # a health request in flight times out after 30 s


# ---------------------------------------------------------------------------------------------
# The class, in the browser

VIEWPORT = {"width": 1400, "height": 1000}


def ms_left(deadline: float, clock: Callable[[], float]) -> float:
    """Playwright's timeout (ms) until `deadline`; never 0, which playwright reads as 'no limit'."""
    return max(1.0, (deadline - clock()) * 1000)


def first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"


def new_record() -> dict:
    return {"exceptions": 0, "traceback": False, "failed": False, "error": None}


async def close_all(closables: list) -> None:
    """Close playwright browsers or contexts at once; one already closed (or gone) is no error."""
    await asyncio.gather(*(c.close() for c in closables), return_exceptions=True)


def new_student() -> dict:
    return {"ready_s": None, "click_s": None, "first_step_s": None, "first_status": None, "samples": []} | new_record()


async def sample(page, record: dict, clock: Callable[[], float]) -> dict:
    """Read the page's status line, exception boxes and failure message into `record`."""
    seen = await page.evaluate(JS_SAMPLE, STATUS_RE.pattern)
    record["exceptions"] = max(record["exceptions"], seen["exceptions"])
    record["traceback"] |= seen["traceback"]
    record["failed"] |= seen["failed"]
    return {"t": round(clock(), 3), "status": seen["status"]}


async def open_lab(page, url: str, deadline: float, clock: Callable[[], float]) -> None:
    """Open the Attention lab and wait until its Train button is drawn and the script run is over."""
    await page.goto(f"{url}/{LAB_PATH}", timeout=ms_left(deadline, clock))
    await page.get_by_role("button", name="Train", exact=True).wait_for(timeout=ms_left(deadline, clock))
    await page.wait_for_function(JS_IDLE, polling=100, timeout=ms_left(deadline, clock))


async def open_home(page, url: str, timeout_s: float, path: str = "", title: str = HOME_TITLE) -> None:
    """Open Home (or the page at `path`) and wait until its title is drawn and the script run is over."""
    await page.goto(f"{url}/{path}", timeout=timeout_s * 1000)
    await page.wait_for_function(JS_TITLE_IDLE, arg=title, polling=100, timeout=timeout_s * 1000)


async def shared_models(page) -> str:
    """The sidebar's list of shared default models still training ("" when none)."""
    text = await page.locator("[data-testid='stSidebar']").inner_text()
    if SHARED_TRAINING not in text:
        return ""
    return text.split(SHARED_TRAINING, 1)[1].split(":", 1)[1].strip().replace("\n", "; ")


async def warm_up(browser, url: str, limit_s: float, timeout_s: float, clock: Callable[[], float]) -> dict:
    """Open Home, the lab and the other user's pages once (the lab starts its shared default model,
    the Tokenizer trains its default BPE once per server), then wait on Home, at most `limit_s`,
    until no shared default trains. (The sidebar lists the shared jobs that were
    running when the page's script began, so the lab's own first visit cannot show its default.)"""
    t0 = clock()
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        page = await context.new_page()
        await open_home(page, url, timeout_s)
        await open_lab(page, url, clock() + timeout_s, clock)
        for path, title in SWITCH_PATHS:  # a warm server has served the other user's pages once
            await open_home(page, url, timeout_s, path, title)
        deadline = clock() + limit_s
        while (shared := await shared_models(page)) and clock() < deadline:
            await asyncio.sleep(1)
        return {"s": round(clock() - t0, 1), "still_training": shared}
    finally:
        await context.close()


async def after_close(browser, url: str, timeout_s: float) -> str:
    """Once the tabs have closed and the CPU was watched: which shared models a newcomer sees training."""
    context = await browser.new_context(viewport=VIEWPORT)
    try:
        page = await context.new_page()
        await open_home(page, url, timeout_s)
        return await shared_models(page)
    except PlaywrightError as exc:
        return f"(could not tell: {first_line(exc)})"
    finally:
        await context.close()


async def open_student(browser, url: str, deadline: float, clock, contexts: list) -> tuple[object, dict]:
    """A student's tab on the lab; `ready_s` counts from the moment the whole class opened it."""
    t0 = clock()
    context = await browser.new_context(viewport=VIEWPORT)
    contexts.append(context)
    record = new_student()
    page = await context.new_page()
    try:
        await open_lab(page, url, deadline, clock)
        record["ready_s"] = round(clock() - t0, 3)
    except PlaywrightError as exc:
        record["error"] = f"opening the lab: {first_line(exc)}"
    return page, record


async def train(page, record: dict, t_click: float, limit_s: float, class_end: float, clock) -> None:
    """Press Train, time the first step > 0 (at most `limit_s`), then sample until the class ends."""
    try:
        # A DOM click event, as in other_user: playwright's click() first waits until the button has
        # stood still over animation frames, which took 3-20 s on a busy client core and blurred the barrier.
        train_button = page.get_by_role("button", name="Train", exact=True)
        await train_button.dispatch_event("click", timeout=ms_left(t_click + limit_s, clock))
        record["click_s"] = round(clock() - t_click, 3)
        try:
            handle = await page.wait_for_function(
                JS_FIRST_STEP, arg=STATUS_RE.pattern, polling=250, timeout=ms_left(t_click + limit_s, clock)
            )
            record["first_status"] = await handle.json_value()
            state = parse_status(record["first_status"])
            if state and state[1] > 0:
                record["first_step_s"] = round(clock() - t_click, 3)
        except PlaywrightTimeout:
            pass
        while True:
            record["samples"].append(await sample(page, record, clock))
            if clock() >= class_end:
                break
            await asyncio.sleep(min(SAMPLE_EVERY_S, max(0.0, class_end - clock())))
    except PlaywrightError as exc:
        record["error"] = f"training: {first_line(exc)}"


async def other_user(browser, url: str, class_end: float, clock, contexts: list) -> dict:
    """Arrives as the class presses Train, then switches Home <-> Tokenizer until the class ends."""
    context = await browser.new_context(viewport=VIEWPORT)
    contexts.append(context)
    record = {"load": None, "switches": []} | new_record()
    page = await context.new_page()
    limit_ms = SWITCH_LIMIT_S * 1000
    nav = page.locator("[data-testid='stSidebarNav']")
    try:
        t = clock()
        try:
            await open_home(page, url, SWITCH_LIMIT_S)
            record["load"] = (round(clock() - t, 3), True)
        except PlaywrightTimeout:
            record["load"] = (round(clock() - t, 3), False)
        for i in range(10_000):  # bounded by the class's end (the last switch may end up to 60 s later)
            if clock() >= class_end:
                break
            label, title = SWITCH_PAGES[i % 2]
            t = clock()
            try:
                await nav.locator("a", has_text=label).first.dispatch_event("click", timeout=limit_ms)
                await page.wait_for_function(
                    JS_TITLE_IDLE, arg=title, polling=100, timeout=ms_left(t + SWITCH_LIMIT_S, clock)
                )
                record["switches"].append({"t": round(t, 3), "to": title, "s": round(clock() - t, 3)})
            except PlaywrightTimeout:
                record["switches"].append({"t": round(t, 3), "to": title, "s": None, "waited_s": round(clock() - t, 3)})
            await sample(page, record, clock)
            await asyncio.sleep(SWITCH_PAUSE_S)
    except PlaywrightError as exc:
        record["error"] = f"switching pages: {first_line(exc)}"
    return record


# ---------------------------------------------------------------------------------------------
# The observer: the other user and the health probe, in a process of their own

# The other user and the load balancer's health check are not in the class: in a real class they
# sit on other machines. Measured from the bench's own process they waited for its GIL and its
# event loop, busy with 25 tabs (and, with --spread, for a core at nice 19), so their figures said as
# much about the bench as about the server. The observer process starts before the bench lowers its
# priority or pins its core, so it keeps the priority and cores the bench was started with.


class Observer:
    """`python -m bench.classroom --observer`, driven by one JSON line per command on its stdin."""

    def __init__(self, origin: float, cores: set[int] | None = None):
        """`cores`: where it may run (with --pin, the client's core 1: it stands for another machine)."""
        pin = ["taskset", "-c", ",".join(map(str, sorted(cores)))] if cores else []
        self.proc = subprocess.Popen(
            [*pin, sys.executable, "-m", "bench.classroom", "--observer", str(origin)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _ask(self, **command) -> dict | None:
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        return json.loads(line) if line else None

    def watch_health(self, url: str) -> None:
        self._ask(cmd="health", url=url)

    def open_student(self, url: str, timeout: float) -> None:
        """One of the class, on a machine of their own, opens the lab (run it in a thread, beside the
        bench's tabs): the bench's tabs share one or two cores, so what they draw says more about
        Chromium than about the server; this student's page does not."""
        self._ask(cmd="open", url=url, timeout=timeout)

    def during_class(self, url: str, class_end: float, limit: float) -> dict:
        """The other user's switches and the record of the student on a machine of their own, who
        presses Train now and is timed as the bench's tabs are (`train`). Blocks until the class ends
        (run it in a thread)."""
        answer = self._ask(cmd="class", url=url, class_end=class_end, limit=limit)
        return answer or {"switcher": {"load": None, "switches": []} | new_record(), "student": None}

    def stop(self) -> list:
        """The health samples; the observer exits."""
        if self.proc.poll() is not None:
            return []
        answer = self._ask(cmd="stop")
        self.proc.wait(timeout=60)
        return (answer or {}).get("health", [])


def observe(origin: float) -> int:
    """The observer's loop: answers each command of `Observer` with one JSON line."""
    return asyncio.run(_observe(origin))


async def _observe(origin: float) -> int:
    def clock() -> float:
        return time.monotonic() - origin

    health = None
    student = None  # (page, record) of the student on a machine of their own, once opened
    async with async_playwright() as p:
        browsers: list = []  # one per user: each is a machine of its own (and, so, a group of its own)
        contexts: list = []

        async def launch():
            browsers.append(await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS))
            return browsers[-1]

        try:
            while line := await asyncio.to_thread(sys.stdin.readline):
                command = json.loads(line)
                if command["cmd"] == "health":
                    health = Sampler(functools.partial(health_latency, command["url"]), 0.5, clock)
                    health.start()
                    answer: dict = {}
                elif command["cmd"] == "open":  # with the class; their page is drawn before the barrier
                    deadline = clock() + command["timeout"]
                    student = await open_student(await launch(), command["url"], deadline, clock, contexts)
                    answer = {"ready_s": student[1]["ready_s"]}
                elif command["cmd"] == "class":
                    url, class_end = command["url"], command["class_end"]
                    users = [other_user(await launch(), url, class_end, clock, contexts)]
                    if student and student[1]["ready_s"] is not None:
                        users.append(train(*student, clock(), command["limit"], class_end, clock))
                    switcher, *_ = await asyncio.gather(*users)
                    await close_all(contexts)  # with the class's tabs
                    answer = {"switcher": switcher, "student": student and student[1] | {"own_machine": True}}
                else:
                    if health is not None:
                        health.stop()
                    print(json.dumps({"health": health.samples if health else []}), flush=True)
                    return 0
                print(json.dumps(answer), flush=True)
        finally:
            await close_all(contexts)
            await close_all(browsers)
    return 0


async def run_class(
    url: str, args: argparse.Namespace, watch_s: float, clock: Callable[[], float], marks: dict, observer: Observer
) -> dict:
    """Warm up, open the lab in every student's tab, press Train at once, train, close every tab;
    then, after `watch_s` seconds (the server's CPU is watched meanwhile), look for shared jobs."""
    contexts: list = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        if args.pin or args.spread:  # below the server (core 0) and the observer's browser (core 1)
            marks["browser_processes_lowered"] = lower_browsers(observer.pid)
        try:
            try:
                warm = await warm_up(browser, url, args.warmup, args.timeout, clock)
                marks["open"] = clock()
                tabs = (
                    open_student(browser, url, clock() + args.timeout, clock, contexts)
                    for _ in range(args.sessions - args.own_student)
                )
                own = asyncio.to_thread(observer.open_student, url, args.timeout) if args.own_student else None
                opened, _ = await asyncio.gather(asyncio.gather(*tabs), own or asyncio.sleep(0))
                marks["click"] = t_click = clock()  # the barrier: every tab is ready (or gave up)
                marks["click_wall"] = time.time()  # for the server log's first steps (`server_first_steps`)
                class_end = t_click + args.duration
                limit = min(args.timeout, args.duration)
                observed = asyncio.create_task(asyncio.to_thread(observer.during_class, url, class_end, limit))
                ready = [(page, rec) for page, rec in opened if rec["ready_s"] is not None]
                await asyncio.gather(*(train(page, rec, t_click, limit, class_end, clock) for page, rec in ready))
                observed = await observed
            finally:
                await close_all(contexts)
                marks["closed"] = clock()
            await asyncio.sleep(watch_s)
            still = await after_close(browser, url, args.timeout) if watch_s else None
        finally:
            await browser.close()
    students = [rec for _, rec in opened] + ([observed["student"] or new_student()] if args.own_student else [])
    return {"warm_up": warm, "students": students, "switcher": observed["switcher"], "shared_after_close": still}


# ---------------------------------------------------------------------------------------------
# Command line


def _interrupt(signum, frame):  # SIGTERM ends the run as Ctrl-C does: every finally block runs
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--observer"]:
        return observe(float(argv[1]))
    parser = argparse.ArgumentParser(prog="python -m bench.classroom", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=1, help="students pressing Train at once (default 1)")
    parser.add_argument("--pin", action="store_true", help="server on core 0, browsers on core 1")
    parser.add_argument(
        "--spread",
        action="store_true",
        help="with --pin: the browsers may use both cores, at nice 19 (the server keeps core 0 first); for "
        "classes too large for one core of browsers to draw",
    )
    parser.add_argument(
        "--own-student",
        action="store_true",
        help="one of the N students is the observer's, in a browser of its own at the observer's priority (a "
        "machine of their own): what their page shows is not bounded by the bench's starved tabs. With --pin it "
        "shares core 1 with the other user, whose switches then wait for it",
    )
    parser.add_argument("--duration", type=float, default=120, help="seconds the class trains before the tabs close")
    parser.add_argument(
        "--timeout", type=float, default=120, help="limit (s) for a page to open and a first step to show"
    )
    parser.add_argument(
        "--warmup", type=float, default=120, help="at most this long (s) waiting for the default models to finish"
    )
    parser.add_argument("--url", help="measure this running server instead of starting one")
    parser.add_argument("--pid", type=int, help="with --url: the server's process id, for the RSS and CPU figures")
    parser.add_argument(
        "--log", help="with --url: the server's log (run with MLLM_LOG_LEVEL=INFO), for its first steps"
    )
    parser.add_argument("--json", metavar="PATH", help="write the raw timings and the summary here")
    args = parser.parse_args(argv)
    if args.sessions < 1:
        parser.error("--sessions must be at least 1")
    if args.pin and not {0, 1} <= os.sched_getaffinity(0):
        parser.error(f"--pin needs cores 0 and 1; this process may use {sorted(os.sched_getaffinity(0))}")
    if not args.url and not Path(CHROMIUM).exists():
        parser.error(f"{CHROMIUM} is not installed (apt-get install chromium)")

    signal.signal(signal.SIGTERM, _interrupt)
    origin = time.monotonic()
    observer = Observer(origin, {1} if args.pin else None)  # before this process lowers its priority

    def clock() -> float:
        return time.monotonic() - origin

    marks: dict[str, float] = {}
    config = vars(args) | {"first_step_limit_s": min(args.timeout, args.duration)}
    with tempfile.TemporaryDirectory(prefix="classroom-") as tmp, ExitStack() as stack:
        log = Path(tmp) / "streamlit.log"
        proc, pid, url = None, args.pid, (args.url or "").rstrip("/")
        if not args.url:  # before this process lowers its priority: the server would inherit it
            proc, url = start_server(args.pin, log)
            stack.callback(stop_server, proc)
            pid = proc.pid
        marks["server_up"] = clock()
        lower_this_process(args)  # before any thread or browser starts: samplers, playwright, chromium inherit it
        observer.watch_health(url)
        stack.callback(observer.stop)
        server = Sampler(lambda: tree_usage(pid), 1.0, clock) if pid else None
        client = Sampler(client_usage, 1.0, clock)
        for sampler in filter(None, (server, client)):
            sampler.start()
            stack.callback(sampler.stop)
        try:
            watch = IDLE_WINDOW_S + IDLE_HOLD if server else 0
            raw = asyncio.run(run_class(url, args, watch, clock, marks, observer))
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM; the ExitStack stops the samplers and the server
            print("interrupted: no figures", file=sys.stderr)
            return 130
        health = observer.stop()
        for sampler in filter(None, (server, client)):
            sampler.stop()
        exit_info = stop_server(proc) if proc else None
        log_file = log if proc else args.log and Path(args.log)
        text = log_file.read_text(errors="replace") if log_file else None
        click = marks.get("click_wall")
        raw |= {
            "config": config,
            "marks": {k: round(v, 3) for k, v in marks.items()},
            "health": health,
            "server": [(t, r) for t, r in server.samples if r] if server else [],
            "client": client.samples,
            "server_exit": exit_info,
            "server_tracebacks": text.count("Traceback") if text is not None else None,
            "server_first_steps": server_first_steps(text, click) if text is not None else None,
            "server_first_drawn": server_first_steps(text, click, event=DREW_STEP) if text is not None else None,
            "server_log_tail": text[-20_000:] if text is not None else None,
        }
    if args.json:  # the raw timings first: a run takes minutes
        Path(args.json).write_text(json.dumps(raw, indent=1))
    summary = summarise(raw)
    print(table(summary))
    print(report_lines(raw, summary))
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, **raw}, indent=1))
    return 0


def report_lines(raw: dict, summary: dict) -> str:
    """What the table leaves out: the newcomer's load, the warm-up, the server's threads and exit."""
    warm = raw["warm_up"]
    lines = [
        f"- a newcomer's page load (Home) as the class pressed Train: {fmt_s(summary['newcomer_load'])}",
        f"- warm-up: {warm['s']:.0f} s; shared models still training when the class opened: "
        + (warm["still_training"] or "none"),
    ]
    for key, what in (("server_first_steps", "trained"), ("server_first_drawn", "sent to the tab (live view)")):
        if (steps := summary.get(key)) is not None:
            within = sum(t <= FIRST_STEP_GOAL_S for t in steps)
            lines.append(
                f"- first step after the click, {what}, from the server's log: {len(steps)} of "
                f"{len(raw['students'])} jobs, "
                + (f"median {statistics.median(steps):.1f} s, max {max(steps):.1f} s; " if steps else "")
                + f"{within} within {FIRST_STEP_GOAL_S:.0f} s"
            )
    if raw["shared_after_close"] is not None:
        lines.append(
            f"- shared models still training {IDLE_WINDOW_S + IDLE_HOLD:.0f} s after the tabs closed: "
            + (raw["shared_after_close"] or "none")
        )
    if summary["cores_busy"]:
        busy = ", ".join(f"{core} {f:.0%}" for core, f in summary["cores_busy"].items())
        lines.append(
            f"- cores busy from opening the lab to closing the tabs: {busy} (the whole machine, other programs "
            f"included); the bench and its browsers used {summary['client_cores']:.2f} core(s)"
        )
    samples = raw["server"]
    if samples:
        closed = raw["marks"]["closed"]
        threads = [r["threads"] for _, r in samples]
        after = [r for t, r in samples if t >= closed + IDLE_WINDOW_S]
        lines.append(
            f"- server: {max(threads)} threads at most, {max(r['processes'] for _, r in samples)} process(es); "
            + (f"{after[0]['threads']} threads {IDLE_WINDOW_S:.0f} s after the tabs closed" if after else "")
        )
    if raw["server_exit"]:
        lines.append(
            f"- server exit code {raw['server_exit']['returncode']} on SIGTERM; "
            f"{raw['server_exit']['left_behind']} process(es) of its group left behind"
        )
    own = [s for s in raw["students"] if s.get("own_machine")]
    for s in own:
        lines.append(
            "- the student on a machine of their own (the observer's second browser): the lab drawn in "
            + (f"{s['ready_s']:.1f} s" if s["ready_s"] is not None else "(never)")
            + " (opened with the class); the first step shown "
            + (f"{s['first_step_s']:.1f} s after their click" if s["first_step_s"] is not None else "(never)")
        )
    errors = [s["error"] for s in raw["students"] + [raw["switcher"]] if s["error"]]
    lines += [f"- browser error: {e}" for e in errors]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
