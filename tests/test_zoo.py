"""Spec of the shared default models: one split for all, trained once per process, scored on the same text."""

import dataclasses
import logging
import math

import pytest
import torch

from mllm_core import corpora, store, training, zoo
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


# ---------------------------------------------------------------------------------------------
# Saved defaults: trained once per machine, loaded by every later server


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A writable cache for the test; returns the folder the defaults are saved in."""
    monkeypatch.setenv("MLLM_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "models"


def run_default(default: zoo.Default) -> training.TrainingJob:
    """Run a default's shared job as a freshly started server would (a new manager: nothing reused)."""
    job = training.JobManager().shared_job(default.key, default.target, name=default.label)
    assert job.join(120) and job.snapshot().state == training.DONE, job.snapshot().error
    return job


def no_training(*args):
    raise AssertionError("trained again")


def same_predictions(a, b) -> bool:
    ids = a.encode("the history of")
    return torch.equal(a.next_logits(ids), b.next_logits(ids))


def test_a_score_saved_before_first_tokens_were_charged_loads_on_the_whole_text(cache, monkeypatch):
    """The shipped transformer once scored 29,999 characters and every other model 30,000 (issue 19)."""
    default = zoo.ladder_default("transformer", TINY)
    trained = run_default(default).snapshot().artifacts["evaluations"][zoo.GPT_NAME]
    assert trained.n_chars == len(zoo.validation_text(TINY))  # a fresh score covers every character
    path = cache / default.artefact / "record.json"
    record = store.load_record(path)
    model = zoo.current_model(run_default(default), zoo.GPT_NAME)
    first = model.encode(zoo.validation_text(TINY))[:1]
    old = dict(trained.__dict__, bits=trained.bits - math.log2(model.vocab_size), n_tokens=trained.n_tokens - 1)
    old["n_chars"] = trained.n_chars - len(model.decode(first))  # as the old evaluate() skipped token 0
    record.extras["evaluations"][zoo.GPT_NAME] = old
    store.save_record(record, path)
    monkeypatch.setattr(zoo, "model_target", no_training)
    loaded = run_default(zoo.ladder_default("transformer", TINY)).snapshot().artifacts["evaluations"][zoo.GPT_NAME]
    assert loaded.n_chars == trained.n_chars and loaded.n_tokens == trained.n_tokens
    assert loaded.bits == pytest.approx(trained.bits)


@pytest.mark.parametrize("group", ["baseline", "n-gram", "char-LSTM", "transformer"])
def test_a_trained_default_is_saved_and_the_next_server_loads_it_without_training(group, cache, monkeypatch):
    default = zoo.ladder_default(group, TINY)
    trained = run_default(default)
    folder = cache / default.artefact
    assert (folder / "record.json").is_file()
    assert zoo.origin(trained.snapshot()) == "trained on this server"

    monkeypatch.setattr(zoo, "model_target", no_training)
    loaded = run_default(zoo.ladder_default(group, TINY))
    before, after = trained.snapshot(), loaded.snapshot()
    assert after.artifacts["loaded_from"] == str(folder) and zoo.origin(after) == f"loaded from {folder}"
    assert after.artifacts["evaluations"] == before.artifacts["evaluations"]  # the leaderboard, unchanged
    assert after.history == before.history and after.total_steps == before.total_steps  # the curves too
    assert set(loaded.result) == set(trained.result)
    for name, model in loaded.result.items():
        assert zoo.current_model(loaded, name) is model
        assert model.name == name and same_predictions(trained.result[name], model)


def test_the_labs_defaults_come_back_with_what_their_pages_read(cache, monkeypatch):
    """The counter is quick at full size; the attention GPT and word2vec are toy-sized here."""
    from mllm_core import rnn, transformer, word2vec

    defaults = (zoo.counter_default, zoo.attention_default, zoo.embeddings_default)
    trained = [run_default(make()) for make in defaults]
    for module, name in ((rnn, "counting_target"), (transformer, "gpt_target"), (word2vec, "training_target")):
        monkeypatch.setattr(module, name, no_training)
    counter, gpt, w2v = (run_default(make()) for make in defaults)
    assert all(job.snapshot().artifacts["loaded_from"] for job in (counter, gpt, w2v))

    idx = torch.tensor([[7, 8, 9, 10]])
    assert torch.equal(counter.result(idx)[0], trained[0].result(idx)[0])

    art, before = gpt.snapshot().artifacts, trained[1].snapshot().artifacts
    assert gpt.latest() is art["model"] and same_predictions(gpt.result, trained[1].result)
    assert [c.step for c in art["checkpoints"]] == [c.step for c in before["checkpoints"]]  # "Watch it learn"
    assert art["probe_tokens"] == before["probe_tokens"] and art["num_params"] == before["num_params"]

    art, before = w2v.snapshot().artifacts, trained[2].snapshot().artifacts
    assert torch.equal(w2v.result.vectors(), trained[2].result.vectors())
    assert art["progress"] == before["progress"] and w2v.snapshot().history == trained[2].snapshot().history


