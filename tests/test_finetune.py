"""Fine-tuning: the pairs, the parsers, SFT's answer mask and DPO's loss against brute force and the
formula, and short seeded SFT and DPO runs that must teach a small pretrained GPT the format and the rule."""

import json
import math

import pytest
import torch

from mllm_core import corpora
from mllm_core import finetune as ft
from mllm_core.lm import TorchTextLM
from mllm_core.tokenizers import CharTokenizer
from mllm_core.training import NullContext
from mllm_core.transformer import GPT, GPTConfig, GPTTrainConfig, train_gpt


class Recorder(NullContext):
    """A job context that keeps the reported history, as a job's snapshot would."""

    def __init__(self):
        super().__init__("cpu")
        self.history: dict[str, list[tuple[int, float]]] = {}

    def report(self, step=None, **metrics):
        for name, value in metrics.items():
            self.history.setdefault(name, []).append((step, value))


# ---------------------------------------------------------------------------------------------
# Pairs


def test_questions_words_become_pairs_split_by_pair():
    pairs = ft.question_pairs()
    by_prompt = {p.prompt: p.completion for p in pairs}
    assert by_prompt["Q: What is the capital of Greece?\nA: "] == "Athens\n"
    assert by_prompt["Q: What is the plural of banana?\nA: "] == "bananas\n"
    assert {p.topic for p in pairs} == {"capital", "currency", "state", "family", "plural"}
    assert len(by_prompt) == len(pairs) > 250  # each question asked once
    assert all(len(p.prompt + p.completion) <= 65 for p in ft.question_pairs(max_chars=65))
    train, held = ft.split_pairs(pairs, 0.2, seed=3)
    assert not {p.prompt for p in train} & {p.prompt for p in held}
    assert len(held) == round(0.2 * len(pairs)) and len(train) + len(held) == len(pairs)
    assert ft.split_pairs(pairs, 0.2, seed=3) == (train, held)  # seeded
    with pytest.raises(ValueError, match="at least 2"):
        ft.split_pairs(pairs[:1])


def test_jsonl_round_trip_and_the_stop_newline():
    pairs = ft.question_pairs()[:5]
    assert ft.parse_pairs(ft.pairs_to_jsonl(pairs).encode(), "p.jsonl") == [
        ft.Pair(p.prompt, p.completion) for p in pairs
    ]
    (pair,) = ft.parse_pairs(b'{"prompt": "2+2=", "completion": "4"}\n\n', "p.jsonl")
    assert pair.completion == "4\n"


@pytest.mark.parametrize(
    "data,name,message",
    [
        (
            b'{"prompt": "a", "completion": "b"}\n{"prompt": "a", "completion": "b"}\n{"prompt": "a", ',
            "x.jsonl",
            "x.jsonl, line 3: not valid JSON",
        ),
        (b'{"prompt": "a", "completion": "b"}\n{"prompt": "a"}\n', "x.jsonl", "line 2: missing 'completion'"),
        (b'{"prompt": "a", "completion": 4}\n', "x.jsonl", "line 1: 'completion' must be text"),
        (b'["a", "b"]\n', "x.jsonl", "line 1: expected an object"),
        (b'{"prompt": "a", "completion": "b\\nc"}\n', "x.jsonl", "line 1: the completion must be one line"),
        (b"prompt,completion\na,b\nc\n", "x.csv", "x.csv, line 3: expected 2 columns"),
        (b'prompt,completion\n"multi\nline",b\nc,d,e\n', "x.csv", "line 4: expected 2 columns"),
        (b"question,answer\na,b\n", "x.csv", "line 1: the header must be 'prompt,completion'"),
        (b"prompt,completion\na,\n", "x.csv", "line 2: the prompt and the completion must not be empty"),
        (b"prompt,completion\n", "x.csv", "no prompt/answer pairs"),
        (b"", "x.jsonl", "no prompt/answer pairs"),
        (b'{"prompt": "a", "completion": "b"}\n\xff\xfe', "x.jsonl", "line 2: not UTF-8"),
        (b"a,b", "x.txt", "upload a .jsonl or a .csv"),
    ],
)
def test_malformed_uploads_name_the_line(data, name, message):
    with pytest.raises(ValueError, match=message):
        ft.parse_pairs(data, name)


