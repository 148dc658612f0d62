"""The background trainer every lab shares.

A `TrainingJob` runs one training loop (`target(ctx)`) in its own thread. The loop talks to
the outside world only through its `TrainContext`: it asks `ctx.should_stop()`, blocks in
`ctx.wait_if_paused()`, and publishes progress with `ctx.report(loss=...)`. Readers (a
Streamlit page, a notebook, a test) call `job.snapshot()`, which returns an immutable copy
taken under the job's lock, so a page can never see a half-written metric history.

Process-wide rules live in one `JobManager` (the module's `MANAGER`):
- at most `max_running` jobs train at once (one per usable core, at most 2); the others wait
  in state ``queued``, first come first served, and the running ones take turns: between two
  steps a job hands its slot to the longest-waiting one, so every job of a class advances;
- training threads run at a lower OS priority (`TRAIN_NICE`) than the web server's;
- every job is stopped and joined before the interpreter shuts down, because a torch thread
  alive at interpreter shutdown aborts the process;
- `shared_job(key, target)` trains a result once per process for every caller that asks with
  the same key (the labs' default models in a classroom).

This module never imports streamlit.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

QUEUED, RUNNING, PAUSED, DONE, FAILED, STOPPED = "queued", "running", "paused", "done", "failed", "stopped"
FINISHED_STATES = frozenset({DONE, FAILED, STOPPED})


class JobStopped(Exception):
    """Raised inside a training loop by `ctx.check()` when the job was asked to stop."""


# ---------------------------------------------------------------------------------------------
# Devices and threads


def resolve_device(device: str = "auto") -> str:
    """Map "auto" | "cpu" | "cuda" | "mps" to a device torch can use, falling back to CPU.

    >>> resolve_device("cpu")
    'cpu'
    """
    import torch

    if device not in ("auto", "cpu", "cuda", "mps"):
        raise ValueError(f"device must be auto, cpu, cuda or mps, not {device!r}")
    if device in ("auto", "cuda") and torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if device in ("auto", "mps") and mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def usable_cpus(cgroup: str | Path = "/sys/fs/cgroup") -> float:
    """The CPUs this process may really use: its affinity mask, capped by the cgroup v2 quota.

    `os.cpu_count()` counts the host's cores; a container pinned to one of them, or given half a
    core by `cpu.max` ("50000 100000"), must size its threads and job slots by what it has.

    >>> 0 < usable_cpus() <= (os.cpu_count() or 1)
    True
    """
    try:
        cpus: float = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        cpus = os.cpu_count() or 1
    try:
        quota, period = Path(cgroup, "cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, int(quota) / int(period))
    except (OSError, ValueError):
        pass  # no cgroup v2 quota here
    return cpus


def describe_device(device: str = "auto") -> str:
    """A one-line human description, e.g. "CPU (2 threads, 2 usable cores)" or "CUDA: NVIDIA H100"."""
    import torch

    dev = resolve_device(device)
    if dev == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(0)}"
    if dev == "mps":
        return "MPS (Apple GPU)"
    n, cpus = torch.get_num_threads(), usable_cpus()
    return f"CPU ({n} thread{'s' if n != 1 else ''}, {cpus:g} usable core{'s' if cpus != 1 else ''})"


_threads_configured = threading.Event()


def configure_torch_threads(n: int | None = None) -> int:
    """Set torch's intra-op thread count once per process and return it.

    Shared hosts (Streamlit Community Cloud gives 0.078-2 CPUs) suffer from oversubscription,
    so the default is the number of usable cores (`usable_cpus`), capped at 4;
    `MLLM_TORCH_THREADS` overrides it.
    Later calls are no-ops, so every lab can call it safely.
    """
    import torch

    if _threads_configured.is_set():
        return torch.get_num_threads()
    if n is None:
        n = int(os.environ.get("MLLM_TORCH_THREADS", "0")) or min(int(usable_cpus()), 4)
    torch.set_num_threads(max(1, n))
    _threads_configured.set()
    return torch.get_num_threads()


def warm_up_torch() -> None:
    """Pay torch's lazy one-off costs now, e.g. at app start, rather than on the first click.

    The first optimizer creation imports `torch._dynamo` (3-10 s on a small CPU); a page that
    trains would otherwise freeze on its first "Train" click.
    """
    import torch

    configure_torch_threads()
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=0.1)
    p.sum().backward()
    opt.step()


def share_malloc_arena() -> bool:
    """Make every thread of this process allocate from one glibc malloc arena; True if it took effect.

    glibc gives each new thread its own arena (up to 8 per core), and an arena keeps what its thread
    freed. A worker runs each job in its own thread, so 25 jobs kept 25 copies of a step's peak
    activations: about 74 MB per attention job, 54 MB with one arena (10 jobs, measured). The jobs
    take turns on one slot, so they never contend for the arena. Elsewhere (musl, macOS) a no-op.
    """
    import ctypes
    import ctypes.util

    m_arena_max = -8  # glibc's mallopt parameter number for M_ARENA_MAX
    try:
        return bool(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt(m_arena_max, 1))
    except (OSError, AttributeError):
        return False


TRAIN_NICE = 10  # training threads run at this nice level, so the web server's threads get the CPU first


def _lower_priority() -> None:
    """Lower the calling thread's CPU priority (Linux schedules threads one by one; elsewhere a no-op)."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or not allowed
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), TRAIN_NICE)


