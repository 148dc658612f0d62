"""Training in worker processes: the executor the app uses, so a class that trains at once never
starves the web server.

Threads of one Python process share one GIL: a training loop there slows every page of every
student. Here the loops run in a few worker processes (one per usable core, at most 2) at a
lower OS priority (`training.TRAIN_NICE`), and the server only relays progress:

    server process                                       worker process (`workers.main`)
    RemoteJob ── start(spec) / pause / resume / stop ──▶  a local JobManager with ONE slot: its jobs
    (same surface as TrainingJob)                         take turns step by step, so all advance
        ▲                                                  │
        └──── every 0.2 s: new metric points, state, ◀─────┘ reporter thread
              changed artifacts, the result

A job is a `training.JobSpec` (a module-level factory and data), so it pickles. What comes back is
data too: metric points, numbers, arrays, and torch modules as (class, init arguments, state dict
saved by `torch.save`, loaded with `weights_only=True`), never a pickled module (`dumps` / `loads`).
A worker that dies fails its jobs with a message; the next job starts a new worker. A worker whose
server went away reads EOF on its pipe and exits, so none is left behind.
"""

from __future__ import annotations

import io
import itertools
import logging
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from mllm_core import corpora, training
from mllm_core.training import DONE, FAILED, PAUSED, QUEUED, RUNNING, JobSnapshot, JobSpec

log = logging.getLogger(__name__)

TICK = 0.2  # seconds between two progress messages of a worker
ROOT = Path(__file__).resolve().parents[1]  # put on the worker's path, so it imports this checkout

# ---------------------------------------------------------------------------------------------
# What crosses the pipe


def _module_state(module: Any) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in module.state_dict().items()}, buffer)
    return buffer.getvalue()


def _rebuild_module(cls: type, init_args: tuple, state: bytes, train_mode: bool) -> Any:
    """The receiving end of a module: a fresh `cls(*init_args)` with the weights loaded."""
    import torch

    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise TypeError(f"{cls!r} is not a torch module")
    module = cls(*init_args)
    module.load_state_dict(torch.load(io.BytesIO(state), map_location="cpu", weights_only=True))
    return module.train(train_mode)


class _Pickler(pickle.Pickler):
    """Pickles data as usual, but a torch module as (class, init args, state dict bytes)."""

    def reducer_override(self, obj: Any) -> Any:
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(obj, torch.nn.Module):
            if not hasattr(obj, "init_args"):
                raise TypeError(f"a {type(obj).__name__} cannot leave its process: give it init_args()")
            return _rebuild_module, (type(obj), tuple(obj.init_args()), _module_state(obj), obj.training)
        return NotImplemented


def dumps(obj: Any) -> bytes:
    """Bytes for `loads`, on another process.

    >>> loads(dumps({"loss": [(1, 2.5)], "sample": "the cat"}))
    {'loss': [(1, 2.5)], 'sample': 'the cat'}
    """
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buffer.getvalue()


def loads(data: bytes) -> Any:
    return pickle.loads(data)


# ---------------------------------------------------------------------------------------------
# The worker process


def serve(commands: Connection, updates: Connection) -> None:
    """A worker's life: run the jobs the server sends, report their progress, exit on EOF."""
    os.nice(training.TRAIN_NICE)  # before any thread exists: torch's pool threads inherit it
    training.share_malloc_arena()  # before the job threads exist: they all allocate from one arena
    training.warm_up_torch()
    # the default corpus, read (or parsed) while the worker waits for its first job, which needs it
    threading.Thread(target=corpora.load, name="mllm-preload", daemon=True).start()
    manager = training.JobManager(max_running=1)
    jobs: dict[int, training.TrainingJob] = {}
    lock = threading.Lock()
    send_lock = threading.Lock()

    def send(message: tuple) -> None:
        data = dumps(message)
        with send_lock:
            updates.send_bytes(data)

    reporter = threading.Thread(target=_report_loop, args=(jobs, lock, send), name="mllm-reporter")
    reporter.start()
    send(("ready", os.getpid()))
    try:
        while True:
            try:
                message = loads(commands.recv_bytes())
            except (EOFError, OSError):
                break  # the server is gone
            if message[0] == "exit":
                break
            if message[0] == "start":
                _, job_id, spec, name, device, total_steps = message
                job = training.TrainingJob(
                    _Unpickled(spec), name=name, device=device, total_steps=total_steps, manager=manager
                )
                with lock:
                    jobs[job_id] = job
                job.start()
            else:  # pause | resume | stop
                kind, job_id = message
                job = jobs.get(job_id)
                if job is not None:
                    job.stop(timeout=0) if kind == "stop" else getattr(job, kind)()
    finally:
        manager.stop_all(timeout=10)
        with lock:
            jobs[-1] = None  # tells the reporter to send what is left and end
        reporter.join(15)


