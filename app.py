"""LLM Playground: `streamlit run app.py`.

The entry point: navigation over the lab pages (listed explicitly in `ui.pages.LABS`), the
sidebar's device and job status, and torch's one-off warm-up in the background.
"""

import logging
import os

import streamlit as st

from mllm_core import training
from ui.common import sidebar_status, url_notice
from ui.pages import LABS

# MLLM_LOG_LEVEL=INFO logs every job's start and end (the browser test reads them)
logging.basicConfig(level=os.environ.get("MLLM_LOG_LEVEL", "WARNING"), format="%(asctime)s %(name)s %(message)s")

st.set_page_config(page_title="LLM Playground", page_icon=":material/science:", layout="wide")

home = st.Page("pages/home.py", title="Home", icon=":material/home:", default=True)
labs = [st.Page(lab.path, title=lab.title, icon=lab.icon) for lab in LABS]
page = st.navigation({"Start": [home], "Labs": labs})

training.warm_up()
sidebar_status()
given = st.query_params.to_dict()  # before the page's widgets read (and clean) them
notice = st.container()  # above the page: "Ignored from the link: ..."
try:
    page.run()
finally:  # also after a page's st.stop()
    with notice:
        url_notice(given)
