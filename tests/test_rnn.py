"""Spec of mllm_core.rnn and mllm_core.char_lstm: cells equal PyTorch's, counting learns, experiments run."""

from dataclasses import replace

import pytest
import torch

from mllm_core import char_lstm, rnn, training
from mllm_core.lm import TorchTextLM


@pytest.fixture(scope="module")
def trained() -> tuple[rnn.SequenceModel, list[rnn.EpochStats]]:
    """The default counting model and its per-epoch stats, trained once for the module."""
    stats = []
    return rnn.train_counting(rnn.CountingConfig(), lambda m, s: stats.append(s)), stats


@pytest.fixture(scope="module")
def counter(trained) -> rnn.SequenceModel:
    return trained[0]


# -- the cells -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ours, theirs", [(rnn.ElmanRNN, torch.nn.RNN), (rnn.LSTM, torch.nn.LSTM), (rnn.GRU, torch.nn.GRU)]
)
def test_hand_written_cells_equal_torch_with_copied_weights(ours, theirs):
    torch.manual_seed(0)
    cell, ref = ours(5, 4), theirs(5, 4, batch_first=True)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).copy_(getattr(ref, f"{name}_l0"))
    x = torch.randn(3, 7, 5)  # (B, T, D)
    out, last = cell(x)
    ref_out, ref_last = ref(x)
    torch.testing.assert_close(out, ref_out, atol=1e-6, rtol=0)
    if ours is rnn.LSTM:
        torch.testing.assert_close(last[0], ref_last[0][0], atol=1e-6, rtol=0)
        torch.testing.assert_close(last[1], ref_last[1][0], atol=1e-6, rtol=0)
    else:
        torch.testing.assert_close(last, ref_last[0], atol=1e-6, rtol=0)


def test_elman_rnn_with_an_initial_state_and_unbatched_input_equals_torch():
    torch.manual_seed(1)
    cell, ref = rnn.ElmanRNN(3, 6), torch.nn.RNN(3, 6)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).copy_(getattr(ref, f"{name}_l0"))
    x, h0 = torch.randn(9, 3), torch.randn(6)  # (L, D), (H,)
    out, h = cell(x, h0)
    ref_out, ref_h = ref(x, h0.unsqueeze(0))
    assert out.shape == (9, 6) and h.shape == (6,)
    torch.testing.assert_close(out, ref_out, atol=1e-6, rtol=0)
    torch.testing.assert_close(h, ref_h[0], atol=1e-6, rtol=0)


def test_ids_are_one_hot_inputs():
    cell = rnn.ElmanRNN(6, 4)
    ids = torch.tensor([[0, 3, 5, 1]])
    out_ids, _ = cell(ids)
    out_onehot, _ = cell(torch.nn.functional.one_hot(ids, 6).float())
    torch.testing.assert_close(out_ids, out_onehot)
    with pytest.raises(ValueError, match="0..5"):
        cell(torch.tensor([[6]]))


def test_wrong_initial_state_and_unknown_cell_are_clear_errors():
    with pytest.raises(ValueError, match="shape"):
        rnn.ElmanRNN(2, 3)(torch.zeros(4, 2), torch.zeros(5))
    with pytest.raises(ValueError, match="rnn, lstm, gru"):
        rnn.make_cell("transformer", 2, 2)


# -- counting ------------------------------------------------------------------------------------


def test_counting_data_are_all_windows_with_targets_shifted_by_one():
    x, y = rnn.counting_data(128, 6)
    assert x.shape == y.shape == (122, 6)
    assert torch.equal(y[:, :-1], x[:, 1:]) and torch.equal(y[:, -1], x[:, -1] + 1)
    with pytest.raises(ValueError):
        rnn.counting_data(6, 6)


def test_default_config_is_the_seeds():
    c = rnn.CountingConfig()
    assert (c.vocab_size, c.seq_len, c.hidden_size, c.cell, c.batch_size) == (128, 6, 32, "rnn", None)


def test_the_counting_rnn_predicts_11_after_7_8_9_10(counter):
    assert rnn.predict_next(counter, [7, 8, 9, 10]) == 11


def test_training_stops_at_full_training_accuracy(trained):
    model, stats = trained
    assert stats[-1].accuracy == 1.0
    assert all(s.accuracy < 1.0 for s in stats[:-1])
    assert len(stats) < rnn.CountingConfig().max_epochs
    assert rnn.accuracy(model, *rnn.counting_data(128, 6)) == 1.0


def test_sequences_shorter_and_longer_than_the_training_length(counter):
    assert rnn.predict_next(counter, [41]) == 42
    assert rnn.predict_next(counter, list(range(60, 70))) == 70


