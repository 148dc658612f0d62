"""The process executor: jobs as specs in worker processes, their results as data, and no worker
left behind (`mllm_core.workers`)."""

import os
import subprocess
import sys
import time

import pytest
import torch

from mllm_core import corpora, training, workers
from mllm_core import transformer as tf
from mllm_core.char_lstm import CharLSTM, CharLSTMConfig
from mllm_core.lm import TorchTextLM
from mllm_core.rnn import SequenceModel
from mllm_core.tokenizers import CharTokenizer


@pytest.fixture(scope="module")
def pool():
    executor = workers.ProcessExecutor(n_workers=2).start()
    yield executor
    executor.shutdown(timeout=30)
    assert not [pid for pid in executor.pids() if _exists(pid)]


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _char_tokenizer(text: str) -> CharTokenizer:
    tokenizer = CharTokenizer()
    tokenizer.train(text)
    return tokenizer


def _wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_module_travels_as_class_arguments_and_weights():
    gpt = tf.GPT(tf.GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8)).eval()
    lm = TorchTextLM("tiny", gpt, _char_tokenizer("abcdefghijk"), block_size=8)
    back = workers.loads(workers.dumps({"model": lm, "loss": [(1, 2.0)]}))
    assert back["loss"] == [(1, 2.0)] and back["model"].name == "tiny"
    module = back["model"].module
    assert module is not gpt and module.lm_head.weight is module.wte.weight  # weight tying rebuilt
    assert not module.training
    idx = torch.randint(0, 11, (2, 8))
    torch.testing.assert_close(module(idx)[0], gpt(idx)[0], rtol=0, atol=0)
    for model in (CharLSTM(CharLSTMConfig(n_embd=4, hidden_size=8), 10), SequenceModel("lstm", 6, 5)):
        copy = workers.loads(workers.dumps(model))
        assert type(copy) is type(model)
        for (name, a), (_, b) in zip(model.state_dict().items(), copy.state_dict().items(), strict=True):
            assert torch.equal(a, b), name


def test_a_module_without_init_args_is_refused():
    with pytest.raises(TypeError, match="init_args"):
        workers.dumps(torch.nn.Linear(2, 2))


def test_a_job_runs_in_a_worker_and_returns_its_result_and_history(pool):
    job = pool.submit(training.spec(training.sum_target, [1, 2, 3]), name="sum")
    assert job.join(60)
    snap = job.snapshot()
    assert (snap.state, job.result, snap.step, snap.total_steps) == ("done", 6.0, 3, 3)
    assert snap.history == {"total": [(1, 1.0), (2, 3.0), (3, 6.0)]}
    assert job.latest("model") == 6.0  # done: the result


def test_only_specs_run_in_workers(pool):
    with pytest.raises(TypeError, match="JobSpec"):
        pool.submit(lambda ctx: 1)
    with pytest.raises(AttributeError):  # a closure as an argument does not pickle: the caller hears it
        pool.submit(training.spec(training.sum_target, [1], delay=lambda: 0))


def test_a_failing_job_reports_its_message(pool):
    job = pool.submit(training.spec(training.sum_target, [1, "x"]), name="bad")
    assert job.join(60)
    snap = job.snapshot()
    assert snap.state == "failed" and snap.error.startswith("TypeError: unsupported operand")
    assert job.result is None


def test_pause_resume_and_stop_reach_the_worker(pool):
    job = pool.submit(training.spec(training.sum_target, [1.0] * 10_000, delay=0.01), name="long")
    _wait_for(lambda: job.snapshot().step >= 3)
    job.pause()
    assert job.snapshot().state == "paused"  # shown at once
    time.sleep(1.0)  # the worker has seen the pause: no step is made while paused
    held = job.snapshot().step
    time.sleep(1.0)
    assert job.snapshot().step == held and job.snapshot().state == "paused"
    job.resume()
    _wait_for(lambda: job.snapshot().step > held + 3)
    assert job.stop(timeout=30)
    snap = job.snapshot()
    assert snap.state == "stopped" and not job.alive and 0 < snap.step < 10_000
    assert snap.history["total"][-1] == (snap.step, float(snap.step))  # every point came back, in order


def test_jobs_share_a_worker_by_taking_turns(pool):
    jobs = [pool.submit(training.spec(training.sum_target, [1.0] * 400, delay=0.005), name=f"j{i}") for i in range(5)]
    _wait_for(lambda: all(job.snapshot().step > 5 for job in jobs))  # 5 jobs on 2 workers: all advance
    for job in jobs:
        assert job.stop(timeout=30)


