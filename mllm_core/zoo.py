"""The default models every session shares: one ladder of families on one corpus, trained once.

n-gram (n = 1..5, characters, Kneser-Ney), an MLP reading 3 characters, a char-LSTM and a small
transformer all learn from the same training split of the same corpus and are scored on the same
validation text, so the Generation lab can sample them side by side and rank them by bits per character. Each default
is a `training.shared_job`: the first session that asks starts it, every later session (a
classroom of 30) reads the same job. Sibling modules train one family each (`ngram`, `mlp`,
`char_lstm`, `transformer`); this one only chooses their small default settings and scores the results
with `metrics.evaluate`.

Every default is kept on disk once trained (`store`, in the cache), and a later process loads
it in a second instead of training it again; `python -m mllm_core.zoo build --out models` trains
them all into the folder shipped with the app (for hosts whose disk is fresh at every boot). A
default's folder is named after a digest of everything it depends on (`artefact_name`), so a
changed setting trains anew rather than loading stale weights.

Set `MLLM_ZOO_TINY=1` for toy sizes that train in seconds (tests, CI).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mllm_core import corpora, store, training
from mllm_core.lm import TextLM, UniformLM
from mllm_core.metrics import Evaluation, evaluate, first_token_guess

log = logging.getLogger(__name__)

NGRAM_ORDERS = (1, 2, 3, 4, 5)
NGRAM_NAMES = tuple(f"{n}-gram" for n in NGRAM_ORDERS)
MLP_WINDOW = 3  # the MLP default reads the last 3 characters, as makemore's
MLP_NAME = f"MLP (k={MLP_WINDOW})"
LSTM_NAME = "char-LSTM"
GPT_NAME = "transformer"
BASELINE_NAME = "uniform (baseline)"
NAMES = (BASELINE_NAME, *NGRAM_NAMES, MLP_NAME, LSTM_NAME, GPT_NAME)  # the defaults, simplest first
FAMILIES = {
    **dict.fromkeys(NGRAM_NAMES, "n-gram"),
    MLP_NAME: "MLP",
    LSTM_NAME: "RNN",
    GPT_NAME: "transformer",
    BASELINE_NAME: "baseline",
}


@dataclass(frozen=True)
class ZooConfig:
    corpus: str = corpora.DEFAULT  # every default model learns from this corpus
    val_fraction: float = 0.1  # share of its lines held out (corpora.train_val_split), never trained on
    train_chars: int | None = None  # first characters of the training split the models see (None: all)
    eval_chars: int = 30_000  # first characters of the validation split scored on the leaderboard
    tiny: bool = False  # toy model sizes that train in seconds (tests)


def tiny() -> bool:
    """True when the environment sets MLLM_ZOO_TINY=1: every default trains at toy size (tests, CI)."""
    return os.environ.get("MLLM_ZOO_TINY", "") not in ("", "0")


def default_config() -> ZooConfig:
    """The shared defaults, or toy ones under `tiny()`."""
    if tiny():
        return ZooConfig(train_chars=20_000, eval_chars=2_000, tiny=True)
    return ZooConfig()


_SPLIT_LOCK = threading.Lock()  # the default jobs start together: the first reads the corpus, the others wait


def split(config: ZooConfig) -> tuple[str, str]:
    """(training text, validation text) shared by every default model, computed once per process."""
    with _SPLIT_LOCK:
        return _split(config)


@functools.lru_cache(maxsize=4)
def _split(config: ZooConfig) -> tuple[str, str]:
    train, val = corpora.train_val_split(corpora.load(config.corpus).text, config.val_fraction)
    if config.train_chars is not None:
        train = train[: config.train_chars]
    return train, val[: config.eval_chars]


def validation_text(config: ZooConfig | None = None) -> str:
    """The text the leaderboard scores (the first `eval_chars` characters of the validation split)."""
    return split(config or default_config())[1]


# ---------------------------------------------------------------------------------------------
# Saved defaults: ready at once on a machine that trained them before

RECIPE_VERSION = 1  # bump when a default's training code changes: every saved default is then retrained


def artefact_name(kind: str, key: Hashable) -> str:
    """The folder of a default on disk: its kind and a digest of its key (every setting it depends on).

    The digest is of `repr`, which spells out every field of a config dataclass, so the name is
    the same in every process and changes with any setting (pinned here: changing the scheme
    orphans every saved default).

    >>> artefact_name("counter", ("counter", (128, 6)))
    'counter-a95ad4ecf41f'
    >>> artefact_name("counter", ("counter", (128, 7))) == artefact_name("counter", ("counter", (128, 6)))
    False
    """
    digest = hashlib.sha256(repr((RECIPE_VERSION, key)).encode()).hexdigest()[:12]
    return f"{kind}-{digest}"


SaveFn = Callable[[Any, training.JobSnapshot, Path], dict]  # (result, snapshot, folder) -> JSON extras
LoadFn = Callable[[Path, dict], tuple[Any, dict]]  # (folder, extras) -> (result, artifacts to publish)


@dataclass(frozen=True)
class Default:
    """One class-wide default: its shared job's key, how it trains, how it goes to disk and back.

    `save(result, snapshot, folder)` writes the result and what the pages read of the job
    (checkpoints, scores) into `folder` and returns small JSON extras for the record;
    `load(folder, extras)` gives back (result, the artifacts to publish). The job's metric
    history and step count are kept for every kind, so a loaded default looks like a trained one.
    """

    kind: str  # the first part of its folder name: "zoo-transformer", "attention", "word2vec", ...
    key: Hashable  # the shared job's key: every setting the result depends on
    label: str  # the job's name
    make_target: Callable[[], Callable[[training.TrainContext], Any]]  # the training loop
    save: SaveFn
    load: LoadFn

    @property
    def artefact(self) -> str:
        """Its folder's name, e.g. "attention-3f9a1c2b0d4e"."""
        return artefact_name(self.kind, self.key)

    def target(self) -> Callable[[training.TrainContext], Any]:
        """The shared job's loop: load the saved default if there is one, else train it and save it."""
        return functools.partial(_load_or_train, self)

    def job(self) -> training.TrainingJob:
        """The process-wide job (started by the first caller, shared by every later one)."""
        return training.shared_job(self.key, self.target, name=self.label)


