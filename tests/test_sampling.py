"""Spec of the one sampler: validation, filtering, seeded reproducibility, draw frequencies, generate()."""

import math
import random

import pytest
import torch

from mllm_core.lm import TorchTextLM, toy_char_lm, unknown_note, unknown_pieces
from mllm_core.sampling import added_text, filter_logits, generate, make_generator, sample_next
from mllm_core.tokenizers import CharTokenizer

PROBS = torch.tensor([0.4, 0.25, 0.15, 0.1, 0.06, 0.04])
LOGITS = PROBS.log()


class BigramLM:
    """A stand-in TextLM over "ab": after "a" always "b", after "b" "a" or "b" with 0.5 each."""

    name = "bigram"
    vocab = "ab"
    unk_id = None  # no unknown token: text outside "ab" fails in encode

    def encode(self, text):
        return [self.vocab.index(c) for c in text]

    def decode(self, ids):
        return "".join(self.vocab[i] for i in ids)

    @property
    def vocab_size(self):
        return 2

    def next_logits(self, ids):
        if not ids:
            raise ValueError("this model needs a non-empty prompt")
        return torch.tensor([float("-inf"), 0.0]) if ids[-1] == 0 else torch.zeros(2)


# -- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [0, 0.0, -1.0, float("nan"), float("inf"), True, "1"])
def test_temperature_must_be_a_positive_number(temperature):
    with pytest.raises(ValueError, match="temperature"):
        sample_next(LOGITS, temperature=temperature)


@pytest.mark.parametrize("top_k", [0, -3, 2.0, 1.5, True, "3"])
def test_top_k_must_be_an_integer_of_at_least_one(top_k):
    with pytest.raises(ValueError, match="top_k"):
        sample_next(LOGITS, top_k=top_k)


@pytest.mark.parametrize("top_p", [0, 0.0, -0.1, 1.0001, float("nan"), True])
def test_top_p_must_be_in_zero_one(top_p):
    with pytest.raises(ValueError, match="top_p"):
        sample_next(LOGITS, top_p=top_p)


def test_edge_values_are_accepted():
    assert 0 <= sample_next(LOGITS, temperature=1e-3, top_k=1, top_p=1.0) < 6
    assert sample_next(LOGITS, top_k=100) in range(6)  # k larger than V keeps everything


def test_broken_logits_are_refused():
    with pytest.raises(ValueError, match="NaN"):
        sample_next(torch.tensor([0.0, float("nan")]))
    with pytest.raises(ValueError, match="zero probability"):
        sample_next(torch.full((3,), float("-inf")))
    with pytest.raises(ValueError, match="empty"):
        sample_next(torch.tensor([]))


# -- filtering ---------------------------------------------------------------------------------


def test_temperature_divides_the_logits():
    out = filter_logits(torch.tensor([1.0, 2.0, 4.0]), temperature=2.0)
    assert torch.allclose(out, torch.tensor([0.5, 1.0, 2.0]))


def test_top_k_keeps_exactly_the_k_most_likely():
    kept = torch.isfinite(filter_logits(LOGITS, top_k=3))
    assert kept.tolist() == [True, True, True, False, False, False]
    ties = torch.isfinite(filter_logits(torch.zeros(5), top_k=2))
    assert ties.tolist() == [True, True, False, False, False]  # ties: exactly k, lower ids first


@pytest.mark.parametrize(
    ("top_p", "nucleus"),
    [(0.3, 1), (0.4, 1), (0.41, 2), (0.65, 2), (0.66, 3), (0.8, 3), (0.9, 4), (0.96, 5), (0.999, 6)],
)
def test_top_p_keeps_the_minimal_nucleus(top_p, nucleus):
    kept = torch.isfinite(filter_logits(LOGITS, top_p=top_p))
    assert kept.tolist() == [i < nucleus for i in range(6)]
    # minimal: the kept mass reaches top_p, and dropping its least likely token would not
    assert PROBS[:nucleus].sum() >= top_p - 1e-6
    assert PROBS[: nucleus - 1].sum() < top_p - 1e-6


