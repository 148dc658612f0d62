"""The Fine-tuning lab's drawing: the data picker, the answer mask, SFT's and DPO's charts and tables."""

from __future__ import annotations

import html

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from mllm_core import finetune as ft
from mllm_core.training import JobSnapshot
from ui import common

BUILT_IN = "questions-words (built in)"
UPLOAD = "Upload JSONL or CSV"
ALPHA_HELP = (
    "α adds α × the SFT loss on the chosen answers to DPO's loss, as RPO and Llama 3 do; 0 = plain DPO. On a "
    'model this small plain DPO fails the "!" rule: "!" and "." differ in one token, so pushing "." down pushes '
    '"!" down too and the samples drift to odd characters (likelihood displacement). The SFT term holds the '
    "chosen answers up."
)


def pairs_picker(block_size: int) -> list[ft.Pair] | None:
    """The built-in pairs (those that fit `block_size`) or an upload; None after saying why there are none."""
    source = st.radio("Prompt/answer pairs", [BUILT_IN, UPLOAD], key="ft_source", horizontal=True)
    if source == BUILT_IN:
        pairs = _built_in(block_size)
        topics = sorted({p.topic for p in pairs})
        keep = st.multiselect("Topics", topics, topics, key="ft_topics", bind="query-params")
        pairs = [p for p in pairs if p.topic in keep]
        if not pairs:
            st.error("No pairs: pick at least one topic.", icon=":material/warning:")
            return None
        return pairs
    st.caption(
        'JSONL: one `{"prompt": "Q: …\\nA: ", "completion": "…"}` per line. CSV: a `prompt,completion` header. '
        "The completion is one line; its stop newline is added if it is missing."
    )
    file = st.file_uploader("Your pairs", type=["jsonl", "json", "csv"], key="ft_upload")
    if file is None:
        st.info("Choose a file of pairs.")
        return None
    with common.guard("Reading the pairs"):
        return ft.parse_pairs(file.getvalue(), file.name)
    return None


@st.cache_data(show_spinner=False)
def _built_in(block_size: int) -> list[ft.Pair]:
    return ft.question_pairs(max_chars=block_size + 1)


def show_pairs(base, pairs: list[ft.Pair], held: float, seed: int) -> list[ft.Pair]:
    """The split, the pairs, the loss mask on a training example and the JSONL download; raises
    ValueError (too long, too few) before anything trains."""
    lm, _, new_chars = ft.prepare(base, pairs)
    train, held_out = ft.split_pairs(pairs, held, seed)
    st.caption(f"{len(pairs):,} pairs: {len(train):,} to train on, {len(held_out):,} held out, never trained on.")
    if new_chars:
        st.caption(f"Characters the base never saw, added to its vocabulary: {''.join(new_chars)!r}")
    st.dataframe(pd.DataFrame([vars(p) for p in pairs[:200]]), key="ft_pairs", height=220)
    st.markdown(
        "**The loss mask.** Grey tokens are the prompt: no loss. Green tokens are the answer: "
        "SFT's loss is the mean cross-entropy of predicting them."
    )
    st.html(mask_html(lm.tokenizer, train[0]))
    common.download_text("Download the pairs (JSONL)", ft.pairs_to_jsonl(pairs), "pairs.jsonl", key="ft_dl_pairs")
    return pairs


def run_row(result: ft.SFTResult) -> dict:
    """One SFT run in the forgetting table: its settings, format-following and bits/char before and after."""
    config = result.config
    return {
        "lr": config.lr,
        "steps": config.steps,
        "format-following": f"{result.after.format_rate:.0%}",
        "bits/char before": round(result.bpc_before, 3),
        "bits/char after": round(result.bpc_after, 3),
    }


def mask_html(tokenizer, pair: ft.Pair) -> str:
    """The pair as tokens: the prompt's greyed out (no loss), the answer's in green (the loss counts them)."""
    (example,) = ft.encode_pairs(tokenizer, [pair], 10_000)
    spans = []
    for position, token in enumerate(example.ids):
        answer = position >= example.n_prompt
        style = "background:#c8f7c5;font-weight:600" if answer else "background:#eee;color:#888"
        text = html.escape(common.show_token(tokenizer.decode([token])))
        spans.append(f'<span style="{style};padding:1px 2px;margin:1px;border-radius:3px">{text}</span>')
    return f'<div style="font-family:monospace;line-height:2">{"".join(spans)}</div>'


def _percent(rate: float | None, n: int | None = None) -> str:
    if rate is None:
        return "–"
    return f"{rate:.0%}" + (f" of {n}" if n is not None else "")