def _load_or_train(default: Default, ctx: training.TrainContext) -> Any:
    folder = store.find(default.artefact)
    if folder is not None:
        try:
            record = store.load_record(folder / "record.json")
            result, artifacts = default.load(folder, record.extras)
        except Exception as exc:  # a damaged or foreign copy must not keep the default from existing
            log.warning("cannot load %s (%s: %s); training it instead", folder, type(exc).__name__, exc)
        else:
            if record.total_steps:
                ctx.set_total(record.total_steps)
            _replay(ctx, record.history)
            ctx.publish(**artifacts, loaded_from=str(folder))
            log.info("%s loaded from %s", default.label, folder)
            return result
    where = " or ".join(str(root) for root in store.search_path())
    log.info("training %s: no saved copy %s in %s", default.label, default.artefact, where)
    ctx.publish(loaded_from=None)
    result = default.make_target()(ctx)
    if not ctx.should_stop():  # a run stopped early is not the default
        try:
            log.info("%s saved to %s", default.label, save(default, result, ctx.snapshot(), store.cache_models_dir()))
        except Exception as exc:  # a read-only or missing cache: the model is trained all the same
            log.warning(
                "cannot save %s to %s (%s: %s)", default.label, store.cache_models_dir(), type(exc).__name__, exc
            )
    return result


def _replay(ctx: training.TrainContext, history: dict[str, list[tuple[int, float]]]) -> None:
    """Report a saved metric history again, step by step, so the curves of a loaded default are drawn."""
    by_step: dict[int, dict[str, float]] = {}
    for metric, series in history.items():
        for step, value in series:
            by_step.setdefault(step, {})[metric] = value
    for step in sorted(by_step):
        ctx.report(step=step, **by_step[step])


def save(default: Default, result: Any, snap: training.JobSnapshot, root: str | Path) -> Path:
    """Write a trained default into `root`/`default.artefact`, whole or not at all; returns the folder."""

    def fill(folder: Path) -> None:
        extras = default.save(result, snap, folder)
        store.save_record(store.JobRecord(snap.history, snap.total_steps, extras), folder / "record.json")

    return store.write_atomically(Path(root) / default.artefact, fill)


