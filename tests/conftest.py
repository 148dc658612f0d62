"""Shared test setup: one torch thread per test process and no job left running after a test."""

import os
import sys
from pathlib import Path

os.environ.setdefault("MLLM_TORCH_THREADS", "1")
os.environ.setdefault("MLLM_EXECUTOR", "thread")  # jobs in this process; tests/test_workers.py runs the workers
os.environ.setdefault("MLLM_ZOO_TINY", "1")  # the shared default models train at toy sizes in tests
# Tests never read or write a real cache, nor the models shipped with the app: a folder inside a
# file can never exist, nor be created (not even by root), so every default trains and its save is
# skipped with a log line. Tests of persistence point these at tmp_path.
os.environ.setdefault("MLLM_CACHE_DIR", os.path.join(os.devnull, "mllm-cache"))
os.environ.setdefault("MLLM_MODELS_DIR", os.path.join(os.devnull, "mllm-models"))

APPTEST_SESSION_ID = "test session id"  # streamlit.testing.v1.local_script_runner
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402
from streamlit.runtime.caching.cache_resource_api import clear_session_cache  # noqa: E402

from mllm_core import training  # noqa: E402
from ui.common import parking  # noqa: E402


@pytest.fixture(autouse=True)
def _no_leftover_jobs():
    """Fail a test that leaves a training thread alive, after stopping it.

    Shared jobs (trained once per process for every session) may outlive a page test by
    design; they are stopped too, but not counted as leftovers.
    """
    yield
    # Every AppTest runs as the same session ("test session id"): end it the way Streamlit does
    # when a tab closes, so its session-scoped jobs are released (stopped) before the next test.
    clear_session_cache(APPTEST_SESSION_ID)
    parking().stop_all()  # the jobs of the closed tab, parked for a reload that will not come
    shared = {id(job) for job in training.MANAGER.shared_jobs().values()}
    executor = training.executor()  # MLLM_EXECUTOR=process runs the page tests on worker processes
    alive = [job.name for job in executor.jobs() if job.alive and id(job) not in shared]
    training.MANAGER.stop_all(timeout=30)
    executor.stop_all(timeout=30)
    assert not alive, f"test left training jobs running: {alive}"


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture
def fresh_manager(monkeypatch):
    """A new `training.MANAGER` for the test: no shared job trained earlier in this process is
    reused, as in a freshly started server. Its jobs are stopped at the end."""
    manager = training.JobManager()
    monkeypatch.setattr(training, "MANAGER", manager)
    yield manager
    manager.stop_all(timeout=30)
