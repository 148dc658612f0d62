"""Streamlit UI helpers: `ui.common` is shared by every page; `ui.<lab>` holds a lab's own figures.

Importing this package also fixes a start-up quirk of Streamlit: until `st.navigation` has run
once in the process, a `pages/` folder beside the entry point switches on the legacy
multipage mode, so a shared link such as `/ngram?ng_n=4` opened on a fresh server would run
`pages/ngram.py` alone, without `app.py`'s navigation and layout. The first page to import `ui`
turns that mode off and reruns, and `app.py` then draws the linked page.
"""

from streamlit.runtime.pages_manager import PagesManager

if PagesManager.uses_pages_directory:
    PagesManager.uses_pages_directory = False
    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    if get_script_run_ctx(suppress_warning=True) is not None:
        import streamlit as st

        st.rerun()