def test_a_model_trained_in_a_worker_comes_back_with_its_checkpoints(pool):
    config = tf.GPTConfig(block_size=16, n_layer=1, n_head=2, n_embd=16)
    train = tf.GPTTrainConfig(steps=20, eval_every=10, batch_size=8, max_chars=50_000)
    job = pool.submit(training.spec(tf.gpt_target, corpora.TextRef(corpora.DEFAULT), config, train), name="gpt")
    assert job.join(120), job.snapshot()
    snap = job.snapshot()
    assert snap.state == "done", snap.error
    assert [c.step for c in snap.artifacts["checkpoints"]] == [0, 10, 20]
    lm = job.result
    assert isinstance(lm, TorchTextLM) and isinstance(lm.module, tf.GPT)
    assert snap.latest("val_loss") < snap.history["val_loss"][0][1]  # it learned


def test_a_killed_worker_fails_its_job_with_a_message():
    executor = workers.ProcessExecutor(n_workers=1)
    try:
        job = executor.submit(training.spec(training.sum_target, [1.0] * 10_000, delay=0.01), name="doomed")
        _wait_for(lambda: job.snapshot().step > 0)
        (pid,) = executor.pids()
        os.kill(pid, 9)
        assert job.join(30)
        snap = job.snapshot()
        assert snap.state == "failed" and "stopped unexpectedly" in snap.error
        again = executor.submit(training.spec(training.sum_target, [2, 3]), name="after")  # a new worker
        assert again.join(60) and again.result == 5.0
    finally:
        executor.shutdown(timeout=30)


def test_the_interpreter_exits_cleanly_with_a_worker_job_running(root, tmp_path):
    script = (
        "import os, time\n"
        "from mllm_core import training\n"
        "os.environ['MLLM_EXECUTOR'] = 'process'\n"
        "job = training.submit(training.spec(training.sum_target, [1.0] * 100_000, delay=0.01), name='forever')\n"
        "while job.snapshot().step < 2: time.sleep(0.05)\n"
        "print(*training.executor().pids(), flush=True)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120,
        env=dict(os.environ, PYTHONPATH=str(root)),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    pids = [int(p) for p in out.stdout.split()]
    assert pids and not [pid for pid in pids if _exists(pid)]  # no orphan worker


def test_a_worker_whose_server_died_exits(root):
    script = (
        "import os, time\n"
        "from mllm_core import training, workers\n"
        "ex = workers.ProcessExecutor(n_workers=1)\n"
        "job = ex.submit(training.spec(training.sum_target, [1.0] * 100_000, delay=0.01), name='orphan?')\n"
        "while job.snapshot().step < 2: time.sleep(0.05)\n"
        "print(*ex.pids(), flush=True)\n"
        "os._exit(3)\n"  # no clean-up at all, as if the server were killed
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120,
        env=dict(os.environ, PYTHONPATH=str(root)),
    )  # fmt: skip
    assert out.returncode == 3, out.stderr
    (pid,) = [int(p) for p in out.stdout.split()]
    _wait_for(lambda: not _exists(pid), timeout=30)


def test_a_snapshot_decodes_an_artifact_only_when_it_is_read(pool, monkeypatch):
    """A live view reads the step and the loss; the published model is decoded only when asked for."""
    config = tf.GPTConfig(block_size=16, n_layer=1, n_head=2, n_embd=16)
    train = tf.GPTTrainConfig(steps=20, eval_every=10, batch_size=8, max_chars=50_000)
    job = pool.submit(training.spec(tf.gpt_target, corpora.TextRef(corpora.DEFAULT), config, train), name="lazy")
    assert job.join(120), job.snapshot()
    decoded = []
    real = workers.loads
    monkeypatch.setattr(workers, "loads", lambda data: decoded.append(data) or real(data))
    snap = job.snapshot()
    assert "model" in snap.artifacts and "checkpoints" in snap.artifacts and decoded == []
    assert isinstance(snap.artifacts["model"], TorchTextLM) and len(decoded) == 1
    assert isinstance(job.snapshot().artifacts["model"], TorchTextLM) and len(decoded) == 1  # decoded once
    assert dict(snap.artifacts)["num_params"] == snap.artifacts.get("num_params") > 0