def max_jobs() -> int:
    """Jobs computing at once (thread slots, or worker processes): `MLLM_MAX_JOBS`, else one per
    usable core, at most 2."""
    return int(os.environ.get("MLLM_MAX_JOBS", "0")) or max(1, min(int(usable_cpus()), 2))


# ---------------------------------------------------------------------------------------------
# Snapshot and context


@dataclass(frozen=True)
class JobSnapshot:
    """An immutable copy of a job's progress, safe to read from any thread."""

    name: str
    state: str  # queued | running | paused | done | failed | stopped
    step: int  # number of reports so far (or the last explicit step)
    total_steps: int | None  # known length of the run, for progress and ETA
    elapsed: float  # seconds spent running (paused and queued time excluded)
    eta: float | None  # seconds left, when total_steps is known and progress was made
    error: str | None  # the exception message when state == "failed"
    history: dict[str, list[tuple[int, float]]]  # metric -> [(step, value), ...]
    artifacts: Mapping[str, Any]  # latest published non-metric values (samples, checkpoints)
    device: str

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    @property
    def progress(self) -> float | None:
        """Fraction done in [0, 1] when the length of the run is known."""
        if self.state == DONE:
            return 1.0
        if not self.total_steps:
            return None
        return min(1.0, self.step / self.total_steps)

    def latest(self, metric: str) -> float | None:
        """The last reported value of `metric`, or None."""
        values = self.history.get(metric)
        return values[-1][1] if values else None


def estimate_eta(state: str, elapsed: float, step: int, total_steps: int | None) -> float | None:
    """Seconds left at the pace so far (time spent waiting for a turn included, so it stays honest
    when a class shares the CPU); None until a step was made or when the length is unknown.

    >>> estimate_eta("running", 10.0, 5, 20), estimate_eta("queued", 0.0, 0, 20)
    (30.0, None)
    """
    if total_steps and step > 0 and state in (RUNNING, PAUSED):
        return elapsed / step * max(0, total_steps - step)
    return None


class TrainContext:
    """What a training loop sees of its job: stop/pause checks and a progress channel."""

    def __init__(self, job: TrainingJob):
        self._job = job

    @property
    def device(self) -> str:
        """The torch device string the loop should put its tensors on."""
        return self._job.device

    def should_stop(self) -> bool:
        """True once `stop()` was called: the loop should return soon."""
        return self._job._stop.is_set()

    def wait_if_paused(self) -> None:
        """Between two steps: block while the job is paused (returns at once when stopping), and
        give the CPU slot to a job that waits for one (`JobManager` takes turns)."""
        self._job._manager._take_turn(self._job)

    def check(self) -> None:
        """`wait_if_paused()` then raise `JobStopped` if stopping: one call per step."""
        self.wait_if_paused()
        if self.should_stop():
            raise JobStopped

    def set_total(self, total_steps: int) -> None:
        """Declare how many steps the run will take (enables progress and ETA)."""
        with self._job._lock:
            self._job._total_steps = int(total_steps)

    def report(self, step: int | None = None, **metrics: float) -> None:
        """Append metrics to the history; `step` defaults to the previous step + 1."""
        self._job._report(step, metrics)

    def publish(self, **artifacts: Any) -> None:
        """Replace named non-metric values readers may want (a sample text, a model copy)."""
        with self._job._lock:
            self._job._artifacts.update(artifacts)

    def snapshot(self) -> JobSnapshot:
        """What readers see of this job now (its metric history and artifacts so far), e.g. to save
        them along with the result."""
        return self._job.snapshot()


