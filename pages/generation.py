"""Generation: one sampler for every model, token by token, and a leaderboard across families."""

import math

import streamlit as st

from mllm_core import metrics, sampling, training, zoo
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
YOURS = " (yours)"
models = {name + YOURS: lm for name, lm in common.session_models().items()}
models |= {name: zoo.current_model(job, name) for name, job in jobs.items()}
names = list(models)


def status(name: str) -> None:
    """Say where a default model stands; poll while it trains and rerun once it is done."""
    job = jobs.get(name)
    snap = job.snapshot() if job else None
    if snap is None or snap.state == training.DONE:
        return
    if snap.state == training.FAILED:
        st.error(f"Training {name} failed: {snap.error}", icon=":material/error:")
        return
    if models[name] is None:
        st.info(f"**{name}** is {snap.state} ({zoo.origin(snap)}): one for everyone, it appears here when ready.")
    else:
        st.caption(f"**{name}** is still training: you are sampling its latest snapshot.")
    common.live(job, lambda s: None, every=2.0)


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
    status(choice)
    model = models[choice]
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
    result = st.session_state.get("gen_result")
    if result and result[2]:
        used_model, used_prompt, views = result
        pick = st.plotly_chart(
            gv.chosen_probability_chart(views), key="gen_pick", on_select="rerun", selection_mode="points"
        )
        points = pick.selection.points if pick else []
        if points and points[0]["x"] != st.session_state.get("gen_last_pick"):
            st.session_state["gen_last_pick"] = st.session_state["gen_step"] = int(points[0]["x"])
        st.session_state["gen_step"] = min(st.session_state.get("gen_step", 1), len(views))
        index = st.slider("Inspect step", 1, max(2, len(views)), key="gen_step", disabled=len(views) < 2)
        out.markdown(gv.tokens_html(used_prompt, views, selected=index), unsafe_allow_html=True)
        st.caption(f"{used_model}: {len(views)} tokens. Colour = probability of the drawn token (hover a token).")
        st.plotly_chart(gv.next_token_chart(views[index - 1], index), key="gen_next")
        common.download_text("Download the text", used_prompt + "".join(v.token for v in views), "generated.txt")
    elif result:
        st.info("Nothing generated: ask for at least one token.")

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
        used_prompt, outputs = saved
        for (name, views), col in zip(outputs.items(), st.columns(max(1, len(outputs))), strict=False):
            col.markdown(f"**{name}**")
            col.markdown(gv.tokens_html(used_prompt, views), unsafe_allow_html=True)

with tab_board:
    st.markdown(
        f"Every model is scored on the same **{config.eval_chars:,} characters** of held-out `{config.corpus}` text that no "
        "model trained on. Bits per character = total −log₂ p(token | context) over all tokens ÷ number of "
        "characters, so character, word and BPE models compare fairly. Lower is better; perplexity = 2^bits."
    )

    polling = any(not job.snapshot().finished for job in set(jobs.values()))

    @st.fragment(run_every=2.0 if polling else None)
    def board() -> None:
        rows = zoo.leaderboard(jobs)
        if polling and all(row.state == training.DONE for row in rows):
            st.rerun()  # everything is scored: one full rerun stops the polling
        st.dataframe(gv.leaderboard_style(gv.leaderboard_frame(rows)), hide_index=True, key="gen_board_table")
        if any(row.evaluation is not None for row in rows):
            st.plotly_chart(gv.leaderboard_chart(rows), key="gen_board_chart")
        else:
            st.caption("The chart appears as the first scores land.")

    board()
    mine = common.session_models()
    if mine and st.button("Score this session's models on the same text", key="gen_score"):
        scores = st.session_state.setdefault("gen_scores", {})
        for name, lm in mine.items():
            with common.guard(f"Scoring {name}"), st.spinner(f"Scoring {name}…"):
                scores[name] = metrics.evaluate(lm, zoo.validation_text(config))
    for name, ev in st.session_state.get("gen_scores", {}).items():
        st.write(f"**{name}{YOURS}**: {ev.bits_per_char:.3f} bits per character ({ev.n_tokens:,} tokens scored)")
        if not math.isfinite(ev.bits_per_char):
            st.caption(gv.INFINITE_SCORE)
