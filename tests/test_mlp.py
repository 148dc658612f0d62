"""The MLP language model: its forward pass against the formula written out, a short seeded
training run that must learn, save / load, the embedding map, and clear messages for bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mllm_core import corpora, lm_train, metrics, store
from mllm_core.mlp import (
    MAP_CHARACTERS,
    MLP,
    MLPConfig,
    MLPTrainConfig,
    check_input,
    embedding_pca,
    map_ids,
    mlp_target,
    token_group,
)
from mllm_core.training import TrainingJob


def test_forward_is_the_window_formula_position_by_position():
    torch.manual_seed(0)
    config = MLPConfig(window=3, n_embd=4, hidden=6)
    m = MLP(config, vocab_size=7)
    idx = torch.randint(0, 7, (2, 5))
    targets = torch.randint(0, 7, (2, 5))
    logits, loss = m(idx, targets)
    C = m.C.weight
    nll = 0.0
    for b in range(2):
        for t in range(5):
            window = [idx[b, s].item() if s >= 0 else 7 for s in range(t - 2, t + 1)]  # 7: before the text
            x = torch.cat([C[i] for i in window])  # (k * n_embd,)
            h = torch.tanh(m.hidden.weight @ x + m.hidden.bias)
            expected = m.head.weight @ h + m.head.bias  # (V,)
            assert torch.allclose(logits[b, t], expected, atol=1e-6)
            nll -= torch.log_softmax(expected, -1)[targets[b, t]].item()
    assert loss.item() == pytest.approx(nll / 10, abs=1e-6)


def test_a_position_only_reads_its_own_window():
    torch.manual_seed(0)
    m = MLP(MLPConfig(window=2, n_embd=3, hidden=5), vocab_size=6)
    a = torch.tensor([[1, 2, 3, 4, 5]])
    b = torch.tensor([[5, 0, 3, 4, 5]])  # differs only before position t - 1 for t = 3, 4
    la, lb = m(a)[0], m(b)[0]
    assert torch.allclose(la[0, 3:], lb[0, 3:]) and not torch.allclose(la[0, :2], lb[0, :2])


TEXT = "\n".join(["the cat sat on the mat. the dog sat on the log."] * 40)


def test_seeded_training_learns_a_repetitive_text():
    config = MLPConfig(window=3, n_embd=8, hidden=64, block_size=16)
    train = MLPTrainConfig(steps=150, batch_size=16, eval_every=50, sample_every=150, sample_len=20, seed=0)
    job = TrainingJob(mlp_target(TEXT, config, train)).start()
    assert job.join(120)
    snap = job.snapshot()
    val = [v for _, v in snap.history["val_loss"]]
    assert val[0] > math.log(10) and val[-1] < 0.5 * val[0]
    lm = job.result
    assert lm.name == "MLP (k=3)" and isinstance(lm.module, MLP)
    assert snap.artifacts["sample_step"] == 150
    assert len(snap.artifacts["sample"]) == 20  # "The " has a "T" it never saw: the sample starts afresh
    assert metrics.bits_per_char(lm, TEXT[:500]) < 1.0  # uniform over its 17 characters would be 4.1


def test_word_tokens_train_too():
    train = MLPTrainConfig(steps=30, batch_size=8, eval_every=10, level="word", max_vocab=50, sample_len=5)
    lm = mlp_target(TEXT, MLPConfig(window=2, block_size=8), train)()
    assert lm.decode(lm.encode("the cat sat")) == "the cat sat"
    assert lm.vocab_size == len(set(TEXT.replace(".", " . ").split())) + 4  # + <unk>, <pad>, <bos>, <eos>


def test_save_and_load_give_the_same_model(tmp_path):
    train = MLPTrainConfig(steps=5, batch_size=4, eval_every=5, sample_every=5, sample_len=5)
    lm = mlp_target(TEXT, MLPConfig(window=4, n_embd=3, hidden=8, block_size=8), train, name="mine")()
    loaded = store.load_torch_lm(store.save_torch_lm(lm, tmp_path / "mlp"))
    ids = lm.encode("the cat sat on")
    assert loaded.name == "mine" and loaded.module.config == lm.module.config
    assert torch.allclose(loaded.next_logits(ids), lm.next_logits(ids))
    assert type(lm.module)(*lm.module.init_args()).C.weight.shape == lm.module.C.weight.shape


def test_the_embedding_map_is_the_pca_of_c():
    from sklearn.decomposition import PCA

    lm = mlp_target(TEXT, MLPConfig(window=2, n_embd=5, hidden=8, block_size=8), MLPTrainConfig(steps=3))()
    tokens, coords = embedding_pca(lm)
    table = lm.module.C.weight.detach().numpy()[: lm.vocab_size]
    reference = PCA(2).fit_transform(table)
    assert len(tokens) == lm.vocab_size == coords.shape[0]
    assert np.allclose(np.abs(coords), np.abs(reference), atol=1e-4)  # the same axes, up to their signs
    assert [token_group(t) for t in ("e", "t", "3", ".")] == ["vowel", "consonant", "digit", "other"]
    ids = map_ids(lm)  # the map shows the letters, digits, space, full stop and comma the model knows
    assert [lm.tokenizer.id_to_token(i) for i in ids] == sorted(set(TEXT) - {"\n"}, key=MAP_CHARACTERS.index)
    shown, xy = embedding_pca(lm, ids)
    assert np.allclose(np.abs(xy), np.abs(PCA(2).fit_transform(table[ids])), atol=1e-4)


@pytest.mark.parametrize(
    "text, config, train, message",
    [
        ("", MLPConfig(), MLPTrainConfig(), "empty"),
        ("  \n ", MLPConfig(), MLPTrainConfig(), "empty"),
        (corpora.FOX_TEXT, MLPConfig(), MLPTrainConfig(), "too short: 84 chars"),
        (corpora.FOX_TEXT, MLPConfig(block_size=4), MLPTrainConfig(level="word"), "too short: 18 words"),
    ],
)
def test_bad_input_is_explained(text, config, train, message):
    with pytest.raises(ValueError, match=message):
        check_input(text, config, train)
    with pytest.raises(ValueError, match=message):
        mlp_target(text, config, train)


def test_bad_settings_are_explained():
    with pytest.raises(ValueError, match="between 1 and 16"):
        MLPConfig(window=0)
    with pytest.raises(ValueError, match="level"):
        MLPTrainConfig(level="bpe")


def test_the_shared_trainer_moves_the_loss_like_a_plain_loop():
    """`lm_train.fit` on the MLP = the same steps written by hand (same seed, same batches)."""
    from mllm_core.tokenizers import CharTokenizer

    tok = CharTokenizer().train(TEXT)
    data = lm_train.encode_split(TEXT, tok, 0.1, 16)
    config, train = MLPConfig(window=3, n_embd=4, hidden=16, block_size=16), lm_train.TrainConfig(steps=10, grad_clip=0)
    torch.manual_seed(0)
    ours = lm_train.fit(MLP(config, tok.vocab_size), data, 16, train)
    torch.manual_seed(0)
    plain = MLP(config, tok.vocab_size)
    opt = torch.optim.AdamW(plain.parameters(), lr=train.lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(train.seed)
    for _ in range(train.steps):
        x, y = lm_train.get_batch(data.train, train.batch_size, 16, gen)
        opt.zero_grad()
        plain(x, y)[1].backward()
        opt.step()
    for p, q in zip(ours.parameters(), plain.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-6)