class NullContext:
    """The context of a loop run without a job (a script, a notebook): never paused or stopped,
    its reports go nowhere. Training functions take `ctx=None` to mean this one."""

    def __init__(self, device: str = "auto"):
        self.device = resolve_device(device)

    def should_stop(self) -> bool:
        return False

    def wait_if_paused(self) -> None:
        pass

    def check(self) -> None:
        pass

    def set_total(self, total_steps: int) -> None:
        pass

    def report(self, step: int | None = None, **metrics: float) -> None:
        pass

    def publish(self, **artifacts: Any) -> None:
        pass


class StageContext:
    """A job's context as one stage of a multi-run job sees it (one model of a ladder): the stage's
    steps are shifted by `offset`, so the job's progress counts across all its runs, and the
    stage's own `set_total` is ignored (the job declared the total of every run).

    >>> class Log(NullContext):
    ...     def report(self, step=None, **metrics): print(step, metrics)
    >>> StageContext(Log(), offset=100).report(step=5, loss=1.0)
    105 {'loss': 1.0}
    """

    def __init__(self, ctx: TrainContext | NullContext, offset: int):
        self._ctx, self._offset = ctx, offset
        self.device = ctx.device

    def should_stop(self) -> bool:
        return self._ctx.should_stop()

    def wait_if_paused(self) -> None:
        self._ctx.wait_if_paused()

    def check(self) -> None:
        self._ctx.check()

    def set_total(self, total_steps: int) -> None:
        pass

    def report(self, step: int | None = None, **metrics: float) -> None:
        self._ctx.report(step=None if step is None else self._offset + step, **metrics)

    def publish(self, **artifacts: Any) -> None:
        self._ctx.publish(**artifacts)


# ---------------------------------------------------------------------------------------------
# A job as data


@dataclass(frozen=True)
class JobSpec:
    """A training job as plain data: `factory(*args, **kwargs)` builds the loop `loop(ctx)`.

    `factory` is a module-level function (e.g. `transformer.gpt_target`) and the arguments are
    configs, numbers, strings and `corpora.TextRef`s, so a spec pickles and can run in another
    process. A `TextRef` argument becomes its corpus's text where the job runs. A spec is itself a
    loop: calling it with a context builds the loop and runs it.

    >>> spec = JobSpec(sum_target, ([1, 2, 3],))
    >>> run_sync(spec)
    6.0
    """

    factory: Callable[..., Callable[[TrainContext], Any]]
    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

    def build(self) -> Callable[[TrainContext], Any]:
        from mllm_core.corpora import TextRef

        def resolve(value: Any) -> Any:
            return value.text() if isinstance(value, TextRef) else value

        args = [resolve(a) for a in self.args]
        return self.factory(*args, **{k: resolve(v) for k, v in self.kwargs.items()})

    def __call__(self, ctx: TrainContext) -> Any:
        return self.build()(ctx)


def spec(factory: Callable[..., Callable[[TrainContext], Any]], *args: Any, **kwargs: Any) -> JobSpec:
    """`JobSpec(factory, args, kwargs)` written as a call: `spec(gpt_target, TextRef("fox"), config)`."""
    return JobSpec(factory, args, kwargs)


def sum_target(values: list[float], delay: float = 0.0) -> Callable[[TrainContext], float]:
    """The smallest job there is (docs and tests): report each partial sum, `delay` seconds per
    step, and return the total."""

    def loop(ctx: TrainContext) -> float:
        ctx.set_total(len(values))
        total = 0.0
        for value in values:
            ctx.check()
            time.sleep(delay)
            total += value
            ctx.report(total=total)
        return total

    return loop


# ---------------------------------------------------------------------------------------------
# The job