@pytest.mark.parametrize("top_p", [1e-9, 1e-7, 1e-6, 2e-6])
def test_a_tiny_top_p_still_keeps_the_most_likely_token(top_p):
    # top_p minus the rounding tolerance is <= 0 (or nearly): the nucleus must never be empty
    g = make_generator(0)
    for logits in (LOGITS, LOGITS.flip(0), torch.tensor([0.0, 2.0, 2.0, 1.0]), torch.zeros(7)):
        argmax = int(torch.argmax(logits))  # the lowest id among the maxima
        assert {sample_next(logits, top_p=top_p, generator=g) for _ in range(20)} == {argmax}


@pytest.mark.parametrize("vocab", [5, 100, 3000])
@pytest.mark.parametrize("top_p", [0.1, 0.5, 0.9, 0.99])
def test_top_p_matches_a_brute_force_nucleus_on_large_and_flat_vocabularies(vocab, top_p):
    g = torch.Generator().manual_seed(vocab)
    for scale in (0.1, 1.0, 5.0):  # from nearly flat (wide nucleus) to peaked
        logits = torch.randn(vocab, generator=g) * scale
        probs = torch.softmax(logits.double(), -1)
        order = torch.argsort(probs, descending=True, stable=True)
        size = int((probs[order].cumsum(0) < top_p - 1e-6).sum()) + 1  # smallest prefix reaching top_p
        expected = torch.zeros(vocab, dtype=torch.bool)
        expected[order[:size]] = True
        assert torch.equal(torch.isfinite(filter_logits(logits, top_p=top_p)), expected)


def reference_ranking(values: list[float]) -> list[int]:
    """Ids by (value descending, id ascending): the order both top-k and top-p cut."""
    return sorted(range(len(values)), key=lambda i: (-values[i], i))


def reference_nucleus(probs: list[float], top_p: float) -> set[int]:
    """The smallest prefix of the ranking whose mass reaches top_p (within 1e-6), at least one id."""
    kept, mass = set(), 0.0
    for i in reference_ranking(probs):
        kept.add(i)
        mass += probs[i]
        if mass >= top_p - 1e-6:
            break
    return kept


def tie_heavy_logits(rng: random.Random, vocab: int) -> torch.Tensor:
    """(vocab,) logits drawn from a few levels, so that many tokens have exactly equal probabilities."""
    levels = rng.sample([float("-inf"), -8.0, -1.0, 0.0, 0.5, 3.0], rng.randint(1, 4))
    logits = [rng.choice(levels) for _ in range(vocab)]
    logits[rng.randrange(vocab)] = 0.0  # at least one token is possible
    return torch.tensor(logits)


def shuffled_topk(generator: torch.Generator):
    """A `torch.topk` that returns equal values in a random order, and a random subset of them at the cut."""

    def topk(values, k):
        perm = torch.randperm(values.numel(), generator=generator)  # (V,)
        top, idx = torch.sort(values[perm], descending=True, stable=True)  # ties now in a random order
        return torch.return_types.topk((top[:k], perm[idx[:k]]))

    return topk


TOP_PS = [1e-9, 1e-7, 1e-6, 0.1, 0.25, 0.5, 0.75, 0.9, 0.999999, 1.0]


