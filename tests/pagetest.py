"""Helpers the page tests share: open a page as a shared link would, rerun it, never a traceback."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]


def run(at: AppTest) -> AppTest:
    """Run (or rerun) the page; it must never show a traceback."""
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def page(path: str, timeout: float = 120, **query) -> AppTest:
    """`path` (e.g. "pages/rnn.py") as opened from a link with these query parameters, not yet run."""
    at = AppTest.from_file(str(ROOT / path), default_timeout=timeout)
    at.query_params.update({key: str(value) for key, value in query.items()})
    return at


def opened(path: str, **query) -> AppTest:
    """`page(...)`, run once."""
    return run(page(path, **query))


def errors(at: AppTest) -> list[str]:
    """The texts of the page's `st.error` boxes."""
    return [e.value for e in at.error]


def metrics(at: AppTest) -> dict[str, str]:
    """The page's `st.metric`s, label -> value."""
    return {m.label: m.value for m in at.metric}
