"""Generation: one sampler for every model, token by token, and a leaderboard across families."""

import streamlit as st

from mllm_core import sampling, zoo
from mllm_core.lm import unknown_note
from ui import common
from ui import generation as gv

common.page_header(
    "Generation",
    "Every model in this app, from a 1-gram to a transformer, answers the same question: *how likely is each "
    "next token?* One sampler turns that answer into text. Watch it pick tokens one at a time, see what "
    "temperature, top-k and top-p do to the distribution, compare models on the same prompt, and rank them "
    "all by **bits per character** on the same held-out text.",
    icon=":material/edit_note:",
)

config = zoo.default_config()
jobs = zoo.default_jobs(config)  # trained once per server process, shared by every session
models = {name + gv.YOURS: lm for name, lm in common.session_models().items()}
models |= {name: zoo.current_model(job, name) for name, job in jobs.items()}
names = list(models)

choice = st.selectbox(
    "Model",
    names,
    index=names.index(zoo.GPT_NAME),
    key="gen_model",
    bind="query-params",
    help="Models trained in the other labs of this session are marked (yours); the others are shared defaults.",
)
prompt = common.bound_text(st, "Prompt", "The history of ", "gen_prompt", area=True, height=68)
settings = common.sampling_controls("gen", max_new_tokens=200, max_limit=1000)
tab_gen, tab_cmp, tab_board = st.tabs(
    ["Token by token", "Side by side", "Leaderboard"], key="gen_tab", bind="query-params"
)  # keyed: the tab survives a visit to another lab

with tab_gen:
    model = models[choice]
    gv.status(choice, jobs.get(choice), model)
    if model is not None and (note := unknown_note(model, prompt)):
        st.info(note, icon=":material/help:")
    clicked = st.button("Generate", key="gen_go", type="primary", disabled=model is None)
    out = st.empty()
    if clicked and model is not None:
        st.session_state.pop("gen_result", None)  # an error must not leave the previous text on screen
        with common.guard("Generation"):
            views: list[gv.StepView] = []
            redraw = gv.Throttle()
            for step in sampling.generate(model, prompt, **settings.as_kwargs()):
                views.append(gv.step_view(step, model.decode))
                if redraw():  # the result below draws the final text
                    out.markdown(gv.tokens_html(prompt, views), unsafe_allow_html=True)
            st.session_state["gen_result"] = (choice, prompt, views)
            st.session_state.pop("gen_step", None)
            st.session_state.pop("gen_last_pick", None)
    gv.inspect_result(st.session_state.get("gen_result"), out)

with tab_cmp:
    picked = st.multiselect(
        "Models to compare",
        names,
        default=[n for n in (zoo.NGRAM_NAMES[2], zoo.LSTM_NAME, zoo.GPT_NAME) if n in names],
        key="gen_cmp",
        bind="query-params",
        max_selections=4,
    )
    st.caption("Same prompt, same settings, same seed: only the model changes.")
    if st.button("Generate side by side", key="gen_cmp_go", type="primary", disabled=not picked):
        runs, outputs, redraw = {}, {}, gv.Throttle()
        for name, col in zip(picked, st.columns(len(picked)), strict=True):
            col.markdown(f"**{name}**")
            if models[name] is None:
                col.info("Still training: try again when it is ready.")
                continue
            with col, common.guard(name):
                runs[name] = (iter(sampling.generate(models[name], prompt, **settings.as_kwargs())), col.empty())
                outputs[name] = []
        outs = {name: out for name, (_, out) in runs.items()}
        while runs:  # one token per model per round, so the columns grow together
            for name, (steps, _) in list(runs.items()):
                step = next(steps, None)
                if step is None:
                    del runs[name]
                    continue
                outputs[name].append(gv.step_view(step, models[name].decode, k=0))
            if redraw() or not runs:
                for name, out in outs.items():
                    out.markdown(gv.tokens_html(prompt, outputs[name]), unsafe_allow_html=True)
        st.session_state["gen_cmp_result"] = (prompt, outputs)
    elif saved := st.session_state.get("gen_cmp_result"):
        gv.saved_side_by_side(*saved)

with tab_board:
    st.markdown(
        f"Every model is scored on the same **{config.eval_chars:,} characters** of held-out `{config.corpus}` text that no "
        "model trained on. Bits per character = total −log₂ p(token | context) over all tokens ÷ number of "
        "characters, so character, word and BPE models compare fairly. Lower is better; perplexity = 2^bits."
    )
    gv.leaderboard(jobs)
    gv.session_scores(common.session_models(), config)
