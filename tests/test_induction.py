"""Induction heads: the data, the score on hand-built attention, the model, and a seeded run that must learn."""

import math
import os
from dataclasses import replace

import pytest
import torch
from torch.nn import functional as F

from mllm_core import induction, store, training, zoo
from mllm_core.induction import AttentionOnlyGPT, InductionConfig
from mllm_core.transformer import GPT, GPTConfig


def test_repeated_sequences_repeat_their_first_half():
    seqs = induction.repeated_sequences(50, 7, 11, torch.Generator().manual_seed(3))
    assert seqs.shape == (50, 14)
    assert torch.equal(seqs[:, :7], seqs[:, 7:])
    assert int(seqs.min()) >= 0 and int(seqs.max()) < 11
    assert len(set(map(tuple, seqs[:, :7].tolist()))) == 50  # random, not one sequence 50 times


def test_the_stream_is_segments_each_followed_by_its_copy_and_the_separator():
    stream = induction.token_stream(11_000, 5, 5, 20, torch.Generator().manual_seed(0))
    assert len(stream) == 11_000
    blocks = stream.view(-1, 11)  # one length (5) only: a segment, its copy, the separator (20)
    assert torch.equal(blocks[:, :5], blocks[:, 5:10]) and bool((blocks[:, 10] == 20).all())
    assert int(blocks[:, :10].max()) < 20
    varied = induction.token_stream(2_000, 3, 9, 20, torch.Generator().manual_seed(0))
    seps = (varied == 20).nonzero().flatten().tolist()
    lengths = set()
    for start, end in zip([-1] + seps[:-1], seps, strict=True):
        h = (end - start - 1) // 2
        assert torch.equal(varied[start + 1 : start + 1 + h], varied[start + 1 + h : end])
        lengths.add(h)
    assert lengths == set(range(3, 10))  # segments of random lengths: the copy distance is not one fixed offset


def causal_uniform(T: int) -> torch.Tensor:
    return torch.tril(torch.ones(T, T)) / torch.arange(1, T + 1)[:, None]


def test_the_induction_score_of_hand_built_attention():
    half, T = 4, 8
    stripe = torch.zeros(T, T)
    for t in range(half, T):
        stripe[t, t - half + 1] = 1.0  # the token after the previous occurrence
    previous = torch.zeros(T, T)
    previous[0, 0] = 1.0
    for t in range(1, T):
        previous[t, t - 1] = 1.0  # a previous-token head
    maps = torch.stack([stripe, previous, causal_uniform(T)])[None]  # (B=1, nh=3, T, T)
    scores = induction.induction_score(maps, half)
    brute_uniform = sum(1 / (t + 1) for t in range(half, T)) / half
    assert scores.tolist() == pytest.approx([1.0, 0.0, brute_uniform])
    layered = torch.stack([maps, maps.flip(1)])  # (n_layer=2, B, nh, T, T)
    assert induction.induction_score(layered, half).shape == (2, 3)


def test_halves_split_the_position_losses_as_a_brute_force_loop_does():
    losses = torch.rand(2 * 6 - 1)
    first = [losses[t] for t in range(11) if t + 1 < 6]  # targets in the first half
    repeat = [losses[t] for t in range(11) if t + 1 > 6]  # targets in the copy, after its first token
    assert induction.halves(losses, 6) == pytest.approx((float(sum(first) / 5), float(sum(repeat) / 5)))


def test_the_attention_only_model_is_a_gpt_without_mlps():
    config = GPTConfig(vocab_size=13, block_size=10, n_layer=2, n_head=2, n_embd=8)
    model = AttentionOnlyGPT(config)
    names = [n for n, _ in model.named_parameters()]
    assert not any("mlp" in n or "ln_2" in n for n in names)
    mlps = 2 * (8 * 32 + 32 + 32 * 8 + 8 + 2 * 8)  # c_fc, c_proj and ln_2 of both blocks
    assert model.num_params() == GPT(config).num_params() - mlps + 13 * 8  # plus its own (untied) unembedding
    assert model.lm_head.weight is not model.wte.weight
    rebuilt = type(model)(*model.init_args())
    assert [p.shape for p in rebuilt.parameters()] == [p.shape for p in model.parameters()]
    idx = torch.randint(13, (3, 10))
    logits, loss = model(idx, idx)
    assert logits.shape == (3, 10, 13) and loss.item() == pytest.approx(math.log(13), abs=0.2)
    assert model.attention_maps(idx).shape == (2, 3, 2, 10, 10)


def test_the_separator_is_read_but_left_out_of_the_loss():
    torch.manual_seed(0)
    model = AttentionOnlyGPT(GPTConfig(vocab_size=6, block_size=8, n_layer=1, n_head=1, n_embd=8), unscored=5)
    idx, targets = torch.randint(6, (4, 8)), torch.randint(5, (4, 8))
    targets[:, ::3] = 5
    logits, loss = model(idx, targets)
    scored = targets != 5
    assert loss.item() == pytest.approx(F.cross_entropy(logits[scored], targets[scored]).item(), rel=1e-6)
    assert type(model)(*model.init_args()).unscored == 5


