"""Fine-tuning lab: supervised fine-tuning (SFT) then preference tuning (DPO) of the class's own transformer."""

import pandas as pd
import streamlit as st

from mllm_core import finetune as ft
from mllm_core import training, zoo
from ui import common
from ui import finetune as view

common.page_header(
    "Fine-tuning",
    "A chat model is a pretrained model trained twice more. **Supervised fine-tuning** shows it prompt/answer "
    "pairs, with the loss on the answer only, so it learns to answer and stop; **preference tuning** shows it "
    "pairs of a better and a worse answer. Both start here from the class's pretrained transformer.",
    icon=":material/tune:",
)
data_tab, sft_tab, dpo_tab = st.tabs(
    ["Data", "Supervised fine-tuning", "Preference tuning (DPO)"], key="ft_tab", bind="query-params"
)
base_job = zoo.default_job(zoo.GPT_NAME)
base = zoo.current_model(base_job, zoo.GPT_NAME) if base_job.snapshot().state == training.DONE else None

# ---- Data ------------------------------------------------------------------------------------
with data_tab:
    pairs = None
    if base is None:
        st.info(f"The pretrained transformer is getting ready ({zoo.origin(base_job.snapshot())}): reload in a moment.")
    else:
        pairs = view.pairs_picker(base.block_size)
    c1, c2 = st.columns(2)
    held = c1.slider("Held-out share (split by pair)", 0.05, 0.5, 0.2, 0.05, key="ft_held", bind="query-params")
    seed = int(c2.number_input("Seed", 0, 10_000, 0, key="ft_seed", bind="query-params"))
    if pairs:
        checked = None
        with common.guard("Checking the pairs"):
            checked = view.show_pairs(base, pairs, held, seed)
        pairs = checked

# ---- Supervised fine-tuning ----------------------------------------------------------------
with sft_tab:
    c1, c2, c3 = st.columns(3)
    lr = c1.select_slider("Learning rate", [1e-4, 3e-4, 1e-3, 3e-3], 3e-4, key="ft_lr", bind="query-params")
    steps = c2.slider("Steps", 20, 1000, 200, 20, key="ft_steps", bind="query-params")
    compare = c3.toggle(
        "Also from a random start", True, key="ft_compare", help="Same size, same data: transfer learning."
    )
    config = ft.SFTConfig(steps=steps, lr=lr, compare_random=compare, held_out=held, seed=seed)
    sft_job = common.training_controls(
        "ft_sft", lambda: training.spec(ft.sft_target, base, pairs, config), label="Fine-tune", disabled=not pairs
    )
    common.live(sft_job, view.sft_progress)
    sft = sft_job.result if sft_job is not None and sft_job.snapshot().state == training.DONE else None
    if sft_job is None:
        st.info("Pick the pairs in **Data**, then press **Fine-tune**.")
    if sft is not None:
        common.register_model(sft.tuned.name, sft.tuned)
        st.success(f"**{sft.tuned.name}** is now available in the Generation lab.")
        st.dataframe(view.scores_frame(sft), hide_index=True, key="ft_scores")
        st.caption(
            "A model this small learns the **format** (answer, newline, stop), not facts it never saw: "
            "exact match stays near zero on held-out questions, whether or not the answer is in its pretraining text."
        )
        st.dataframe(view.side_by_side(sft), hide_index=True, key="ft_side")
        runs = st.session_state.setdefault("ft_runs", {})
        runs[id(sft)] = view.run_row(sft)
        st.markdown(
            f"**Forgetting:** held-out Wikipedia costs {sft.bpc_before:.3f} bits/char before SFT and "
            f"{sft.bpc_after:.3f} after. Try another learning rate or number of steps; each run is listed:"
        )
        st.dataframe(pd.DataFrame(list(runs.values())), hide_index=True, key="ft_runs_table")
        view.download_weights(sft.tuned, "sft.pt", "ft_dl_sft")

# ---- Preference tuning ---------------------------------------------------------------------
with dpo_tab:
    st.markdown(
        "**RLHF** trains a separate *reward model* on human preferences, then runs *PPO*, a reinforcement-learning "
        "loop that samples answers, scores them and pushes the model toward high reward while a KL penalty keeps "
        "it near the SFT model. **DPO** solves the same objective in closed form: the reward is implicit, "
        "r = β·log(π/π_ref), and the loss −log σ(r_chosen − r_rejected) needs no reward model and no sampling loop, "
        "only pairs and a frozen copy of the SFT model (the reference)."
    )
    rule = st.selectbox(
        "Preference rule", list(ft.RULES), format_func=lambda r: ft.RULES[r].label, key="ft_rule", bind="query-params"
    )
    c1, c2, c3, c4 = st.columns(4)
    beta = c1.number_input("β", value=0.1, step=0.05, format="%.2f", key="ft_beta")
    alpha = c2.number_input("α (SFT on chosen)", 0.0, 10.0, 1.0, 0.5, key="ft_alpha", help=view.ALPHA_HELP)
    dpo_steps = c3.slider("Steps", 20, 1000, 200, 20, key="ft_dpo_steps")
    dpo_lr = c4.select_slider("Learning rate", [1e-4, 3e-4, 1e-3], 3e-4, key="ft_dpo_lr")
    dpo_config = None
    with common.guard("The settings"):
        dpo_config = ft.DPOConfig(
            steps=dpo_steps,
            lr=dpo_lr,
            beta=beta,
            rule=rule,
            nll_weight=alpha,
            held_out=config.held_out,
            seed=config.seed,
        )
        example = ft.preference_pairs(pairs or [ft.make_pair("What is the capital of Greece?", "Athens")], rule)[0]
        st.markdown(f"Example: `{example.prompt!r}` → chosen `{example.chosen!r}`, rejected `{example.rejected!r}`")
    if sft is None:
        st.info("Fine-tune first (**Supervised fine-tuning** tab): DPO starts from the SFT model.")
    dpo_job = common.training_controls(
        "ft_dpo",
        lambda: training.spec(ft.dpo_target, sft.tuned, pairs, dpo_config),
        label="Prefer",
        disabled=sft is None or dpo_config is None or not pairs,
    )
    common.live(dpo_job, view.dpo_progress)
    dpo = dpo_job.result if dpo_job is not None and dpo_job.snapshot().state == training.DONE else None
    if dpo is not None:
        common.register_model(dpo.tuned.name, dpo.tuned)
        st.success(
            f"Sampled held-out answers that follow the rule: **{dpo.follow_before:.0%}** from the SFT model, "
            f"**{dpo.follow_after:.0%}** after DPO. **{dpo.tuned.name}** is now in the Generation lab."
        )
        st.dataframe(view.dpo_samples(dpo), hide_index=True, key="ft_dpo_samples")
        view.download_weights(dpo.tuned, "dpo.pt", "ft_dl_dpo")
