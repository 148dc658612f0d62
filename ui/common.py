"""The Streamlit pieces every lab page shares, written once.

- `guard()`: turns an exception into a clear `st.error` (never a traceback).
- `page_header()`: the title and the one-paragraph "what you will see" of a lab.
- `corpus_picker()`: embedded / online / uploaded text, with progress and offline messages.
- Session-owned training jobs: `start_job`, `get_job`, `training_controls`, `live`. A session's
  jobs live in a session-scoped resource cache; when the tab closes they are parked for a reload
  of the same tab (named in the URL) and stopped `PARK_SECONDS` later.
- `MARGIN`, `show_token()`, `curve()`, `loss_chart()`, `sampling_controls()`, `download_*()`, and the session's model registry
  (`register_model` / `session_models`) through which labs hand trained models to Generation.

Widgets take a key prefix (`tok`, `ng`, `emb`, `rnn`, `att`, `gen`) so keys never collide across
pages; settings people would share are bound to the URL's query parameters.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from mllm_core import corpora, training, zoo
from mllm_core.training import JobSnapshot, TrainingJob
from ui import server

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# Errors and headers


@contextmanager
def guard(action: str = "That") -> Iterator[None]:
    """Show an exception from the engine as `st.error` instead of a traceback.

    ValueErrors carry messages written for the user (bad input), so they are shown as they
    are; anything else is reported as a bug with its type. Streamlit's own control-flow
    exceptions (rerun, stop) are BaseExceptions and pass through.
    """
    try:
        yield
    except Exception as exc:
        text, icon = error_message(exc, action)
        st.error(text, icon=icon)


def error_message(exc: Exception, action: str = "That") -> tuple[str, str]:
    """(text, icon) of `guard`'s error for `exc`.

    >>> error_message(KeyError("no such model")), error_message(RuntimeError("boom"), "Sampling")[0]
    (('no such model', ':material/warning:'), 'Sampling failed: RuntimeError: boom')
    """
    if isinstance(exc, KeyError):  # str(KeyError("x")) is "'x'"
        return (str(exc.args[0]) if exc.args else "Not found."), ":material/warning:"
    if isinstance(exc, ValueError):  # CorpusError included
        return str(exc), ":material/warning:"
    return f"{action} failed: {type(exc).__name__}: {exc}", ":material/error:"


def page_header(title: str, intro: str, icon: str = "") -> None:
    """The lab's title (with a Material icon such as ":material/casino:") and its intro."""
    st.title(f"{icon} {title}".strip())
    st.markdown(intro)


# ---------------------------------------------------------------------------------------------
# Links: what the URL asked for and what the page could not take

IGNORED_KEY = "url_ignored"  # st.session_state: "key=value" parameters a widget of ours refused
URL_TEXT_LIMIT = 500  # characters of free text kept in a shareable URL


def ignored_params(given: dict[str, str], now: dict[str, str], state: dict[str, Any]) -> list[str]:
    """The link's `key=value` parameters the page did not take as given: dropped by their widget
    (invalid, out of range, not an option) or changed (a seed of 1.5 became 1). A parameter that
    left the URL because it equals the widget's default (a clean URL) is not counted.

    >>> ignored_params({"n": "9", "t": "1.0", "s": "1.5", "k": "2"}, {"s": "1", "k": "2"}, {"n": 3, "t": 1.0, "s": 1})
    ['n=9', 's=1.5']
    """
    return [
        f"{key}={raw}"
        for key, raw in given.items()
        if now.get(key) != raw and not (key not in now and _same(raw, state.get(key)))
    ]


def _same(raw: str, value: Any) -> bool:
    """Whether the URL's text `raw` names the widget value `value` ("1" and 1.0, "true" and True)."""
    if isinstance(value, bool):
        return raw.lower() == str(value).lower()
    if isinstance(value, int | float):
        try:
            return float(raw) == float(value)
        except ValueError:
            return False
    return raw == str(value)


