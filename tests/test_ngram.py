"""Spec of mllm_core.ngram: counting, the three smoothings, scoring, sampling and the TextLM adapter."""

import itertools
import math
import random
from collections import Counter, defaultdict

import numpy as np
import pytest
import torch

from mllm_core import corpora, lm, ngram, sampling
from mllm_core.ngram import (
    BOS,
    EOS,
    NGramModel,
    NGramTextLM,
    backoff_steps,
    count_ngrams,
    memorisation,
    perplexity_curve,
    split_tokens,
    text_tokens,
    train_text_lm,
)

FOX = split_tokens(corpora.FOX_TEXT, "word")


def random_corpus(seed: int, n_seqs: int = 30, alphabet: str = "abcde") -> list[list[str]]:
    rng = random.Random(seed)
    return [[rng.choice(alphabet) for _ in range(rng.randint(1, 12))] for _ in range(n_seqs)]


def brute_counts(seqs: list[list[str]], n: int) -> Counter:
    """Every window of length 1..n ending on a real token or </s>, sequences padded with n - 1 <s>."""
    counts = Counter()
    for seq in seqs:
        padded = [BOS] * (n - 1) + list(seq) + [EOS]
        for end in range(n - 1, len(padded)):
            for order in range(1, n + 1):
                counts[tuple(padded[end - order + 1 : end + 1])] += 1
    return counts


# ---------------------------------------------------------------------------------------------
# The fox example of the talk


def test_fox_conditional_probabilities_match_the_talk():
    bigram, trigram = NGramModel(2).fit(FOX), NGramModel(3).fit(FOX)
    assert bigram.prob("quick", ["The"]) == 0.5
    assert bigram.prob("fox", ["The"]) == 0.5
    assert trigram.prob("is", ["The", "fox"]) == 1.0
    assert trigram.prob("jumps", ["brown", "fox"]) == 1.0
    assert bigram.next_distribution(["The"]) == {"quick": 0.5, "fox": 0.5}
    assert bigram.prob("lazy", ["the"]) == 1.0  # case is kept: "the" and "The" are different tokens


def test_fox_probability_table_lists_every_seen_bigram():
    rows = NGramModel(2).fit(FOX).probability_table()
    assert (("The",), "quick", 1, 0.5) in rows
    assert (("<s>",), "The", 2, 1.0) in rows
    assert (("lazy",), "dog", 2, 1.0) in rows
    assert len(rows) == count_ngrams(FOX, 2).table_size(2)


# ---------------------------------------------------------------------------------------------
# Counting


@pytest.mark.parametrize("seed", [0, 1])
def test_counts_match_a_brute_force_count(seed):
    seqs = random_corpus(seed)
    counts = count_ngrams(seqs, 4)
    expected = brute_counts(seqs, 4)
    for ngram_, count in expected.items():
        assert counts.count(ngram_) == count, ngram_
    for order in range(1, 5):
        assert counts.table_size(order) == sum(1 for g in expected if len(g) == order)
    assert counts.count(("zzz",)) == 0


def test_bpe_pieces_from_the_tokenizer_lab_are_tokens_like_any_other():
    from mllm_core.tokenizers import BPETokenizer

    text = "the cat sat on the mat.\nthe dog sat on the log.\n" * 5
    bpe = BPETokenizer().train(text, 270)
    seqs = [bpe.tokens(line) for line in text.split("\n") if line]
    model = NGramModel(3).fit(seqs)
    for ngram_, count in brute_counts(seqs, 3).items():
        assert model.fitted.count(ngram_) == count
    assert " cat" in model.fitted.continuations(["the"])  # pieces keep their leading space
    assert model.sample(bpe.tokens("the"), 1, seed=0)[0] in model.fitted.continuations(["the"])


def test_the_counts_answer_the_pages_tables():
    counts = count_ngrams(FOX, 3)
    assert counts.count(("<s>", "The")) == 2 and counts.count(("The", "fox", "is")) == 1
    assert counts.continuations(["The"]) == {"quick": 1, "fox": 1}
    assert counts.continuations(["<s>", "The"]) == {"quick": 1, "fox": 1}
    assert counts.continuations(["blue"]) == {}
    table = dict(counts.continuation_table(2))
    assert table[("The",)] == {"quick": 1, "fox": 1} and table[("lazy",)] == {"dog": 2}
    assert sum(map(len, table.values())) == counts.table_size(2)
    with pytest.raises(ValueError, match="stop at order 3"):
        counts.continuations(["The", "quick", "brown"])