def origin(snap: training.JobSnapshot) -> str:
    """Where a default's model comes from, for a caption: loaded from disk, or trained in this process.

    >>> loaded = training.JobSnapshot("d", training.DONE, 9, 9, 0.1, None, None, {}, {"loaded_from": "models/d-1"}, "cpu")
    >>> origin(loaded)
    'loaded from models/d-1'
    """
    if "loaded_from" not in snap.artifacts:  # the job has not looked for a saved copy yet
        return "queued for a CPU slot" if snap.state == training.QUEUED else snap.state
    if snap.artifacts["loaded_from"]:
        return f"loaded from {snap.artifacts['loaded_from']}"
    if snap.state == training.DONE:
        return "trained on this server"
    return "training on this server (no saved copy was found; it is saved once trained)"


# ---------------------------------------------------------------------------------------------
# One training loop per family: the five n-grams share one count table


def _ngram_models(counts) -> dict[str, TextLM]:
    from mllm_core.ngram import NGramModel, NGramTextLM

    return {
        name: NGramTextLM(NGramModel.from_counts(counts, n, "kneser-ney"), "char", name)
        for name, n in zip(NGRAM_NAMES, NGRAM_ORDERS, strict=True)
    }


def _ngram_trainer(text: str, config: ZooConfig):
    from mllm_core.ngram import count_ngrams, split_tokens

    def target(ctx: training.TrainContext) -> dict[str, TextLM]:
        ctx.check()
        return _ngram_models(count_ngrams(split_tokens(text, "char"), max(NGRAM_ORDERS)))  # every order in one pass

    return target


def _baseline_trainer(text: str, config: ZooConfig):
    from mllm_core.tokenizers import CharTokenizer

    def target(ctx: training.TrainContext) -> dict[str, TextLM]:
        return {BASELINE_NAME: UniformLM(CharTokenizer().train(text), name=BASELINE_NAME)}

    return target


def _mlp_trainer(text: str, config: ZooConfig):
    from mllm_core.mlp import mlp_target

    model, train = mlp_configs(config)
    inner = mlp_target(text, model, train, name=MLP_NAME)
    return lambda ctx: {MLP_NAME: inner(ctx)}


def _lstm_trainer(text: str, config: ZooConfig):
    from mllm_core.char_lstm import char_lstm_target

    model, train = lstm_configs(config)
    inner = char_lstm_target(text, model, train, name=LSTM_NAME)
    return lambda ctx: {LSTM_NAME: inner(ctx)}


def _gpt_trainer(text: str, config: ZooConfig):
    from mllm_core.transformer import gpt_target

    model, train = gpt_configs(config)
    inner = gpt_target(text, model, train, name=GPT_NAME)
    return lambda ctx: {GPT_NAME: inner(ctx)}


def mlp_configs(config: ZooConfig) -> tuple[Any, Any]:
    """The default MLP's (`MLPConfig`, `MLPTrainConfig`): makemore's sizes, 3,000 steps (about 30 s)."""
    from mllm_core.mlp import MLPConfig, MLPTrainConfig

    if config.tiny:
        return MLPConfig(window=MLP_WINDOW, hidden=16, block_size=16), MLPTrainConfig(
            batch_size=8, steps=20, eval_every=10, sample_every=10, sample_len=20, max_chars=None
        )
    return MLPConfig(window=MLP_WINDOW), MLPTrainConfig(max_chars=None)


def lstm_configs(config: ZooConfig) -> tuple[Any, Any]:
    """The default char-LSTM's (`CharLSTMConfig`, `CharLSTMTrainConfig`)."""
    from mllm_core.char_lstm import CharLSTMConfig, CharLSTMTrainConfig

    if config.tiny:
        return CharLSTMConfig(block_size=16, n_embd=8, hidden_size=16), CharLSTMTrainConfig(
            batch_size=8, steps=20, eval_every=10, sample_every=10, sample_len=20, max_chars=None
        )
    return CharLSTMConfig(), CharLSTMTrainConfig(max_chars=None, steps=1000)