def scores_frame(result: ft.SFTResult) -> pd.DataFrame:
    """Base, fine-tuned (and random start + SFT): format-following, exact match split by pretraining, bits/char."""
    rows = [("base (pretrained only)", result.base, result.bpc_before), ("base + SFT", result.after, result.bpc_after)]
    if result.random is not None:
        rows.append(("random start + SFT", result.random, None))
    return pd.DataFrame(
        [
            {
                "model": name,
                "one line ending in a newline": _percent(s.format_rate),
                "exact match, answer in pretraining text": _percent(s.exact_seen, s.n_seen),
                "exact match, answer not in it": _percent(s.exact_unseen, s.n_unseen),
                "bits/char on held-out Wikipedia": "–" if bpc is None else f"{bpc:.3f}",
            }
            for name, s, bpc in rows
        ]
    )


def side_by_side(result: ft.SFTResult) -> pd.DataFrame:
    """Held-out prompts with the expected answer, the base's and the tuned model's (whitespace made visible)."""
    return pd.DataFrame(
        {
            "prompt": [p.prompt.replace("\n", " ↵ ") for p in result.held_out],
            "expected": [common.show_token(p.completion) for p in result.held_out],
            "base": [common.show_token(a) for a in result.base.answers],
            "base + SFT": [common.show_token(a) for a in result.after.answers],
        }
    )


def sft_progress(snap: JobSnapshot) -> None:
    """SFT from the pretrained base and from a random start: both loss curves on one chart."""
    fig = go.Figure()
    for metric, name, dash in (
        ("loss_pretrained", "pretrained start, training", "solid"),
        ("loss_random", "random start, training", "solid"),
        ("val_pretrained", "pretrained start, held-out", "dash"),
        ("val_random", "random start, held-out", "dash"),
    ):
        fig.add_traces(common.curve(snap.history.get(metric, []), mode="lines", name=name, line=dict(dash=dash)))
    fig.update_layout(
        title="SFT loss on answer tokens (nats)",
        xaxis_title="step",
        height=340,
        margin=common.MARGIN,
        legend=dict(orientation="h", y=-0.25),
    )
    st.plotly_chart(fig, key="ft_sft_chart")
    pre, rand = snap.history.get("val_pretrained", []), snap.history.get("val_random", [])
    if snap.finished and pre and rand:
        reached = ft.steps_to_reach(pre, rand[-1][1])
        when = f"at step {reached}" if reached is not None else "never"
        st.markdown(
            f"**Transfer learning:** the random start ends at a held-out loss of {rand[-1][1]:.3f} after "
            f"{rand[-1][0]} steps; the pretrained start gets there {when}."
        )


def dpo_progress(snap: JobSnapshot) -> None:
    """The implicit reward margin over steps, and the log-probabilities of chosen and rejected answers."""
    left, right = st.columns(2)
    margin = go.Figure(common.curve(snap.history.get("margin", []), mode="lines", name="margin"))
    margin.update_layout(
        title="Implicit reward margin β·(Δ chosen − Δ rejected)", xaxis_title="step", height=320, margin=common.MARGIN
    )
    left.plotly_chart(margin, key="ft_dpo_margin")
    probs = go.Figure()
    for metric, name in (("logp_chosen", "chosen"), ("logp_rejected", "rejected")):
        probs.add_traces(common.curve(snap.history.get(metric, []), mode="lines+markers", name=name))
    probs.update_layout(
        title="log p per answer token, held-out pairs",
        xaxis_title="step",
        height=320,
        margin=common.MARGIN,
        legend=dict(orientation="h", y=-0.25),
    )
    right.plotly_chart(probs, key="ft_dpo_probs")


def dpo_samples(result: ft.DPOResult) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "prompt": [p.prompt.replace("\n", " ↵ ") for p in result.held_out],
            "SFT model (reference)": [common.show_token(a) for a in result.before],
            "after DPO": [common.show_token(a) for a in result.after],
        }
    )


def download_weights(lm, file_name: str, key: str) -> None:
    """The tuned weights as a state dict, with how to load them safely."""
    st.download_button(
        "Download the weights (.pt)",
        ft.state_dict_bytes(lm),
        file_name=file_name,
        key=key,
        icon=":material/download:",
    )
    cfg = lm.module.config
    st.caption(
        "Load with `GPT(GPTConfig("
        f"vocab_size={cfg.vocab_size}, block_size={cfg.block_size}, n_layer={cfg.n_layer}, n_head={cfg.n_head}, "
        f"n_embd={cfg.n_embd})).load_state_dict(torch.load(path, weights_only=True))`: `weights_only=True` reads "
        "tensors only and never runs code from the file."
    )