@pytest.mark.parametrize("topk", ["torch", "shuffled"])
@pytest.mark.parametrize("vocabs", [range(1, 13), [100, 200]], ids=["V<=12", "V>64"])
def test_top_k_and_top_p_match_a_brute_force_ranking_on_ties(topk, vocabs, monkeypatch):
    # the shuffled topk shows that ties are decided by id, not by the order topk happens to return them in
    if topk == "shuffled":
        monkeypatch.setattr(torch, "topk", shuffled_topk(torch.Generator().manual_seed(1)))
    rng = random.Random(0)
    for _ in range(300 // len(vocabs)):
        logits = tie_heavy_logits(rng, rng.choice(vocabs))
        vocab, finite = logits.numel(), torch.isfinite(logits)
        ranking, probs = reference_ranking(logits.tolist()), torch.softmax(logits.double(), -1).tolist()
        for k in {1, 2, vocab // 2 + 1, max(vocab - 1, 1), vocab}:
            expected = torch.tensor([i in ranking[:k] for i in range(vocab)]) & finite
            assert torch.equal(torch.isfinite(filter_logits(logits, top_k=k)), expected), (logits, k)
        for top_p in TOP_PS:
            nucleus = range(vocab) if top_p == 1 else reference_nucleus(probs, top_p)  # top_p=1: no filter
            expected = torch.tensor([i in nucleus for i in range(vocab)]) & finite
            assert torch.equal(torch.isfinite(filter_logits(logits, top_p=top_p)), expected), (logits, top_p)


def test_a_tie_group_cut_at_the_edge_of_the_first_topk_window_is_split_by_id(monkeypatch):
    # 40 likely tokens, then 100 equal ones scattered among them; top_p=0.6 needs 17 of the 100,
    # so the cut falls inside the group the first 64-token window only partly holds
    monkeypatch.setattr(torch, "topk", shuffled_topk(torch.Generator().manual_seed(0)))
    logits = torch.tensor([2.0] * 40 + [1.0] * 100)[torch.randperm(140, generator=torch.Generator().manual_seed(0))]
    kept = torch.isfinite(filter_logits(logits, top_p=0.6))
    tied = (logits == 1.0).nonzero()[:, 0]  # ascending ids
    assert kept[logits == 2.0].all() and kept.sum() == 57
    assert kept[tied].tolist() == [True] * 17 + [False] * 83  # the 17 lowest ids of the group


def test_top_p_applies_after_temperature_and_top_k():
    # T=0.5 squares the probabilities: [0.4, 0.25, ...] -> 0.16/0.2502, 0.0625/0.2502, ... ~ [0.64, 0.25, ...]
    kept = torch.isfinite(filter_logits(LOGITS, temperature=0.5, top_p=0.6))
    assert kept.sum() == 1
    kept = torch.isfinite(filter_logits(LOGITS, top_k=2, top_p=0.99))
    assert kept.sum() == 2


def test_tokens_the_model_rules_out_stay_out():
    logits = torch.tensor([float("-inf"), 0.0, 0.0])
    probs = torch.softmax(filter_logits(logits, temperature=5.0), -1)
    assert probs[0] == 0 and torch.allclose(probs[1:], torch.tensor([0.5, 0.5]))


# -- drawing -----------------------------------------------------------------------------------


def test_a_seeded_generator_reproduces_the_draws():
    draws = [[sample_next(LOGITS, generator=g) for _ in range(50)] for g in (make_generator(7), make_generator(7))]
    assert draws[0] == draws[1]
    assert draws[0] != [sample_next(LOGITS, generator=make_generator(8)) for _ in range(50)]
    assert make_generator(None) is None


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, PROBS),
        ({"temperature": 0.5}, PROBS**2 / (PROBS**2).sum()),
        ({"temperature": 2.0}, PROBS**0.5 / (PROBS**0.5).sum()),
        ({"top_k": 2}, torch.tensor([0.4, 0.25, 0, 0, 0, 0]) / 0.65),
        ({"top_p": 0.75}, torch.tensor([0.4, 0.25, 0.15, 0, 0, 0]) / 0.8),
    ],
    ids=["plain", "T=0.5", "T=2", "top-k=2", "top-p=0.75"],
)
def test_draw_frequencies_match_the_filtered_softmax(kwargs, expected):
    n = 8_000
    g = make_generator(0)
    counts = torch.bincount(torch.tensor([sample_next(LOGITS, generator=g, **kwargs) for _ in range(n)]), minlength=6)
    freqs = counts / n
    # 5 standard errors of a binomial proportion: fails on a wrong distribution, not by chance
    tolerance = 5 * torch.sqrt(expected * (1 - expected) / n) + 1e-9
    assert (freqs - expected).abs().le(tolerance).all(), (freqs, expected)
    assert counts[expected == 0].sum() == 0  # excluded ids are never drawn