def gpt_configs(config: ZooConfig) -> tuple[Any, Any]:
    """The default transformer's (`GPTConfig`, `GPTTrainConfig`)."""
    from mllm_core.transformer import GPTConfig, GPTTrainConfig

    if config.tiny:
        # block_size as the full model's: the Fine-tuning lab's prompt/answer pairs are up to 65 characters
        return GPTConfig(block_size=64, n_layer=1, n_head=2, n_embd=16), GPTTrainConfig(
            steps=20, batch_size=8, eval_every=10, max_chars=None
        )
    return GPTConfig(), GPTTrainConfig(steps=800, max_chars=None)


# How each group's models go to disk: the baseline is its alphabet, the n-grams one count table,
# the neural models a `store.save_torch_lm` folder each.


def _save_baseline(models: dict[str, TextLM], folder: Path) -> None:
    models[BASELINE_NAME].tokenizer.save(folder / "tokenizer.json")


def _load_baseline(folder: Path) -> dict[str, TextLM]:
    from mllm_core.tokenizers import load_tokenizer

    return {BASELINE_NAME: UniformLM(load_tokenizer(folder / "tokenizer.json"), name=BASELINE_NAME)}


def _save_ngrams(models: dict[str, TextLM], folder: Path) -> None:
    store.save_ngram_counts(models[NGRAM_NAMES[0]].model.counts, folder / "counts.npz")  # shared by every order


def _load_ngrams(folder: Path) -> dict[str, TextLM]:
    return _ngram_models(store.load_ngram_counts(folder / "counts.npz"))


def _torch_io(name: str):
    return (lambda models, folder: store.save_torch_lm(models[name], folder)), (
        lambda folder: {name: store.load_torch_lm(folder)}
    )


Trainer = Callable[[str, ZooConfig], Callable[[training.TrainContext], dict[str, TextLM]]]


@dataclass(frozen=True)
class _Group:
    """One job of the ladder: its models, how they train, what they depend on, how they are kept."""

    trainer: Trainer
    names: tuple[str, ...]
    spec: Callable[[ZooConfig], Hashable]  # the settings its models depend on beyond the ZooConfig
    save_models: Callable[[dict[str, TextLM], Path], Any]
    load_models: Callable[[Path], dict[str, TextLM]]


_GROUPS: dict[str, _Group] = {  # one job per group
    "baseline": _Group(_baseline_trainer, (BASELINE_NAME,), lambda c: ("char",), _save_baseline, _load_baseline),
    "n-gram": _Group(
        _ngram_trainer, NGRAM_NAMES, lambda c: (NGRAM_ORDERS, "char", "kneser-ney"), _save_ngrams, _load_ngrams
    ),
    "MLP": _Group(_mlp_trainer, (MLP_NAME,), mlp_configs, *_torch_io(MLP_NAME)),
    "char-LSTM": _Group(_lstm_trainer, (LSTM_NAME,), lstm_configs, *_torch_io(LSTM_NAME)),
    "transformer": _Group(_gpt_trainer, (GPT_NAME,), gpt_configs, *_torch_io(GPT_NAME)),
}
_GROUP_OF = {name: group for group, g in _GROUPS.items() for name in g.names}


def _group(name: str) -> str:
    if name not in _GROUP_OF:
        raise ValueError(f"no default model called {name!r}; choose one of {', '.join(NAMES)}")
    return _GROUP_OF[name]


def model_target(name: str, config: ZooConfig | None = None) -> Callable[[training.TrainContext], dict[str, TextLM]]:
    """The training loop that makes default `name` (and its siblings: the five n-grams are one job).

    Trains on the shared split, then scores each model on the validation text. Publishes
    `models` ({name: TextLM}) once trained and `evaluations` ({name: metrics.Evaluation}) as
    each score lands; neural families also publish `model` snapshots while they train. The
    result is {name: TextLM}.
    """
    trainer = _GROUPS[_group(name)].trainer
    config = config or default_config()

    def target(ctx: training.TrainContext) -> dict[str, TextLM]:  # the corpus is read here, not in the page
        train_text, val_text = split(config)
        models = trainer(train_text, config)(ctx)
        ctx.publish(models=models)
        evaluations = {}
        for model_name, model in models.items():
            evaluations[model_name] = evaluate(model, val_text, check=ctx.check)
            ctx.publish(evaluations=dict(evaluations))
        return models

    return target