def url_notice(given: dict[str, str]) -> None:
    """One small notice naming the link's parameters this page ignored (call it after the page ran)."""
    given = {k: v for k, v in given.items() if k != TAB_PARAM}  # the tab's name is not a setting
    now = st.query_params.to_dict()
    state = {key: st.session_state[key] for key in given if key in st.session_state}
    skipped = [f"{k}=" for k in given if k.endswith("_corpus")]  # the corpus picker reports its own
    ignored = [p for p in ignored_params(given, now, state) if not p.startswith(tuple(skipped))]
    ignored += st.session_state.pop(IGNORED_KEY, [])
    if ignored:
        shown = ", ".join(f"`{p[:60]}`" for p in ignored)
        st.caption(f":material/link_off: Ignored from the link (not a valid setting here): {shown}.")


def bound_text(where: Any, label: str, default: str, key: str, area: bool = False, **kwargs: Any) -> str:
    """A text input (or area) whose text is in the URL while it is short (up to `URL_TEXT_LIMIT`
    characters): a pasted essay must not make a 20,000-character link."""
    wanted = st.query_params.get(key)
    if key not in st.session_state and wanted is not None:
        st.session_state[key] = wanted
    widget = where.text_area if area else where.text_input
    text = widget(label, default, key=key, **kwargs)
    if text != default and len(text) <= URL_TEXT_LIMIT:
        st.query_params[key] = text
    else:
        st.query_params.pop(key, None)
    return text


# ---------------------------------------------------------------------------------------------
# Corpora


@st.cache_resource(show_spinner="Loading the corpus (once per server)…")
def load_corpus(name: str) -> corpora.Corpus:
    """Embedded and cached online corpora, parsed once per process for every session."""
    return corpora.load(name)


def _download_with_progress(name: str) -> None:
    bar = st.progress(0.0, text=f"Downloading {name}…")

    def progress(done: int, total: int | None) -> None:
        fraction = min(1.0, done / total) if total else 0.0
        bar.progress(
            fraction, text=f"Downloading {name}: {done / 1e6:.1f} MB" + (f" of {total / 1e6:.1f} MB" if total else "")
        )

    corpora.load_online(name, progress)
    bar.empty()


UPLOAD = "upload"
TYPED = "typed"


def corpus_picker(
    prefix: str,
    label: str = "Corpus",
    default: str = corpora.DEFAULT,
    allow_upload: bool = True,
    allow_online: bool = True,
    allow_typed: bool = False,
    typed_default: str = "",
    container: Any = None,
) -> corpora.Corpus | None:
    """A corpus selector; returns the chosen `Corpus`, or None after showing why it can't be used."""
    where = container or st
    options = corpora.embedded_names() + (list(corpora.ONLINE) if allow_online else [])
    options += [UPLOAD] if allow_upload else []
    options += [TYPED] if allow_typed else []

    def describe(name: str) -> str:
        if name == UPLOAD:
            return "Upload a .txt file"
        if name == TYPED:
            return "Type your own text"
        suffix = " (online)" if name in corpora.ONLINE else ""
        return f"{name}{suffix}"

    key = f"{prefix}_corpus"
    # bound by hand, so the URL holds the corpus's name (?ng_corpus=tiny-shakespeare), not its label;
    # a label (older links) is read too
    wanted = st.query_params.get(key)
    if key not in st.session_state and wanted is not None:
        by_label = {describe(o): o for o in options}
        if wanted in options or wanted in by_label:
            st.session_state[key] = wanted if wanted in options else by_label[wanted]
        else:
            st.session_state.setdefault(IGNORED_KEY, []).append(f"{key}={wanted}")
    choice = where.selectbox(
        label,
        options,
        index=options.index(default) if default in options else 0,
        format_func=describe,
        key=key,
        help="Embedded corpora work offline; online ones are downloaded once and cached.",
    )
    if choice == (default if default in options else options[0]):
        st.query_params.pop(key, None)
    else:
        st.query_params[key] = choice
    if choice == TYPED:
        text = where.text_area("Your text", typed_default, key=f"{prefix}_text", height=120)
        with guard("Reading the text"):
            return corpora.from_text(text)
        return None
    if choice == UPLOAD:
        file = where.file_uploader("A UTF-8 .txt file", type=["txt"], key=f"{prefix}_upload")
        if file is None:
            where.info("Choose a .txt file to train on.")
            return None
        with guard("Reading the upload"):
            return corpora.from_upload(file.getvalue(), file.name)
        return None
    if choice in corpora.ONLINE:
        where.caption(corpora.ONLINE[choice].description)
        if not corpora.is_cached(choice):
            with guard("The download"):
                _download_with_progress(choice)
            if not corpora.is_cached(choice):
                return None
    with guard("Loading the corpus"):
        corpus = load_corpus(choice)
        where.caption(f"{corpus.description} · {corpus.n_words:,} words · {len(corpus.text):,} characters")
        return corpus
    return None


