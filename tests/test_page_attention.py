"""The Attention page: renders offline, draws attention for a sentence, explains bad input, trains a model."""

import base64
import time

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest
from streamlit.testing.v1 import AppTest

from mllm_core import zoo
from ui.common import MODELS_KEY

PAGE = "pages/attention.py"


def wait_for_default_model(timeout: float = 60.0) -> None:
    """The class-wide default GPT publishes its first snapshot a few seconds after it starts."""
    job = zoo.attention_job()
    deadline = time.monotonic() + timeout
    while "model" not in job.snapshot().artifacts:
        assert job.snapshot().error is None, job.snapshot().error
        assert time.monotonic() < deadline, "the default model never published a snapshot"
        time.sleep(0.2)


@pytest.fixture
def page(root) -> AppTest:
    at = AppTest.from_file(str(root / PAGE), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    wait_for_default_model()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def test_page_renders_with_defaults_and_shows_the_parameter_count(page):
    assert not errors(page)
    assert page.title[0].value.endswith(" Attention")  # after its Material icon
    assert any("parameters" in c.value for c in page.caption)
    assert page.button(key="att_start").label == "Train"


def chart(at: AppTest, key: str) -> go.Figure:
    """The plotly figure drawn with `key`."""
    return next(pio.from_json(c.proto.spec) for c in at.get("plotly_chart") if c.proto.id.endswith(f"-{key}"))


def matrix(z) -> list[list[float]]:
    """Plotly sends numpy arrays as base64 (`{"dtype", "bdata", "shape"}`); decode them."""
    if isinstance(z, dict):
        z = np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"]).reshape(
            [int(n) for n in str(z["shape"]).split(",")]
        )
    return np.asarray(z).tolist()


def test_a_sentence_gets_one_heatmap_and_a_grid_of_every_head(page):
    page.text_input(key="att_text").set_value("a cat").run()
    z = matrix(chart(page, "att_map").data[0].z)
    assert len(z) == len(z[0]) == 5  # one row and one column per character
    assert all(abs(sum(row) - 1) < 1e-5 for row in z)
    assert all(z[i][j] == 0 for i in range(5) for j in range(i + 1, 5))
    assert len(chart(page, "att_grid").data) == 2 * 4  # default model: 2 layers x 4 heads
    page.selectbox(key="att_layer").set_value(1).run()
    page.selectbox(key="att_head").set_value(3).run()
    assert chart(page, "att_map").layout.title.text == "Layer 1, head 3"
    assert not page.exception and not errors(page)


def test_text_longer_than_the_block_size_is_a_clear_message(page):
    page.text_input(key="att_text").set_value("the cat sat on the mat " * 5).run()
    assert any("at most 64" in e and "block size" in e for e in errors(page))
    assert not page.exception


def test_characters_outside_the_vocabulary_are_named(page):
    page.text_input(key="att_text").set_value("the cat ☃").run()
    assert any("vocabulary" in e and "☃" in e for e in errors(page))


def test_lifting_the_causal_mask_warns_that_the_model_never_saw_the_future(page):
    page.toggle(key="att_causal").set_value(False).run()
    assert any("Mask lifted" in w.value for w in page.warning)
    assert not errors(page)


