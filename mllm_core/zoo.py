"""The default models every session shares: one ladder of families on one corpus, trained once.

n-gram (n = 1..5, characters, Kneser-Ney), a char-LSTM and a small transformer all learn from
the same training split of the same corpus and are scored on the same validation text, so the
Generation lab can sample them side by side and rank them by bits per character. Each default
is a `training.shared_job`: the first session that asks starts it, every later session (a
classroom of 30) reads the same job. Sibling modules train one family each (`ngram`, `rnn`,
`transformer`); this one only chooses their small default settings and scores the results
with `metrics.evaluate`.

Set `MLLM_ZOO_TINY=1` for toy sizes that train in seconds (tests, CI).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mllm_core import corpora, training
from mllm_core.lm import TextLM, UniformLM
from mllm_core.metrics import Evaluation, evaluate

NGRAM_ORDERS = (1, 2, 3, 4, 5)
NGRAM_NAMES = tuple(f"{n}-gram" for n in NGRAM_ORDERS)
LSTM_NAME = "char-LSTM"
GPT_NAME = "transformer"
BASELINE_NAME = "uniform (baseline)"
NAMES = (BASELINE_NAME, *NGRAM_NAMES, LSTM_NAME, GPT_NAME)  # the defaults, simplest first
FAMILIES = {
    **dict.fromkeys(NGRAM_NAMES, "n-gram"),
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
# One training loop per family: the five n-grams share one count table


def _ngram_trainer(text: str, config: ZooConfig):
    from mllm_core.ngram import NGramModel, NGramTextLM, count_ngrams, split_tokens

    def target(ctx: training.TrainContext) -> dict[str, TextLM]:
        ctx.check()
        counts = count_ngrams(split_tokens(text, "char"), max(NGRAM_ORDERS))  # every order 1..5 in one pass
        return {
            name: NGramTextLM(NGramModel.from_counts(counts, n, "kneser-ney"), "char", name)
            for name, n in zip(NGRAM_NAMES, NGRAM_ORDERS, strict=True)
        }

    return target


def _baseline_trainer(text: str, config: ZooConfig):
    from mllm_core.tokenizers import CharTokenizer

    def target(ctx: training.TrainContext) -> dict[str, TextLM]:
        return {BASELINE_NAME: UniformLM(CharTokenizer().train(text), name=BASELINE_NAME)}

    return target


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
        return GPTConfig(block_size=16, n_layer=1, n_head=2, n_embd=16), GPTTrainConfig(
            steps=20, batch_size=8, eval_every=10, max_chars=None
        )
    return GPTConfig(), GPTTrainConfig(steps=800, max_chars=None)


Trainer = Callable[[str, ZooConfig], Callable[[training.TrainContext], dict[str, TextLM]]]
_GROUPS: dict[str, tuple[Trainer, tuple[str, ...]]] = {  # one job per group
    "baseline": (_baseline_trainer, (BASELINE_NAME,)),
    "n-gram": (_ngram_trainer, NGRAM_NAMES),
    "char-LSTM": (_lstm_trainer, (LSTM_NAME,)),
    "transformer": (_gpt_trainer, (GPT_NAME,)),
}
_GROUP_OF = {name: group for group, (_, names) in _GROUPS.items() for name in names}


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
    trainer, _ = _GROUPS[_group(name)]
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


def default_job(name: str, config: ZooConfig | None = None) -> training.TrainingJob:
    """The process-wide job training default `name` (started by the first caller, shared by its group)."""
    config = config or default_config()
    group = _group(name)
    return training.shared_job(("zoo", group, config), lambda: model_target(name, config), name=f"zoo: {group}")


def default_jobs(config: ZooConfig | None = None, names: tuple[str, ...] = NAMES) -> dict[str, training.TrainingJob]:
    """{name: job} for the defaults, starting those not trained yet (they queue for a CPU slot)."""
    return {name: default_job(name, config) for name in names}


def current_model(job: training.TrainingJob, name: str) -> TextLM | None:
    """Default `name` from its job: trained, else the latest snapshot the job published, else None."""
    models = job.latest("models") or {}
    if name in models:
        return models[name]
    return job.snapshot().artifacts.get("model") if _GROUP_OF.get(name) in ("char-LSTM", "transformer") else None


# ---------------------------------------------------------------------------------------------
# The labs' class-wide defaults: what a page shows before its visitor trains anything

ATTENTION_NAME = "GPT default (wikipedia-sample, char)"
EMBEDDINGS_NAME = "word2vec default (wikipedia-sample, CBOW)"
COUNTER_NAME = "counting RNN default"


def attention_configs() -> tuple[Any, Any]:
    """The Attention lab default's (`GPTConfig`, `GPTTrainConfig`): the engine's, or 60 steps under `tiny()`."""
    from mllm_core.transformer import GPTConfig, GPTTrainConfig

    if tiny():
        return GPTConfig(), GPTTrainConfig(steps=60, eval_every=20, max_chars=100_000)
    return GPTConfig(), GPTTrainConfig()


def attention_job() -> training.TrainingJob:
    """The Attention lab's default GPT on the default corpus (char tokens), trained once per process."""
    from mllm_core.transformer import gpt_target

    config, train = attention_configs()

    def make_target():
        return gpt_target(corpora.load(corpora.DEFAULT).text, config, train, name=ATTENTION_NAME)

    return training.shared_job(("attention", config, train), make_target, name="attention-default")


def embeddings_budget() -> dict[str, float]:
    """`Word2Vec.fit`'s budget for the Embeddings default: 30 s of training, or 3 epochs under `tiny()`."""
    return {"epochs": 3} if tiny() else {"max_seconds": 30.0}


def embeddings_job() -> training.TrainingJob:
    """The Embeddings lab's default word2vec (default settings, default corpus), trained once per process."""
    from mllm_core.word2vec import Word2VecConfig, training_target

    config, budget = Word2VecConfig(), embeddings_budget()

    def make_target():
        return training_target(config, corpora.load(corpora.DEFAULT).text, **budget)

    key = ("word2vec", config, corpora.DEFAULT, tuple(sorted(budget.items())))
    return training.shared_job(key, make_target, name="embeddings-default")


def counter_job() -> training.TrainingJob:
    """The RNN lab's default counter (the seed's setting: V = 128, L = 6), trained once per process."""
    from mllm_core.rnn import CountingConfig, counting_target

    config = CountingConfig()
    key = ("counter", dataclasses.astuple(config))  # the config is a mutable (unhashable) dataclass
    return training.shared_job(key, lambda: counting_target(config), name="counter-default")


@dataclass(frozen=True)
class LeaderboardRow:
    name: str
    family: str  # n-gram, RNN, transformer, baseline
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