# ---------------------------------------------------------------------------------------------
# Session-owned jobs


TAB_PARAM = "tab"  # the URL's query parameter that names a browser tab, so a reload finds its jobs again
PARK_SECONDS = 15.0  # how long a closed tab's jobs wait for a reload of the same tab before they stop


class SessionJobs(dict):
    """A session's jobs by slot name, the tab's name (`token`) and the models it offered."""

    def __init__(self, token: str):
        super().__init__()
        self.token = token
        self.models: dict[str, Any] = {}
        self.specs: dict[str, tuple[training.JobSpec, float]] = {}  # slot -> (spec, time.monotonic() at start)


class Parking:
    """Jobs of tabs that just closed, by tab name, kept `PARK_SECONDS` for a reload of the same tab
    (the commonest thing a student does); then stopped, so a closed tab still stops its work."""

    def __init__(self):
        self._lock = threading.Lock()
        self._parked: dict[str, SessionJobs] = {}
        self.active: set[str] = set()  # tab names of live sessions

    def park(self, jobs: SessionJobs) -> None:
        with self._lock:
            self.active.discard(jobs.token)
            if not any(job.alive for job in jobs.values()) and not jobs.models:
                return
            self._parked[jobs.token] = jobs
        timer = threading.Timer(PARK_SECONDS, self._expire, (jobs.token, jobs))
        timer.daemon = True
        timer.start()

    def claim(self, token: str | None) -> SessionJobs:
        """The jobs of tab `token` if it just closed, else a new tab's (a fresh name when `token`
        is missing or already in use: a shared link must not hand over someone else's jobs)."""
        with self._lock:
            if token and token in self._parked:
                jobs = self._parked.pop(token)
            else:
                if not token or token in self.active:
                    token = uuid.uuid4().hex[:10]
                jobs = SessionJobs(token)
            self.active.add(jobs.token)
            return jobs

    def _expire(self, token: str, jobs: SessionJobs) -> None:
        with self._lock:
            if self._parked.get(token) is not jobs:
                return  # reclaimed by a reload
            del self._parked[token]
        _stop_jobs(jobs)

    def stop_all(self) -> None:
        with self._lock:
            parked, self._parked = list(self._parked.values()), {}
        for jobs in parked:
            _stop_jobs(jobs)


@st.cache_resource(show_spinner=False)
def parking() -> Parking:
    """The server's one `Parking`."""
    return Parking()


def _stop_jobs(jobs: dict[str, TrainingJob]) -> None:
    for job in list(jobs.values()):
        job.stop(timeout=5)


def _park(jobs: SessionJobs) -> None:
    """on_release of the session cache: the tab closed (or is reloading): park its jobs."""
    parking().park(jobs)


@st.cache_resource(scope="session", on_release=_park, show_spinner=False)
def _session_jobs() -> SessionJobs:
    jobs = parking().claim(st.query_params.get(TAB_PARAM))
    st.session_state.setdefault(MODELS_KEY, {}).update(jobs.models)  # what this tab offered before a reload
    return jobs


def session_jobs() -> SessionJobs:
    """This session's jobs by slot name (one job per slot). The tab's name stays in the URL, so a
    reload of the tab takes its jobs and models back; a tab closed for `PARK_SECONDS` stops them."""
    jobs = _session_jobs()
    if st.query_params.get(TAB_PARAM) != jobs.token:
        st.query_params[TAB_PARAM] = jobs.token
    return jobs