class TrainingJob:
    """One training loop running in a background thread.

    >>> def loop(ctx):
    ...     ctx.set_total(3)
    ...     for i in range(3):
    ...         ctx.check()
    ...         ctx.report(loss=1.0 / (i + 1))
    ...     return "trained"
    >>> job = TrainingJob(loop).start()
    >>> job.join(5)
    True
    >>> job.snapshot().state, job.result, job.snapshot().latest("loss")
    ('done', 'trained', 0.3333333333333333)
    """

    def __init__(
        self,
        target: Callable[[TrainContext], Any],
        *,
        name: str = "job",
        device: str = "auto",
        total_steps: int | None = None,
        manager: JobManager | None = None,
    ):
        self.target = target
        self.name = name
        self.requested_device = device
        self.device = "cpu"  # resolved when the job starts, so construction never imports torch
        self.result: Any = None
        self._manager = manager or MANAGER
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._unpaused = threading.Event()
        self._unpaused.set()
        self._thread: threading.Thread | None = None
        self._state = QUEUED
        self._step = 0
        self._total_steps = total_steps
        self._error: str | None = None
        self._history: dict[str, list[tuple[int, float]]] = {}
        self._artifacts: dict[str, Any] = {}
        self._has_slot = False  # holds one of the manager's CPU slots (only the job's thread changes it)
        self._run_time = 0.0  # seconds spent running before the current running stretch
        self._running_since: float | None = None
        self._started_at: float | None = None  # time.monotonic() at start(), for the first step's log line

    # -- control (any thread) ------------------------------------------------------------------

    def start(self) -> TrainingJob:
        """Start the thread (the job waits as "queued" while the manager is at capacity)."""
        if self._thread is not None:
            raise RuntimeError("a job can only be started once")
        # Import torch (and numpy) here, in the starting thread: a first import running in the
        # job's thread races with libraries that peek at sys.modules (plotly finds a half-
        # initialised numpy and fails).
        import torch  # noqa: F401

        self._manager._register(self)
        self._thread = threading.Thread(target=self._run, name=f"mllm-{self.name}", daemon=False)
        self._started_at = time.monotonic()
        self._thread.start()
        log.info("job %r started", self.name)
        return self

    def pause(self) -> None:
        with self._lock:
            if self._state == RUNNING:
                self._unpaused.clear()
                self._set_state(PAUSED)

    def resume(self) -> None:
        with self._lock:
            if self._state == PAUSED:
                self._set_state(RUNNING)
            self._unpaused.set()

    def stop(self, timeout: float | None = None) -> bool:
        """Ask the loop to stop and join it; True when the thread has ended."""
        self._stop.set()
        self._unpaused.set()  # a paused loop must wake up to see the stop
        return self.join(timeout)

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is None:
            return True
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def latest(self, artifact: str = "model") -> Any:
        """The model of the job as readers should see it, in one rule for every lab: the result
        once the job is done, before that (queued, training, stopped early, failed) the latest
        `artifact` it published, or None."""
        with self._lock:
            if self._state == DONE and self.result is not None:
                return self.result
            return self._artifacts.get(artifact)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            return self._snapshot({k: list(v) for k, v in self._history.items()})

    def changes(self, sent: dict[str, int]) -> tuple[JobSnapshot, dict[str, list[tuple[int, float]]]]:
        """A snapshot without the history, and the history points after the first `sent[metric]`
        of each metric (updating `sent`): what a reporter forwards at each tick, in time
        proportional to the new points rather than to the whole run."""
        with self._lock:
            new = {}
            for metric, points in self._history.items():
                if len(points) > sent.get(metric, 0):
                    new[metric] = points[sent.get(metric, 0) :]
                    sent[metric] = len(points)
            snap = self._snapshot(history={})
        return snap, new

    # -- internals -----------------------------------------------------------------------------

    def _snapshot(self, history: dict[str, list[tuple[int, float]]]) -> JobSnapshot:
        # called with the lock held
        elapsed = self._elapsed()
        return JobSnapshot(
            name=self.name,
            state=self._state,
            step=self._step,
            total_steps=self._total_steps,
            elapsed=elapsed,
            eta=estimate_eta(self._state, elapsed, self._step, self._total_steps),
            error=self._error,
            history=history,
            artifacts=dict(self._artifacts),
            device=self.device,
        )

    def _elapsed(self) -> float:
        running = time.perf_counter() - self._running_since if self._running_since is not None else 0.0
        return self._run_time + running

    def _set_state(self, state: str) -> None:
        # Called with the lock held; keeps the running clock in step with the state.
        now = time.perf_counter()
        if self._running_since is not None:
            self._run_time += now - self._running_since
            self._running_since = None
        if state == RUNNING:
            self._running_since = now
        self._state = state

    def _wait_while_paused(self) -> None:
        while not self._unpaused.wait(0.1):
            if self._stop.is_set():
                return

    def _report(self, step: int | None, metrics: dict[str, float]) -> None:
        with self._lock:
            first = self._step == 0
            self._step = self._step + 1 if step is None else int(step)
            for key, value in metrics.items():
                self._history.setdefault(key, []).append((self._step, float(value)))
        if first and self._step > 0 and self._started_at is not None:  # what a student waits for (bench.classroom)
            log.info("job %r: first step %.1f s after its start", self.name, time.monotonic() - self._started_at)

    def _run(self) -> None:
        _lower_priority()
        if not self._manager._acquire_slot(self._stop):
            with self._lock:
                self._set_state(STOPPED)
            return
        self._has_slot = True
        try:
            configure_torch_threads()
            self.device = resolve_device(self.requested_device)
            with self._lock:
                self._set_state(PAUSED if not self._unpaused.is_set() else RUNNING)
            result = self.target(TrainContext(self))
            with self._lock:
                self.result = result
                self._set_state(STOPPED if self._stop.is_set() else DONE)
        except JobStopped:
            with self._lock:
                self._set_state(STOPPED)
        except Exception as exc:  # the page shows the message, never a traceback
            with self._lock:
                self._error = f"{type(exc).__name__}: {exc}"
                self._set_state(FAILED)
        finally:
            if self._has_slot:
                self._manager._release_slot()
            log.info("job %r ended: %s after %d steps", self.name, self._state, self._step)


