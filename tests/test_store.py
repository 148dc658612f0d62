"""Spec of the artefact store: every kind comes back identical, versions are checked, code is never unpickled."""

import json
import math

import numpy as np
import pytest
import torch

from mllm_core import store
from mllm_core.char_lstm import CharLSTM, CharLSTMConfig
from mllm_core.lm import TorchTextLM
from mllm_core.ngram import NGramModel, NGramTextLM, count_ngrams, split_tokens
from mllm_core.rnn import CELLS, SequenceModel
from mllm_core.tokenizers import BPETokenizer, CharTokenizer
from mllm_core.transformer import GPT, AttentionCheckpoint, GPTConfig
from mllm_core.word2vec import Word2Vec, Word2VecConfig

TEXT = "the cat sat on the mat.\nthe dog sat on the log!\nÜmlauts and emoji 🙂 too.\n" * 20


def gpt_lm(pos_encoding="learned", tokenizer=None) -> TorchTextLM:
    tokenizer = tokenizer or CharTokenizer().train(TEXT)
    torch.manual_seed(0)
    config = GPTConfig(
        vocab_size=tokenizer.vocab_size, block_size=16, n_layer=2, n_head=2, n_embd=8, pos_encoding=pos_encoding
    )
    return TorchTextLM("tiny GPT", GPT(config).eval(), tokenizer, block_size=16)


def lstm_lm() -> TorchTextLM:
    tokenizer = CharTokenizer().train(TEXT)
    torch.manual_seed(0)
    module = CharLSTM(CharLSTMConfig(block_size=16, n_embd=4, hidden_size=8, n_layers=2), tokenizer.vocab_size)
    return TorchTextLM("tiny LSTM", module.eval(), tokenizer, block_size=16, bos_id=tokenizer.stoi["\n"])


def same_logits(a: TorchTextLM, b: TorchTextLM) -> bool:
    ids = torch.tensor([a.encode("the cat sat on ")])  # (1, T)
    return torch.equal(a.forward_logits(ids), b.forward_logits(ids))


@pytest.mark.parametrize(
    "make",
    [gpt_lm, lambda: gpt_lm("sinusoidal"), lambda: gpt_lm(tokenizer=BPETokenizer().train(TEXT, 270)), lstm_lm],
    ids=["gpt", "gpt-sinusoidal", "gpt-bpe", "char-lstm"],
)
def test_a_torch_lm_comes_back_with_identical_logits_name_window_and_tokenizer(make, tmp_path):
    lm = make()
    folder = store.save_torch_lm(lm, tmp_path / "lm")
    assert {p.name for p in folder.iterdir()} == {"model.json", "weights.pt", "tokenizer.json", "tokenizer.vocab"}
    back = store.load_torch_lm(folder)
    assert type(back.module) is type(lm.module) and back.module.config == lm.module.config
    assert (back.name, back.block_size, back.bos_id) == (lm.name, lm.block_size, lm.bos_id)
    assert back.tokenizer.to_dict() == lm.tokenizer.to_dict()
    assert same_logits(lm, back)
    assert not back.module.training


def test_a_tied_gpt_stays_tied_after_loading(tmp_path):
    back = store.load_torch_lm(store.save_torch_lm(gpt_lm(), tmp_path / "lm"))
    assert back.module.lm_head.weight is back.module.wte.weight


def test_the_model_description_is_readable_json(tmp_path):
    meta = json.loads((store.save_torch_lm(lstm_lm(), tmp_path / "lm") / "model.json").read_text())
    assert meta["format"] == "llm-playground/torch-lm" and meta["version"] == store.FORMAT_VERSION
    assert meta["family"] == "char-lstm" and meta["config"]["hidden_size"] == 8


def test_only_the_known_families_are_saved(tmp_path):
    lm = TorchTextLM("linear", torch.nn.Linear(2, 2), CharTokenizer().train("ab"))
    with pytest.raises(ValueError, match="cannot save a Linear"):
        store.save_torch_lm(lm, tmp_path / "lm")


@pytest.mark.parametrize("cell", CELLS)
def test_the_counting_rnn_comes_back_with_identical_logits(cell, tmp_path):
    torch.manual_seed(0)
    model = SequenceModel(cell, vocab_size=12, hidden_size=5, n_out=7)
    back = store.load_sequence_model(store.save_sequence_model(model, tmp_path / "counter.pt"))
    idx = torch.tensor([[1, 2, 3, 4]])
    assert back.cell_name == cell and back.vocab_size == 12
    assert torch.equal(model(idx)[0], back(idx)[0])


def test_word2vec_comes_back_with_identical_vectors_and_neighbours(tmp_path):
    model = Word2Vec(Word2VecConfig(dim=8, min_count=1, epochs=2)).fit(TEXT)
    model.save(tmp_path / "w2v.pt")
    back = Word2Vec.load(tmp_path / "w2v.pt")
    assert back.vocab == model.vocab and back.config == model.config
    assert torch.equal(back.vectors("context"), model.vectors("context"))
    assert torch.equal(back.vectors("center"), model.vectors("center"))
    assert back.most_similar("cat", topn=3) == model.most_similar("cat", topn=3)


