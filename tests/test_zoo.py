"""Spec of the shared default models: one split for all, trained once per process, scored on the same text."""

import math

import pytest

from mllm_core import training, zoo
from mllm_core.lm import TorchTextLM, UniformLM
from mllm_core.metrics import Evaluation

TINY = zoo.ZooConfig(train_chars=20_000, eval_chars=2_000, tiny=True)


def train_group(name):
    """Run the job that makes default `name`: {model name: (model, its published evaluation)}."""
    published = {}

    def target(ctx):
        models = zoo.model_target(name, TINY)(ctx)
        published.update(ctx._job.snapshot().artifacts)
        return models

    models = training.run_sync(target)
    assert set(models) == set(published["models"]) == set(published["evaluations"])
    return {model_name: (model, published["evaluations"][model_name]) for model_name, model in models.items()}


def train(name):
    return train_group(name)[name]


def test_tiny_defaults_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("MLLM_ZOO_TINY", "1")
    assert zoo.default_config() == TINY
    monkeypatch.setenv("MLLM_ZOO_TINY", "0")
    assert zoo.default_config() == zoo.ZooConfig() and zoo.ZooConfig().train_chars is None


def test_every_model_learns_from_one_split_and_is_scored_on_held_out_text():
    train_text, val_text = zoo.split(TINY)
    assert len(train_text) == 20_000 and len(val_text) == 2_000
    assert zoo.split(TINY) is zoo.split(TINY)  # computed once per process
    assert zoo.validation_text(TINY) == val_text
    held_out = {line for line in val_text.split("\n") if len(line) > 50}
    assert held_out and not any(line in train_text for line in held_out)


def test_the_baseline_costs_log2_of_its_vocabulary():
    model, ev = train(zoo.BASELINE_NAME)
    assert isinstance(model, UniformLM) and model.name == zoo.BASELINE_NAME
    assert ev.bits_per_char == pytest.approx(math.log2(model.vocab_size))


@pytest.fixture(scope="module")
def ngrams():
    return train_group("3-gram")  # n = 1..5 come out of one job


def test_ngram_defaults_read_n_minus_1_characters_and_beat_the_baseline(ngrams):
    _, baseline = train(zoo.BASELINE_NAME)
    for n, name in zip(zoo.NGRAM_ORDERS, zoo.NGRAM_NAMES, strict=True):
        model, ev = ngrams[name]
        assert model.block_size == n - 1
        assert ev.n_chars == 2_000 and ev.bits_per_char < baseline.bits_per_char


def test_longer_ngrams_predict_better_up_to_a_point(ngrams):
    bits = [ngrams[name][1].bits_per_char for name in ("1-gram", "2-gram", "3-gram")]
    assert bits[0] > bits[1] > bits[2]


@pytest.mark.parametrize("name", [zoo.GPT_NAME, zoo.LSTM_NAME])
def test_neural_defaults_train_and_are_scored(name):
    model, ev = train(name)
    assert isinstance(model, TorchTextLM)
    assert math.isfinite(ev.bits_per_char) and ev.bits_per_char > 0


def test_a_default_is_trained_once_for_every_caller_and_the_ngrams_share_one_count_table():
    job = zoo.default_job("2-gram", TINY)
    try:
        assert zoo.default_job("2-gram", TINY) is job
        assert zoo.default_job("5-gram", TINY) is job  # one count table serves n = 1..5
        assert zoo.default_job(zoo.BASELINE_NAME, TINY) is not job
        assert job.join(60) and job.snapshot().state == training.DONE
        assert set(job.result) == set(zoo.NGRAM_NAMES)
        assert zoo.current_model(job, "2-gram") is job.result["2-gram"]
        assert job.result["2-gram"].model.counts is job.result["5-gram"].model.counts
        assert zoo.current_model(job, zoo.GPT_NAME) is None
        assert all(isinstance(ev, Evaluation) for ev in job.snapshot().artifacts["evaluations"].values())
    finally:
        training.MANAGER.stop_all(30)


def test_unknown_defaults_are_refused():
    with pytest.raises(ValueError, match="no default model called 'gpt-5'"):
        zoo.default_job("gpt-5", TINY)


def test_the_leaderboard_puts_the_best_first_and_unscored_models_last():
    def scored(name, bits):
        def target(ctx):
            ctx.publish(evaluations={name: Evaluation(name, bits * 100, 100, 100)})

        return training.TrainingJob(target).start()

    def failing(ctx):
        raise RuntimeError("out of memory")

    jobs = {
        "worse": scored("worse", 3.0),
        "broken": training.TrainingJob(failing).start(),
        "better": scored("better", 2.0),
    }
    for job in jobs.values():
        job.join(10)
    rows = zoo.leaderboard(jobs)
    assert [r.name for r in rows] == ["better", "worse", "broken"]
    assert rows[0].bits_per_char == 2.0 and rows[2].evaluation is None and rows[2].state == training.FAILED