def test_position_losses_match_cross_entropy_computed_by_hand():
    torch.manual_seed(0)
    model = AttentionOnlyGPT(GPTConfig(vocab_size=7, block_size=8, n_layer=1, n_head=1, n_embd=8))
    seqs = torch.randint(7, (4, 8))
    logits, _ = model(seqs[:, :-1])
    brute = [sum(F.cross_entropy(logits[b, t], seqs[b, t + 1]).item() for b in range(4)) / 4 for t in range(7)]
    assert induction.position_losses(model, seqs).tolist() == pytest.approx(brute, rel=1e-5)
    curve = induction.loss_by_position(model, seqs.flatten(), 6, n_windows=5)
    assert len(curve) == 6
    with pytest.raises(ValueError, match="fewer than one context"):
        induction.loss_by_position(model, seqs[0, :3], 6)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(steps=0), "steps must be at least 1"),
        (dict(min_half=9, half=8), "min_half <= half"),
        (dict(max_half=9), "half <= max_half"),
        (dict(max_half=20), "max_half < 2 x half"),
        (dict(decay=1.5), "decay must be between 0 and 1"),
        (dict(n_embd=30, n_head=4), "divisible"),
    ],
)
def test_bad_settings_get_a_clear_message(kwargs, message):
    with pytest.raises(ValueError, match=message):
        InductionConfig(**kwargs)


def check_acceptance(two: induction.InductionRun, one: induction.InductionRun, repeat_bar: float = 0.1) -> None:
    """The issue's numbers: the 2-layer model solves the repeated half with an induction head, the 1-layer cannot."""
    log_v = math.log(two.config.vocab_size)
    assert two.final.repeat_loss < repeat_bar * log_v, two.final
    layer, _, score = two.best_head
    assert score > 0.5 and layer == 1  # an induction head needs the layer before it
    assert max(max(row) for row in two.checkpoints[0].scores) < 0.2  # at initialisation no head looks there
    assert two.phase_change is not None and one.phase_change is None
    assert one.final.repeat_loss > 0.5 * log_v, one.final
    assert abs(two.final.first_loss - log_v) < 0.3  # the first half stays unpredictable
    half = two.config.half
    assert sum(two.position_loss[half:]) / (half - 1) == pytest.approx(two.final.repeat_loss, abs=1e-3)


def test_the_shipped_default_meets_the_acceptance_numbers(monkeypatch):
    """The default the page shows (trained once by `python -m mllm_core.zoo build --out models`)."""
    monkeypatch.setenv("MLLM_ZOO_TINY", "0")
    default = zoo.induction_default()
    record = store.load_record(store.BUNDLED_MODELS / default.artefact / "record.json")
    runs, _ = default.load(store.BUNDLED_MODELS / default.artefact, record.extras)
    assert runs["2-layer"].config == InductionConfig()
    check_acceptance(runs["2-layer"], runs["1-layer"])


# A toy of the default recipe. V = 64 and half = 8 keep log(half) at half of log V: a 1-layer model that only boosts
# the tokens it has seen in the first half cannot go below log(half). Segments of 3 to 11 tokens, longer than the
# probe's 8, so that a 1-layer model cannot guess the copy's offset from how long it has seen no separator (with 3 to
# 10 it reached 54-56% of log V). With V = 32 and half = 6 (128 windows at lr 5e-3) the toy stalled at 12-17%: a query
# there more often has a second, misleading earlier occurrence. lr 1e-2, not 7e-3: the copy of the probe's first
# token (its source has a single token before it) sharpens, and seed 2 ends at 5.1% of log V instead of 7.3%.
TOY = InductionConfig(
    vocab_size=64, half=8, max_half=11, steps=800, batch_size=192, lr=1e-2, decay=0.5, probes=256, train_tokens=100_000
)


def test_a_toy_run_forms_an_induction_head_and_its_1_layer_twin_does_not():
    """The issue's figures at toy size (about 25 s for the 2-layer model and 12 s for the 1-layer on one thread of
    the shared machine). Checked with seeds 0, 1 and 2: the 2-layer model at 6.6%, 5.6%, 5.1% of log V (the bar is
    10%; the shipped default, 6000 steps, reaches 4.4%), best head in layer 1 scoring 0.80, 0.80, 0.81, phase change
    at step 250 for all three; the 1-layer one at 60.0%, 61.6%, 59.2%, no phase change."""
    training.configure_torch_threads()  # one thread, as in a job (conftest)
    two, one = (induction.train_induction(replace(TOY, n_layer=n))[0] for n in (2, 1))
    check_acceptance(two, one)


@pytest.mark.skipif(not os.environ.get("MLLM_LONG_TESTS"), reason="long: set MLLM_LONG_TESTS=1 (two 6000-step runs)")
def test_long_the_default_recipe_forms_an_induction_head_from_scratch():
    """Retrains what the shipped default holds (minutes on one core) and checks the same numbers."""
    training.configure_torch_threads()
    runs = training.run_sync(induction.induction_target(InductionConfig()))
    check_acceptance(runs["2-layer"], runs["1-layer"])
