"""The background trainer: lifecycle, pause/resume/stop, failures, the concurrency cap, shared
jobs, and a clean interpreter exit with a job still running."""

import subprocess
import sys
import textwrap
import threading
import time

import pytest
from concurrency import Overlap

from mllm_core import training
from mllm_core.training import JobManager, TrainingJob


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def endless(ctx):
    """A loop that runs until stopped, reporting a decreasing loss."""
    i = 0
    while True:
        ctx.check()
        i += 1
        ctx.report(loss=1.0 / i)
        time.sleep(0.005)


def test_a_job_runs_to_done_with_result_history_and_eta():
    def loop(ctx):
        ctx.set_total(20)
        for i in range(20):
            ctx.check()
            ctx.report(loss=20 - i, acc=i / 20)
            time.sleep(0.002)
        return "model"

    job = TrainingJob(loop, name="t").start()
    assert job.join(10)
    snap = job.snapshot()
    assert (snap.state, snap.step, snap.total_steps, job.result) == ("done", 20, 20, "model")
    assert [v for _, v in snap.history["loss"]] == list(range(20, 0, -1))
    assert snap.latest("acc") == pytest.approx(0.95)
    assert snap.progress == 1.0 and snap.finished and snap.error is None
    assert snap.elapsed > 0


def test_eta_is_known_while_running_when_the_total_is():
    started = threading.Event()

    def loop(ctx):
        ctx.set_total(1000)
        while True:
            ctx.check()
            ctx.report(loss=1.0)
            started.set()
            time.sleep(0.002)

    job = TrainingJob(loop).start()
    assert started.wait(10)
    snap = job.snapshot()
    assert snap.eta is not None and snap.eta > 0
    assert 0 < snap.progress < 1
    job.stop(10)


def test_snapshots_are_copies():
    job = TrainingJob(endless).start()
    assert wait_for(lambda: job.snapshot().step > 3)
    snap = job.snapshot()
    snap.history["loss"].clear()
    assert job.snapshot().history["loss"]
    job.stop(10)


def test_pause_holds_the_loop_and_resume_continues_it():
    job = TrainingJob(endless).start()
    assert wait_for(lambda: job.snapshot().step > 2)
    job.pause()
    assert job.snapshot().state == "paused"
    time.sleep(0.1)  # let the step in flight finish
    held = job.snapshot().step
    time.sleep(0.3)
    assert job.snapshot().step <= held + 1
    paused_elapsed = job.snapshot().elapsed
    time.sleep(0.2)
    assert job.snapshot().elapsed == pytest.approx(paused_elapsed, abs=0.02)  # the clock stops too
    job.resume()
    assert wait_for(lambda: job.snapshot().step > held + 5)
    assert job.snapshot().state == "running"
    job.stop(10)


def test_stop_ends_a_paused_job_quickly():
    job = TrainingJob(endless).start()
    assert wait_for(lambda: job.snapshot().step > 0)
    job.pause()
    t0 = time.monotonic()
    assert job.stop(timeout=5)
    assert time.monotonic() - t0 < 2
    assert job.snapshot().state == "stopped"
    assert not job.alive


def test_an_exception_fails_the_job_with_its_message():
    def broken(ctx):
        ctx.report(loss=1.0)
        raise ValueError("window must be smaller than the text")

    job = TrainingJob(broken).start()
    job.join(10)
    snap = job.snapshot()
    assert snap.state == "failed"
    assert "window must be smaller than the text" in snap.error
    assert snap.history["loss"] == [(1, 1.0)]


def test_run_sync_returns_the_result_or_raises():
    assert training.run_sync(lambda ctx: 42) == 42
    with pytest.raises(RuntimeError, match="boom"):
        training.run_sync(lambda ctx: (_ for _ in ()).throw(ValueError("boom")))


def test_jobs_past_the_cap_wait_as_queued():
    manager = JobManager(max_running=1)
    release = threading.Event()
    first = TrainingJob(lambda ctx: release.wait(10), manager=manager).start()  # one long step, no turn to give
    second = TrainingJob(endless, manager=manager).start()
    assert wait_for(lambda: first.snapshot().state == "running")
    time.sleep(0.2)
    assert second.snapshot().state == "queued" and second.snapshot().step == 0
    assert manager.running == 1
    release.set()
    assert wait_for(lambda: second.snapshot().state == "running")
    second.stop(10)
    assert manager.running == 0