def test_counts_of_every_order_are_shared_by_lower_order_models():
    seqs = random_corpus(2)
    counts = count_ngrams(seqs, 5)
    for n in range(1, 6):
        shared, own = NGramModel.from_counts(counts, n), NGramModel(n).fit(seqs)
        for context in [[], ["a"], ["b", "c"], ["a", "b", "c", "d"]]:
            assert shared.next_distribution(context) == pytest.approx(own.next_distribution(context))


def test_mle_is_count_ratio_of_the_brute_force_count():
    seqs = random_corpus(3)
    model, counts = NGramModel(3).fit(seqs), brute_counts(seqs, 3)
    followers = defaultdict(Counter)
    for g, c in counts.items():
        if len(g) == 3:
            followers[g[:2]][g[2]] += c
    for context, nxt in followers.items():
        total = sum(nxt.values())
        assert model.next_distribution(context) == pytest.approx({w: c / total for w, c in nxt.items()})
        assert model.fitted.continuations(context) == dict(nxt)


# ---------------------------------------------------------------------------------------------
# Smoothing


def reference_kneser_ney(seqs, n, token, context):
    """Textbook interpolated Kneser-Ney with dicts (discounts from the count-of-counts), for one query."""
    counts = brute_counts(seqs, n)
    vocab = {w for g in counts for w in g if w != BOS} | {"<unk>"}

    def table(order):  # raw counts at the top order, continuation counts N1+(. g) below
        if order == n:
            return {g: c for g, c in counts.items() if len(g) == n}
        return Counter(g[1:] for g in counts if len(g) == order + 1)

    def discount(tab):
        n1, n2 = sum(c == 1 for c in tab.values()), sum(c == 2 for c in tab.values())
        return n1 / (n1 + 2 * n2) if n1 and n2 else 0.75

    def p(order, ctx):
        tab = table(order)
        d = discount(tab)
        lower = 1 / len(vocab) if order == 1 else p(order - 1, ctx[1:])
        rows = {g[-1]: c for g, c in tab.items() if g[:-1] == ctx}
        total = sum(rows.values())
        if total == 0:
            return lower
        return max(rows.get(token, 0) - d, 0) / total + d * len(rows) / total * lower

    ctx = tuple(context)[-(n - 1) :] if n > 1 else ()
    return p(len(ctx) + 1, ctx)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_kneser_ney_matches_a_textbook_implementation(n):
    seqs = random_corpus(4, n_seqs=12, alphabet="abcd")
    model = NGramModel(n, "kneser-ney").fit(seqs)
    for context in [[], ["a"], ["<s>", "b"], ["a", "b"], ["d", "d"], ["x", "a"]]:
        for token in ["a", "c", "</s>", "zzz"]:
            expected = reference_kneser_ney(seqs, n, "<unk>" if token == "zzz" else token, context)
            assert model.prob(token, context) == pytest.approx(expected), (context, token)


def test_add_k_is_laplace_over_the_vocabulary():
    model = NGramModel(2, "add-k", k=0.5).fit(FOX)
    V = len(model.vocab) - 1  # every token but <s> can come next
    assert model.prob("quick", ["The"]) == pytest.approx((1 + 0.5) / (2 + 0.5 * V))
    assert model.prob("dog", ["The"]) == pytest.approx(0.5 / (2 + 0.5 * V))
    assert model.prob("quick", ["unseen"]) == pytest.approx(1 / V)


@pytest.mark.parametrize("smoothing", ngram.SMOOTHINGS)
@pytest.mark.parametrize("n", [1, 2, 4])
def test_every_distribution_sums_to_one(smoothing, n):
    model = NGramModel(n, smoothing, k=0.1).fit(random_corpus(5))
    for context in [[], ["a"], ["<s>", "<s>", "<s>"], ["e", "a", "q"], ["b", "c", "d"]]:
        probs = model.next_probs(model.fitted.ids(context))
        assert probs.sum() == pytest.approx(1.0)
        assert probs[ngram.BOS_ID] == 0.0  # <s> is never predicted
        if smoothing != "mle":
            assert (np.delete(probs, ngram.BOS_ID) > 0).all()  # smoothing leaves no token impossible


