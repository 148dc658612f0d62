"""Streamlit UI helpers: `ui.common` is shared by every page; `ui.<lab>` holds a lab's own figures."""