# ---------------------------------------------------------------------------------------------
# Process-wide manager


class JobManager:
    """Caps concurrently running jobs and stops every job before the interpreter exits."""

    def __init__(self, max_running: int | None = None):
        self.max_running = max_running if max_running is not None else max_jobs()
        self._cond = threading.Condition()
        self._running = 0
        self._waiting: collections.deque[object] = (
            collections.deque()
        )  # tickets of jobs waiting for a slot, oldest first
        self._jobs: list[TrainingJob] = []
        self._shared: dict[Hashable, TrainingJob] = {}
        self._exit_hook_installed = False

    def submit(
        self,
        target: Callable[[TrainContext], Any],
        *,
        name: str = "job",
        device: str = "auto",
        total_steps: int | None = None,
    ) -> TrainingJob:
        """Start `target` as a job in a thread of this process (`Executor.submit`)."""
        return TrainingJob(target, name=name, device=device, total_steps=total_steps, manager=self).start()

    @property
    def running(self) -> int:
        with self._cond:
            return self._running

    def jobs(self) -> list[TrainingJob]:
        """Jobs still alive (queued, running or paused)."""
        with self._cond:
            self._jobs = [j for j in self._jobs if j.alive or j._thread is None]
            return list(self._jobs)

    def shared_jobs(self) -> dict[Hashable, TrainingJob]:
        """The shared jobs by key (finished ones included)."""
        with self._cond:
            return dict(self._shared)

    def shared_job(
        self, key: Hashable, make_target: Callable[[], Callable[[TrainContext], Any]], **kwargs
    ) -> TrainingJob:
        """Return the one job for `key` (e.g. ("ngram", config, corpus)), starting it if needed.

        Every session asking with the same key gets the same job, so a result every session
        would compute identically is trained once per process. A failed or stopped job is
        replaced on the next request.
        """
        with self._cond:
            job = self._shared.get(key)
            if job is not None and job.snapshot().state not in (FAILED, STOPPED):
                return job
            job = TrainingJob(make_target(), manager=self, **kwargs)
            self._shared[key] = job
        return job.start()

    def stop_all(self, timeout: float = 10.0) -> None:
        """Stop and join every job; called before interpreter shutdown."""
        jobs = self.jobs()
        for job in jobs:
            job._stop.set()
            job._unpaused.set()
        with self._cond:
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for job in jobs:
            job.join(max(0.0, deadline - time.monotonic()))

    def _register(self, job: TrainingJob) -> None:
        with self._cond:
            self._jobs.append(job)
            if not self._exit_hook_installed:
                _install_exit_hook(self)
                self._exit_hook_installed = True

    def _acquire_slot(self, stop: threading.Event) -> bool:
        """Wait for a free CPU slot, first come first served; False when `stop` is set meanwhile."""
        ticket = object()
        with self._cond:
            self._waiting.append(ticket)
            try:
                while self._running >= self.max_running or self._waiting[0] is not ticket:
                    if stop.is_set():
                        return False
                    self._cond.wait(0.1)
                if stop.is_set():
                    return False
                self._running += 1
                return True
            finally:
                self._waiting.remove(ticket)
                self._cond.notify_all()

    def _take_turn(self, job: TrainingJob) -> None:
        """Called by a job between two steps: when another job waits for a slot, or this one is
        paused, hand the slot over and queue for it again (at the back). So a class of 20 jobs on
        2 slots all advance, a step each in turn, and a paused job keeps nobody waiting."""
        with self._cond:
            if not job._has_slot or (not self._waiting and job._unpaused.is_set()):
                return
            self._running -= 1
            job._has_slot = False
            self._cond.notify_all()
        job._wait_while_paused()
        job._has_slot = self._acquire_slot(job._stop)

    def _release_slot(self) -> None:
        with self._cond:
            self._running -= 1
            self._cond.notify_all()