def test_mle_backs_off_to_the_longest_seen_context():
    model = NGramModel(3).fit(FOX)
    assert model.backoff_context(["big", "fox"]) == ("fox",)
    assert model.next_distribution(["big", "fox"]) == model.next_distribution(["fox"])
    assert model.backoff_context(["blue", "whale"]) == ()  # the unigram distribution
    assert model.backoff_context(["brown", "fox"]) == ("brown", "fox")


def test_backoff_steps_are_the_steps_whose_context_was_never_seen():
    model = NGramModel(3).fit(FOX)
    assert backoff_steps(model, ["The", "quick"], ["brown", "fox", "jumps"]) == []
    generated = model.sample(["Zebra"], 6, seed=0)
    steps = backoff_steps(model, ["Zebra"], generated)
    history = ["Zebra", *generated]
    assert steps == [i for i in range(6) if model.fitted.continuations(model.context_for(history[: i + 1])) == {}]
    assert steps[0] == 0  # right after the unseen word


@pytest.mark.parametrize("smoothing", ngram.SMOOTHINGS)
def test_vectorised_scores_equal_one_query_at_a_time(smoothing):
    train, held_out = random_corpus(6), random_corpus(7, n_seqs=5, alphabet="abcdef")
    model = NGramModel(3, smoothing).fit(train)
    expected = []
    for seq in held_out:
        history = [BOS, BOS]  # scoring starts every sequence at its start
        for token in [*seq, EOS]:
            expected.append(model.prob(token, model.context_for(history)))
            history.append(token)
    with np.errstate(divide="ignore"):
        assert model.log_probs(held_out) == pytest.approx(np.log(expected))


def every_context(tokens: list[str], length: int) -> list[tuple[str, ...]]:
    """Every context of `length` tokens a scored text can give: `<s>` padding, then any tokens."""
    return [(BOS,) * pad + rest for pad in range(length + 1) for rest in itertools.product(tokens, repeat=length - pad)]


@pytest.mark.parametrize("smoothing", ngram.SMOOTHINGS)
@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_each_smoothing_writes_one_formula_for_one_context_and_for_every_position(smoothing, n):
    model = NGramModel(n, smoothing, k=0.3).fit(random_corpus(9, alphabet="abc"))
    tokens = ["a", "b", "c", "zzz"]  # "zzz" was never seen: <unk>
    texts, where, expected = [], [], []
    for context in every_context(tokens, n - 1):
        p = model.next_probs(model.fitted.ids(context))  # one context
        start = list(context[context.count(BOS) :])  # a text scored from its start sees the <s> padding
        for token in [*tokens, EOS]:
            texts.append(start if token == EOS else [*start, token])
            where.append(sum(len(t) + 1 for t in texts[:-1]) + len(start))  # the token right after the context
            expected.append(p[model.fitted.ids([token])[0]])
    with np.errstate(divide="ignore"):
        scored = model.log_probs(texts)[where]  # every position at once
        assert scored == pytest.approx(np.log(expected), rel=1e-12)
    assert np.isfinite(scored).all() == (smoothing != "mle")


@pytest.mark.parametrize("seed", [0, 1])
def test_the_longest_seen_context_matches_a_brute_force_search(seed):
    seqs = random_corpus(seed, alphabet="abc")
    counts = count_ngrams(seqs, 4)
    seen = {g[:-1] for g in brute_counts(seqs, 4)}  # contexts seen before a token: counted windows minus their last
    for context in every_context(["a", "b", "c", "zzz"], 3):
        length, row = counts.longest_seen(counts.ids(context))
        assert length == max(j for j in range(4) if context[3 - j :] in seen), context
        assert row == (counts.find(counts.ids(context[3 - length :])) if length else 0)


# ---------------------------------------------------------------------------------------------
# Perplexity and sparsity on real text


@pytest.fixture(scope="module")
def lee():
    train, val = corpora.train_val_split(corpora.load("lee-news").text)
    train_seqs, val_seqs = split_tokens(train), split_tokens(val)
    return count_ngrams(train_seqs, 4), train_seqs, val_seqs