def _save_ladder(group: _Group, models: dict[str, TextLM], snap: training.JobSnapshot, folder: Path) -> dict:
    group.save_models(models, folder)
    scores = snap.artifacts.get("evaluations", {})
    return {"evaluations": {name: dataclasses.asdict(ev) for name, ev in scores.items()}}


def _load_ladder(group: _Group, config: ZooConfig, folder: Path, extras: dict) -> tuple[dict[str, TextLM], dict]:
    models = group.load_models(folder)
    scores = {name: _whole_text(Evaluation(**ev), models[name], config) for name, ev in extras["evaluations"].items()}
    return models, {"models": models, "evaluations": scores}


def _whole_text(ev: Evaluation, model: TextLM, config: ZooConfig) -> Evaluation:
    """A score saved before `metrics.evaluate` charged a context-less first token its uniform guess
    (it skipped that token) brought up to date, so every model covers the same characters."""
    n_chars = len(validation_text(config))
    if ev.n_chars >= n_chars:
        return ev
    return Evaluation(ev.model, ev.bits + first_token_guess(model), n_chars, ev.n_tokens + 1)


def ladder_default(group: str, config: ZooConfig | None = None) -> Default:
    """The Generation lab's default for a group of the ladder ("baseline", "n-gram", "MLP", "char-LSTM", "transformer")."""
    config = config or default_config()
    g = _GROUPS[group]
    return Default(
        kind=f"zoo-{group.lower()}",
        key=("zoo", group, config, g.spec(config)),
        label=f"zoo: {group}",
        make_target=lambda: model_target(g.names[0], config),
        save=functools.partial(_save_ladder, g),
        load=functools.partial(_load_ladder, g, config),
    )


def default_job(name: str, config: ZooConfig | None = None) -> training.TrainingJob:
    """The process-wide job making default `name` (started by the first caller, shared by its group):
    loaded from disk when it was saved before, else trained and then saved."""
    return ladder_default(_group(name), config).job()


def default_jobs(config: ZooConfig | None = None, names: tuple[str, ...] = NAMES) -> dict[str, training.TrainingJob]:
    """{name: job} for the defaults, starting those not trained yet (they queue for a CPU slot)."""
    return {name: default_job(name, config) for name in names}


def current_model(job: training.TrainingJob, name: str) -> TextLM | None:
    """Default `name` from its job: trained, else the latest snapshot the job published, else None."""
    models = job.latest("models") or {}
    if name in models:
        return models[name]
    neural = _GROUP_OF.get(name) in ("MLP", "char-LSTM", "transformer")
    return job.snapshot().artifacts.get("model") if neural else None


# ---------------------------------------------------------------------------------------------
# The labs' class-wide defaults: what a page shows before its visitor trains anything

ATTENTION_NAME = "GPT default (wikipedia-sample, char)"


def attention_configs() -> tuple[Any, Any]:
    """The Attention lab default's (`GPTConfig`, `GPTTrainConfig`): the engine's, or 60 steps under `tiny()`."""
    from mllm_core.transformer import GPTConfig, GPTTrainConfig

    if tiny():
        return GPTConfig(), GPTTrainConfig(steps=60, eval_every=20, max_chars=100_000)
    return GPTConfig(), GPTTrainConfig()


def _save_attention(lm, snap: training.JobSnapshot, folder: Path) -> dict:
    store.save_torch_lm(lm, folder)
    store.save_checkpoints(snap.artifacts.get("checkpoints", []), folder / "checkpoints.pt")  # "Watch it learn"
    return {"probe_tokens": snap.artifacts.get("probe_tokens", []), "num_params": snap.artifacts.get("num_params")}


def _load_attention(folder: Path, extras: dict) -> tuple[Any, dict]:
    lm = store.load_torch_lm(folder)
    checkpoints = store.load_checkpoints(folder / "checkpoints.pt")
    return lm, {"model": lm, "checkpoints": checkpoints, "config": lm.module.config, **extras}


def attention_default() -> Default:
    """The Attention lab's default GPT on the default corpus (char tokens)."""
    config, train = attention_configs()

    def make_target():
        from mllm_core.transformer import gpt_target

        return gpt_target(corpora.load(corpora.DEFAULT).text, config, train, name=ATTENTION_NAME)

    key = ("attention", corpora.DEFAULT, config, train)
    return Default("attention", key, "attention-default", make_target, _save_attention, _load_attention)


