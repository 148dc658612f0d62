"""Scaling laws: the power-law fit, the parameter and FLOP counts, the frontier, a seeded toy ladder."""

import json
import math
import random

import numpy as np
import pytest

from mllm_core import corpora, scaling, training, zoo
from mllm_core.scaling import LadderConfig, PowerLaw, fit_power_law
from mllm_core.transformer import GPTConfig

TINY = zoo.scaling_config()  # the toy ladder (MLLM_ZOO_TINY=1, conftest)
TEXT = "\n".join(f"{corpora.FOX_TEXT} {i}" for i in range(300))  # 27K characters, quick to learn


@pytest.mark.parametrize("truth", [PowerLaw(1.8, 3e3, 0.35), PowerLaw(0.5, 50.0, 0.08), PowerLaw(2.9, 1e5, 0.9)])
def test_the_fit_recovers_known_parameters_from_exact_points(truth):
    ns = np.geomspace(1e4, 1e6, 6)
    law = fit_power_law(ns, truth(ns))
    assert law.alpha == pytest.approx(truth.alpha, rel=1e-3)
    assert law.l_inf == pytest.approx(truth.l_inf, rel=1e-3, abs=1e-4)
    assert law.n_c == pytest.approx(truth.n_c, rel=1e-2)


def test_the_fit_recovers_alpha_from_noisy_points():
    truth = PowerLaw(1.5, 2e4, 0.3)
    rng = np.random.default_rng(0)
    ns = np.geomspace(1e4, 1e7, 12)
    law = fit_power_law(ns, truth(ns) * (1 + rng.normal(0, 0.002, len(ns))))
    assert law.alpha == pytest.approx(0.3, abs=0.05)
    assert float(law(1e8)) == pytest.approx(float(truth(1e8)), rel=0.02)


def test_the_fit_refuses_too_few_points_and_non_positive_losses():
    with pytest.raises(ValueError, match="at least 3"):
        fit_power_law([1e3, 1e4], [3.0, 2.0])
    with pytest.raises(ValueError, match="positive"):
        fit_power_law([1e3, 1e4, 1e5], [3.0, 0.0, 2.0])


def test_non_embedding_parameters_match_a_hand_count():
    # per block: c_attn 3C·C + 3C, c_proj C·C + C, c_fc 4C·C + 4C, mlp c_proj 4C·C + C, two LayerNorms 2·2C; ln_f 2C
    L, C = 3, 48
    hand = L * (3 * C * C + 3 * C + C * C + C + 4 * C * C + 4 * C + 4 * C * C + C + 4 * C) + 2 * C
    assert scaling.non_embedding_params(GPTConfig(vocab_size=77, block_size=32, n_layer=L, n_head=4, n_embd=C)) == hand
    assert hand == 12 * L * C * C + 13 * L * C + 2 * C


def test_the_flop_count_of_a_rung_matches_a_hand_count():
    config = LadderConfig()
    n = scaling.non_embedding_params(config.gpt_config(2, 100))  # 2 layers x 64 wide
    assert n == 12 * 2 * 64 * 64 + 13 * 2 * 64 + 2 * 64 == 100_096
    tokens = config.steps * config.batch_size * config.block_size  # 600 x 16 x 64
    assert scaling.flops(n, tokens) == 6 * 100_096 * 614_400 == pytest.approx(3.69e11, rel=1e-3)


def test_the_default_ladder_spans_10k_to_1m_geometrically():
    sizes = [scaling.non_embedding_params(LadderConfig().gpt_config(i, 1)) for i in range(5)]
    assert 9_000 < sizes[0] < 11_000 and 0.9e6 < sizes[-1] < 1.1e6
    ratios = [b / a for a, b in zip(sizes, sizes[1:], strict=False)]
    assert all(2.5 < r < 3.8 for r in ratios), ratios