def test_top_k_one_is_the_argmax():
    g = make_generator(1)
    assert {sample_next(LOGITS, top_k=1, generator=g) for _ in range(100)} == {0}


# -- generate ----------------------------------------------------------------------------------


def test_generate_yields_each_token_with_its_distributions():
    steps = list(generate(BigramLM(), "a", 20, seed=3))
    assert len(steps) == 20
    text = "a" + "".join(s.token for s in steps)
    assert "aa" not in text  # after "a" the model allows only "b"
    for prev, step in zip(text, steps, strict=False):
        assert math.isclose(float(step.probs.sum()), 1.0, rel_tol=1e-6)
        assert step.probs[step.token_id] > 0
        assert step.token == "ab"[step.token_id]
        if prev == "a":
            assert step.raw_probs.tolist() == [0.0, 1.0]


def test_generate_is_reproducible_with_a_seed():
    def run(seed):
        return "".join(s.token for s in generate(BigramLM(), "b", 40, seed=seed))

    assert run(5) == run(5)
    assert len({run(s) for s in range(5)}) > 1


def test_generate_filters_like_sample_next():
    steps = list(generate(toy_char_lm("abcd"), "a", 5, top_k=2, seed=0))
    for step in steps:
        assert int((step.probs > 0).sum()) == 2
        assert torch.allclose(step.raw_probs, torch.full((5,), 0.2))


def test_generate_works_with_a_tiny_top_p():
    steps = list(generate(BigramLM(), "b", 8, top_p=1e-7, seed=0))
    assert "".join(s.token for s in steps) == "abababab"  # after "b" the tie goes to the lower id, "a"
    assert all(s.probs.max() == 1 for s in steps)


def test_greedy_takes_the_most_likely_token_and_shows_the_model_distribution():
    lm = BigramLM()
    steps = list(generate(lm, "a", 6, greedy=True, temperature=0.1))
    assert "".join(s.token for s in steps) == "bababa"  # after "b" the tie goes to the lower id, "a"
    assert all(torch.equal(s.probs, s.raw_probs) for s in steps)


def test_generate_checks_its_input_at_the_call():
    lm = BigramLM()
    with pytest.raises(ValueError, match="non-empty prompt"):
        generate(lm, "", 5)
    with pytest.raises(ValueError, match="temperature"):
        generate(lm, "a", 5, temperature=0)
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate(lm, "a", -1)
    with pytest.raises(ValueError, match="prompt must be text"):
        generate(lm, None, 5)
    assert len(list(generate(toy_char_lm("abc"), "abé", 5))) == 5  # 'é' reads as <unk>: one rule for every model
    assert list(generate(lm, "", 0)) == []  # nothing asked, nothing to complain about


def test_generate_works_with_a_torch_module_and_crops_to_its_block_size():
    seen = []

    class Recorder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(3))

        def forward(self, idx, targets=None):
            seen.append(idx.shape[1])
            return self.w.expand(idx.shape[0], idx.shape[1], 3), None

    tok = CharTokenizer().train("ab")
    lm = TorchTextLM("rec", Recorder(), tok, block_size=4)
    steps = list(generate(lm, "abab", 5, seed=0))
    assert len(steps) == 5 and max(seen) == 4


def test_unknown_characters_are_named():
    lm = toy_char_lm("abc ")
    assert unknown_pieces(lm, "a b c") == []
    assert unknown_pieces(lm, "a?b!c?") == ["?", "!"]
    assert "characters uniform never saw in training: '?', '!'. They read as <unk>" in unknown_note(lm, "a?b!")
    steps = list(generate(lm, "a?b!", 3, seed=0))  # one rule for every model: <unk>, never a refusal
    assert len(steps) == 3