def attention_job() -> training.TrainingJob:
    """The Attention lab's default GPT, loaded from disk or trained once per process."""
    return attention_default().job()


EMBEDDINGS_EPOCHS = 100  # WordSim-353 ρ 0.433 (input vectors; 0.474 input + output); ~70 s on an idle core


def embeddings_budget() -> dict[str, float]:
    """`Word2Vec.fit`'s budget for the Embeddings default: `EMBEDDINGS_EPOCHS` passes, or 3 under `tiny()`.

    Epochs, not seconds: a 30-s budget gave the class whatever a busy server managed (ρ 0.19
    with other jobs training, 0.43 idle); a count of passes gives every server the same model,
    and `models/` ships it, so no server has to train it.
    """
    return {"epochs": 3} if tiny() else {"epochs": EMBEDDINGS_EPOCHS}


def _save_word2vec(model, snap: training.JobSnapshot, folder: Path) -> dict:
    model.save(folder / "word2vec.pt")
    progress = snap.artifacts.get("progress")
    return {"progress": dataclasses.asdict(progress) if progress is not None else None}


def _load_word2vec(folder: Path, extras: dict) -> tuple[Any, dict]:
    from mllm_core.word2vec import FitProgress, Word2Vec

    model = Word2Vec.load(folder / "word2vec.pt")
    progress = FitProgress(**extras["progress"]) if extras.get("progress") else None
    model.history = [progress] if progress else []
    return model, {"model": model, "progress": progress}


def embeddings_default() -> Default:
    """The Embeddings lab's default word2vec (default settings, default corpus)."""
    from mllm_core.word2vec import Word2VecConfig

    config, budget = Word2VecConfig(), embeddings_budget()

    def make_target():
        from mllm_core.word2vec import training_target

        return training_target(config, corpora.load(corpora.DEFAULT).text, **budget)

    key = ("word2vec", config, corpora.DEFAULT, tuple(sorted(budget.items())))
    return Default("word2vec", key, "embeddings-default", make_target, _save_word2vec, _load_word2vec)


def embeddings_job() -> training.TrainingJob:
    """The Embeddings lab's default word2vec, loaded from disk or trained once per process."""
    return embeddings_default().job()


def _save_counter(model, snap: training.JobSnapshot, folder: Path) -> dict:
    store.save_sequence_model(model, folder / "counter.pt")
    return {}


def _load_counter(folder: Path, extras: dict) -> tuple[Any, dict]:
    model = store.load_sequence_model(folder / "counter.pt")
    return model, {"model": model}


def counter_default() -> Default:
    """The RNN lab's default counter (the seed's setting: V = 128, L = 6)."""
    from mllm_core.rnn import CountingConfig, counting_target

    config = CountingConfig()
    key = ("counter", dataclasses.astuple(config))  # the config is a mutable (unhashable) dataclass
    return Default("counter", key, "counter-default", lambda: counting_target(config), _save_counter, _load_counter)


def counter_job() -> training.TrainingJob:
    """The RNN lab's default counter, loaded from disk or trained once per process."""
    return counter_default().job()


# The Tokenizer lab's default BPE: 256 merges on the default corpus's first MB, as every visitor's
# first view of the lab would otherwise train it (seconds of the server's GIL, once per process)

TOKENIZER_MB = 1.0  # the lab's training text: the corpus's first MB
TOKENIZER_VOCAB = 512  # 256 bytes + 256 merges
TOKENIZER_SPLIT = True  # pre-split with GPT-2's regex: merges never cross words


def tokenizer_settings(corpus: str, mb: float, vocab_size: int, split: bool) -> bool:
    """True when the Tokenizer lab's settings are its default's (so `tokenizer_job` has the BPE)."""
    return (corpus, mb, vocab_size, split) == (corpora.DEFAULT, TOKENIZER_MB, TOKENIZER_VOCAB, TOKENIZER_SPLIT)


def _save_bpe(tok, snap: training.JobSnapshot, folder: Path) -> dict:
    tok.save(folder / "bpe.json")
    return {}


