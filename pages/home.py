"""Home: the journey from counting to attention, with a link to every lab and the presets."""

import streamlit as st

from ui.pages import LABS, PRESETS

st.title(":material/science: LLM Playground")
st.markdown(
    "Train and poke **real language models**, live, in your browser. Each lab takes one idea further than the "
    "last — follow them in order, or jump straight to the one your class is on. Every default works offline on "
    "an embedded Wikipedia sample; presets reproduce the classic results in a few clicks."
)
st.markdown(" → ".join(f"**{lab.step}**" for lab in LABS))

for i, lab in enumerate(LABS, start=1):
    with st.container(border=True):
        left, right = st.columns([3, 1], vertical_alignment="center")
        left.markdown(f"**{i}. {lab.step}** — {lab.blurb}")
        with right:
            st.page_link(lab.path, label=f"Open {lab.title}", icon=lab.icon)

st.subheader("Presets")
st.caption("Each link opens a lab already set up for a classic result.")
icons = {lab.path: lab.icon for lab in LABS}
for preset in PRESETS:
    st.page_link(preset.path, label=preset.label, icon=icons[preset.path], query_params=preset.query)

with st.expander("How this app trains models"):
    st.markdown(
        "Training runs in background worker processes at a lower priority than the web server, so pages stay "
        "responsive while a whole class trains: start, pause, resume or stop any run, and watch the loss live. When "
        "many people train at once, their runs take turns step by step, so everyone's model advances. Reloading the "
        "tab keeps your runs; closing it stops them. Default models that every visitor would train the same way are "
        "trained once, saved, and shared, so a class of 30 does not train 30 copies."
    )