def get_job(slot: str) -> TrainingJob | None:
    return session_jobs().get(slot)


SAME_START_S = 15.0  # a start of the same spec this soon after the last one keeps the job that runs


def start_job(slot: str, target: training.JobSpec, **job_kwargs: Any) -> TrainingJob:
    """Stop the slot's previous job (if any) and start `target` in its place, on the app's executor
    (worker processes; threads in tests).

    The same spec again within `SAME_START_S` of its start, while it trains, keeps that job: a restart
    would give the same run a few steps later. This is also what Streamlit asks for when a rerun
    preempts the click's run: it replays the click, and in a class of 25 that restarted 3-15 jobs."""
    jobs = session_jobs()
    previous = jobs.get(slot)
    spec, started = jobs.specs.get(slot, (None, 0.0))
    if previous is not None and previous.alive and spec == target and time.monotonic() - started < SAME_START_S:
        return previous
    jobs.pop(slot, None)
    if previous is not None:
        previous.stop(timeout=10)
    job = training.submit(target, name=slot, **job_kwargs)
    jobs[slot] = job
    jobs.specs[slot] = (target, time.monotonic())
    return job


def _start_clicked(slot: str, make_target: Callable[[], training.JobSpec], job_kwargs: dict) -> None:
    # a callback draws above the page title: keep the error for `training_controls` to show under the button
    try:
        start_job(slot, make_target(), **job_kwargs)
    except Exception as exc:
        st.session_state[f"{slot}_error"] = error_message(exc, "Starting the training")


def training_controls(
    slot: str,
    make_target: Callable[[], training.JobSpec],
    label: str = "Train",
    disabled: bool = False,
    reason: str = "",
    **job_kwargs: Any,
) -> TrainingJob | None:
    """Train / Pause / Resume / Stop buttons for the job in `slot`; returns that job (or None).

    `make_target()` returns the job's `training.JobSpec`; it is called only when the user clicks
    Train, so an ordinary rerun builds nothing. The buttons act in callbacks, before the page is
    drawn, so they always show the job's current state. A `reason` disables Train and is shown
    under the buttons; so is an error raised on starting.
    """
    disabled = disabled or bool(reason)
    job = get_job(slot)
    state = job.snapshot().state if job else None
    active = state in (training.QUEUED, training.RUNNING, training.PAUSED)
    c1, c2, c3 = st.columns(3)
    c1.button(
        f"Re-{label[0].lower()}{label[1:]}" if job else label,  # "Re-train char-LSTM", acronyms kept
        key=f"{slot}_start",
        type="primary",
        disabled=disabled,
        width="stretch",
        on_click=_start_clicked,
        args=(slot, make_target, job_kwargs),
    )
    if state == training.PAUSED:
        c2.button("Resume", key=f"{slot}_resume", width="stretch", on_click=job.resume)
    else:
        c2.button(
            "Pause", key=f"{slot}_pause", disabled=not active, width="stretch", on_click=job.pause if job else None
        )
    c3.button(
        "Stop",
        key=f"{slot}_stop",
        disabled=not active,
        width="stretch",
        on_click=job.stop if job else None,
        kwargs={"timeout": 10} if job else None,
    )
    error = st.session_state.pop(f"{slot}_error", None)
    if error:
        st.error(error[0], icon=error[1])
    elif reason:
        st.caption(f":material/block: {reason}")
    return get_job(slot)


def _fmt_seconds(seconds: float) -> str:
    return duration(seconds)


def duration(seconds: float) -> str:
    """Seconds as a clock: "42s", "m:ss", or "h:mm:ss" from an hour on.

    >>> duration(42), duration(125), duration(47_409)
    ('42s', '2:05', '13:10:09')
    """
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds}s"