def _load_bpe(folder: Path, extras: dict) -> tuple[Any, dict]:
    from mllm_core.tokenizers.bpe import BPETokenizer

    tok = BPETokenizer.load(folder / "bpe.json")
    return tok, {"model": tok}


def tokenizer_default() -> Default:
    """The Tokenizer lab's default byte-level BPE."""
    key = ("bpe", corpora.DEFAULT, TOKENIZER_MB, TOKENIZER_VOCAB, TOKENIZER_SPLIT)

    def make_target():
        from mllm_core.tokenizers.bpe import training_target

        text = corpora.head_bytes(corpora.load(corpora.DEFAULT).text, int(TOKENIZER_MB * 1_000_000))
        return training_target(text, TOKENIZER_VOCAB, TOKENIZER_SPLIT)

    return Default("bpe", key, "tokenizer-default", make_target, _save_bpe, _load_bpe)


def tokenizer_job() -> training.TrainingJob:
    """The Tokenizer lab's default BPE, loaded from disk or trained once per process."""
    return tokenizer_default().job()


# The Scaling lab's defaults: results only (curves, fits, attention on a probe), small JSON in record.json


def scaling_config() -> Any:
    """The Scaling lab's default `scaling.LadderConfig`: 5 GPTs from 10K to 1M non-embedding
    parameters, 600 steps each; four 1-layer toys of 20 steps under `tiny()`."""
    from mllm_core.scaling import LadderConfig

    if tiny():
        return LadderConfig(
            rungs=((1, 8), (1, 12), (1, 16), (1, 24)),
            n_head=2,
            block_size=16,
            batch_size=8,
            steps=20,
            eval_every=10,
            eval_batches=1,
            max_chars=20_000,
            data_rung=1,
        )
    return LadderConfig()


def _save_ladder_result(result, snap: training.JobSnapshot, folder: Path) -> dict:
    return {"ladder": result.to_dict()}


def _load_ladder_result(folder: Path, extras: dict) -> tuple[Any, dict]:
    from mllm_core.scaling import LadderResult

    result = LadderResult.from_dict(extras["ladder"])
    published = {"runs": result.runs, "data_runs": result.data_runs, "prediction": result.prediction}
    return result, {**published, "vocab_size": result.vocab_size, "current": None}


def scaling_default() -> Default:
    """The Scaling lab's default ladder on the default corpus."""
    from mllm_core.scaling import ladder_target

    config = scaling_config()
    return Default(
        "scaling",
        ("scaling", corpora.DEFAULT, config),
        "scaling-default",
        lambda: ladder_target(corpora.load(corpora.DEFAULT).text, config),
        _save_ladder_result,
        _load_ladder_result,
    )


def scaling_job() -> training.TrainingJob:
    """The Scaling lab's default ladder, loaded from disk or trained once per process."""
    return scaling_default().job()


def induction_config() -> Any:
    """The Scaling lab's default `induction.InductionConfig` (40 steps under `tiny()`)."""
    from mllm_core.induction import InductionConfig

    if tiny():
        return InductionConfig(steps=40, eval_every=20, probes=16, train_tokens=5_000)
    return InductionConfig()


def _save_induction(runs, snap: training.JobSnapshot, folder: Path) -> dict:
    return {"runs": {name: run.to_dict() for name, run in runs.items()}}


def _load_induction(folder: Path, extras: dict) -> tuple[Any, dict]:
    from mllm_core.induction import InductionRun

    runs = {name: InductionRun.from_dict(d) for name, d in extras["runs"].items()}
    return runs, {"runs": runs, "current": None}


def induction_default() -> Default:
    """The Scaling lab's default induction experiment: a 2-layer and a 1-layer attention-only model."""
    from mllm_core.induction import induction_target

    config = induction_config()
    return Default(
        "induction",
        ("induction", config),
        "induction-default",
        lambda: induction_target(config),
        _save_induction,
        _load_induction,
    )


def induction_job() -> training.TrainingJob:
    """The Scaling lab's default induction runs, loaded from disk or trained once per process."""
    return induction_default().job()


def defaults(config: ZooConfig | None = None) -> list[Default]:
    """Every class-wide default: the Generation ladder's five jobs, then the labs' six."""
    return [ladder_default(group, config) for group in _GROUPS] + [
        attention_default(),
        embeddings_default(),
        counter_default(),
        scaling_default(),
        induction_default(),
        tokenizer_default(),
    ]