def test_csv_pairs_are_read():
    got = ft.parse_pairs(b'prompt,completion\n"Q: 1+1?\nA: ",2\nhi,there\n', "p.csv")
    assert got == [ft.Pair("Q: 1+1?\nA: ", "2\n"), ft.Pair("hi", "there\n")]


def test_a_pair_longer_than_the_block_is_a_clear_message():
    tok = CharTokenizer().train("abc\n")
    with pytest.raises(ValueError, match="pair 2 .* 9 tokens long, but the model reads at most 7"):
        ft.encode_pairs(tok, [ft.Pair("ab", "c\n"), ft.Pair("abcab", "cab\n")], block_size=7)


# ---------------------------------------------------------------------------------------------
# SFT's mask and DPO's loss


def small_gpt(tok, seed=0, block=16) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=block, n_layer=1, n_head=2, n_embd=8)).eval()


def test_sft_loss_counts_answer_tokens_only_as_brute_force_does():
    tok = CharTokenizer().train("Q: ab?\nA: xyz\n")
    model = small_gpt(tok)
    pairs = [ft.Pair("Q: ab?\nA: ", "xyz\n"), ft.Pair("Q: b?\nA: ", "z\n"), ft.Pair("Q: a?\nA: ", "yy\n")]
    examples = ft.encode_pairs(tok, pairs, 16)
    x, y, mask = ft.collate(examples)
    loss = ft.masked_loss(model(x)[0], y, mask)
    # brute force: each pair alone, unpadded; -log p of every answer character given all before it
    terms = []
    for pair in pairs:
        ids = tok.encode(pair.prompt + pair.completion)
        logits = model(torch.tensor([ids[:-1]]))[0][0]  # (T, V)
        for t in range(len(tok.encode(pair.prompt)), len(ids)):
            terms.append(-torch.log_softmax(logits[t - 1], -1)[ids[t]].item())
    assert len(terms) == mask.sum().item() == 4 + 2 + 3
    assert loss.item() == pytest.approx(sum(terms) / len(terms), abs=1e-5)
    # and the prompt really is ignored: its targets can be anything
    assert ft.masked_loss(model(x)[0], torch.where(mask.bool(), y, 0), mask).item() == pytest.approx(loss.item())


def test_dpo_loss_matches_the_formula_on_tiny_logits():
    # one pair, vocabulary {0, 1}, answers of one token: chosen 0, rejected 1, after the same prompt
    policy = torch.tensor([[[2.0, 0.5]]])  # (B=1, T=1, V=2) the policy's logits
    ref = torch.tensor([[[1.0, 1.0]]])  # the reference's: both answers equally likely
    chosen, rejected, mask = torch.tensor([[0]]), torch.tensor([[1]]), torch.ones(1, 1)
    lp = lambda logits, y: (ft.token_logprobs(logits, y) * mask).sum(1)  # noqa: E731
    beta = 0.5
    terms = ft.dpo_loss(lp(policy, chosen), lp(policy, rejected), lp(ref, chosen), lp(ref, rejected), beta)
    # by hand: log p_policy(0) = 2 - log(e^2 + e^0.5), log p_policy(1) = 0.5 - log(...), reference log(1/2) each
    z = math.log(math.exp(2) + math.exp(0.5))
    r_c, r_r = beta * (2 - z - math.log(0.5)), beta * (0.5 - z - math.log(0.5))
    assert terms.chosen_reward.item() == pytest.approx(r_c, abs=1e-6)
    assert terms.rejected_reward.item() == pytest.approx(r_r, abs=1e-6)
    assert terms.margin.item() == pytest.approx(beta * 1.5, abs=1e-6)
    assert terms.loss.item() == pytest.approx(-math.log(1 / (1 + math.exp(-(r_c - r_r)))), abs=1e-6)
    with pytest.raises(ValueError, match="β must be > 0"):
        ft.dpo_loss(*(torch.zeros(1),) * 4, beta=0.0)
    with pytest.raises(ValueError, match="β must be > 0"):
        ft.DPOConfig(beta=-1)


def test_preference_rules_are_visible_and_checkable():
    (p,) = ft.preference_pairs([ft.make_pair("Plural of cat?", "cats")], "short")
    assert (p.chosen, p.rejected) == ("cats\n", "cats, or so I think\n")
    assert ft.RULES["exclaim"].follows("cats!\n") and not ft.RULES["exclaim"].follows("cats.\n")
    assert not ft.RULES["exclaim"].follows("!\n")  # a bare "!" is no answer: plain DPO's shortcut
    assert ft.RULES["short"].follows("cats\n") and not ft.RULES["short"].follows("cats, or so I think\n")
    with pytest.raises(ValueError, match="no preference rule"):
        ft.preference_pairs([p], "polite")


