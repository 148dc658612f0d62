"""A real browser over the running app: `streamlit run app.py` headless on a free localhost port,
Debian's chromium driven by Python playwright, every page opened and screenshotted.

Skips (with the reason) when /usr/bin/chromium is absent; CI installs it. Screenshots go to a
temporary folder (`MLLM_SCREENSHOTS` names another, e.g. docs/screenshots for the README).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from ui.pages import LABS

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed (apt-get install chromium)"
)


@dataclass(frozen=True)
class Server:
    url: str
    log: Path  # the server's output; MLLM_LOG_LEVEL=INFO logs each job's start and end

    def wait_for_log(self, text: str, timeout_s: float = 30) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if text in self.log.read_text():
                return True
            time.sleep(0.25)
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(root, tmp_path_factory):
    port = free_port()
    env = {**os.environ, "MLLM_TORCH_THREADS": "1", "PYTHONUNBUFFERED": "1", "MLLM_LOG_LEVEL": "INFO"}
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "app.py",
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
                "--server.headless",
                "true",
            ],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"streamlit did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
            yield Server(url, log)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    # the server shut down cleanly: no training thread crashed the interpreter on exit
    assert proc.returncode in (0, -15), log.read_text()[-3000:]


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    target = os.environ.get("MLLM_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        return Path(target)
    return tmp_path_factory.mktemp("screenshots")


def wait_until_idle(page, timeout_s: float = 90) -> None:
    """Wait until Streamlit has finished the script run (no 'Running...' status widget)."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout_s * 1000)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (
            page.locator("[data-testid='stStatusWidget']").count() == 0
            and page.locator("[data-testid='stSkeleton']").count() == 0
        ):
            time.sleep(0.5)
            if page.locator("[data-testid='stStatusWidget']").count() == 0:
                return
        time.sleep(0.25)


def slug(path: str) -> str:
    return path.split("/")[-1].removesuffix(".py")


# A lab comes first: on a fresh server a shared link to a lab must open inside the app's
# navigation (not Streamlit's legacy pages/ mode, which would skip app.py).
@pytest.mark.parametrize("path,title", [(slug(lab.path), lab.title) for lab in LABS] + [("", "LLM Playground")])
def test_every_page_shows_its_title_and_no_exception(server, browser, shots, path, title):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(f"{server.url}/{path}", timeout=60_000)
        page.get_by_role("heading", name=title).first.wait_for(timeout=90_000)
        wait_until_idle(page)
        errors = page.locator("[data-testid='stException']")
        assert errors.count() == 0, errors.first.inner_text()
        nav = page.locator("[data-testid='stSidebarNav']").inner_text()
        assert "Home" in nav and "Generation" in nav, f"app.py's navigation is missing: {nav!r}"
        page.screenshot(path=str(shots / f"{path or 'home'}.png"), full_page=True)
    finally:
        page.close()


def progress_text(page) -> str:
    bars = page.locator("[data-testid='stProgress']")
    return bars.first.inner_text() if bars.count() else ""


def wait_for_progress(page, word: str, timeout_s: float = 60) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = progress_text(page)
        if word in text:
            return text
        time.sleep(0.25)
    pytest.fail(f"the job never showed {word!r}; last progress: {progress_text(page)!r}")


def test_training_from_a_page_pauses_resumes_stops_and_ends_with_the_tab(server, browser):
    """Issue #2's promise, in a real browser: train from a lab page while the page stays usable,
    watch the live loss, pause, resume, stop; then a new run ends when its tab closes."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{server.url}/attention", timeout=60_000)
    lab = page.get_by_test_id("stMainBlockContainer")  # not the header's own "Stop", shown while a script reruns
    train = lab.get_by_role("button", name="Train", exact=True)
    train.wait_for(timeout=90_000)
    wait_until_idle(page)
    train.click()
    first = wait_for_progress(page, "running")
    page.locator("[data-testid='stPlotlyChart']").first.wait_for(timeout=60_000)  # the live loss curve
    assert server.wait_for_log("job 'att' started")

    # the page stays responsive while the job trains: switching tabs redraws at once
    page.get_by_role("tab", name="Step by step").click()
    page.get_by_text("One head, one sentence, every number").first.wait_for(timeout=30_000)
    page.get_by_role("tab", name="Train").click()

    lab.get_by_role("button", name="Pause").click()
    wait_for_progress(page, "paused")
    time.sleep(2)  # the step in flight finishes and the view refreshes
    paused = progress_text(page)
    time.sleep(2.5)
    assert "paused" in paused
    assert progress_text(page).split("·")[1] == paused.split("·")[1], "the step count moved while paused"
    lab.get_by_role("button", name="Resume").click()
    wait_for_progress(page, "running")
    assert first != progress_text(page)
    lab.get_by_role("button", name="Stop").click()
    wait_for_progress(page, "stopped")
    assert server.wait_for_log("job 'att' ended: stopped")

    # a second run, then the tab closes: the session is released and its job stopped
    page.get_by_role("button", name="Re-train").click()
    wait_for_progress(page, "running")
    log_before = server.log.read_text().count("job 'att' ended: stopped")
    page.close()
    deadline = time.monotonic() + 60
    while server.log.read_text().count("job 'att' ended: stopped") <= log_before:
        assert time.monotonic() < deadline, "closing the tab did not stop the job"
        time.sleep(0.5)


def test_a_lab_reopens_on_the_tab_last_used_after_a_visit_to_another_lab(server, browser):
    """Issue 19: switching pages returned every lab to its first tab."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(f"{server.url}/tokenizer", timeout=60_000)
        page.get_by_role("tab", name="Vocabulary").wait_for(timeout=90_000)
        wait_until_idle(page)
        page.get_by_role("tab", name="Vocabulary").click()
        wait_until_idle(page)
        nav = page.locator("[data-testid='stSidebarNav']")
        nav.get_by_text("RNN", exact=True).click()
        page.get_by_role("heading", name="RNN").first.wait_for(timeout=90_000)
        wait_until_idle(page)
        nav.get_by_text("Tokenizer", exact=True).click()
        page.get_by_role("heading", name="Tokenizer").first.wait_for(timeout=90_000)
        wait_until_idle(page)
        selected = page.locator("[role='tab'][aria-selected='true']")
        assert selected.first.inner_text().strip() == "Vocabulary"
    finally:
        page.close()