def test_every_setting_a_default_depends_on_names_its_folder(monkeypatch):
    baseline = zoo.ladder_default("baseline", TINY).artefact
    assert zoo.ladder_default("baseline", dataclasses.replace(TINY, train_chars=10_000)).artefact != baseline
    assert zoo.ladder_default("baseline", dataclasses.replace(TINY, corpus="lee-news")).artefact != baseline
    assert (
        zoo.ladder_default("transformer", TINY).artefact != zoo.ladder_default("transformer", zoo.ZooConfig()).artefact
    )
    tiny = {d.label: d.artefact for d in zoo.defaults()}
    monkeypatch.setenv("MLLM_ZOO_TINY", "0")  # 1000 GPT steps, 100 word2vec epochs instead of toy budgets
    full = {d.label: d.artefact for d in zoo.defaults()}
    assert tiny["attention-default"] != full["attention-default"]
    assert tiny["embeddings-default"] != full["embeddings-default"]
    assert tiny["counter-default"] == full["counter-default"]  # the counter has one size
    assert len(set(full.values())) == len(full)


def test_a_changed_setting_trains_anew_instead_of_loading_stale_weights(cache, caplog):
    caplog.set_level(logging.INFO, logger="mllm_core.zoo")
    run_default(zoo.ladder_default("baseline", TINY))
    job = run_default(zoo.ladder_default("baseline", dataclasses.replace(TINY, train_chars=10_000)))
    assert job.snapshot().artifacts["loaded_from"] is None
    assert "training zoo: baseline: no saved copy" in caplog.text  # the log says what it trains, and why
    assert len(list(cache.iterdir())) == 2


def test_a_damaged_copy_is_trained_again_and_replaced(cache, caplog):
    default = zoo.ladder_default("baseline", TINY)
    (cache / default.artefact).mkdir(parents=True)
    (cache / default.artefact / "record.json").write_text('{"format": "llm-playground/job-record", "version": 99}')
    job = run_default(default)
    assert job.snapshot().artifacts["loaded_from"] is None
    assert "cannot load" in caplog.text and "version 99" in caplog.text
    assert store.load_record(cache / default.artefact / "record.json").extras["evaluations"]


def test_a_cache_that_cannot_be_written_costs_only_a_log_line(caplog):
    # the tests' cache (conftest) is a folder inside a file: it can be neither read nor created
    job = run_default(zoo.ladder_default("baseline", TINY))
    assert job.result[zoo.BASELINE_NAME].vocab_size > 2
    assert "cannot save zoo: baseline" in caplog.text


def test_build_writes_every_default_to_a_folder_that_a_fresh_server_reads(tmp_path, monkeypatch, capsys):
    cheap = [zoo.ladder_default("baseline", TINY), zoo.ladder_default("n-gram", TINY)]
    monkeypatch.setattr(zoo, "defaults", lambda config=None: cheap)
    lines = []
    folders = zoo.build(tmp_path / "models", on_event=lines.append)
    parsed = tmp_path / "models" / corpora.parsed_artefact(corpora.DEFAULT)
    assert folders == [tmp_path / "models" / d.artefact for d in cheap] + [parsed]
    assert zoo.build(tmp_path / "models", on_event=lines.append) == folders
    assert sum("already built" in line for line in lines) == 2

    monkeypatch.setenv("MLLM_MODELS_DIR", str(tmp_path / "models"))  # as shipped with the app
    assert run_default(cheap[1]).snapshot().artifacts["loaded_from"] == str(folders[1])
    assert zoo.main(["where"]) == 0
    assert str(folders[1]) in capsys.readouterr().out


def test_the_tokenizer_default_is_the_labs_bpe_and_comes_back_from_disk(cache, monkeypatch, tmp_path):
    from mllm_core.tokenizers import bpe

    monkeypatch.setenv("MLLM_MODELS_DIR", str(tmp_path / "nothing shipped"))
    default = zoo.tokenizer_default()
    trained = run_default(default)
    text = corpora.head_bytes(corpora.load(corpora.DEFAULT).text, int(zoo.TOKENIZER_MB * 1_000_000))
    direct = bpe.BPETokenizer(bpe.GPT2_PATTERN).train(text, zoo.TOKENIZER_VOCAB)
    assert trained.result.to_dict() == direct.to_dict()  # what the lab would train at its default settings
    snap = trained.snapshot()
    assert snap.total_steps == zoo.TOKENIZER_VOCAB - 256 and snap.history["count"][-1][0] == snap.total_steps

    monkeypatch.setattr(bpe, "training_target", no_training)
    loaded = run_default(zoo.tokenizer_default())
    assert loaded.snapshot().artifacts["loaded_from"] == str(cache / default.artefact)
    assert loaded.result.to_dict() == direct.to_dict() and loaded.latest() is loaded.result
    assert zoo.tokenizer_settings(corpora.DEFAULT, zoo.TOKENIZER_MB, zoo.TOKENIZER_VOCAB, zoo.TOKENIZER_SPLIT)
    assert not zoo.tokenizer_settings(corpora.DEFAULT, zoo.TOKENIZER_MB, zoo.TOKENIZER_VOCAB + 1, True)