def test_held_out_perplexity_is_infinite_for_mle_and_finite_when_smoothed(lee):
    counts, train, val = lee
    assert NGramModel.from_counts(counts, 3).perplexity(val) == math.inf  # unseen words get p = 0
    add_k = NGramModel.from_counts(counts, 3, "add-k").perplexity(val)
    kn = NGramModel.from_counts(counts, 3, "kneser-ney").perplexity(val)
    assert math.isfinite(add_k) and math.isfinite(kn)
    assert kn < add_k  # Kneser-Ney spends far less mass on unseen continuations


def test_training_perplexity_falls_with_n_while_sparsity_grows(lee):
    counts, train, val = lee
    ppl = [NGramModel.from_counts(counts, n, "kneser-ney").perplexity(train) for n in range(1, 5)]
    assert ppl == sorted(ppl, reverse=True)
    sparsity = [counts.unseen_share(val, n) for n in range(1, 5)]
    assert sparsity == sorted(sparsity) and sparsity[-1] > 0.8 and sparsity[0] < 0.2
    assert count_ngrams(FOX, 2).unseen_share([["The", "quick", "dog"]], 2) == 0.25  # only (quick dog) is new


def test_the_perplexity_curve_gathers_each_orders_numbers(lee):
    counts, train, val = lee
    train, val = train[:20], val[:10]
    points = perplexity_curve(counts, train, val, "kneser-ney", orders=range(1, 5))
    assert [p.n for p in points] == [1, 2, 3, 4]
    for p in points:
        model = NGramModel.from_counts(counts, p.n, "kneser-ney")
        assert (p.train, p.validation, p.zero_share) == (model.perplexity(train), model.perplexity(val), 0.0)
        assert (p.unseen, p.table) == (counts.unseen_share(val, p.n), counts.table_size(p.n))
    (mle,) = perplexity_curve(counts, train, val, "mle", orders=[2])
    assert mle.validation == math.inf and 0 < mle.zero_share < mle.unseen
    (no_val,) = perplexity_curve(counts, train, [], orders=[1])
    assert math.isnan(no_val.validation) and math.isnan(no_val.unseen)


def test_the_perplexity_curve_stops_where_n_outgrows_the_text_and_scores_only_the_head():
    counts = count_ngrams([["hello"]], 3)
    assert [p.n for p in perplexity_curve(counts, [["hello"]], [["hello"]])] == [1, 2]
    counts = count_ngrams(FOX, 2)
    (head,) = perplexity_curve(counts, FOX, FOX, orders=[2], max_tokens=9)  # the first sentence has 9 words
    assert head.train == NGramModel.from_counts(counts, 2).perplexity(FOX[:1])


# ---------------------------------------------------------------------------------------------
# Sampling


def test_sampling_is_seeded_and_follows_certain_paths():
    model = NGramModel(3).fit(FOX)
    assert model.sample(["The", "quick"], 7, seed=1) == ["brown", "fox", "jumps", "over", "the", "lazy", "dog"]
    assert model.sample(["The"], 30, seed=3) == model.sample(["The"], 30, seed=3)
    assert len(model.sample([], 25, seed=0)) == 25


@pytest.mark.parametrize("smoothing", ngram.SMOOTHINGS)
def test_sampling_goes_through_the_shared_sampler(smoothing, monkeypatch):
    calls = []

    def spy(logits, *args, **kwargs):
        calls.append(torch.as_tensor(logits))
        return sampling.sample_next(logits, *args, **kwargs)

    monkeypatch.setattr(ngram, "sample_next", spy)
    model = NGramModel(2, smoothing).fit(FOX)
    history = ["The", *model.sample(["The"], 5, seed=0, top_k=3)]
    # MLE needs no draw where a single continuation was seen ("quick" is always followed by "brown")
    branching = sum(len(model.fitted.continuations(history[i : i + 1])) > 1 for i in range(5))
    assert len(calls) == (branching if smoothing == "mle" else 5) and branching >= 1
    assert calls[0].exp().sum() == pytest.approx(1.0)  # log-probabilities of the continuations