def test_bad_sequences_raise_value_errors(counter):
    for bad in ([], [1, 128], [-1], [1.5], ["a"], [True], [None], [float("nan")]):
        with pytest.raises(ValueError):
            rnn.predict_next(counter, bad)
    assert rnn.predict_next(counter, [7.0, 8.0]) == 9  # whole numbers given as floats are fine


def test_parse_sequence_reads_typed_numbers_and_rejects_text():
    assert rnn.parse_sequence(" 7, 8 9,10 ") == [7, 8, 9, 10]
    with pytest.raises(ValueError, match="whole numbers"):
        rnn.parse_sequence("7 eight 9")
    with pytest.raises(ValueError, match="at least one"):
        rnn.parse_sequence("  ")
    with pytest.raises(ValueError, match="whole numbers"):
        rnn.parse_sequence("7 ²")  # a digit to str.isdigit, not to int()


def test_distribution_and_hidden_states_have_the_right_shapes(counter):
    probs = rnn.next_distribution(counter, [3, 4, 5])
    assert probs.shape == (128,) and abs(float(probs.sum()) - 1) < 1e-5 and int(probs.argmax()) == 6
    assert rnn.hidden_states(counter, [3, 4, 5]).shape == (3, 32)


def test_counting_trains_as_a_job_with_reports_and_a_published_model():
    job = training.TrainingJob(rnn.counting_target(rnn.CountingConfig(max_epochs=3, seed=1))).start()
    assert job.join(60)
    snap = job.snapshot()
    assert snap.state == "done" and len(snap.history["loss"]) == 3 and "accuracy" in snap.history
    assert isinstance(snap.artifacts["model"], rnn.SequenceModel) and isinstance(job.result, rnn.SequenceModel)


def test_bad_configs_are_rejected():
    for bad in (dict(cell="cnn"), dict(lr=0), dict(hidden_size=0), dict(max_epochs=0)):
        with pytest.raises(ValueError):
            rnn.train_counting(rnn.CountingConfig(**bad))


# -- experiments ---------------------------------------------------------------------------------


def test_seed_reference_curve_has_the_published_shape():
    ref = rnn.SEED_LENGTH_REFERENCE
    assert dict(ref["rnn"])[4] == pytest.approx(0.998) and dict(ref["rnn"])[96] == pytest.approx(0.12)
    assert all(acc >= 0.97 for _, acc in ref["lstm"])


def test_length_experiment_runs_every_cell_at_every_length_seed_by_seed():
    seen = []
    config = rnn.LengthConfig(lengths=(4, 8), vocab_size=32, epochs=25, seeds=2)
    curves = rnn.length_experiment(config, lambda cell, length, acc: seen.append((cell, length)))
    assert [length for length, _ in curves["rnn"]] == [4, 8, 4, 8] and len(curves["lstm"]) == 4
    assert seen == [("rnn", 4), ("lstm", 4), ("rnn", 8), ("lstm", 8)] * 2  # a whole first curve, then the next seed
    assert all(0 <= acc <= 1 for c in curves.values() for _, acc in c)
    assert [p.n for p in rnn.band(curves["rnn"])] == [2, 2]
    assert min(acc for length, acc in curves["rnn"] if length == 4) > 0.9  # short sequences are easy


def test_length_experiment_seed_i_is_the_single_run_with_seed_plus_i():
    config = rnn.LengthConfig(lengths=(6,), cells=("rnn",), vocab_size=24, epochs=3, seed=5, seeds=2)
    runs = rnn.length_experiment(config)["rnn"]
    alone = [rnn.length_experiment(replace(config, seed=s, seeds=1))["rnn"][0] for s in (5, 6)]
    assert runs == alone and runs[0] != runs[1]  # seeded, and two seeds are two different runs


def test_band_is_mean_sd_and_range_per_length():
    accs = {4: [1.0, 0.96, 0.98], 118: [0.815, 0.976, 0.931]}
    points = [(x, a) for i in range(3) for x, a in ((4, accs[4][i]), (118, accs[118][i]))]  # seed by seed
    bands = rnn.band(points)
    assert [p.x for p in bands] == [4, 118] and all(p.n == 3 for p in bands)
    for p in bands:
        t = torch.tensor(accs[p.x], dtype=torch.float64)
        assert p.mean == pytest.approx(t.mean().item()) and p.sd == pytest.approx(t.std().item())  # n − 1
        assert (p.lo, p.hi) == (min(accs[p.x]), max(accs[p.x]))
    assert rnn.band([(8, 0.5)]) == [rnn.BandPoint(8, 0.5, 0.0, 0.5, 0.5, 1)] and rnn.band([]) == []