@dataclass(frozen=True)
class LeaderboardRow:
    name: str
    family: str  # n-gram, MLP, RNN, transformer, baseline
    state: str  # the job's state
    evaluation: Evaluation | None  # None until the model is trained and scored

    @property
    def bits_per_char(self) -> float | None:
        return None if self.evaluation is None else self.evaluation.bits_per_char


def leaderboard(jobs: dict[str, training.TrainingJob]) -> list[LeaderboardRow]:
    """One row per model, scored ones first, best (lowest bits/char) first."""
    rows = []
    for name, job in jobs.items():
        snap = job.snapshot()
        rows.append(
            LeaderboardRow(name, FAMILIES.get(name, "?"), snap.state, snap.artifacts.get("evaluations", {}).get(name))
        )
    return sorted(rows, key=lambda r: (r.evaluation is None, r.bits_per_char or 0.0))


# ---------------------------------------------------------------------------------------------
# python -m mllm_core.zoo build: the defaults for a host whose disk is fresh at every boot


def build(
    out: str | Path | None = None, force: bool = False, on_event: Callable[[str], None] | None = None
) -> list[Path]:
    """Train every default in this process, one after another, and write each into `out`.

    `out` defaults to the cache (`store.cache_models_dir()`); `models/` ships them with the app.
    A default already in `out` is kept unless `force`. Sizes follow `tiny()`. `on_event(line)`
    hears what happens (the command prints it). Returns the folders, in `defaults()` order, then the
    default corpus parsed (`corpora.save_parsed`).
    Raises RuntimeError when a default fails to train.
    """
    out = Path(out) if out is not None else store.cache_models_dir()
    say = on_event or (lambda line: None)
    folders = []
    for default in defaults():
        folder = out / default.artefact
        if folder.is_dir() and not force:
            say(f"{default.label}: already built ({folder})")
            folders.append(folder)
            continue
        say(f"{default.label}: training")
        job = training.TrainingJob(default.make_target(), name=default.label).start()
        while not job.join(10):
            snap = job.snapshot()
            say(f"{default.label}: {snap.state}, step {snap.step:,}/{snap.total_steps or '?'}, {snap.elapsed:.0f} s")
        snap = job.snapshot()
        if snap.state != training.DONE:
            raise RuntimeError(f"{default.label} did not train: {snap.error or snap.state}")
        folders.append(save(default, job.result, snap, out))
        say(f"{default.label}: {snap.elapsed:.0f} s, {_megabytes(store.folder_size(folders[-1]))} in {folders[-1]}")
    folders.append(corpora.save_parsed(corpora.DEFAULT, out))  # every process reads it instead of parsing it
    say(f"{corpora.DEFAULT}, parsed: {_megabytes(store.folder_size(folders[-1]))} in {folders[-1]}")
    return folders


def _megabytes(n_bytes: int) -> str:
    """>>> _megabytes(12_630_140), _megabytes(255)
    ('12.63 MB', '0.0003 MB')
    """
    return f"{n_bytes / 1e6:.{2 if n_bytes >= 10_000 else 4}f} MB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mllm_core.zoo", description="The class-wide default models: build them, see where they are."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build_cmd = commands.add_parser("build", help="train every default and save it (minutes at full size)")
    build_cmd.add_argument(
        "--out", type=Path, help="folder to write (default: the cache); models/ ships them with the app"
    )
    build_cmd.add_argument("--force", action="store_true", help="retrain the defaults already in the folder")
    commands.add_parser("where", help="list every default and where its saved copy is found")
    args = parser.parse_args(argv)
    if args.command == "where":
        print(f"searched in order: {', '.join(str(p) for p in store.search_path())}")
        for default in defaults():
            print(f"{default.label:20s} {default.artefact:30s} {store.find(default.artefact) or 'not saved'}")
        return 0
    t0 = time.perf_counter()
    folders = build(args.out, args.force, on_event=lambda line: print(line, flush=True))
    total = sum(store.folder_size(f) for f in folders)
    print(f"{len(folders)} defaults, {_megabytes(total)}, in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