class _Unpickled:
    """A job's loop from the spec's bytes: a spec that cannot be read here fails its job, not the worker."""

    def __init__(self, spec: bytes):
        self.spec = spec

    def __call__(self, ctx: training.TrainContext) -> Any:
        return loads(self.spec)(ctx)


def _report_loop(jobs: dict, lock: threading.Lock, send) -> None:
    """Every `TICK`: for each job, its state, new metric points and changed artifacts; a finished
    job's result goes with its last message, and then the job is forgotten."""
    sent: dict[int, dict[str, int]] = {}  # job id -> points sent per metric
    shown: dict[int, dict[str, Any]] = {}  # job id -> the artifact objects sent last
    last: dict[int, tuple] = {}  # job id -> (state, step, total) sent last
    closing = False
    while True:
        time.sleep(TICK)
        with lock:
            closing = closing or jobs.get(-1, 0) is None
            items = [(k, j) for k, j in jobs.items() if k >= 0]
        for job_id, job in items:
            snap, points = job.changes(sent.setdefault(job_id, {}))
            finished = snap.finished and not job.alive  # its thread has ended: the result is final
            before = shown.setdefault(job_id, {})
            changed = {k: v for k, v in snap.artifacts.items() if before.get(k) is not v}
            head = (snap.state, snap.step, snap.total_steps)
            if not (points or changed or finished or head != last.get(job_id)):
                continue
            payload = {}
            for key, value in changed.items():
                try:
                    payload[key] = dumps(value)
                except Exception as exc:  # noqa: BLE001 - an artifact that cannot travel is skipped
                    log.warning("artifact %r of %s cannot be sent: %s", key, job.name, exc)
                before[key] = value
            result, error = None, snap.error
            if finished and job.result is not None:  # (a run stopped early may have one too)
                try:
                    result = dumps(job.result)
                except Exception as exc:  # noqa: BLE001
                    error = f"the result cannot leave the worker: {type(exc).__name__}: {exc}"
            state = snap.state if finished or not snap.finished else RUNNING  # "done" goes with the result
            fields = dict(
                state=FAILED if error and state == DONE else state,
                step=snap.step,
                total_steps=snap.total_steps,
                elapsed=snap.elapsed,
                error=error,
                device=snap.device,
            )
            try:
                send(("update", job_id, fields, points, payload, result, finished))
            except OSError:
                return  # the server is gone
            last[job_id] = head
            if finished:
                with lock:
                    jobs.pop(job_id, None)
                for table in (sent, shown, last):
                    table.pop(job_id, None)
        if closing and not items:
            return


def main(argv: list[str] | None = None) -> int:
    """A worker's entry point, `main([commands_fd, updates_fd])`: started by `ProcessExecutor`."""
    commands_fd, updates_fd = (int(a) for a in (argv or sys.argv[1:]))
    level = os.environ.get("MLLM_LOG_LEVEL", "WARNING")  # the app's: INFO logs each job's start and end
    logging.basicConfig(level=level, format="%(asctime)s worker %(process)d %(name)s %(message)s")
    serve(Connection(commands_fd), Connection(updates_fd))
    return 0


# ---------------------------------------------------------------------------------------------
# The server's side


