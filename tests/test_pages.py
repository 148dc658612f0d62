"""AppTest smoke tests: the app and every page in its navigation render without an exception."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ui.pages import LABS

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def test_home_links_every_lab():
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception
    assert at.title[0].value.endswith("LLM Playground")
    links = {link.proto.page for link in at.get("page_link")}
    assert {lab.path.split("/")[-1].removesuffix(".py") for lab in LABS} <= {
        p.split("/")[-1].removesuffix(".py") for p in links
    }
    assert any("Compute:" in c.value for c in at.sidebar.caption)


@pytest.mark.parametrize("lab", LABS, ids=[lab.title for lab in LABS])
def test_every_lab_renders_through_the_navigation(lab):
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.switch_page(lab.path)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert any(lab.title.lower() in t.value.lower() for t in at.title), [t.value for t in at.title]