def test_ngram_counts_come_back_with_identical_probabilities(tmp_path):
    counts = count_ngrams(split_tokens(TEXT, "char"), 4)
    back = store.load_ngram_counts(store.save_ngram_counts(counts, tmp_path / "counts.npz"))
    assert back.vocab == counts.vocab and back.n_tokens == counts.n_tokens and back.longest == counts.longest
    assert np.array_equal(back.stream, counts.stream)
    for n in range(1, 5):
        lm, lm_back = (NGramTextLM(NGramModel.from_counts(c, n, "kneser-ney"), "char") for c in (counts, back))
        ids = lm.encode("the ca")
        assert torch.equal(lm.next_logits(ids), lm_back.next_logits(ids))


def test_attention_checkpoints_come_back_with_their_maps_to_float16_precision(tmp_path):
    maps = torch.softmax(torch.randn(3, 2, 2, 5, 5), dim=-1)  # 3 checkpoints of (n_layer, n_head, T, T)
    saved = [
        AttentionCheckpoint(step, 2.0 - step / 100, 2.1 - step / 100, m)
        for step, m in zip((0, 50, 100), maps, strict=True)
    ]
    back = store.load_checkpoints(store.save_checkpoints(saved, tmp_path / "checkpoints.pt"))
    assert [(c.step, c.loss, c.val_loss) for c in back] == [(c.step, c.loss, c.val_loss) for c in saved]
    for a, b in zip(saved, back, strict=True):
        assert b.maps.dtype == torch.float32 and torch.allclose(a.maps, b.maps, atol=1e-3)


def test_a_job_record_keeps_the_history_and_nan(tmp_path):
    record = store.JobRecord({"loss": [(1, 2.5), (2, 2.0)], "wordsim": [(2, math.nan)]}, 2, {"num_params": 10})
    back = store.load_record(store.save_record(record, tmp_path / "record.json"))
    assert back.history["loss"] == [(1, 2.5), (2, 2.0)] and math.isnan(back.history["wordsim"][0][1])
    assert back.total_steps == 2 and back.extras == {"num_params": 10}


# ---------------------------------------------------------------------------------------------
# Versions and formats


def test_an_unknown_version_is_refused_with_a_clear_message(tmp_path):
    folder = store.save_torch_lm(gpt_lm(), tmp_path / "lm")
    meta = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps({**meta, "version": 99}))
    with pytest.raises(store.FormatError, match="version 99; this app reads version 1 only"):
        store.load_torch_lm(folder)


def test_every_file_kind_checks_its_version(tmp_path):
    torch.save({"format": store.SEQUENCE_MODEL, "version": 2}, tmp_path / "counter.pt")
    with pytest.raises(store.FormatError, match="version 2"):
        store.load_sequence_model(tmp_path / "counter.pt")
    meta = json.dumps({"format": store.NGRAM_COUNTS, "version": 0})
    np.savez(tmp_path / "counts.npz", meta=np.array(meta))
    with pytest.raises(store.FormatError, match="version 0"):
        store.load_ngram_counts(tmp_path / "counts.npz")
    (tmp_path / "record.json").write_text(json.dumps({"format": store.RECORD, "version": "2.0"}))
    with pytest.raises(store.FormatError, match="version '2.0'"):
        store.load_record(tmp_path / "record.json")


def test_a_file_of_another_kind_is_refused(tmp_path):
    store.save_sequence_model(SequenceModel("rnn", 4, 2), tmp_path / "counter.pt")
    with pytest.raises(store.FormatError, match="holds 'llm-playground/sequence-model', not llm-playground/attention"):
        store.load_checkpoints(tmp_path / "counter.pt")


class Payload:
    """Stands for code hidden in a weights file: loading must refuse it, not run it."""

    def __reduce__(self):
        return (print, ("this ran while loading",))


def test_loading_never_unpickles_code(tmp_path, capsys):
    torch.save({"format": store.SEQUENCE_MODEL, "version": 1, "state_dict": Payload()}, tmp_path / "counter.pt")
    with pytest.raises(Exception, match="[Ww]eights only load failed|Unsupported"):
        store.load_sequence_model(tmp_path / "counter.pt")
    assert "this ran" not in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# Where artefacts live


def test_the_cache_is_searched_before_the_shipped_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("MLLM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MLLM_MODELS_DIR", str(tmp_path / "shipped"))
    assert store.search_path() == [tmp_path / "cache" / "models", tmp_path / "shipped"]
    assert store.find("m") is None
    (tmp_path / "shipped" / "m").mkdir(parents=True)
    assert store.find("m") == tmp_path / "shipped" / "m"
    (tmp_path / "cache" / "models" / "m").mkdir(parents=True)
    assert store.find("m") == tmp_path / "cache" / "models" / "m"


def test_a_folder_is_written_whole_or_not_at_all(tmp_path):
    def fill(folder):
        (folder / "half.txt").write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        store.write_atomically(tmp_path / "models" / "m", fill)
    assert list((tmp_path / "models").iterdir()) == []  # neither the folder nor its temporary copy
    store.write_atomically(tmp_path / "models" / "m", lambda f: (f / "a.txt").write_text("first"))
    store.write_atomically(tmp_path / "models" / "m", lambda f: (f / "b.txt").write_text("second"))
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["m"]
    assert [p.name for p in (tmp_path / "models" / "m").iterdir()] == ["b.txt"]
    assert store.folder_size(tmp_path / "models") == len("second")
