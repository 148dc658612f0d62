"""LLM Playground: `streamlit run app.py`.

The entry point: navigation over the lab pages (listed explicitly in `ui.pages.LABS`), the
sidebar's device and job status, and the training workers' start in the background. Students'
training runs in worker processes (`MLLM_EXECUTOR=process`, the app's default), so the web server
never waits for it; MLLM_EXECUTOR=thread keeps it in this process.
"""

import logging
import os

import streamlit as st

from mllm_core import training
from ui.common import sidebar_status, url_notice
from ui.pages import LABS
from ui.server import freeze_imports, share_the_gil, turn, watch_collections

# MLLM_LOG_LEVEL=INFO logs every job's start and end (the browser test reads them)
logging.basicConfig(level=os.environ.get("MLLM_LOG_LEVEL", "WARNING"), format="%(asctime)s %(name)s %(message)s")

st.set_page_config(page_title="LLM Playground", page_icon=":material/science:", layout="wide")

home = st.Page("pages/home.py", title="Home", icon=":material/home:", default=True)
labs = [st.Page(lab.path, title=lab.title, icon=lab.icon) for lab in LABS]
page = st.navigation({"Start": [home], "Labs": labs})

os.environ.setdefault(training.EXECUTOR_ENV, "process")
training.warm_up()
share_the_gil()
watch_collections()
given = st.query_params.to_dict()  # before the page's widgets read (and clean) them
notice = st.container()  # above the page: "Ignored from the link: ..."
with turn(page=True, what=page.title):  # at most ui.server.TURNS script runs at once, pages first
    try:
        page.run()
    finally:  # also after a page's st.stop()
        with notice:
            url_notice(given)
        sidebar_status()  # after the page: it lists the shared default the page has just asked for
        freeze_imports()  # the modules this run imported leave the garbage collector's work (ui.server)