def test_the_frontier_matches_brute_force():
    rng = random.Random(0)
    points = [(rng.uniform(1, 100), rng.uniform(1, 5)) for _ in range(200)]
    brute = sorted(p for p in points if all(q[1] > p[1] for q in points if q[0] < p[0] or (q[0] == p[0] and q != p)))
    assert scaling.frontier(points) == brute
    losses = [loss for _, loss in scaling.frontier(points)]
    assert losses == sorted(losses, reverse=True)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(rungs=((1, 8), (1, 12), (1, 16))), "at least 4 models"),
        (dict(rungs=((1, 8), (1, 12), (1, 16), (1, 18))), "multiple of the heads"),
        (dict(rungs=((1, 16), (1, 12), (1, 20), (1, 24))), "must grow"),
        (dict(steps=0), "steps must be at least 1"),
        (dict(block_size=1), "block size"),
    ],
)
def test_bad_ladders_get_a_clear_message(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LadderConfig(**{**dict(n_head=4, rungs=((1, 8), (1, 12), (1, 16), (1, 24))), **kwargs})


def test_a_corpus_too_small_for_the_context_is_refused_before_training():
    with pytest.raises(ValueError, match="too small for this ladder.*1/8 of its training text.*context of 65"):
        scaling.check_text(corpora.load("fox").text * 3, LadderConfig())
    with pytest.raises(ValueError, match="too small"):
        scaling.run_ladder(corpora.load("fox").text, TINY)
    scaling.check_text(corpora.load("fox").text * 3, TINY)  # 16 characters fit in 1/8 of it


class Recorder(training.NullContext):
    """A context that keeps what the loop reported and published, in order."""

    def __init__(self):
        super().__init__("cpu")
        self.events = []

    def report(self, step=None, **metrics):
        self.events.append(("report", step, metrics))

    def publish(self, **artifacts):
        self.events.append(("publish", artifacts))


def test_a_toy_ladder_predicts_its_largest_model_before_training_it():
    training.configure_torch_threads()  # as a job would: one thread per test process (conftest)
    ctx = Recorder()
    result = scaling.run_ladder(TEXT, TINY, ctx)
    assert [r.params for r in result.runs] == sorted(r.params for r in result.runs)
    assert len(result.runs) == 4 and [r.fraction for r in result.data_runs] == [1 / 8, 1 / 4, 1 / 2]
    assert all(r.n_embd == 12 for r in result.data_runs)
    full = result.runs[1].train_tokens
    assert [r.train_tokens for r in result.data_runs] == [int(full * f) for f in (1 / 8, 1 / 4, 1 / 2)]
    # the prediction is published before the largest model's first step, and completed after it
    i_pred = next(i for i, e in enumerate(ctx.events) if e[0] == "publish" and e[1].get("prediction"))
    largest_first_step = 3 * TINY.steps + 1
    i_step = next(i for i, e in enumerate(ctx.events) if e[0] == "report" and e[1] == largest_first_step)
    assert i_pred < i_step
    p = result.prediction
    assert p.actual == result.runs[-1].val_loss and p.params == result.runs[-1].params
    smaller = result.runs[:-1]
    assert p.law == fit_power_law([r.params for r in smaller], [r.val_loss for r in smaller])
    steps = [e[1] for e in ctx.events if e[0] == "report" and "loss" in e[2]]
    assert steps == list(range(1, 7 * TINY.steps + 1))  # one progress count across all 7 runs
    # every model learned something in 20 steps: below the uniform loss over the alphabet
    assert all(r.val_loss < math.log(result.vocab_size) for r in result.runs)
    # a JSON round trip (what zoo saves) gives the same result back
    again = scaling.LadderResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == result


def test_the_ladder_runs_as_a_job_from_a_spec():
    spec = training.spec(scaling.ladder_target, TEXT, TINY)
    result = training.run_sync(spec)
    assert len(result.runs) == 4 and result.prediction.actual is not None
