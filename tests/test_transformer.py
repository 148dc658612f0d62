"""The tiny GPT: causal attention, the shared forward interface, positional encodings, training."""

import math

import pytest
import torch

from mllm_core import training
from mllm_core.attention import self_attention_steps, toy_example
from mllm_core.lm import TorchTextLM
from mllm_core.sampling import generate
from mllm_core.tokenizers import CharTokenizer
from mllm_core.transformer import (
    GPT,
    GPTConfig,
    GPTTrainConfig,
    gpt_target,
    position_similarity,
    probe_ids,
    sinusoidal_encoding,
    tokens,
    train_gpt,
)

SMALL = GPTConfig(vocab_size=20, block_size=16, n_layer=2, n_head=4, n_embd=32)
TEXT = "\n".join(["the cat sat on the mat", "the dog sat on the log", "a cat and a dog"] * 30)
QUICK = GPTTrainConfig(batch_size=8, steps=40, eval_every=20, eval_batches=2, lr=1e-2, max_chars=None)


def model(config: GPTConfig = SMALL, seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(config).eval()


def random_idx(B: int = 2, T: int = 12, V: int = 20, seed: int = 1) -> torch.Tensor:
    return torch.randint(V, (B, T), generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------------------
# The model


@pytest.mark.parametrize("pos_encoding", ["learned", "sinusoidal"])
@pytest.mark.parametrize("fast", [True, False])
def test_changing_token_t_leaves_the_logits_before_t_unchanged(pos_encoding, fast):
    m = model(GPTConfig(vocab_size=20, block_size=16, n_layer=2, n_head=4, n_embd=32, pos_encoding=pos_encoding))
    m.fast = fast
    idx = random_idx()
    t = 7
    changed = idx.clone()
    changed[:, t] = (changed[:, t] + 1) % 20
    before, _ = m(idx)
    after, _ = m(changed)
    assert torch.allclose(before[:, :t], after[:, :t], atol=1e-6)
    assert not torch.allclose(before[:, t:], after[:, t:], atol=1e-4)  # the future does see it


def test_forward_returns_logits_for_every_position_and_a_scalar_loss():
    m = model()
    idx = random_idx()
    logits, loss = m(idx)
    assert logits.shape == (2, 12, 20) and loss is None
    _, loss = m(idx, targets=idx)
    assert loss.dim() == 0


def test_loss_at_initialisation_is_close_to_log_vocab_size():
    m = model()
    _, loss = m(random_idx(B=8, T=16), targets=random_idx(B=8, T=16, seed=2))
    assert loss.item() == pytest.approx(math.log(20), abs=0.1)


def test_fused_attention_gives_the_same_logits_as_the_explicit_softmax():
    m = model()
    idx = random_idx()
    m.fast = True
    fused, _ = m(idx)
    m.fast = False
    explicit, _ = m(idx)
    assert torch.allclose(fused, explicit, atol=1e-5)


def test_attention_maps_have_one_map_per_layer_batch_and_head():
    maps = model().attention_maps(random_idx(B=3, T=10))
    assert maps.shape == (2, 3, 4, 10, 10)  # (n_layer, B, n_head, T, T)


def test_every_attention_row_sums_to_one():
    maps = model().attention_maps(random_idx())
    assert torch.allclose(maps.sum(-1), torch.ones(maps.shape[:-1]), atol=1e-6)


def test_no_attention_weight_lies_above_the_diagonal():
    maps = model().attention_maps(random_idx())
    above = torch.triu(torch.ones(12, 12, dtype=torch.bool), diagonal=1)
    assert (maps[..., above] == 0).all()
    assert (maps[..., ~above] > 0).all()


def test_lifting_the_causal_mask_lets_tokens_look_ahead():
    maps = model().attention_maps(random_idx(), causal=False)
    above = torch.triu(torch.ones(12, 12, dtype=torch.bool), diagonal=1)
    assert (maps[..., above] > 0).all()
    assert torch.allclose(maps.sum(-1), torch.ones(maps.shape[:-1]), atol=1e-6)


def test_attention_matches_torch_multihead_attention():
    m = model()
    attn = m.blocks[0].attn
    ref = torch.nn.MultiheadAttention(32, 4, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(attn.c_attn.weight)
        ref.in_proj_bias.copy_(attn.c_attn.bias)
        ref.out_proj.weight.copy_(attn.c_proj.weight)
        ref.out_proj.bias.copy_(attn.c_proj.bias)
    x = torch.randn(2, 9, 32, generator=torch.Generator().manual_seed(3))
    future = torch.triu(torch.ones(9, 9, dtype=torch.bool), diagonal=1)
    expected, expected_weights = ref(x, x, x, attn_mask=future, average_attn_weights=False)
    ours, weights = attn(x, need_weights=True)
    assert torch.allclose(ours, expected, atol=1e-5)
    assert torch.allclose(weights, expected_weights, atol=1e-6)


def test_a_sequence_longer_than_the_block_size_is_a_clear_error():
    with pytest.raises(ValueError, match="at most 16"):
        model()(random_idx(T=17))


def test_config_rejects_impossible_settings():
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(n_embd=30, n_head=4)
    with pytest.raises(ValueError, match="pos_encoding"):
        GPTConfig(pos_encoding="rotary")
    with pytest.raises(ValueError, match="tokenizer"):
        GPTTrainConfig(tokenizer="word")


def test_sinusoidal_model_has_no_position_parameters():
    learned = GPT(SMALL).num_params()
    fixed = GPT(GPTConfig(vocab_size=20, block_size=16, n_layer=2, n_head=4, n_embd=32, pos_encoding="sinusoidal"))
    assert learned - fixed.num_params() == 16 * 32  # the (block_size, n_embd) table


# ---------------------------------------------------------------------------------------------
# Positional encodings


def test_sinusoidal_encoding_of_position_zero_alternates_zero_and_one():
    pe = sinusoidal_encoding(10, 8)
    assert pe.shape == (10, 8)
    assert torch.equal(pe[0], torch.tensor([0.0, 1.0] * 4))


def test_every_position_vector_has_the_same_norm_and_values_stay_in_minus_one_one():
    pe = sinusoidal_encoding(50, 16)
    assert torch.allclose(pe.norm(dim=1), torch.full((50,), math.sqrt(8)), atol=1e-5)
    assert pe.abs().max() <= 1.0


def test_similarity_of_two_positions_depends_only_on_their_distance():
    sim = position_similarity(sinusoidal_encoding(40, 16), normalize=False)
    for k in (1, 3, 10):
        diagonal = torch.diagonal(sim, offset=k)
        assert torch.allclose(diagonal, diagonal[0].expand_as(diagonal), atol=1e-4)
    assert sim[0, 1] > sim[0, 5] > sim[0, 10]  # nearby positions are more alike


def test_positions_are_all_distinct():
    sim = position_similarity(sinusoidal_encoding(64, 32))
    off_diagonal = sim[~torch.eye(64, dtype=torch.bool)]
    assert off_diagonal.max() < 0.999


def test_odd_dimension_is_rejected():
    with pytest.raises(ValueError):
        sinusoidal_encoding(4, 3)


# ---------------------------------------------------------------------------------------------
# Self-attention step by step


def test_step_by_step_matches_torch_scaled_dot_product_attention():
    gen = torch.Generator().manual_seed(0)
    x, wq, wk, wv = torch.randn(5, 4, generator=gen), *(torch.randn(4, 3, generator=gen) for _ in range(3))
    steps = self_attention_steps(x, wq, wk, wv, causal=True)
    expected = torch.nn.functional.scaled_dot_product_attention(x @ wq, x @ wk, x @ wv, is_causal=True)
    assert torch.allclose(steps.out, expected, atol=1e-6)


def test_toy_example_rows_sum_to_one_and_the_future_gets_nothing():
    steps = toy_example("your cat is a lovely cat")
    assert steps.tokens == ["your", "cat", "is", "a", "lovely", "cat"]
    assert torch.allclose(steps.weights.sum(-1), torch.ones(6))
    assert (torch.triu(steps.weights, diagonal=1) == 0).all()
    assert torch.isinf(steps.scores[0, 1])


def test_the_two_cats_are_told_apart_only_by_their_position():
    plain, placed = toy_example(positions=False), toy_example(positions=True)
    assert torch.equal(plain.q[1], plain.q[5])
    assert not torch.equal(placed.q[1], placed.q[5])


def test_toy_example_rejects_an_empty_sentence():
    with pytest.raises(ValueError, match="sentence"):
        toy_example("  ")


# ---------------------------------------------------------------------------------------------
# Data and bad input


def test_probe_ids_explains_unknown_characters_and_overlong_text():
    tok = CharTokenizer().train("the cat")
    assert probe_ids(tok, "the cat", 16) == tok.encode("the cat")
    with pytest.raises(ValueError, match="not in the model's vocabulary.*'z'"):
        probe_ids(tok, "the cazt", 16)
    with pytest.raises(ValueError, match="9 tokens long but the model sees at most 8"):
        probe_ids(tok, "the cat c", 8)


def test_probe_ids_takes_any_text_with_a_tokenizer_that_has_no_unknown_token():
    from mllm_core.tokenizers import BPETokenizer

    tok = BPETokenizer().train("the cat sat on the mat", vocab_size=260)
    assert tok.unk_id is None
    assert probe_ids(tok, "the zebra 🦓", 64) == tok.encode("the zebra 🦓")


# ---------------------------------------------------------------------------------------------
# Training


def test_a_short_seeded_run_lowers_the_loss_and_returns_a_text_lm():
    losses = []
    lm = train_gpt(TEXT, SMALL, QUICK, callback=lambda step, loss: losses.append(loss))
    assert len(losses) == QUICK.steps
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:5]) / 5
    assert isinstance(lm, TorchTextLM) and lm.block_size == SMALL.block_size
    assert lm.module.config.vocab_size == lm.vocab_size == CharTokenizer().train(TEXT).vocab_size
    text = "".join(step.token for step in generate(lm, "the ", max_new_tokens=10, seed=0))
    assert len(text) == 10


def test_the_same_seed_trains_the_same_model():
    a = train_gpt(TEXT, SMALL, GPTTrainConfig(batch_size=4, steps=3, eval_every=3, eval_batches=1))
    b = train_gpt(TEXT, SMALL, GPTTrainConfig(batch_size=4, steps=3, eval_every=3, eval_batches=1))
    assert torch.equal(a.module.wte.weight, b.module.wte.weight)


def test_as_a_job_it_reports_both_losses_and_keeps_attention_checkpoints():
    job = training.TrainingJob(gpt_target(TEXT, SMALL, QUICK), name="test-gpt").start()
    try:
        assert job.join(120)
    finally:
        job.stop(timeout=10)
    snap = job.snapshot()
    assert snap.state == training.DONE, snap.error
    assert len(snap.history["loss"]) == QUICK.steps
    assert [s for s, _ in snap.history["val_loss"]] == [0, 20, 40]
    checkpoints = snap.artifacts["checkpoints"]
    assert [c.step for c in checkpoints] == [0, 20, 40]
    T = min(len(QUICK.probe), SMALL.block_size)  # one token per character, cropped to the block
    assert checkpoints[-1].maps.shape == (SMALL.n_layer, SMALL.n_head, T, T)
    assert checkpoints[-1].val_loss < checkpoints[0].val_loss
    assert snap.artifacts["model"].module is not job.result.module  # a snapshot, not the live model
    assert isinstance(job.result, TorchTextLM)


def test_gpt_target_accepts_a_train_config_alone():
    job = training.TrainingJob(
        gpt_target(TEXT, GPTTrainConfig(batch_size=2, steps=2, eval_every=1, eval_batches=1))
    ).start()
    try:
        assert job.join(120)
    finally:
        job.stop(timeout=10)
    assert job.snapshot().state == training.DONE, job.snapshot().error
    assert job.result.module.config.n_layer == GPTConfig().n_layer


def test_bpe_tokens_train_too():
    lm = train_gpt(
        TEXT,
        SMALL,
        GPTTrainConfig(tokenizer="bpe", bpe_vocab_size=270, batch_size=4, steps=2, eval_every=2, eval_batches=1),
    )
    assert lm.vocab_size == 270
    assert lm.decode(lm.encode("the cat")) == "the cat"


def test_a_text_shorter_than_the_block_is_a_clear_error():
    with pytest.raises(ValueError, match="fewer than block_size"):
        train_gpt("tiny", SMALL, QUICK)


def test_jobs_on_the_same_text_share_one_encoding():
    """A class training the default holds one copy of the token ids per process, not one per job."""
    text = "the cat sat on the mat\n" * 50
    a = tokens(text, GPTTrainConfig(lr=1e-3), 16)
    b = tokens("".join([text]), GPTTrainConfig(lr=3e-3, steps=5), 16)  # an equal string, other settings
    assert a[1].train is b[1].train and a[0] is b[0]
    c = tokens(text, GPTTrainConfig(tokenizer="bpe", bpe_vocab_size=260), 16)
    assert c[0] is not a[0] and c[0].decode(c[1].train.tolist()) + c[0].decode(c[1].val.tolist()) != ""