class RemoteJob:
    """A job running in a worker, seen from the server: the `TrainingJob` surface, fed by messages."""

    def __init__(self, worker: _Worker, job_id: int, name: str, device: str):
        self.name = name
        self.requested_device = device
        self._worker, self._id = worker, job_id
        self._lock = threading.Lock()
        self._ended = threading.Event()
        self._state, self._step, self._total = QUEUED, 0, None
        self._elapsed, self._at = 0.0, time.perf_counter()
        self._error: str | None = None
        self.device = "cpu"
        self._history: dict[str, list[tuple[int, float]]] = {}
        self._artifacts: dict[str, bytes] = {}
        self._decoded: dict[str, tuple[bytes, Any]] = {}  # key -> (the bytes, their value), decoded on demand
        self._result: bytes | None = None
        self._result_value: Any = None
        self._expect: str | None = None  # paused / running, asked for and not yet confirmed by the worker

    # -- control -------------------------------------------------------------------------------

    def pause(self) -> None:
        with self._lock:
            if self._state == RUNNING:
                self._state = self._expect = PAUSED  # shown at once; the worker confirms
        self._worker.send(("pause", self._id))

    def resume(self) -> None:
        with self._lock:
            if self._state == PAUSED:
                self._state = self._expect = RUNNING
        self._worker.send(("resume", self._id))

    def stop(self, timeout: float | None = None) -> bool:
        if not self._ended.is_set():
            self._worker.send(("stop", self._id))
        return self.join(timeout)

    def join(self, timeout: float | None = None) -> bool:
        return self._ended.wait(timeout)

    @property
    def alive(self) -> bool:
        return not self._ended.is_set()

    # -- reading -------------------------------------------------------------------------------

    @property
    def result(self) -> Any:
        with self._lock:
            if self._result is not None:
                self._result_value, self._result = loads(self._result), None
            return self._result_value

    def latest(self, artifact: str = "model") -> Any:
        """The result once done, else the latest published `artifact` (`TrainingJob.latest`)."""
        with self._lock:
            done = self._state == DONE
        if done and self.result is not None:
            return self.result
        with self._lock:
            return self._artifact(artifact)

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            elapsed = self._elapsed + (time.perf_counter() - self._at if self._state == RUNNING else 0.0)
            return JobSnapshot(
                name=self.name,
                state=self._state,
                step=self._step,
                total_steps=self._total,
                elapsed=elapsed,
                eta=training.estimate_eta(self._state, elapsed, self._step, self._total),
                error=self._error,
                history={k: list(v) for k, v in self._history.items()},
                artifacts=_Artifacts(self, dict(self._artifacts)),
                device=self.device,
            )

    def _artifact(self, key: str) -> Any:
        # called with the lock held
        data = self._artifacts.get(key)
        return None if data is None else self._decode(key, data)

    def _decode(self, key: str, data: bytes) -> Any:
        # called with the lock held; decodes a published value once, the first time it is read
        cached = self._decoded.get(key)
        if cached is None or cached[0] is not data:
            cached = (data, loads(data))
            self._decoded[key] = cached
        return cached[1]

    # -- fed by the worker's receiver thread ----------------------------------------------------

    def _update(self, fields: dict, points: dict, artifacts: dict, result: bytes | None, finished: bool) -> None:
        with self._lock:
            state = fields["state"]
            if state == self._expect or state not in (RUNNING, PAUSED):
                self._expect = None
            self._state = self._expect or state  # a pause the worker has not seen yet stays shown
            self._step, self._total = fields["step"], fields["total_steps"]
            self._elapsed, self._at = fields["elapsed"], time.perf_counter()
            self._error, self.device = fields["error"], fields["device"]
            for metric, new in points.items():
                self._history.setdefault(metric, []).extend(new)
            self._artifacts.update(artifacts)
            if result is not None:
                self._result = result
        if finished:
            self._ended.set()

    def _fail(self, message: str) -> None:
        with self._lock:
            if self._ended.is_set():
                return
            self._state, self._error = FAILED, message
        self._ended.set()


class _Artifacts(Mapping):
    """A snapshot's artifacts as published when it was taken, each decoded when first read.

    A live view that shows the step and the loss reads no artifact, so it never decodes the model
    copy and the attention checkpoints a GPT job publishes every 50 steps: decoding them at every
    refresh of 25 tabs kept the server busy right after a class pressed Train.
    """

    def __init__(self, job: RemoteJob, published: dict[str, bytes]):
        self._job, self._published = job, published

    def __getitem__(self, key: str) -> Any:
        data = self._published[key]
        with self._job._lock:
            return self._job._decode(key, data)

    def __contains__(self, key: object) -> bool:  # without decoding
        return key in self._published

    def __iter__(self):
        return iter(self._published)

    def __len__(self) -> int:
        return len(self._published)


