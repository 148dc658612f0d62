"""The Fine-tuning page: shows the pairs and the loss mask, explains bad input, runs SFT then DPO and
offers both tuned models to the Generation lab."""

import time

import pytest
from pagetest import page, run
from streamlit.testing.v1 import AppTest

from mllm_core import training, zoo
from ui.common import MODELS_KEY

PAGE = "pages/finetune.py"


def wait_for_base(timeout: float = 120.0) -> None:
    """The class-wide transformer (tiny in tests) trains in a few seconds."""
    job = zoo.default_job(zoo.GPT_NAME)
    assert job.join(timeout), "the default transformer never finished"
    assert job.snapshot().state == training.DONE, job.snapshot().error


@pytest.fixture
def at() -> AppTest:
    wait_for_base()
    return run(page(PAGE, timeout=120))


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def table(at: AppTest, column: str):
    """The dataframe that has `column` (AppTest does not expose a dataframe's key)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def wait_for_success(at: AppTest, text: str, timeout: float = 120.0) -> str:
    """Rerun the page until a success message containing `text` shows (the job finished); return it."""
    deadline = time.monotonic() + timeout
    while not any(text in s.value for s in at.success):
        assert not errors(at), errors(at)
        assert time.monotonic() < deadline, f"no success message with {text!r}"
        time.sleep(0.5)
        run(at)
    return next(s.value for s in at.success if text in s.value)


def test_the_page_shows_the_pairs_and_the_loss_mask(at):
    assert at.title[0].value.endswith("Fine-tuning")
    assert not errors(at)
    assert any("held out, never trained on" in c.value for c in at.caption)
    mask = next(h.proto.body for h in at.get("html"))
    assert "#c8f7c5" in mask and "#eee" in mask  # answer tokens green, prompt tokens grey
    assert any("RLHF" in m.value and "reward model" in m.value for m in at.markdown)
    assert at.button(key="ft_sft_start").label == "Fine-tune"
    assert at.button(key="ft_dpo_start").disabled  # DPO waits for an SFT model


def test_bad_input_gets_a_clear_message(at):
    at.multiselect(key="ft_topics").set_value([]).run()
    assert any("No pairs" in e for e in errors(at))
    assert at.button(key="ft_sft_start").disabled
    at.multiselect(key="ft_topics").set_value(["capital"])
    at.number_input(key="ft_beta").set_value(0.0).run()
    assert any("β must be > 0" in e for e in errors(at))
    at.number_input(key="ft_beta").set_value(0.1)
    at.radio(key="ft_source").set_value("Upload JSONL or CSV").run()
    at.get("file_uploader")[0].upload(
        "pairs.jsonl", b'{"prompt": "Q: a?\\nA: ", "completion": "b"}\n{"prompt": 1\n'
    ).run()
    assert any("pairs.jsonl, line 2: not valid JSON" in e for e in errors(at))
    long = (
        b'{"prompt": "Q: ' + b"a" * 80 + b'?\\nA: ", "completion": "b"}\n{"prompt": "Q: b?\\nA: ", "completion": "c"}\n'
    )
    at.get("file_uploader")[0].upload("long.jsonl", long).run()
    assert any("pair 1" in e and "the model reads at most 64" in e for e in errors(at))
    assert not at.exception


def test_sft_then_dpo_tune_the_base_and_offer_both_models_to_generation(at):
    at.multiselect(key="ft_topics").set_value(["capital", "plural"])
    at.slider(key="ft_steps").set_value(20).run()
    at.button(key="ft_sft_start").click().run()
    wait_for_success(at, "Generation lab")
    sft_name = zoo.GPT_NAME + " + SFT (tuned)"
    assert sft_name in at.session_state[MODELS_KEY]
    scores = table(at, "one line ending in a newline")
    assert list(scores["model"]) == ["base (pretrained only)", "base + SFT", "random start + SFT"]
    side = table(at, "base + SFT")
    assert len(side) == round(0.2 * 153) and set(side.columns) == {"prompt", "expected", "base", "base + SFT"}
    runs = table(at, "bits/char before")
    assert list(runs["steps"]) == [20] and runs["bits/char before"][0] > 0
    assert at.get("download_button")  # pairs, weights
    # preference tuning starts from the SFT model
    assert not at.button(key="ft_dpo_start").disabled
    at.slider(key="ft_dpo_steps").set_value(20).run()
    at.button(key="ft_dpo_start").click().run()
    message = wait_for_success(at, "follow the rule")
    assert "after DPO" in message
    assert sft_name.removesuffix(" (tuned)") + " + DPO exclaim (tuned)" in at.session_state[MODELS_KEY]
    assert len(table(at, "after DPO")) == len(side)  # the same held-out prompts
    assert not errors(at) and not at.exception