def _text_lms() -> dict[str, object]:
    """A TextLM of each kind over the same words, with the unknown id its vocabulary has."""
    from mllm_core.lm import UniformLM
    from mllm_core.ngram import train_text_lm
    from mllm_core.tokenizers import BPETokenizer, WordTokenizer

    text = "the cat sat on the mat\nthe dog sat"
    return {
        "char": UniformLM(CharTokenizer().train(text), name="char"),
        "char torch": TorchTextLM("char torch", torch.nn.Identity(), CharTokenizer().train(text)),
        "word": UniformLM(WordTokenizer().train(text), name="word"),
        "bpe": UniformLM(BPETokenizer().train(text, vocab_size=260), name="bpe"),
        "char n-gram": train_text_lm(text, 2, level="char", name="char n-gram"),
        "word n-gram": train_text_lm(text, 2, level="word", name="word n-gram"),
    }


@pytest.mark.parametrize(
    ("kind", "unk_id", "prompt", "unknown", "message"),
    [
        ("char", 0, "the zebra!", ["z", "b", "r", "!"], "characters char never saw in training: 'z', 'b', 'r', '!'"),
        ("char torch", 0, "the zebu", ["z", "b", "u"], "characters char torch never saw in training: 'z', 'b', 'u'"),
        ("word", 0, "the zebra sat", ["zebra"], "words word never saw in training: 'zebra'"),
        ("bpe", None, "the zebra 🦓", [], None),
        ("char n-gram", 0, "a zebu", ["z", "b", "u"], "characters char n-gram never saw in training: 'z', 'b', 'u'"),
        ("word n-gram", 0, "the zebra sat", ["zebra"], "words word n-gram never saw in training: 'zebra'"),
    ],
)
def test_every_text_lm_names_the_prompt_pieces_it_reads_as_unknown(kind, unk_id, prompt, unknown, message):
    lm = _text_lms()[kind]
    assert lm.unk_id == unk_id
    assert unknown_pieces(lm, prompt) == unknown
    assert unknown_pieces(lm, "the cat sat") == []
    if message is None:
        assert unknown_note(lm, prompt) == ""
    else:
        assert unknown_note(lm, prompt) == f"The prompt uses {message}. They read as <unk>, the unknown token."
        assert lm.encode(prompt).count(unk_id) >= 1  # what every model reads, and samples on from


def test_a_token_that_only_reads_unk_is_not_unknown():
    from mllm_core.lm import UniformLM
    from mllm_core.tokenizers import BPETokenizer

    tok = BPETokenizer(pattern=None).train("<unk>" * 20, vocab_size=260)  # "<unk>" becomes one token
    assert tok.encode("<unk>") == [259] and tok.unk_id is None
    lm = UniformLM(tok, name="bpe")
    assert unknown_pieces(lm, "<unk>") == [] and unknown_note(lm, "<unk>") == "" and lm.encode("<unk>") == [259]


def test_word_level_generation_keeps_the_spaces_between_words():
    from mllm_core import corpora, ngram

    lm = ngram.train_text_lm(corpora.load("fox").text, n=2, level="word", smoothing="mle")
    steps = list(generate(lm, "The", 8, seed=0))
    generated = "".join(step.token for step in steps)
    prompt_ids = lm.encode("The")
    full = lm.decode(prompt_ids + [step.token_id for step in steps])
    assert "The" + generated == full
    assert generated.startswith(" ") and len(generated.split()) >= 2


def test_added_text_rebuilds_characters_split_into_bytes():
    from mllm_core.tokenizers import BPETokenizer

    tok = BPETokenizer().train("plain ascii text to learn a few merges from", vocab_size=260)
    text = "café 日本 🤖!"
    ids = tok.encode(text)
    assert len(ids) > len(text)  # multi-byte characters are several byte tokens
    pieces = [added_text(tok.decode, ids[: i + 1]) for i in range(len(ids))]
    assert "".join(pieces) == text  # no half characters on the way
    assert all("\ufffd" not in piece for piece in pieces)