class _Worker:
    """One worker process and the thread that reads its messages."""

    def __init__(self, threads: int):
        cmd_parent, cmd_child = socket.socketpair()
        upd_parent, upd_child = socket.socketpair()
        env = dict(os.environ, MLLM_TORCH_THREADS=str(threads), PYTHONPATH=os.pathsep.join(_python_path()))
        self.process = subprocess.Popen(
            [sys.executable, "-c", _LAUNCH, str(cmd_child.fileno()), str(upd_child.fileno())],
            pass_fds=(cmd_child.fileno(), upd_child.fileno()),
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
        )
        cmd_child.close()
        upd_child.close()
        self._commands = Connection(cmd_parent.detach())
        self._updates = Connection(upd_parent.detach())
        self._send_lock = threading.Lock()
        self.jobs: dict[int, RemoteJob] = {}
        self.ready = threading.Event()
        self.gone = threading.Event()  # the process ended (or its pipe broke)
        self.reader = threading.Thread(target=self._read, name=f"mllm-worker-{self.process.pid}", daemon=True)
        self.reader.start()

    @property
    def alive(self) -> bool:
        return not self.gone.is_set()

    def load(self) -> int:
        return sum(job.alive for job in self.jobs.values())

    def send(self, message: tuple) -> bool:
        """False when the worker is gone (its reader fails its jobs)."""
        data = dumps(message)
        try:
            with self._send_lock:
                self._commands.send_bytes(data)
        except OSError:
            self.gone.set()
            return False
        return True

    def _read(self) -> None:
        try:
            while True:
                message = loads(self._updates.recv_bytes())
                if message[0] == "ready":
                    self.ready.set()
                elif message[0] == "update":
                    _, job_id, *rest = message
                    job = self.jobs.get(job_id)
                    if job is not None:
                        job._update(*rest)
        except (EOFError, OSError):
            pass
        self.gone.set()
        code = self.process.wait()
        for job in list(self.jobs.values()):
            job._fail(f"the worker process running it stopped unexpectedly (exit code {code})")
        self._updates.close()

    def close(self, timeout: float) -> None:
        self.send(("exit",))
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._commands.close()
        self.reader.join(timeout)


# The worker imports this module by its name (not as __main__), so what it pickles names
# `mllm_core.workers._rebuild_module`, which the server can find.
_LAUNCH = "import sys; from mllm_core.workers import main; sys.exit(main())"


def _python_path() -> list[str]:
    path = [str(ROOT)]
    if os.environ.get("PYTHONPATH"):
        path.append(os.environ["PYTHONPATH"])
    return path


class ProcessExecutor:
    """Runs `JobSpec`s in `n_workers` worker processes (`training.Executor`).

    A new job goes to the worker with the fewest live jobs; inside a worker, jobs take turns step
    by step. Workers start on first use (or `start()`, at app start) and end with the interpreter.
    """

    def __init__(self, n_workers: int | None = None):
        self.n_workers = n_workers = n_workers or training.max_jobs()
        self.threads = int(os.environ.get("MLLM_TORCH_THREADS", "0")) or max(
            1, int(training.usable_cpus()) // n_workers
        )
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        self._ids = itertools.count()
        self._closed = False
        register = getattr(threading, "_register_atexit", None)
        (register or __import__("atexit").register)(self.shutdown)

    def start(self) -> ProcessExecutor:
        """Start the workers now (each imports torch once), rather than on the first Train click."""
        with self._lock:
            self._workers = [w for w in self._workers if w.alive]
            while len(self._workers) < self.n_workers:
                self._workers.append(_Worker(self.threads))
        return self

    def submit(
        self, target: Any, *, name: str = "job", device: str = "auto", total_steps: int | None = None
    ) -> RemoteJob:
        if not isinstance(target, JobSpec):
            raise TypeError(f"a worker process runs a training.JobSpec, not a {type(target).__name__}")
        if self._closed:
            raise RuntimeError("the executor is shut down")
        spec = dumps(target)  # fails here, in the caller, when the spec does not pickle
        self.start()
        with self._lock:
            worker = min(self._workers, key=_Worker.load)
            job = RemoteJob(worker, next(self._ids), name, device)
            worker.jobs[job._id] = job
        if not worker.send(("start", job._id, spec, name, device, total_steps)):
            job._fail("the worker process is gone; press Train again")
        return job

    def jobs(self) -> list[RemoteJob]:
        with self._lock:
            return [job for w in self._workers for job in w.jobs.values() if job.alive]

    def stop_all(self, timeout: float = 10.0) -> None:
        jobs = self.jobs()
        for job in jobs:
            job._worker.send(("stop", job._id))
        deadline = time.monotonic() + timeout
        for job in jobs:
            job.join(max(0.0, deadline - time.monotonic()))

    def pids(self) -> list[int]:
        with self._lock:
            return [w.process.pid for w in self._workers if w.alive]

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop every job and end every worker (also run before the interpreter exits)."""
        self._closed = True
        self.stop_all(timeout)
        with self._lock:
            workers, self._workers = self._workers, []
        for worker in workers:
            worker.close(timeout)