def job_status(snap: JobSnapshot) -> None:
    """A progress bar with state, step, elapsed time and ETA; the error if the job failed."""
    parts = [
        snap.state,
        f"step {snap.step:,}" + (f" / {snap.total_steps:,}" if snap.total_steps else ""),
        f"{_fmt_seconds(snap.elapsed)} elapsed",
    ]
    if snap.eta is not None:
        parts.append(f"ETA {_fmt_seconds(snap.eta)}")
    text = " · ".join(parts)
    if snap.progress is not None:
        st.progress(snap.progress, text=text)
    else:
        st.caption(text)
    if snap.state == training.FAILED:
        st.error(f"Training failed: {snap.error}", icon=":material/error:")


def poll_every(base: float) -> float:
    """Seconds between two refreshes of a live view: `base`, slower when many jobs train at once
    (one more second per 5 live jobs, at most 5 s), since every refresh of every tab costs the
    server a snapshot and a figure, and a class of 25 would otherwise keep it busy redrawing."""
    return min(5.0, max(base, len(training.executor().jobs()) / 5))


_drew_a_step: weakref.WeakSet = weakref.WeakSet()  # jobs whose live view has drawn a step > 0 (logged once)


def live(job: TrainingJob | None, render: Callable[[JobSnapshot], None], every: float = 1.0) -> None:
    """Draw `render(snapshot)` under the job's status, refreshing about every `every` seconds
    (`poll_every`) while it trains; polling stops once the job has finished (one last full rerun
    draws the results).
    """
    if job is None:
        return
    polling = not job.snapshot().finished

    @server.fragment(run_every=poll_every(every) if polling else None)
    def view() -> None:
        snap = job.snapshot()
        job_status(snap)
        render(snap)
        if snap.step > 0 and job not in _drew_a_step:
            _drew_a_step.add(job)  # the server's side of "the student saw the first loss point"
            log.info("job %r: live view drew step %d", snap.name, snap.step)
        if polling and snap.finished:
            st.rerun()

    view()


def default_status(job: TrainingJob, label: str, every: float = 2.0) -> None:
    """A caption on a class-wide default (`zoo`): where its model comes from and, while it loads or
    trains, its progress, refreshed every few seconds. When its first model arrives and when it
    finishes, the page reruns, so a page that waits for the model draws itself without a reload."""
    polling = not job.snapshot().finished
    no_model_yet = job.latest() is None

    @server.fragment(run_every=poll_every(every) if polling else None)
    def view() -> None:
        snap = job.snapshot()
        text = f"{label}: {zoo.origin(snap)}"
        if not snap.finished:
            text += f" · step {snap.step:,}" + (f" / {snap.total_steps:,}" if snap.total_steps else "")
            text += f" · ETA {_fmt_seconds(snap.eta)}" if snap.eta is not None else ""
            text += " · this page updates by itself when it is ready"
        st.caption(text)
        if polling and (snap.finished or (no_model_yet and job.latest() is not None)):
            st.rerun()

    view()


# ---------------------------------------------------------------------------------------------
# Charts

MARGIN = dict(l=10, r=10, t=40, b=10)  # every lab figure's margin (px): tight, with room for the title at the top


def show_token(token: str) -> str:
    """A token as a chart label, its whitespace made visible: space ␣, newline ↵ (as in the
    Tokenizer and N-gram labs), tab ⇥; the empty token is ∅.

    >>> show_token("a b\\n"), show_token("\\t"), show_token("")
    ('a␣b↵', '⇥', '∅')
    """
    return token.replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥") or "∅"


MAX_POINTS = 400  # a line is drawn through at most this many points: a page sends a live chart every second


