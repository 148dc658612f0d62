"""The shared neural-LM trainer: batches, the held-out split, checkpoints, reports, devices, every family."""

import math

import pytest
import torch

from mllm_core import lm_train, training
from mllm_core.char_lstm import CharLSTM, CharLSTMConfig
from mllm_core.lm_train import AnnealedTrainConfig, TokenSplit, TrainConfig, encode_split, estimate_loss, fit, get_batch
from mllm_core.tokenizers import CharTokenizer
from mllm_core.transformer import GPT, GPTConfig

TEXT = "\n".join(["the cat sat on the mat", "the dog sat on the log", "a cat and a dog"] * 30)
TOK = CharTokenizer().train(TEXT)
BLOCK = 16
QUICK = TrainConfig(steps=40, batch_size=8, lr=1e-2, eval_every=20)

# one model class + config per family: the trainer is the same for all of them
FAMILIES = {
    "transformer": lambda: GPT(GPTConfig(vocab_size=TOK.vocab_size, block_size=BLOCK, n_layer=1, n_head=2, n_embd=16)),
    "char-LSTM": lambda: CharLSTM(CharLSTMConfig(block_size=BLOCK, n_embd=8, hidden_size=32), TOK.vocab_size),
}


def data() -> TokenSplit:
    return encode_split(TEXT, TOK, 0.1, BLOCK)


def test_get_batch_targets_are_the_inputs_shifted_by_one():
    x, y = get_batch(torch.arange(100), 4, 8, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 8)
    assert torch.equal(y[:, :-1], x[:, 1:]) and torch.equal(y[:, -1], x[:, -1] + 1)
    with pytest.raises(ValueError, match="fewer than block_size"):
        get_batch(torch.arange(5), 1, 8, torch.Generator())


def test_the_split_holds_out_the_last_lines_and_falls_back_on_a_tiny_text():
    split = data()
    assert TOK.decode(split.val.tolist()) == "\n".join(TEXT.split("\n")[-9:])  # 10% of 90 lines
    assert len(split.train) + len(split.val) == len(TEXT) - 1  # the newline between the parts is not kept
    tiny = encode_split("abcabc", CharTokenizer().train("abc"), 0.5, block_size=4)
    assert torch.equal(tiny.val, tiny.train)  # 3 held-out tokens cannot fill a window: validate on training ids


def test_the_validation_estimate_uses_the_same_batches_every_time():
    torch.manual_seed(0)
    model = FAMILIES["transformer"]()
    a, b = (estimate_loss(model, data().val, 8, BLOCK, 3) for _ in range(2))
    assert a == b and model.training  # the mode is restored


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_learns_with_the_same_loop_and_reports_to_its_job(family):
    seen = []

    def target(ctx):
        torch.manual_seed(0)
        return fit(FAMILIES[family](), data(), BLOCK, QUICK, ctx, lambda *args: seen.append(args))

    job = training.TrainingJob(target, name=f"test-{family}").start()
    assert job.join(120)
    snap = job.snapshot()
    assert snap.state == training.DONE, snap.error
    assert [s for s, _ in snap.history["loss"]] == list(range(1, QUICK.steps + 1))
    assert [s for s, _ in snap.history["val_loss"]] == [0, 20, 40]
    val = dict(snap.history["val_loss"])
    assert val[40] < 0.7 * val[0]  # it learned, measured on held-out lines
    assert [s for s, _, v in seen if v is not None] == [0, 20, 40] and len(seen) == QUICK.steps + 1
    assert not job.result.training  # returned in eval mode


def test_without_a_job_it_runs_on_the_null_context_and_a_seed_repeats():
    def run() -> torch.nn.Module:
        torch.manual_seed(0)
        return fit(FAMILIES["transformer"](), data(), BLOCK, TrainConfig(steps=3, batch_size=4, eval_every=3))

    a, b = run(), run()
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_stop_and_pause_act_between_steps():
    def target(ctx):
        return fit(FAMILIES["char-LSTM"](), data(), BLOCK, TrainConfig(steps=100_000, batch_size=4), ctx)

    job = training.TrainingJob(target, name="test-stop").start()
    try:
        while job.snapshot().step < 3:
            assert not job.snapshot().finished, job.snapshot().error
        job.pause()
        paused_at = job.snapshot().step
        assert job.snapshot().state == training.PAUSED
        assert job.snapshot().step <= paused_at + 1  # at most the step in flight finishes
    finally:
        assert job.stop(timeout=30)
    assert job.snapshot().state == training.STOPPED


def test_an_annealed_lr_follows_half_a_cosine_to_zero_and_fit_follows_it():
    config = AnnealedTrainConfig(steps=8, batch_size=4, lr=0.1, eval_every=8, decay=0.5)
    brute = [0.1 if s <= 4 else 0.05 * (1 + math.cos(math.pi * (s - 4) / 4)) for s in range(1, 9)]
    assert [config.lr_at(s) for s in range(1, 9)] == pytest.approx(brute)
    assert {TrainConfig(steps=8, lr=0.1).lr_at(s) for s in range(1, 9)} == {0.1}  # the plain config: constant

    def weights_after_each_step(config: TrainConfig) -> list[list[torch.Tensor]]:
        torch.manual_seed(0)
        model, seen = FAMILIES["transformer"](), []
        fit(
            model,
            data(),
            BLOCK,
            config,
            callback=lambda *_: seen.append([p.detach().clone() for p in model.parameters()]),
        )
        return seen  # step 0 (untrained), then after steps 1..8

    def moved(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
        return not all(torch.equal(p, q) for p, q in zip(a, b, strict=True))

    annealed = weights_after_each_step(config)
    assert moved(annealed[6], annealed[7]) and not moved(annealed[7], annealed[8])  # step 8's lr is 0
    plain = weights_after_each_step(TrainConfig(steps=8, batch_size=4, lr=0.1, eval_every=8))
    assert moved(plain[7], plain[8])


def test_a_config_that_cannot_train_is_refused():
    with pytest.raises(ValueError, match="steps"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match="lr"):
        TrainConfig(lr=0)
    with pytest.raises(ValueError, match="decay"):
        AnnealedTrainConfig(decay=1.5)


def test_autocast_is_off_on_the_cpu():
    with lm_train.autocast("cpu"):
        assert torch.get_autocast_dtype("cpu") is not None and not torch.is_autocast_enabled("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
@pytest.mark.parametrize("family", FAMILIES)
def test_on_a_cuda_gpu_the_model_and_data_move_there_and_it_learns(family):
    def target(ctx):
        torch.manual_seed(0)
        return fit(FAMILIES[family](), data(), BLOCK, QUICK, ctx)

    job = training.TrainingJob(target, name=f"test-cuda-{family}", device="cuda").start()
    assert job.join(120)
    snap = job.snapshot()
    assert snap.state == training.DONE and snap.device == "cuda", snap.error
    assert next(job.result.parameters()).device.type == "cuda"
    val = dict(snap.history["val_loss"])
    assert val[40] < 0.7 * val[0]
