"""word2vec: windows, subsampling, exact gradients, learning on real text, queries, save/load, jobs."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mllm_core import corpora, training, wordsim
from mllm_core.word2vec import (
    UnknownWordError,
    Word2Vec,
    Word2VecConfig,
    context_windows,
    keep_probabilities,
    offsets,
    tokenize,
    training_target,
)

NUMBERS = {"two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "several"}
MONTHS = {"february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"}


def two_topics(n_docs=400, seed=0) -> list[list[str]]:
    """Documents drawn from either animal words or colour words: the two must separate."""
    rng = np.random.default_rng(seed)
    topics = [["cat", "dog", "mouse", "horse", "cow", "sheep"], ["red", "green", "blue", "pink", "grey", "black"]]
    return [[str(w) for w in rng.choice(topics[i % 2], 12)] for i in range(n_docs)]


@pytest.fixture(scope="module")
def wiki_model() -> Word2Vec:
    text = corpora.load("wikipedia-sample").text
    config = Word2VecConfig(seed=1, lr=0.05)  # a short run learns more with a higher rate
    return Word2Vec(config).fit(text, epochs=4, callback=lambda progress: None, report_seconds=0.2)


# -- pure helpers ------------------------------------------------------------------------------


def test_tokenize_keeps_one_list_per_line_and_lowercases():
    assert tokenize("Hello, World!\n\n  \nIt's 2024.") == [["hello", "world"], ["it's", "2024"]]
    assert tokenize("") == []


def test_context_windows_match_a_brute_force_loop():
    rng = np.random.default_rng(3)
    doc = np.sort(rng.integers(0, 5, 200))
    reach = rng.integers(1, 4, 200)
    mask = context_windows(doc, reach, 3)
    for i in range(200):
        for j, o in enumerate(offsets(3)):
            expected = 0 <= i + o < 200 and doc[i + o] == doc[i] and abs(o) <= reach[i]
            assert mask[i, j] == expected


def test_keep_probabilities_follow_mikolovs_formula():
    counts = np.array([1_000_000, 10_000, 10], dtype=float)
    keep = keep_probabilities(counts, 1e-3)
    f = counts / counts.sum()
    assert keep[0] == pytest.approx((math.sqrt(f[0] / 1e-3) + 1) * 1e-3 / f[0])
    assert keep[0] < keep[1] <= keep[2] == 1.0  # frequent words are dropped more, rare ones kept
    assert keep_probabilities(counts, 0).tolist() == [1.0, 1.0, 1.0]


def test_spearman_matches_scipy_with_ties():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 5, 50).astype(float), rng.normal(size=50)
    assert wordsim.spearman(x, y) == pytest.approx(spearmanr(x, y)[0])


def test_wordsim_score_uses_only_pairs_in_the_vocabulary():
    index = {"tiger": 0, "cat": 1, "love": 2, "sex": 3, "book": 4, "paper": 5}
    rho, used = wordsim.score(np.random.default_rng(0).normal(size=(6, 4)), index)
    assert used == 4 and -1 <= rho <= 1  # love-sex, tiger-cat, tiger-tiger, book-paper
    assert math.isnan(wordsim.score(np.ones((1, 4)), {"cat": 0})[0])


# -- gradients: one step equals SGD on the autograd gradient -------------------------------------


def _tiny(mode, loss, group=1):
    model = Word2Vec(Word2VecConfig(dim=6, window=2, min_count=1, mode=mode, loss=loss, negatives=3, group=group))
    corpus = model._build([["a", "b", "c", "d", "e", "a", "c", "e"]])
    gen = torch.Generator().manual_seed(0)
    model.w_context = 0.3 * torch.randn(len(model), 6, generator=gen)  # scores stay inside ±6 (see MAX_SCORE)
    model.w_center = 0.3 * torch.randn(len(model), 6, generator=gen)
    ids = torch.from_numpy(corpus.ids)
    mask = torch.from_numpy(context_windows(corpus.doc, np.full(len(ids), 2), 2))
    ctx = ids[(torch.arange(len(ids))[:, None] + torch.from_numpy(offsets(2))).clamp(0, len(ids) - 1)]
    return model, ids, ctx, mask


def test_skipgram_full_softmax_step_is_sgd_on_cross_entropy():
    model, centers, ctx, mask = _tiny("skipgram", "full-softmax")
    c0 = model.w_context.clone().requires_grad_()
    o0 = model.w_center.clone().requires_grad_()
    inputs, targets = ctx[mask], centers.repeat_interleave(mask.sum(1))
    F.cross_entropy(c0[inputs] @ o0.T, targets, reduction="sum").backward()
    model._step(centers, ctx, mask, 0.1, None, None)
    torch.testing.assert_close(model.w_center, o0.detach() - 0.1 * o0.grad)
    torch.testing.assert_close(model.w_context, c0.detach() - 0.1 * c0.grad)


@pytest.mark.parametrize("group", [1, 4])
def test_cbow_negative_sampling_step_is_sgd_on_the_sampled_loss(group):
    model, centers, ctx, mask = _tiny("cbow", "negative-sampling", group)
    noise_cdf = torch.tensor([0.2, 0.4, 0.6, 0.8, 1.0], dtype=torch.float64)
    n_groups = -(-len(centers) // group)
    noise = torch.searchsorted(
        noise_cdf, torch.rand(n_groups, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    )
    noise = noise.repeat_interleave(group, 0)[: len(centers)]  # (B, K) the noise each centre saw
    c0, o0 = model.w_context.clone(), model.w_center.clone().requires_grad_()
    h = torch.stack([c0[ctx[i][mask[i]]].mean(0) for i in range(len(centers))])  # (B, D)
    pos = (h * o0[centers]).sum(1)
    neg = torch.einsum("bd,bkd->bk", h, o0[noise]).masked_fill(noise == centers[:, None], -math.inf)
    (-(F.logsigmoid(pos).sum() + F.logsigmoid(-neg).sum())).backward()
    model._step(centers, ctx, mask, 0.1, noise_cdf, torch.Generator().manual_seed(5))
    torch.testing.assert_close(model.w_center, o0.detach() - 0.1 * o0.grad)


# -- learning ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["cbow", "skipgram"])
@pytest.mark.parametrize("loss", ["negative-sampling", "full-softmax"])
def test_every_formulation_separates_two_topics(mode, loss):
    config = Word2VecConfig(dim=16, window=3, min_count=1, subsample=0, mode=mode, loss=loss, batch_size=256)
    model = Word2Vec(config).fit(two_topics(), epochs=3)
    animals = {"cat", "dog", "mouse", "horse", "cow", "sheep"}
    assert {w for w, _ in model.most_similar("cat", topn=3)} <= animals
    assert {w for w, _ in model.most_similar("red", topn=3)} <= {"green", "blue", "pink", "grey", "black"}


def test_a_short_run_on_wikipedia_learns_numbers_months_directions_and_wordsim(wiki_model):
    assert sum(w in NUMBERS or w.isdigit() for w, _ in wiki_model.most_similar("three", topn=5)) >= 3
    assert len(MONTHS & {w for w, _ in wiki_model.most_similar("january", topn=8)}) >= 2
    assert {"south", "east", "west"} <= {w for w, _ in wiki_model.most_similar("north", topn=5)}
    assert wiki_model.evaluate("wordsim353") > 0.1
    losses = [p.loss for p in wiki_model.history if not math.isnan(p.loss)]
    assert wiki_model.history[-1].epoch == 4 and losses[-1] < 0.8 * losses[0]


def test_same_seed_gives_the_same_vectors():
    a = Word2Vec(Word2VecConfig(dim=8, min_count=1)).fit(two_topics(50), epochs=1)
    b = Word2Vec(Word2VecConfig(dim=8, min_count=1)).fit(two_topics(50), epochs=1)
    torch.testing.assert_close(a.w_context, b.w_context, rtol=0, atol=0)


def test_max_norm_keeps_context_vectors_short():
    config = Word2VecConfig(dim=16, min_count=1, subsample=0, lr=0.2, max_norm=0.5)
    capped = Word2Vec(config).fit(two_topics(), epochs=2)
    free = Word2Vec(Word2VecConfig(dim=16, min_count=1, subsample=0, lr=0.2)).fit(two_topics(), epochs=2)
    assert free.w_context.norm(dim=1).max() > 1.0
    assert capped.w_context.norm(dim=1).max() <= 0.5 + 1e-5


def test_max_seconds_and_a_stopping_callback_end_the_run():
    model = Word2Vec(Word2VecConfig(min_count=1)).fit(two_topics(), max_seconds=0.3)  # no epochs: time decides
    assert model.history[-1].fraction == 1.0
    seen = []
    model.fit(two_topics(), epochs=50, callback=lambda p: seen.append(p) or True, report_seconds=0.0)
    assert len(seen) == 1 and model.history[-1].epoch < 50


# -- queries -----------------------------------------------------------------------------------


def test_unknown_words_suggest_close_spellings(wiki_model):
    with pytest.raises(UnknownWordError, match="not in the vocabulary") as err:
        wiki_model.most_similar("thre")
    assert "three" in err.value.suggestions and isinstance(err.value, ValueError)


def test_analogy_is_3cosadd_on_a_known_answer():
    model = Word2Vec(Word2VecConfig(dim=3))
    model.words = ["man", "king", "woman", "queen", "apple"]
    model.index = {w: i for i, w in enumerate(model.words)}
    model.w_context = torch.tensor([[1.0, 0, 0], [1, 1, 0], [0, 0, 1], [0, 1, 1], [-1, -1, 0.5]])
    model.w_center = model.w_context.clone()
    best, cos = model.analogy("man", "king", "woman", topn=1)[0]
    assert best == "queen" and cos > 0.9
    assert model.most_similar("king", topn=4)[-1][0] == "apple"  # cosine -0.94: the farthest


def test_context_and_center_vectors_differ(wiki_model):
    assert not torch.equal(wiki_model.vector("war", which="context"), wiki_model.vector("war", which="center"))
    with pytest.raises(ValueError, match="which"):
        wiki_model.vector("war", which="both")
    total = wiki_model.vector("war", which="context") + wiki_model.vector("war", which="center")
    assert torch.equal(wiki_model.vector("war", which="sum"), total)
    best = wiki_model.most_similar("war", topn=1, which="sum")[0]
    unit = torch.nn.functional.normalize(wiki_model.vectors("sum"), dim=1)
    cos = unit @ unit[wiki_model.index["war"]]
    cos[wiki_model.index["war"]] = -2
    assert best[0] == wiki_model.words[int(cos.argmax())] and best[1] == pytest.approx(float(cos.max()), abs=1e-5)


def test_too_small_corpora_raise_clear_errors():
    with pytest.raises(ValueError, match="too small"):
        Word2Vec().fit("hello")
    with pytest.raises(ValueError, match="min_count"):
        Word2Vec(Word2VecConfig(min_count=50)).fit("the cat sat on the mat")
    with pytest.raises(ValueError, match="neighbours"):
        Word2Vec(Word2VecConfig(min_count=1)).fit("cat\ndog\ncat\ndog")
    with pytest.raises(ValueError, match="mode"):
        Word2Vec(Word2VecConfig(mode="glove"))


# -- save, export, jobs ------------------------------------------------------------------------


def test_save_load_round_trip(tmp_path, wiki_model):
    wiki_model.save(tmp_path / "w2v.pt")
    back = Word2Vec.load(tmp_path / "w2v.pt")
    assert back.vocab == wiki_model.vocab and back.config == wiki_model.config
    assert back.most_similar("three") == wiki_model.most_similar("three")
    torch.save({"format": "other"}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="not a word2vec checkpoint"):
        Word2Vec.load(tmp_path / "bad.pt")


def test_projector_tsv_has_one_row_per_word(wiki_model):
    vectors, metadata = wiki_model.to_tsv()
    rows = vectors.strip().split("\n")
    assert len(rows) == len(metadata.strip().split("\n")) == len(wiki_model)
    assert len(rows[0].split("\t")) == wiki_model.config.dim


def test_training_job_publishes_a_queryable_snapshot_and_stops():
    job = training.TrainingJob(training_target(Word2VecConfig(min_count=1), two_topics(), epochs=10_000), name="w2v")
    job.start()
    try:
        for _ in range(200):
            snap = job.snapshot()
            if "model" in snap.artifacts:
                break
            job.join(0.05)
        model = snap.artifacts["model"]
        assert len(model.most_similar("cat", topn=2)) == 2 and snap.latest("loss") > 0
    finally:
        assert job.stop(timeout=30)
    assert isinstance(job.result, Word2Vec) and job.snapshot().state == training.STOPPED