def test_new_characters_extend_the_vocabulary_without_changing_old_scores():
    tok = CharTokenizer().train("abc \n")
    lm = TorchTextLM("m", small_gpt(tok), tok, block_size=16)
    bigger, new = ft.extend_vocabulary(lm, "Q: abc!")
    assert new == ["!", ":", "Q"] and bigger.vocab_size == tok.vocab_size + 3
    ids = torch.tensor([tok.encode("ab c")])
    old, now = lm.forward_logits(ids), bigger.forward_logits(ids)  # (1, T, V), (1, T, V + 3)
    # the old tokens keep their logits, so their probabilities only share mass with the 3 new ones
    assert torch.allclose(old, now[..., : tok.vocab_size], atol=1e-6)
    assert bigger.decode(bigger.encode("Q: abc!")) == "Q: abc!"
    assert ft.extend_vocabulary(bigger, "abc!") == (bigger, [])


# ---------------------------------------------------------------------------------------------
# Short seeded runs: the seeds of the issue, at toy size


@pytest.fixture(scope="module")
def base() -> TorchTextLM:
    """A small GPT pretrained for a few seconds on the Wikipedia excerpt: the toy "base model"."""
    torch.manual_seed(0)
    config = GPTConfig(block_size=64, n_layer=1, n_head=2, n_embd=32)
    return train_gpt(
        corpora.load().text, config, GPTTrainConfig(steps=400, batch_size=16, max_chars=60_000, eval_every=1000)
    )


@pytest.fixture(scope="module")
def pairs() -> list[ft.Pair]:
    return [p for p in ft.question_pairs(max_chars=65) if p.topic in ("capital", "plural")]


@pytest.fixture(scope="module")
def sft(base, pairs):
    ctx = Recorder()
    config = ft.SFTConfig(steps=300, lr=1e-3, batch_size=16, eval_every=20, eval_pairs=20, forget_chars=2000)
    return ft.sft_target(base, pairs, config)(ctx), ctx.history


def test_sft_teaches_the_format_faster_from_pretraining(sft):
    """The issue's seeds at toy size. Transfer learning: on held-out pairs the pretrained start reaches the
    random start's final loss in less than half the steps. With this base (400 steps of pretraining) and
    300 SFT steps at lr 1e-3 it does so at step 100, 120, 100, 80, 80 for SFT seeds 0-4 (checked by hand;
    the test runs seed 0). With 150 steps at lr 2e-3 the random start reaches the floor of the answer loss
    (facts a toy model cannot know) too soon, and the claim fails for seed 0 (step 80 of 150)."""
    result, history = sft
    assert result.base.format_rate <= 0.10  # the base rambles on
    assert result.after.format_rate >= 0.90  # the tuned model answers in one line and stops
    assert all(a.endswith("\n") for a in result.after.answers if ft.follows_format(a))
    pre, rand = history["val_pretrained"], history["val_random"]
    assert all(p < r for (step, p), (_, r) in zip(pre, rand, strict=True) if step <= result.config.steps // 2)
    reached = ft.steps_to_reach(pre, rand[-1][1])
    assert reached is not None and reached < result.config.steps / 2
    assert result.bpc_after > result.bpc_before  # forgetting: held-out Wikipedia got harder
    assert result.tuned.name.endswith("(tuned)")


def test_dpo_teaches_the_exclamation_mark(sft, pairs):
    ctx = Recorder()
    config = ft.DPOConfig(steps=100, lr=2e-3, eval_every=20, eval_pairs=20)
    result = ft.dpo_target(sft[0].tuned, pairs, config)(ctx)
    assert result.follow_before <= 0.20
    assert result.follow_after >= 0.80
    margins = [m for _, m in ctx.history["margin"]]
    assert margins[0] == pytest.approx(0.0, abs=1e-5) and margins[-1] > 0.5  # the policy starts as its reference
    assert ctx.history["logp_chosen"][-1][1] - ctx.history["logp_rejected"][-1][1] > 0.5


def test_pairs_download_as_jsonl_lines(pairs):
    lines = ft.pairs_to_jsonl(pairs[:3]).splitlines()
    assert [json.loads(line)["completion"] for line in lines] == [p.completion for p in pairs[:3]]