def table(at: AppTest, column: str):
    """The step-by-step table that has `column` (dataframes carry no key in AppTest)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_step_by_step_rows_sum_to_one_and_the_mask_hides_the_future(page):
    assert list(table(page, "row sum")["row sum"]) == [1.0] * 6
    scores = table(page, "1: cat")  # the score matrix: one column per token
    assert scores.iloc[0, 1] == float("-inf")
    page.toggle(key="att_toy_causal").set_value(False).run()
    assert table(page, "1: cat").iloc[0, 1] != float("-inf")
    page.selectbox(key="att_follow").set_value(1).run()
    assert any("out[1] =" in m.value for m in page.markdown)


def test_positional_encoding_settings_are_applied(page):
    page.slider(key="att_pe_n").set_value(16).run()
    page.selectbox(key="att_pe_d").set_value(8).run()
    assert not page.exception and not errors(page)


def test_training_a_small_model_registers_it_for_generation(page):
    page.selectbox(key="att_corpus").set_value("fox").run()
    page.selectbox(key="att_block").set_value(16).run()
    page.selectbox(key="att_embd").set_value(32).run()
    page.slider(key="att_layers").set_value(1).run()
    page.number_input(key="att_steps").set_value(20).run()
    # a sentence that fits block 16 in letters the fox corpus knows: the maps tab draws the model
    # from its first snapshot on, while it is still training
    page.text_input(key="att_text").set_value("the lazy dog").run()
    page.button(key="att_start").click().run()
    deadline = time.monotonic() + 90
    while not any("Generation lab" in s.value for s in page.success):
        assert not errors(page), errors(page)
        assert time.monotonic() < deadline, "training did not finish"
        time.sleep(0.5)
        page.run()
    name = "GPT fox (char, 1L 4H 32d)"
    assert name in page.session_state[MODELS_KEY]
    assert page.sidebar.radio(key="att_which").options == ["your model", "the class default"]
    assert not errors(page)


def test_the_class_default_is_offered_to_generation_once_trained(page):
    assert zoo.attention_job().join(120)
    page.run()
    assert zoo.ATTENTION_NAME in page.session_state[MODELS_KEY]
    assert any("Class default model" in c.value and "trained on this server" in c.value for c in page.caption)


def test_a_run_stopped_early_is_offered_to_generation_with_its_step(page):
    page.selectbox(key="att_corpus").set_value("fox").run()
    page.selectbox(key="att_block").set_value(16).run()
    page.selectbox(key="att_embd").set_value(32).run()
    page.slider(key="att_layers").set_value(1).run()
    page.number_input(key="att_steps").set_value(20_000).run()
    page.button(key="att_start").click().run()
    job = get_job_named("att")
    deadline = time.monotonic() + 90
    while job.snapshot().artifacts.get("model_step", 0) == 0:  # a checkpoint after step 0
        assert time.monotonic() < deadline, job.snapshot()
        time.sleep(0.2)
    page.button(key="att_stop").click().run()
    step = job.snapshot().artifacts["model_step"]
    name = f"GPT fox (char, 1L 4H 32d) (stopped at step {step:,})"
    assert name in page.session_state[MODELS_KEY], list(page.session_state[MODELS_KEY])
    assert any(name in s.value for s in page.success)


def get_job_named(name: str):
    from mllm_core import training

    (job,) = [j for j in training.executor().jobs() if j.name == name]
    return job


def test_a_default_found_on_disk_is_shown_at_once_with_its_replay(root, tmp_path, monkeypatch, fresh_manager):
    """A fresh server that finds the default saved (here: shipped in the app's models/ folder) loads it
    instead of training it, says so, and replays how its attention formed."""
    from mllm_core import corpora, training
    from mllm_core import transformer as tf

    small = tf.GPTConfig(block_size=48, n_layer=1, n_head=2, n_embd=16)  # stands in for the saved default
    target = tf.gpt_target(corpora.load().text[:20_000], small, tf.GPTTrainConfig(steps=4, eval_every=2, batch_size=4))
    job = training.TrainingJob(target).start()
    assert job.join(60) and job.snapshot().state == training.DONE
    folder = zoo.save(zoo.attention_default(), job.result, job.snapshot(), tmp_path / "models")
    monkeypatch.setenv("MLLM_MODELS_DIR", str(tmp_path / "models"))

    at = AppTest.from_file(str(root / PAGE), default_timeout=60)
    at.run()
    assert zoo.attention_job().join(30)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Class default model" in c.value and f"loaded from {folder}" in c.value for c in at.caption)
    assert len(chart(at, "att_grid").data) == 1 * 2  # the saved model's layers x heads
    assert [int(s) for s in at.select_slider(key="att_ckpt").options] == [0, 2, 4]  # "Watch it learn"


def test_a_run_of_hours_is_estimated_in_h_mm_ss_and_waits_for_a_go_ahead():
    """Issue 19: 6 layers x 256 wide x 20,000 steps started at once and showed "ETA 790:09"."""
    from pagetest import opened, run

    from mllm_core import transformer as tf
    from ui.common import duration

    at = opened(PAGE, att_layers=6, att_embd=256, att_steps=20_000)
    (warning,) = [w.value for w in at.tabs[0].warning]
    clock = warning.split("**")[1]
    hours, minutes, seconds = (int(x) for x in clock.split(":"))
    assert hours >= 3 and minutes < 60 and seconds < 60
    assert at.button(key="att_start").disabled and any("Start it anyway" in c.value for c in at.tabs[0].caption)
    at.checkbox(key="att_long_ok").check()
    run(at)
    assert not at.button(key="att_start").disabled  # the user said yes
    small = opened(PAGE)  # the default settings train in about a minute: no warning
    assert not small.tabs[0].warning and not small.button(key="att_start").disabled
    # the estimate is the textbook 6 N + 12 L d T FLOPs per token at the calibrated CPU rate
    config = tf.GPTConfig(vocab_size=100, n_layer=6, n_embd=256)
    n = tf.GPT(config).num_params()
    expected = 20_000 * 32 * 64 * (6 * n + 12 * 6 * 256 * 64) / tf.CPU_FLOPS
    assert tf.estimated_seconds(config, tf.GPTTrainConfig(steps=20_000)) == pytest.approx(expected)
    assert duration(47_409) == "13:10:09" and duration(790 * 60 + 9) == "13:10:09"


def test_a_sparse_validation_curve_is_drawn_with_markers():
    """Issue 19: one validation point (a slow run) showed as a number but drew no line."""
    from types import SimpleNamespace

    from ui.common import loss_chart

    snap = SimpleNamespace(history={"loss": [(s, 3.0) for s in range(60)], "val_loss": [(0, 4.0)]})
    traces = {t.name: t for t in loss_chart(snap, ("loss", "val_loss")).data}
    assert "markers" in traces["val_loss"].mode and traces["loss"].mode == "lines"


def test_head_grids_label_their_tokens():
    """Issue 19: the Watch-it-learn heatmaps had no token labels."""
    import torch

    from ui.attention import head_grid

    fig = head_grid(torch.rand(2, 4, 3, 3), ["a", "b", " c"])
    assert list(fig.layout.yaxis.ticktext) == ["a", "b", "␣c"]  # layer 0, head 0: the left column
    assert list(fig.layout.xaxis5.ticktext) == ["a", "b", "␣c"]  # layer 1, head 0: the bottom row
    assert not fig.layout.xaxis.showticklabels  # inner panels stay clean
