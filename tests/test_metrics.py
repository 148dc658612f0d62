"""Spec of bits per character: known answers, per-character normalisation, batched == step by step."""

import math

import pytest
import torch

from mllm_core.lm import TorchTextLM, UniformLM, toy_char_lm
from mllm_core.metrics import bits_per_char, evaluate, perplexity, sliding_windows
from mllm_core.tokenizers import CharTokenizer


class CycleLM:
    """Deterministic: after character i comes character i+1 (mod V), with probability ~1."""

    name = "cycle"
    block_size = 1

    def __init__(self, alphabet):
        self.alphabet = alphabet

    def encode(self, text):
        return [self.alphabet.index(c) for c in text]

    def decode(self, ids):
        return "".join(self.alphabet[i] for i in ids)

    @property
    def vocab_size(self):
        return len(self.alphabet)

    def next_logits(self, ids):
        logits = torch.full((self.vocab_size,), -50.0)
        logits[(ids[-1] + 1) % self.vocab_size if ids else 0] = 50.0
        return logits


class WordUniformLM:
    """Uniform over 4 "words" of 3 characters each plus a space token: 5 tokens, 2 tokens per 4 chars."""

    name = "words"
    words = ["cat", "dog", "sun", "sea", " "]

    def encode(self, text):
        ids = []
        for i, word in enumerate(text.split(" ")):
            ids += ([4] if i else []) + [self.words.index(word)]
        return ids

    def decode(self, ids):
        return "".join(self.words[i] for i in ids)

    @property
    def vocab_size(self):
        return 5

    def next_logits(self, ids):
        return torch.zeros(5)


class LastTwoModule(torch.nn.Module):
    """A causal module whose logits at t depend on tokens t-1 and t only (a tiny 1-D convolution)."""

    def __init__(self, vocab_size, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.now = torch.nn.Parameter(torch.randn(vocab_size, vocab_size, generator=g))
        self.before = torch.nn.Parameter(torch.randn(vocab_size, vocab_size, generator=g))

    def forward(self, idx, targets=None):
        logits = self.now[idx]  # (B, T, V)
        logits[:, 1:] += self.before[idx[:, :-1]]
        return logits, None


def test_a_uniform_model_costs_log2_v_bits_per_character():
    lm = toy_char_lm("abcdefg")  # 7 characters + <unk>
    ev = evaluate(lm, "gfedcbaabcdefg" * 3)
    assert ev.bits_per_char == pytest.approx(math.log2(8))
    assert ev.perplexity == pytest.approx(8.0)
    assert ev.n_chars == ev.n_tokens == 42


def test_a_deterministic_model_costs_almost_nothing():
    lm = CycleLM("abcd")
    assert bits_per_char(lm, "abcdabcdabcdab") < 1e-6
    assert perplexity(lm, "abcdabcd") == pytest.approx(1.0)
    assert bits_per_char(lm, "aaaa") > 50  # and a surprise costs a lot


def test_bits_are_divided_by_characters_not_tokens():
    text = "cat dog sun sea cat"  # 9 tokens (5 words + 4 spaces), 19 characters
    ev = evaluate(WordUniformLM(), text)
    assert ev.n_tokens == 9 and ev.n_chars == 19
    assert ev.bits == pytest.approx(9 * math.log2(5))
    assert ev.bits_per_char == pytest.approx(9 * math.log2(5) / 19)
    assert ev.bits_per_token == pytest.approx(math.log2(5))
    assert ev.token_perplexity == pytest.approx(5.0)


def test_max_chars_scores_a_prefix():
    lm = toy_char_lm("ab")
    assert evaluate(lm, "ab" * 100, max_chars=10).n_chars == 10


def test_a_model_that_needs_context_pays_a_uniform_guess_for_the_first_token():
    """Every model covers every character of the text (the leaderboard once showed 29,999 vs 30,000)."""
    tok = CharTokenizer().train("abc")
    lm = TorchTextLM("m", LastTwoModule(tok.vocab_size), tok, block_size=8)
    ev = evaluate(lm, "abcabc")
    assert (ev.n_tokens, ev.n_chars) == (6, 6)
    rest = -sum(math.log2(p) for p in _probs_after_first(lm, "abcabc"))
    assert ev.bits == pytest.approx(math.log2(tok.vocab_size) + rest)
    with_bos = evaluate(TorchTextLM("m", lm.module, tok, block_size=8, bos_id=0), "abcabc")
    assert (with_bos.n_tokens, with_bos.n_chars) == (6, 6)
    assert evaluate(lm, "a").bits == pytest.approx(math.log2(tok.vocab_size))
    with pytest.raises(ValueError, match="too short"):
        evaluate(lm, "")


def _probs_after_first(lm, text: str) -> list[float]:
    """p(token t | tokens before it) for t >= 1, one next_logits call each (brute force)."""
    ids = lm.encode(text)
    return [float(torch.softmax(lm.next_logits(ids[:t]), -1)[ids[t]]) for t in range(1, len(ids))]


@pytest.mark.parametrize("block_size", [2, 5, 16, None])
@pytest.mark.parametrize("bos", [None, 0])
def test_batched_windows_equal_token_by_token_scoring(block_size, bos):
    """The sliding-window path gives every token the context it needs, like next_logits does."""
    tok = CharTokenizer().train("abcdefgh ")
    module = LastTwoModule(tok.vocab_size)
    text = "a bad cafe faced a big bag of beef " * 12
    batched = evaluate(TorchTextLM("m", module, tok, block_size=block_size, bos_id=bos), text)

    class Stepwise:  # the same model seen only through next_logits
        name, block_size = "s", None
        inner = TorchTextLM("m", module, tok, block_size=block_size, bos_id=bos)
        encode, decode = inner.encode, inner.decode
        vocab_size = tok.vocab_size

        def next_logits(self, ids):
            return self.inner.next_logits(ids)

    stepwise = evaluate(Stepwise(), text)
    assert (batched.n_tokens, batched.n_chars) == (stepwise.n_tokens, stepwise.n_chars)
    assert batched.bits == pytest.approx(stepwise.bits, rel=1e-9)


@pytest.mark.parametrize(("n", "window", "stride"), [(1, 4, 2), (10, 4, 2), (11, 4, 3), (7, 1, 1), (100, 16, 8)])
def test_sliding_windows_score_every_target_once_with_enough_context(n, window, stride):
    scored = []
    for start, length, first_new in sliding_windows(n, window, stride):
        assert 1 <= length <= window
        for j in range(first_new, length):
            target = start + j + 1
            scored.append(target)
            assert start == 0 or j >= window - stride  # context after the first window
    assert scored == list(range(1, n + 1))


def test_a_check_callback_can_interrupt_scoring():
    class Stop(Exception):
        pass

    def check():
        raise Stop

    with pytest.raises(Stop):
        evaluate(UniformLM(CharTokenizer().train("ab")), "ab" * 300, check=check)