def test_taking_turns_never_runs_more_jobs_than_the_cap_at_once():
    manager = JobManager(max_running=2)
    overlap = Overlap()

    def loop(ctx):
        for _ in range(30):
            ctx.check()
            with overlap:
                time.sleep(0.002)

    jobs = [TrainingJob(loop, manager=manager).start() for _ in range(6)]
    assert all(job.join(30) for job in jobs)
    assert overlap.peak == 2 and manager.running == 0


def test_a_queued_job_can_be_stopped_before_it_runs():
    manager = JobManager(max_running=1)
    first = TrainingJob(endless, manager=manager).start()
    second = TrainingJob(endless, manager=manager).start()
    assert second.stop(timeout=5)
    assert second.snapshot().state == "stopped"
    first.stop(10)


def test_shared_jobs_are_trained_once_per_key():
    manager = JobManager(max_running=2)
    calls = []

    def make_target():
        calls.append(1)
        return lambda ctx: "trained"

    a = manager.shared_job(("ngram", 3, "wikipedia-sample"), make_target)
    b = manager.shared_job(("ngram", 3, "wikipedia-sample"), make_target)
    c = manager.shared_job(("ngram", 4, "wikipedia-sample"), make_target)
    assert a is b and a is not c
    assert len(calls) == 2
    a.join(10)
    c.join(10)
    assert a.result == "trained"


def test_a_stopped_shared_job_is_replaced():
    manager = JobManager(max_running=2)
    a = manager.shared_job("k", lambda: endless)
    a.stop(10)
    b = manager.shared_job("k", lambda: lambda ctx: 1)
    assert b is not a
    b.join(10)


def test_resolve_device():
    assert training.resolve_device("cpu") == "cpu"
    assert training.resolve_device("auto") in ("cpu", "cuda", "mps")
    with pytest.raises(ValueError):
        training.resolve_device("tpu")


def test_a_script_that_leaves_a_job_running_exits_cleanly(root):
    script = textwrap.dedent(
        """
        import time, torch
        from mllm_core.training import TrainingJob

        def loop(ctx):
            w = torch.nn.Parameter(torch.randn(64, 64))
            opt = torch.optim.Adam([w])
            while not ctx.should_stop():
                loss = (w @ w).pow(2).mean()
                opt.zero_grad(); loss.backward(); opt.step()
                ctx.report(loss=float(loss))

        job = TrainingJob(loop).start()
        while job.snapshot().step < 3:
            time.sleep(0.01)
        print("leaving with the job running")
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "leaving with the job running" in proc.stdout


def test_usable_cpus_follow_the_affinity_mask_and_the_cgroup_quota(tmp_path):
    import os

    affinity = len(os.sched_getaffinity(0))
    assert training.usable_cpus(tmp_path) == affinity  # no cpu.max: the affinity mask alone
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert training.usable_cpus(tmp_path) == affinity
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # half a core, as a small cloud container
    assert training.usable_cpus(tmp_path) == 0.5
    (tmp_path / "cpu.max").write_text("800000 100000\n")  # a quota above the mask: the mask wins
    assert training.usable_cpus(tmp_path) == affinity


def _steps(n: int, log: list, name: str, seconds: float = 0.01):
    def loop(ctx):
        for _ in range(n):
            ctx.check()
            time.sleep(seconds)  # one "step" of work, done while holding the slot
            log.append(name)
            ctx.report(loss=1.0)

    return loop


def test_jobs_beyond_the_slots_take_turns_step_by_step():
    manager = training.JobManager(max_running=1)
    log: list[str] = []
    jobs = [training.TrainingJob(_steps(20, log, n), name=n, manager=manager).start() for n in "abc"]
    try:
        assert all(job.join(30) for job in jobs)
    finally:
        manager.stop_all()
    assert sorted(log) == sorted("abc" * 20)
    first_steps = [log.index(n) for n in "abc"]
    assert max(first_steps) < 10, log  # nobody waited for another job to finish: each got a turn early
    assert manager.running == 0


def test_a_paused_job_gives_its_slot_to_the_others():
    manager = training.JobManager(max_running=1)
    log: list[str] = []
    a = training.TrainingJob(_steps(10_000, log, "a"), name="a", manager=manager).start()
    try:
        while not log:
            time.sleep(0.01)
        a.pause()
        b = training.TrainingJob(_steps(5, log, "b"), name="b", manager=manager).start()
        assert b.join(30) and b.snapshot().state == training.DONE
        assert a.snapshot().state == training.PAUSED
    finally:
        manager.stop_all()
    assert a.snapshot().state == training.STOPPED and manager.running == 0
