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


def default_config() -> ZooConfig:
    """The shared defaults, or toy ones when the environment sets MLLM_ZOO_TINY=1."""
    if os.environ.get("MLLM_ZOO_TINY", "") not in ("", "0"):
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
# One training loop per default


def _ngram_trainer(n: int) -> Callable[[str, ZooConfig], Callable[[training.TrainContext], TextLM]]:
    def make(text: str, config: ZooConfig):
        from mllm_core.ngram import train_text_lm

        def target(ctx: training.TrainContext) -> TextLM:
            ctx.check()
            model = train_text_lm(text, n, level="char", smoothing="kneser-ney")
            ctx.publish(model=model)
            return model

        return target

    return make


def _baseline_trainer(text: str, config: ZooConfig):
    from mllm_core.tokenizers import CharTokenizer

    def target(ctx: training.TrainContext) -> TextLM:
        return UniformLM(CharTokenizer().train(text), name=BASELINE_NAME)

    return target


def _char_lstm_module():
    """The module defining `CharLSTMConfig` and `char_lstm_target` (`rnn`, or its sibling `char_lstm`)."""
    from mllm_core import rnn

    if hasattr(rnn, "char_lstm_target"):
        return rnn
    from mllm_core import char_lstm

    return char_lstm


def _lstm_trainer(text: str, config: ZooConfig):
    return _char_lstm_module().char_lstm_target(text, lstm_config(config))


def _gpt_trainer(text: str, config: ZooConfig):
    from mllm_core.transformer import gpt_target

    model, train = gpt_configs(config)
    return gpt_target(text, model, train, name=GPT_NAME)


def lstm_config(config: ZooConfig) -> Any:
    """The default char-LSTM's `rnn.CharLSTMConfig`."""
    CharLSTMConfig = _char_lstm_module().CharLSTMConfig  # noqa: N806 - a class

    if config.tiny:
        return CharLSTMConfig(
            name=LSTM_NAME, block_size=16, n_embd=8, hidden_size=16, batch_size=8, max_steps=20,
            eval_every=10, sample_every=10, sample_len=20, max_chars=None,
        )  # fmt: skip
    return CharLSTMConfig(name=LSTM_NAME, max_chars=None, max_steps=1000)


def gpt_configs(config: ZooConfig) -> tuple[Any, Any]:
    """The default transformer's (`GPTConfig`, `GPTTrainConfig`)."""
    from mllm_core.transformer import GPTConfig, GPTTrainConfig

    if config.tiny:
        return GPTConfig(block_size=16, n_layer=1, n_head=2, n_embd=16), GPTTrainConfig(
            steps=20, batch_size=8, eval_every=10, max_chars=None
        )
    return GPTConfig(), GPTTrainConfig(steps=800, max_chars=None)


_TRAINERS: dict[str, Callable[[str, ZooConfig], Callable[[training.TrainContext], TextLM]]] = {
    BASELINE_NAME: _baseline_trainer,
    **{name: _ngram_trainer(n) for name, n in zip(NGRAM_NAMES, NGRAM_ORDERS, strict=True)},
    LSTM_NAME: _lstm_trainer,
    GPT_NAME: _gpt_trainer,
}


def model_target(name: str, config: ZooConfig | None = None) -> Callable[[training.TrainContext], TextLM]:
    """The training loop of default `name`: train on the shared split, then score the validation text.

    The job publishes `model` while it trains (when the family does) and, at the end, `model`
    and `evaluation` (a `metrics.Evaluation`); its result is the trained `TextLM`.
    """
    if name not in _TRAINERS:
        raise ValueError(f"no default model called {name!r}; choose one of {', '.join(NAMES)}")
    config = config or default_config()

    def target(ctx: training.TrainContext) -> TextLM:  # the corpus is read in the job's thread, not the page's
        train_text, val_text = split(config)
        model = _TRAINERS[name](train_text, config)(ctx)
        ctx.publish(model=model)
        ctx.publish(evaluation=evaluate(model, val_text, check=ctx.check))
        return model

    return target


def default_job(name: str, config: ZooConfig | None = None) -> training.TrainingJob:
    """The process-wide job training default `name` (started by the first caller)."""
    config = config or default_config()
    if name not in _TRAINERS:
        raise ValueError(f"no default model called {name!r}; choose one of {', '.join(NAMES)}")
    return training.shared_job(("zoo", name, config), lambda: model_target(name, config), name=f"zoo: {name}")


def default_jobs(config: ZooConfig | None = None, names: tuple[str, ...] = NAMES) -> dict[str, training.TrainingJob]:
    """{name: job} for the defaults, starting those not trained yet (they queue for a CPU slot)."""
    return {name: default_job(name, config) for name in names}


def current_model(job: training.TrainingJob) -> TextLM | None:
    """The trained model when the job is done, else its latest published snapshot (or None)."""
    snap = job.snapshot()
    if snap.state == training.DONE and job.result is not None:
        return job.result
    return snap.artifacts.get("model")


@dataclass(frozen=True)
class LeaderboardRow:
    name: str
    family: str  # n-gram, RNN, transformer, baseline
    state: str  # the job's state; only "done" rows have scores
    evaluation: Evaluation | None  # None until the model is trained and scored

    @property
    def bits_per_char(self) -> float | None:
        return None if self.evaluation is None else self.evaluation.bits_per_char


def leaderboard(jobs: dict[str, training.TrainingJob]) -> list[LeaderboardRow]:
    """One row per job, scored ones first, best (lowest bits/char) first."""
    rows = []
    for name, job in jobs.items():
        snap = job.snapshot()
        ev = snap.artifacts.get("evaluation") if snap.state == training.DONE else None
        rows.append(LeaderboardRow(name, FAMILIES.get(name, "?"), snap.state, ev))
    return sorted(rows, key=lambda r: (r.evaluation is None, r.bits_per_char or 0.0))