def test_mle_samples_only_ngrams_seen_in_training():
    seqs = random_corpus(8)
    model, seen = NGramModel(3).fit(seqs), brute_counts(seqs, 3)
    out = model.sample([], 300, seed=0)
    padded = [BOS, BOS]
    for token in out:
        assert (*padded[-2:], token) in seen
        padded = [BOS, BOS] if token == EOS else [*padded, token]


def test_greedy_like_top_k_1_takes_the_most_likely_continuation():
    model = NGramModel(2).fit([["a", "b"], ["a", "b"], ["a", "c"]])
    assert model.sample(["a"], 1, top_k=1, seed=0) == ["b"]


# ---------------------------------------------------------------------------------------------
# Bad input


def test_bad_input_raises_clear_value_errors():
    with pytest.raises(ValueError, match="no tokens"):
        NGramModel(2).fit([[], []])
    with pytest.raises(ValueError, match="larger than the text"):
        NGramModel(4).fit([["hello", "world"]])
    with pytest.raises(ValueError, match="smoothing"):
        NGramModel(2, "good-turing")
    with pytest.raises(ValueError, match="k must be > 0"):
        NGramModel(2, "add-k", k=0)
    with pytest.raises(ValueError, match="between 1"):
        NGramModel(0)
    with pytest.raises(ValueError, match="fit the model first"):
        NGramModel(2).prob("a")
    with pytest.raises(ValueError, match="temperature"):
        NGramModel(2).fit(FOX).sample(["The"], 3, temperature=0)


# ---------------------------------------------------------------------------------------------
# Memorisation


def test_memorisation_finds_copied_spans():
    seqs = [["the", "cat", "sat", "on", "the", "mat"], ["a", "dog", "ran"]]
    counts = count_ngrams(seqs, 2)
    m = memorisation(counts, ["a", "dog", "sat", "on", "the", "mat", "</s>", "new"], 3)
    assert (m.longest, m.start) == (5, 2)  # "sat on the mat </s>"
    assert m.copied == [False, False, True, True, True, True, True, False]
    assert m.share == pytest.approx(3 / 6)
    assert memorisation(counts, ["zebra"], 1).longest == 0


# ---------------------------------------------------------------------------------------------
# The TextLM adapter


@pytest.mark.parametrize("level", ["char", "word"])
def test_text_lm_round_trips_and_gives_log_probabilities(level):
    text = "the cat sat on the mat\na dog ran"
    model = train_text_lm(text, 3, level=level)
    assert isinstance(model, lm.TextLM)
    assert model.decode(model.encode(text)) == text
    logits = model.next_logits(model.encode("the"))
    assert logits.shape == (model.vocab_size,)
    assert torch.logsumexp(logits, 0).item() == pytest.approx(0.0, abs=1e-5)
    steps = list(sampling.generate(model, "the", 10, seed=0))
    assert len(steps) == 10


def test_word_text_lm_names_unknown_prompt_words():
    model = train_text_lm(corpora.FOX_TEXT, 2, level="word", smoothing="mle", name="fox bigram")
    assert model.name == "fox bigram"
    assert model.decode(model.encode("The quick")) == "The quick"
    assert "'zebra'" in lm.unknown_note(model, "The zebra")
    assert model.encode("The zebra")[-1] == model.unk_id  # read as <unk>, as the N-gram lab counts it
    probs = model.next_logits(model.encode("The")).exp()
    assert probs[model.encode("quick")[0]].item() == pytest.approx(0.5)


def test_text_tokens_keep_every_line_break_as_the_end_of_a_sequence():
    assert text_tokens("The fox\n\nis fast", "word") == ["The", "fox", EOS, EOS, "is", "fast"]
    assert text_tokens("a b\n", "char") == ["a", " ", "b", EOS]
    assert text_tokens("", "word") == []
    with pytest.raises(ValueError, match="level"):
        text_tokens("a", "byte")
    model = train_text_lm("the cat\nsat", 2, level="word")
    assert model.encode("the dog\n\nsat") == model.model.fitted.ids(text_tokens("the dog\n\nsat", "word"))


def test_text_lm_needs_a_fitted_model():
    with pytest.raises(ValueError, match="fit"):
        NGramTextLM(NGramModel(2))