def test_orthogonal_init_gives_unit_singular_values_and_torch_init_is_untouched():
    torch.manual_seed(0)
    lstm = rnn.LSTM(7, 4)
    before = {k: v.clone() for k, v in lstm.state_dict().items()}
    rnn.init_cell_(lstm, "torch")
    assert all(torch.equal(before[k], v) for k, v in lstm.state_dict().items())
    rnn.init_cell_(lstm, "orthogonal")
    for block in lstm.weight_hh.detach().chunk(4):  # one (H, H) block per gate
        assert torch.allclose(torch.linalg.svdvals(block), torch.ones(4), atol=1e-5)
    assert not lstm.bias_ih.any() and not lstm.bias_hh.any()
    with pytest.raises(ValueError, match="init"):
        rnn.train_counting(rnn.CountingConfig(init="xavier"))


def test_length_experiment_job_has_progress_and_partial_curves():
    config = rnn.LengthConfig(lengths=(4,), vocab_size=16, epochs=2, seeds=2)
    job = training.TrainingJob(rnn.length_experiment_target(config)).start()
    assert job.join(60)
    snap = job.snapshot()
    assert snap.state == "done" and snap.total_steps == 4 and snap.progress == 1.0  # 2 seeds x 2 cells
    assert set(snap.artifacts["curves"]) == {"rnn", "lstm"} and set(job.result) == {"rnn", "lstm"}
    assert snap.artifacts["curves"] == job.result
    with pytest.raises(ValueError):
        rnn.length_experiment(rnn.LengthConfig(lengths=(600,)))
    with pytest.raises(ValueError, match="seeds"):
        rnn.length_experiment(rnn.LengthConfig(lengths=(4,), seeds=0))


def test_memory_experiment_short_sequences_are_easy_for_both_cells():
    config = rnn.MemoryConfig(lengths=(3,), cells=("rnn", "lstm"), steps=100, batch_size=32, n_test=256)
    curves = rnn.memory_experiment(config)
    assert curves == {"rnn": [(3, 1.0)], "lstm": [(3, 1.0)]}
    x, y = rnn.memory_batch(4, 5, 8, torch.Generator().manual_seed(0))
    assert torch.equal(y, x[:, :1].expand(4, 5))  # dense targets: the first element at every step


def test_vanishing_gradients_reach_the_first_step_in_the_lstm_not_the_rnn():
    norms = rnn.vanishing_gradients(rnn.GradientConfig(length=20, train_steps=120, batch_size=32))
    assert len(norms["rnn"]) == len(norms["lstm"]) == 20
    rnn_ratio = norms["rnn"][0] / norms["rnn"][-1]  # share of the error reaching x_1
    lstm_ratio = norms["lstm"][0] / norms["lstm"][-1]
    assert rnn_ratio < 1e-3 and lstm_ratio > 100 * rnn_ratio


# -- char-LSTM -----------------------------------------------------------------------------------

TEXT = "the cat sat on the mat. the dog sat on the log.\n" * 40


def test_char_lstm_forward_is_the_family_interface():
    model = char_lstm.CharLSTM(char_lstm.CharLSTMConfig(n_embd=8, hidden_size=16), vocab_size=11)
    idx = torch.randint(0, 11, (2, 7))
    logits, loss = model(idx)
    assert logits.shape == (2, 7, 11) and loss is None
    assert model(idx, idx)[1].dim() == 0


def test_char_lstm_learns_a_repetitive_text_and_publishes_samples():
    config = char_lstm.CharLSTMConfig(block_size=16, hidden_size=64)
    train = char_lstm.CharLSTMTrainConfig(steps=150, eval_every=50, sample_every=75, sample_len=30)
    job = training.TrainingJob(char_lstm.char_lstm_target(TEXT, config, train)).start()
    assert job.join(120)
    snap = job.snapshot()
    assert snap.state == "done", snap.error
    assert snap.history["loss"][-1][1] < 1.0 < snap.history["loss"][0][1]
    assert [s for s, _ in snap.history["val_loss"]] == [0, 50, 100, 150]  # the untrained model, then every 50
    lm = job.result
    assert isinstance(lm, TorchTextLM) and isinstance(snap.artifacts["model"], TorchTextLM)
    assert len(snap.artifacts["sample"]) == 30  # "The " has a 'T' the text never uses: no prompt
    assert "the" in snap.artifacts["sample"]
    assert lm.decode(lm.encode("the cat")) == "the cat"
    assert lm.next_logits(lm.encode("the c")).shape == (lm.vocab_size,)


def test_char_lstm_runs_without_a_job_and_rejects_unusable_text():
    small = char_lstm.CharLSTMConfig(block_size=8, hidden_size=8)
    lm = char_lstm.char_lstm_target(TEXT, small, char_lstm.CharLSTMTrainConfig(steps=2))()
    assert isinstance(lm, TorchTextLM) and lm.next_logits([]).shape == (lm.vocab_size,)  # empty prompt: newline
    with pytest.raises(ValueError, match="empty"):
        char_lstm.char_lstm_target("   ")
    with pytest.raises(ValueError, match="too short"):
        char_lstm.char_lstm_target("abc")