def thin(points: list, max_points: int = MAX_POINTS) -> list:
    """Every k-th point and the last, so at most about `max_points` remain (the shape of a loss
    curve survives; the bytes sent to each browser at each refresh stop growing with the run).

    >>> thin(list(range(10)), 4)
    [0, 4, 8, 9]
    """
    if len(points) <= max_points:
        return points
    stride = -(-len(points) // (max_points - 1))  # ceil: leaves room for the last point
    kept = points[::stride]
    return kept if kept[-1] == points[-1] else [*kept, points[-1]]


def curve(points: list[tuple[float, float]], **style: Any) -> list[go.Scatter]:
    """A plotly line through [(x, y), ...] (a job's `history[metric]`, or an experiment's curve),
    `thin`ned: one trace, or none while there are no points yet, so `fig.add_traces(curve(...))`
    never draws an empty legend entry.

    >>> [(t.x, t.y, t.name) for t in curve([(0, 2.5), (10, 1.5)], name="loss")], curve([])
    ([((0, 10), (2.5, 1.5), 'loss')], [])
    """
    xy = _thinned_xy(points)
    return [go.Scatter(x=xy[0], y=xy[1], **style)] if xy else []


def _thinned_xy(points: list[tuple[float, float]]) -> tuple[tuple, tuple] | None:
    """(xs, ys) of the `thin`ned points, or None when there are none."""
    return tuple(zip(*thin(points), strict=True)) if points else None


SPARSE = 30  # a series with at most this many points is drawn with markers too


def loss_chart(
    snap: JobSnapshot,
    metrics: tuple[str, ...] = ("loss",),
    title: str = "Loss",
    log_y: bool = False,
    x_title: str = "step",
) -> go.Figure:
    """A line per metric from the snapshot's history.

    Every live view redraws this at every refresh, so it is built as plain data and not validated
    by plotly: validation took 6 ms of the 7 per chart, and was the largest single cost of a class's
    polling tabs on the server (py-spy). `tests/test_ui_common.py` checks that plotly's validated
    build of the same chart is identical.
    """
    traces = []
    for metric in metrics:
        points = snap.history.get(metric, [])
        if xy := _thinned_xy(points):
            # a sparse series (validation every 50 steps of a slow run: one point) needs markers to be seen
            mode = "lines" if len(points) > SPARSE else "lines+markers"
            traces.append({"type": "scatter", "x": xy[0], "y": xy[1], "mode": mode, "name": metric})
    layout = {
        "title": {"text": title},
        "xaxis": {"title": {"text": x_title}},
        "height": 320,
        "margin": MARGIN,
        "legend": {"orientation": "h", "y": -0.25},
    }
    if log_y:
        layout["yaxis"] = {"type": "log"}
    return go.Figure({"data": traces, "layout": layout}, _validate=False)


# ---------------------------------------------------------------------------------------------
# Sampling controls


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float  # > 0; 1 = the model's own distribution
    top_k: int | None  # keep the k most likely tokens (None = all)
    top_p: float | None  # keep the smallest set with this much probability (None = all)
    greedy: bool  # always take the most likely token
    seed: int | None  # None = a fresh draw every time
    max_new_tokens: int

    def as_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of `mllm_core.sampling.generate` (minus model and prompt)."""
        return dict(
            temperature=self.temperature,
            top_k=self.top_k,
            top_p=self.top_p,
            greedy=self.greedy,
            seed=self.seed,
            max_new_tokens=self.max_new_tokens,
        )


def sampling_controls(
    prefix: str, max_new_tokens: int = 200, max_limit: int = 2000, container: Any = None
) -> SamplingSettings:
    """The same temperature / top-k / top-p / greedy / seed / length controls on every page."""
    where = container or st
    c1, c2, c3 = where.columns(3)
    temperature = c1.slider(
        "Temperature",
        0.05,
        2.0,
        1.0,
        0.05,
        key=f"{prefix}_temp",
        bind="query-params",
        help="Divide the logits by T: < 1 sharpens, > 1 flattens.",
    )
    top_k = c2.number_input(
        "Top-k (0 = off)",
        0,
        100_000,
        0,
        key=f"{prefix}_topk",
        bind="query-params",
        help="Keep only the k most likely tokens.",
    )
    top_p = c3.slider(
        "Top-p",
        0.05,
        1.0,
        1.0,
        0.05,
        key=f"{prefix}_topp",
        bind="query-params",
        help="Keep the smallest set of tokens whose probability reaches p.",
    )
    c4, c5, c6 = where.columns(3)
    length = c4.number_input(
        "Tokens to generate", 1, max_limit, max_new_tokens, key=f"{prefix}_len", bind="query-params"
    )
    seed = c5.number_input("Seed (-1 = random)", -1, 2**31 - 1, 0, key=f"{prefix}_seed", bind="query-params")
    greedy = c6.toggle("Greedy (argmax)", False, key=f"{prefix}_greedy", bind="query-params")
    return SamplingSettings(
        temperature=float(temperature),
        top_k=int(top_k) or None,
        top_p=None if top_p >= 1.0 else float(top_p),
        greedy=bool(greedy),
        seed=None if seed < 0 else int(seed),
        max_new_tokens=int(length),
    )


# ---------------------------------------------------------------------------------------------
# Downloads


def download_text(label: str, text: str, file_name: str, mime: str = "text/plain", key: str | None = None) -> None:
    st.download_button(
        label,
        text.encode("utf-8"),
        file_name=file_name,
        mime=mime,
        key=key or f"dl_{file_name}",
        icon=":material/download:",
    )


# ---------------------------------------------------------------------------------------------
# Models trained in this session, handed from the labs to the Generation page

MODELS_KEY = "mllm_models"  # st.session_state key of the registry (public: tests read it)


def register_model(name: str, model: Any) -> None:
    """Offer a trained `TextLM` to the Generation lab under `name` (replaces a namesake); it
    survives a reload of the tab, as the jobs do."""
    st.session_state.setdefault(MODELS_KEY, {})[name] = model
    session_jobs().models[name] = model


def offer_model(job: TrainingJob | None) -> Any | None:
    """Hand a job's language model to the Generation lab and return it: the result once done; a
    run stopped early, its latest checkpoint, named "<name> (stopped at step N)" (`model_step`,
    the step that checkpoint was taken at). None while it trains, or when it failed."""
    if job is None:
        return None
    snap = job.snapshot()
    if snap.state == training.DONE:
        lm = job.result
    elif snap.state == training.STOPPED and (lm := job.latest()) is not None:
        step = snap.artifacts.get("model_step", snap.step)
        lm = dataclasses.replace(lm, name=f"{lm.name} (stopped at step {step:,})")
    else:
        return None
    if lm is not None:
        register_model(lm.name, lm)
    return lm


def session_models() -> dict[str, Any]:
    """{name: TextLM} registered by this session's labs."""
    return dict(st.session_state.get(MODELS_KEY, {}))


# ---------------------------------------------------------------------------------------------
# Sidebar


IDLE_POLL_S = 10.0  # the sidebar's job list refreshes this often while nothing trains
SIDEBAR_POLLS_LESS = 2  # while jobs train it refreshes this many times less often than a live view


def sidebar_status() -> None:
    """The compute device and this session's background jobs, refreshed while any is active."""
    jobs = session_jobs()

    def shared_active() -> list[TrainingJob]:
        shared = training.MANAGER.shared_jobs().values()
        return [j for j in shared if j.name != training.WARM_UP and not j.snapshot().finished]

    polling = any(not job.snapshot().finished for job in jobs.values()) or bool(shared_active())

    def line(label: str, job: TrainingJob) -> None:
        snap = job.snapshot()
        eta = f", ETA {_fmt_seconds(snap.eta)}" if snap.eta is not None else ""
        st.caption(f"• {label}: {snap.state}, step {snap.step:,}{eta}")

    # Idle, it still looks every 10 s: a job started from a fragment (the Attention lab's Train tab)
    # reruns only that fragment, not this panel. Training, it is a summary of what the page's live view
    # shows: it refreshes half as often (a class of 25: every 10 s, not 5), a quarter of the polls fewer.
    @server.fragment(run_every=SIDEBAR_POLLS_LESS * poll_every(1.0) if polling else IDLE_POLL_S)
    def jobs_panel() -> None:
        if jobs:
            st.caption("This session's jobs:")
            for slot, job in list(jobs.items()):
                line(slot, job)
        else:
            st.caption("No training jobs in this session.")
        shared = shared_active()
        if shared:
            st.caption("Shared models training for everyone on this server:")
            for job in shared:
                line(job.name, job)

    with st.sidebar:
        st.caption(f"Compute: {training.describe_device()}")
        jobs_panel()