def _install_exit_hook(manager: JobManager) -> None:
    # threading._register_atexit runs before the interpreter joins non-daemon threads (it is
    # what concurrent.futures uses), so loops get their stop signal and the join is quick.
    # Plain atexit would run only after that join, i.e. never for a loop that runs forever.
    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        register(manager.stop_all)
    else:  # pragma: no cover - other interpreters
        import atexit

        atexit.register(manager.stop_all)


MANAGER = JobManager()


class Executor(Protocol):
    """Where a job runs; pages and labs only ever call `executor().submit(...)`.

    - `JobManager` (`MANAGER`): threads of this process. Scripts, notebooks and tests.
    - `workers.ProcessExecutor`: worker processes at a lower OS priority, so training never
      holds the web server's GIL (the app). It takes `JobSpec`s only, since a spec pickles.
    Both return jobs with the same surface: `name`, `result`, `snapshot()`, `latest()`, `pause()`,
    `resume()`, `stop(timeout)`, `join(timeout)`, `alive`.
    """

    def submit(
        self,
        target: Callable[[TrainContext], Any],
        *,
        name: str = "job",
        device: str = "auto",
        total_steps: int | None = None,
    ) -> Any: ...

    def jobs(self) -> list[Any]: ...

    def stop_all(self, timeout: float = 10.0) -> None: ...


EXECUTOR_ENV = "MLLM_EXECUTOR"  # "thread" (the default) or "process" (what the app sets)
_process_executor: Executor | None = None
_process_lock = threading.Lock()


def executor() -> Executor:
    """The executor `$MLLM_EXECUTOR` names: "thread" (`MANAGER`) or "process" (one pool per process)."""
    kind = os.environ.get(EXECUTOR_ENV, "thread")
    if kind == "thread":
        return MANAGER
    if kind != "process":
        raise ValueError(f"{EXECUTOR_ENV} must be thread or process, not {kind!r}")
    global _process_executor
    with _process_lock:
        if _process_executor is None:
            from mllm_core.workers import ProcessExecutor

            _process_executor = ProcessExecutor()
        return _process_executor


def submit(target: Callable[[TrainContext], Any], **kwargs: Any) -> Any:
    """`executor().submit(target, name=..., device=..., total_steps=...)`."""
    return executor().submit(target, **kwargs)


def shared_job(key: Hashable, make_target: Callable[[], Callable[[TrainContext], Any]], **kwargs) -> TrainingJob:
    """`MANAGER.shared_job`: train once per process for every caller with the same key."""
    return MANAGER.shared_job(key, make_target, **kwargs)


WARM_UP = "warm-up"  # the name of the job `warm_up` starts


def warm_up() -> None:
    """Once per process (at app start): start the worker processes, each of which pays torch's
    lazy start-up costs; with the thread executor, pay them in a background job of this process."""
    if os.environ.get(EXECUTOR_ENV) == "process":
        executor().start()
    else:
        shared_job(WARM_UP, lambda: lambda ctx: warm_up_torch(), name=WARM_UP)


def run_sync(target: Callable[[TrainContext], Any], **kwargs) -> Any:
    """Run a training loop in the calling thread's stead and return its result (for scripts).

    Raises RuntimeError with the loop's message when it failed.
    """
    job = TrainingJob(target, **kwargs).start()
    try:
        job.join()
    finally:
        job.stop()
    snap = job.snapshot()
    if snap.state == FAILED:
        raise RuntimeError(snap.error)
    return job.result


__all__ = [
    "DONE",
    "EXECUTOR_ENV",
    "Executor",
    "FAILED",
    "FINISHED_STATES",
    "JobManager",
    "JobSnapshot",
    "JobSpec",
    "JobStopped",
    "MANAGER",
    "NullContext",
    "PAUSED",
    "QUEUED",
    "RUNNING",
    "STOPPED",
    "StageContext",
    "TrainContext",
    "TrainingJob",
    "configure_torch_threads",
    "describe_device",
    "estimate_eta",
    "executor",
    "max_jobs",
    "resolve_device",
    "run_sync",
    "share_malloc_arena",
    "shared_job",
    "spec",
    "submit",
    "sum_target",
    "usable_cpus",
    "warm_up",
    "warm_up_torch",
]
