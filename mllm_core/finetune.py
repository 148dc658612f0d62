"""After pretraining: supervised fine-tuning (SFT) on prompt/answer pairs, then preference tuning (DPO).

A pretrained model (the class's default transformer) continues any text it is given; a chat model
answers. Two more stages of training get from one to the other:

- **SFT** trains on prompt/answer pairs such as "Q: What is the capital of Greece?\\nA: " ->
  "Athens\\n", with the loss counted on the answer tokens only (the prompt is masked: the model is
  not taught to write questions). The answer's newline is the stop signal, so a tuned model
  answers in one line and stops, where the base model rambles on.
- **DPO** (Rafailov et al. 2023) takes pairs of (chosen, rejected) answers to the same prompt and
  raises the chosen one's log-probability relative to a frozen reference (the SFT model) while
  lowering the rejected one's: loss = -log σ(β·[(log π(y_c) - log π_ref(y_c)) - (log π(y_r) - log π_ref(y_r))]).
  It optimises RLHF's objective (reward minus β·KL to the reference) without a reward model and
  without a PPO loop.

The data is built offline from gensim's `questions-words.txt` (capitals, currencies, states,
family words, plurals) or uploaded (JSONL or CSV). Unlike `lm_train.fit`, which reads random
windows of one long text, every example here is one pair, padded to the longest of its batch.
The update itself (AdamW, clipping, autocast, checkpoints) follows `lm_train.TrainConfig`.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
from torch import nn
from torch.nn import functional as F

from mllm_core import corpora, sampling
from mllm_core.lm import TorchTextLM
from mllm_core.lm_train import TrainConfig, autocast
from mllm_core.metrics import evaluate

# ---------------------------------------------------------------------------------------------
# Pairs


@dataclass(frozen=True)
class Pair:
    """One instruction example: the prompt the model reads and the completion it should write."""

    prompt: str  # "Q: What is the capital of Greece?\nA: "
    completion: str  # "Athens\n": one line ending in the newline that stops generation
    topic: str = "custom"  # the questions-words section it comes from, or "custom" (uploads)

    @property
    def answer(self) -> str:
        """The completion without its newline: "Athens"."""
        return self.completion.rstrip("\n")


# questions-words section -> (question template, which word of a line pair is asked, which is answered)
QUESTIONS = {
    "capital-common-countries": ("What is the capital of {}?", 1, 0),  # "Athens Greece": ask Greece, answer Athens
    "capital-world": ("What is the capital of {}?", 1, 0),
    "currency": ("What is the currency of {}?", 0, 1),  # "Algeria dinar"
    "city-in-state": ("Which state is {} in?", 0, 1),  # "Chicago Illinois"
    "family": ("What is the female form of {}?", 0, 1),  # "boy girl"
    "gram8-plural": ("What is the plural of {}?", 0, 1),  # "banana bananas"
}
TOPICS = {  # section -> the topic name a page shows
    "capital-common-countries": "capital",
    "capital-world": "capital",
    "currency": "currency",
    "city-in-state": "state",
    "family": "family",
    "gram8-plural": "plural",
}


def make_pair(question: str, answer: str, topic: str = "custom") -> Pair:
    """The one prompt format of the lab.

    >>> make_pair("What is the capital of Greece?", "Athens")
    Pair(prompt='Q: What is the capital of Greece?\\nA: ', completion='Athens\\n', topic='custom')
    """
    return Pair(f"Q: {question}\nA: ", f"{answer}\n", topic)


def question_pairs(lines: list[str] | None = None, max_chars: int | None = None) -> list[Pair]:
    """Prompt/answer pairs from the analogy file gensim's wheel ships (`questions-words.txt`).

    Each line "Athens Greece Baghdad Iraq" holds two word pairs; each pair becomes one question,
    asked once (the first occurrence wins). `max_chars` drops pairs longer than that (prompt +
    completion), e.g. the model's block size + 1.

    >>> question_pairs([": capital-common-countries", "Athens Greece Baghdad Iraq", "Athens Greece Rome Italy"])[1]
    Pair(prompt='Q: What is the capital of Iraq?\\nA: ', completion='Baghdad\\n', topic='capital')
    >>> len(question_pairs([": capital-common-countries", "Athens Greece Baghdad Iraq", "Athens Greece Rome Italy"]))
    3
    """
    if lines is None:
        with open(corpora._gensim_datapath("questions-words.txt"), encoding="utf-8") as f:
            lines = f.read().splitlines()
    pairs: dict[str, Pair] = {}
    section = None
    for line in lines:
        if line.startswith(":"):
            section = line[1:].strip()
            continue
        if section not in QUESTIONS or not line.strip():
            continue
        template, ask, answer = QUESTIONS[section]
        words = line.split()
        for a, b in ((words[0], words[1]), (words[2], words[3])):
            pair = make_pair(template.format((a, b)[ask]), (a, b)[answer], TOPICS[section])
            if max_chars is None or len(pair.prompt + pair.completion) <= max_chars:
                pairs.setdefault(pair.prompt, pair)
    return list(pairs.values())


def split_pairs(pairs: list[Pair], held_out: float = 0.2, seed: int = 0) -> tuple[list[Pair], list[Pair]]:
    """Shuffle (seeded) and split **by pair** into (train, held-out): no held-out question is trained on.

    >>> train, held = split_pairs([make_pair(str(i), "x") for i in range(10)], 0.2)
    >>> len(train), len(held), set(train) & set(held)
    (8, 2, set())
    """
    if len(pairs) < 2:
        raise ValueError(f"need at least 2 prompt/answer pairs (one to train on, one held out), got {len(pairs)}")
    if not 0 < held_out < 1:
        raise ValueError("the held-out share must be between 0 and 1")
    order = list(pairs)
    random.Random(seed).shuffle(order)
    n_held = min(len(order) - 1, max(1, round(len(order) * held_out)))
    return order[n_held:], order[:n_held]


def _completion(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


def parse_pairs(data: bytes, filename: str) -> list[Pair]:
    """Read uploaded pairs: JSONL (one {"prompt": ..., "completion": ...} per line) or CSV (a header
    naming `prompt` and `completion` columns). A completion gets its stop newline if it lacks one.

    Raises ValueError naming the line of the first problem.

    >>> parse_pairs(b'{"prompt": "Q: 2+2?\\\\nA: ", "completion": "4"}', "a.jsonl")
    [Pair(prompt='Q: 2+2?\\nA: ', completion='4\\n', topic='custom')]
    >>> parse_pairs(b'prompt,completion\\nhi,there,extra\\n', "a.csv")
    Traceback (most recent call last):
    ...
    ValueError: a.csv, line 2: expected 2 columns (prompt, completion), found 3
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ValueError(f"{filename}, line {line}: not UTF-8 text") from None
    if filename.lower().endswith(".csv"):
        pairs = _parse_csv(text, filename)
    elif filename.lower().endswith((".jsonl", ".json")):
        pairs = _parse_jsonl(text, filename)
    else:
        raise ValueError(f"{filename}: upload a .jsonl or a .csv file")
    if not pairs:
        raise ValueError(f"{filename}: no prompt/answer pairs in the file")
    return pairs


def _check_fields(prompt, completion, where: str) -> Pair:
    for name, value in (("prompt", prompt), ("completion", completion)):
        if not isinstance(value, str):
            raise ValueError(f"{where}: '{name}' must be text, not {type(value).__name__}")
    if not prompt.strip() or not completion.strip():
        raise ValueError(f"{where}: the prompt and the completion must not be empty")
    if "\n" in completion.rstrip("\n"):
        raise ValueError(f"{where}: the completion must be one line (it may end with a newline)")
    return Pair(prompt, _completion(completion))


def _parse_jsonl(text: str, filename: str) -> list[Pair]:
    pairs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{filename}, line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise ValueError(f'{where}: expected an object {{"prompt": ..., "completion": ...}}')
        missing = [k for k in ("prompt", "completion") if k not in record]
        if missing:
            raise ValueError(f"{where}: missing {' and '.join(repr(k) for k in missing)}")
        pairs.append(_check_fields(record["prompt"], record["completion"], where))
    return pairs


def _parse_csv(text: str, filename: str) -> list[Pair]:
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        return []
    except csv.Error as exc:
        raise ValueError(f"{filename}, line 1: {exc}") from None
    if header != ["prompt", "completion"]:
        raise ValueError(f"{filename}, line 1: the header must be 'prompt,completion', found {','.join(header)!r}")
    pairs = []
    start = reader.line_num  # the line a row starts on (a quoted field may span lines)
    try:
        for row in reader:
            where = f"{filename}, line {start + 1}"
            start = reader.line_num
            if not row:
                continue
            if len(row) != 2:
                raise ValueError(f"{where}: expected 2 columns (prompt, completion), found {len(row)}")
            pairs.append(_check_fields(row[0], row[1], where))
    except csv.Error as exc:
        raise ValueError(f"{filename}, line {reader.line_num}: {exc}") from None
    return pairs


def pairs_to_jsonl(pairs: list[Pair]) -> str:
    """One {"prompt", "completion"} object per line: what `parse_pairs` reads back.

    >>> pairs_to_jsonl([make_pair("2+2?", "4")])
    '{"prompt": "Q: 2+2?\\\\nA: ", "completion": "4\\\\n"}\\n'
    """
    return "".join(
        json.dumps({"prompt": p.prompt, "completion": p.completion}, ensure_ascii=False) + "\n" for p in pairs
    )


# ---------------------------------------------------------------------------------------------
# Tokens, the answer mask and the two losses


@dataclass(frozen=True)
class Encoded:
    """A pair as ids: the prompt's first, then the completion's."""

    ids: list[int]
    n_prompt: int  # the first n_prompt ids are the prompt

    def mask(self) -> list[int]:
        """1 where the *target* is an answer token: inputs ids[:-1] predict targets ids[1:].

        >>> Encoded([5, 6, 7, 8, 9], 3).mask()  # targets 6 7 | 8 9: the loss counts 8 and 9
        [0, 0, 1, 1]
        """
        n = len(self.ids) - 1
        return [int(t >= self.n_prompt - 1) for t in range(n)]


def encode_pairs(tokenizer, pairs: list[Pair], block_size: int) -> list[Encoded]:
    """Encode prompt and completion separately (so no token straddles the two) and check the length.

    A pair longer than `block_size` + 1 tokens does not fit the model's window: ValueError naming it.
    """
    out = []
    for number, pair in enumerate(pairs, start=1):
        prompt, completion = list(tokenizer.encode(pair.prompt)), list(tokenizer.encode(pair.completion))
        if not prompt or not completion:
            raise ValueError(f"pair {number}: the prompt and the completion must not be empty")
        if len(prompt) + len(completion) > block_size + 1:
            raise ValueError(
                f"pair {number} ({pair.prompt!r} -> {pair.completion!r}) is {len(prompt) + len(completion)} tokens "
                f"long, but the model reads at most {block_size} + 1: shorten it"
            )
        out.append(Encoded(prompt + completion, len(prompt)))
    return out


def collate(examples: list[Encoded], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad a batch to its longest pair: x (B, T) inputs, y (B, T) targets, mask (B, T) float, 1 on answer targets.

    >>> x, y, m = collate([Encoded([1, 2, 3], 2), Encoded([4, 5], 1)])
    >>> x.tolist(), y.tolist(), m.tolist()
    ([[1, 2], [4, 0]], [[2, 3], [5, 0]], [[0.0, 1.0], [1.0, 0.0]])
    """
    T = max(len(e.ids) for e in examples) - 1
    x = torch.full((len(examples), T), pad_id, dtype=torch.long)  # (B, T)
    y = torch.full((len(examples), T), pad_id, dtype=torch.long)  # (B, T)
    mask = torch.zeros(len(examples), T)  # (B, T)
    for b, e in enumerate(examples):
        n = len(e.ids) - 1
        x[b, :n] = torch.tensor(e.ids[:-1])
        y[b, :n] = torch.tensor(e.ids[1:])
        mask[b, :n] = torch.tensor(e.mask(), dtype=torch.float)
    return x, y, mask


def token_logprobs(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """log p(y_t | x_≤t) of each target: logits (B, T, V), y (B, T) -> (B, T)."""
    return torch.log_softmax(logits.float(), dim=-1).gather(-1, y.unsqueeze(-1)).squeeze(-1)


def masked_loss(logits: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """SFT's loss: the mean cross-entropy over answer targets only (mask (B, T) = 1), prompts and padding ignored."""
    return -(token_logprobs(logits, y) * mask).sum() / mask.sum()


def sequence_logprob(model: nn.Module, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """log π(answer | prompt) of each pair: the sum of its answer tokens' log-probabilities, (B,)."""
    logits, _ = model(x)  # (B, T, V)
    return (token_logprobs(logits, y) * mask).sum(dim=1)


@dataclass(frozen=True)
class DPOTerms:
    loss: torch.Tensor  # scalar: mean of -log σ(β·margin)
    chosen_reward: torch.Tensor  # (B,) β·(log π(y_c) - log π_ref(y_c)): DPO's implicit reward
    rejected_reward: torch.Tensor  # (B,) β·(log π(y_r) - log π_ref(y_r))

    @property
    def margin(self) -> torch.Tensor:
        """(B,) implicit reward of the chosen answer minus that of the rejected one."""
        return self.chosen_reward - self.rejected_reward


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float,
) -> DPOTerms:
    """DPO on sequence log-probabilities (each (B,)): -log σ(β·[(π_c - ref_c) - (π_r - ref_r)]), averaged.

    At the start the policy equals its reference, every term is 0 and the loss is log 2:

    >>> z = torch.zeros(3)
    >>> round(dpo_loss(z, z, z, z, beta=0.1).loss.item(), 4)
    0.6931
    """
    if not beta > 0:
        raise ValueError(f"β must be > 0 (got {beta}): it sets how far the model may move from its reference")
    chosen = beta * (policy_chosen - ref_chosen)  # (B,)
    rejected = beta * (policy_rejected - ref_rejected)  # (B,)
    loss = -F.logsigmoid(chosen - rejected).mean()
    return DPOTerms(loss, chosen.detach(), rejected.detach())


# ---------------------------------------------------------------------------------------------
# The base model, with room for characters it never saw


def extend_vocabulary(lm: TorchTextLM, text: str) -> tuple[TorchTextLM, list[str]]:
    """A copy of a char-level GPT that also knows the characters of `text` outside its vocabulary.

    Real fine-tuning adds tokens the same way (chat templates' special tokens): new rows are
    appended to the (tied) embedding, initialised to the mean of the old rows, so the old ids, and
    every score on the old text, stay the same. Returns (the model, the new characters); the model
    itself when nothing is new.
    """
    from mllm_core.tokenizers import CharTokenizer
    from mllm_core.transformer import GPT

    tok = lm.tokenizer
    new = sorted({c for c in text if c not in getattr(tok, "stoi", {c: 0})})
    if not new:
        return lm, []
    if not isinstance(tok, CharTokenizer) or not isinstance(lm.module, GPT):
        raise ValueError(f"characters the base model never saw: {''.join(new)!r}; remove them")
    bigger = CharTokenizer()
    bigger.set_vocab([*tok.itos, *new])
    old = lm.module
    module = GPT(replace(old.config, vocab_size=bigger.vocab_size))
    state = {k: v.detach().cpu() for k, v in old.state_dict().items()}
    wte = state["wte.weight"]  # (V, C)
    state["wte.weight"] = torch.cat([wte, wte.mean(0, keepdim=True).expand(len(new), -1)])  # (V + k, C)
    state["lm_head.weight"] = state["wte.weight"]  # tied
    module.load_state_dict(state)
    return TorchTextLM(lm.name, module.eval(), bigger, block_size=lm.block_size, bos_id=lm.bos_id), new


def _snapshot(lm: TorchTextLM, name: str | None = None) -> TorchTextLM:
    """A copy of `lm` on the CPU, in eval mode, that training can no longer touch."""
    module = copy.deepcopy(lm.module).cpu().eval()
    return TorchTextLM(name or lm.name, module, lm.tokenizer, lm.block_size, lm.bos_id)


def fresh_copy(lm: TorchTextLM, name: str, seed: int) -> TorchTextLM:
    """A randomly initialised model of the same size and tokenizer: the start without pretraining."""
    torch.manual_seed(seed)
    return TorchTextLM(name, type(lm.module)(lm.module.config), lm.tokenizer, lm.block_size, lm.bos_id)


# ---------------------------------------------------------------------------------------------
# Answers and what they are scored on


def answer(lm: TorchTextLM, prompt: str, max_chars: int, greedy: bool = True, seed: int = 0, temperature=1.0) -> str:
    """The model's answer to `prompt`: generated up to and including its first newline, at most `max_chars`."""
    out = []
    steps = sampling.generate(lm, prompt, max_chars, temperature=temperature, greedy=greedy, seed=seed)
    for step in steps:
        out.append(step.token)
        if "\n" in step.token:
            break
    return "".join(out)


def follows_format(text: str) -> bool:
    """One non-empty line ending in a newline: the trained format.

    >>> follows_format("Athens\\n"), follows_format("Athens is a city in"), follows_format("\\n")
    (True, False, False)
    """
    return text.endswith("\n") and "\n" not in text[:-1] and bool(text.strip())


def in_text(word: str, text: str) -> bool:
    """`word` occurs in `text` as a whole word.

    >>> in_text("Rome", "the Romans of Rome."), in_text("Rome", "Romans")
    (True, False)
    """
    return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text) is not None


@dataclass(frozen=True)
class Scores:
    """How a model answers held-out prompts."""

    answers: list[str]  # the model's answer to each prompt, in order
    format_rate: float  # share that are one line ending in a newline
    exact_seen: float | None  # exact-match rate on pairs whose answer occurs in the pretraining text
    n_seen: int
    exact_unseen: float | None  # ... and on pairs whose answer never occurs there
    n_unseen: int


def _rate(hits: list[bool]) -> float | None:
    return sum(hits) / len(hits) if hits else None


def score(lm: TorchTextLM, pairs: list[Pair], pretraining: str, max_chars: int, check=None, **gen) -> Scores:
    """Answer every prompt (greedy unless `gen` says otherwise) and score format and exact match."""
    answers = []
    for pair in pairs:
        if check is not None:
            check()
        answers.append(answer(lm, pair.prompt, max_chars, **gen))
    exact = [a == p.completion for a, p in zip(answers, pairs, strict=True)]
    seen = [in_text(p.answer, pretraining) for p in pairs]
    return Scores(
        answers,
        sum(map(follows_format, answers)) / len(answers),
        _rate([e for e, s in zip(exact, seen, strict=True) if s]),
        sum(seen),
        _rate([e for e, s in zip(exact, seen, strict=True) if not s]),
        len(seen) - sum(seen),
    )


# ---------------------------------------------------------------------------------------------
# The shared update loop


def _optimise(
    models: dict[str, nn.Module],
    batch_losses: Callable[[torch.Generator], dict[str, tuple[torch.Tensor, dict[str, float]]]],
    config: TrainConfig,
    ctx,
    checkpoint: Callable[[int], None],
) -> None:
    """`config.steps` AdamW updates of every model in `models` (they train side by side, on the same batches).

    `batch_losses(gen)` draws one batch and returns {model name: (loss, extra metrics)}; metrics
    go to `ctx.report` as `loss_<name>` plus the extras; `checkpoint(step)` runs at step 0,
    every `eval_every` steps and at the end.
    """
    optimizers = {
        name: torch.optim.AdamW(m.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        for name, m in models.items()
    }
    gen = torch.Generator().manual_seed(config.seed)
    ctx.set_total(config.steps)
    checkpoint(0)
    for m in models.values():
        m.train()
    for step in range(1, config.steps + 1):
        ctx.check()
        metrics = {}
        with autocast(ctx.device):
            losses = batch_losses(gen)
        for name, (loss, extras) in losses.items():
            optimizers[name].zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                nn.utils.clip_grad_norm_(models[name].parameters(), config.grad_clip)
            optimizers[name].step()
            metrics[f"loss_{name}"] = loss.item()
            metrics.update(extras)
        ctx.report(step=step, **metrics)
        if step % config.eval_every == 0 or step == config.steps:
            checkpoint(step)  # in no_grad; the GPT has no dropout by default, so train mode is harmless
    for m in models.values():
        m.eval()


def _draw(examples: list[Encoded], batch_size: int, gen: torch.Generator) -> list[Encoded]:
    return [examples[i] for i in torch.randint(len(examples), (batch_size,), generator=gen).tolist()]


# ---------------------------------------------------------------------------------------------
# Supervised fine-tuning


@dataclass(frozen=True)
class SFTConfig(TrainConfig):
    """`lm_train.TrainConfig` plus the data split, the comparison run and the evaluation."""

    steps: int = 200  # ~30 epochs of the ~220 training pairs at batch 32
    lr: float = 3e-4  # 10x below pretraining's 3e-3: start from what the model knows (1e-3 forgets far more)
    eval_every: int = 25  # steps between held-out SFT losses
    held_out: float = 0.2  # share of the pairs never trained on (split by pair)
    compare_random: bool = True  # also train a randomly initialised model of the same size, side by side
    eval_pairs: int = 60  # held-out prompts the models answer (greedy) before and after
    max_answer_chars: int = 40  # an answer is cut here if it never ends its line
    forget_chars: int = 10_000  # held-out pretraining characters scored for forgetting (bits/char)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.eval_pairs < 1 or self.max_answer_chars < 1 or self.forget_chars < 1:
            raise ValueError("eval_pairs, max_answer_chars and forget_chars must be at least 1")


PRETRAINED, RANDOM = "pretrained", "random"  # the two starts of SFT (metric suffixes: loss_pretrained, ...)


@dataclass(frozen=True)
class SFTResult:
    tuned: TorchTextLM  # the fine-tuned copy of the base
    held_out: list[Pair]  # the prompts scored below, in order
    base: Scores
    after: Scores
    random: Scores | None  # the random start after the same SFT (None when not compared)
    bpc_before: float  # bits/char of the held-out pretraining text under the base ...
    bpc_after: float  # ... and under the tuned model: the cost of forgetting
    config: SFTConfig  # the settings of the run
    new_chars: list[str] = field(default_factory=list)  # characters added to the base's vocabulary


def steps_to_reach(curve: list[tuple[int, float]], target: float) -> int | None:
    """The first step whose value is at or below `target` (None: never).

    >>> steps_to_reach([(0, 3.0), (25, 1.2), (50, 0.9)], 1.0)
    50
    """
    return next((step for step, value in curve if value <= target), None)


def tuned_name(base: str, stage: str) -> str:
    """>>> tuned_name("transformer", "SFT")
    'transformer + SFT (tuned)'
    """
    return f"{base.removesuffix(' (tuned)')} + {stage} (tuned)"


def prepare(base: TorchTextLM, pairs: list[Pair]) -> tuple[TorchTextLM, list[Encoded], list[str]]:
    """Check the pairs against the base model before training: (the base with room for new characters,
    the encoded pairs, the new characters). Raises ValueError for an empty set or a pair too long."""
    if not pairs:
        raise ValueError("there are no prompt/answer pairs to train on")
    lm, new = extend_vocabulary(base, "".join(p.prompt + p.completion for p in pairs))
    return lm, encode_pairs(lm.tokenizer, pairs, lm.block_size or lm.module.config.block_size), new


def heldout_loss(model: nn.Module, examples: list[Encoded], device) -> float:
    """SFT's masked loss on every held-out pair, in one batch."""
    x, y, mask = collate(examples)
    with torch.no_grad():
        logits, _ = model(x.to(device))
    return masked_loss(logits, y.to(device), mask.to(device)).item()


def sft_target(base: TorchTextLM, pairs: list[Pair], config: SFTConfig, zoo_config=None):
    """The SFT job: `training.spec(sft_target, base, pairs, SFTConfig())`. Result: an `SFTResult`.

    Reports `loss_pretrained` (and `loss_random`) every step, `val_pretrained` (and `val_random`)
    at checkpoints; publishes `model` (a copy of the tuned model) at checkpoints. The base is
    scored first (answers, bits/char on the zoo's held-out text), then the tuned model.
    """
    from mllm_core import zoo

    def loop(ctx) -> SFTResult:
        lm, _, new = prepare(base, pairs)
        train, held = split_pairs(pairs, config.held_out, config.seed)
        train_ex, held_ex = prepare(lm, train)[1], prepare(lm, held)[1]
        pretraining, validation = zoo.split(zoo_config or zoo.default_config())
        validation = validation[: config.forget_chars]
        shown = held[: config.eval_pairs]
        before = score(lm, shown, pretraining, config.max_answer_chars, ctx.check)
        bpc_before = evaluate(lm, validation, check=ctx.check).bits_per_char
        tuned = _snapshot(lm, tuned_name(lm.name, "SFT"))
        runs = {PRETRAINED: tuned}
        if config.compare_random:
            runs[RANDOM] = fresh_copy(lm, "random start + SFT", config.seed)
        modules = {name: run.module.to(ctx.device) for name, run in runs.items()}

        def batch_losses(gen):
            x, y, mask = (t.to(ctx.device) for t in collate(_draw(train_ex, config.batch_size, gen)))
            return {name: (masked_loss(m(x)[0], y, mask), {}) for name, m in modules.items()}

        def checkpoint(step: int) -> None:
            ctx.report(step=step, **{f"val_{n}": heldout_loss(m, held_ex, ctx.device) for n, m in modules.items()})
            ctx.publish(model=_snapshot(tuned))

        _optimise(modules, batch_losses, config, ctx, checkpoint)
        for m in modules.values():
            m.cpu()
        after = score(tuned, shown, pretraining, config.max_answer_chars, ctx.check)
        rand = score(runs[RANDOM], shown, pretraining, config.max_answer_chars, ctx.check) if RANDOM in runs else None
        bpc_after = evaluate(tuned, validation, check=ctx.check).bits_per_char
        return SFTResult(tuned, shown, before, after, rand, bpc_before, bpc_after, config, new)

    return loop


# ---------------------------------------------------------------------------------------------
# Preference tuning


@dataclass(frozen=True)
class Preference:
    prompt: str
    chosen: str  # the completion the rule prefers
    rejected: str  # the one it does not


@dataclass(frozen=True)
class Rule:
    """A visible preference: how to build (chosen, rejected) from a correct answer, and how to tell
    whether a generated answer follows it."""

    label: str
    chosen: Callable[[str], str]  # answer (no newline) -> the preferred completion
    rejected: Callable[[str], str]  # answer -> the dispreferred completion
    follows: Callable[[str], bool]  # a generated completion -> does it follow the preference?


def _exclaim(a: str) -> str:
    return f"{a}!\n"


def _period(a: str) -> str:
    return f"{a}.\n"


def _ends_with_bang(text: str) -> bool:
    """An answer, then "!": a bare "!" does not count (plain DPO finds that shortcut; see `DPOConfig`).

    >>> _ends_with_bang("Athens!\\n"), _ends_with_bang("!\\n"), _ends_with_bang("Athens.\\n")
    (True, False, False)
    """
    body = text.rstrip("\n")
    return body.endswith("!") and bool(body.rstrip("!").strip())


def _bare(a: str) -> str:
    return f"{a}\n"


def _ramble(a: str) -> str:
    return f"{a}, or so I think\n"


def _no_hedge(text: str) -> bool:
    return follows_format(text) and "," not in text


RULES = {
    "exclaim": Rule('Answers ending with "!" over answers ending with "."', _exclaim, _period, _ends_with_bang),
    "short": Rule("The bare answer over one that rambles on (“…, or so I think”)", _bare, _ramble, _no_hedge),
}


def preference_pairs(pairs: list[Pair], rule: str) -> list[Preference]:
    """(chosen, rejected) for every pair, by the named rule in `RULES`.

    >>> preference_pairs([make_pair("Capital of Greece?", "Athens")], "exclaim")[0]
    Preference(prompt='Q: Capital of Greece?\\nA: ', chosen='Athens!\\n', rejected='Athens.\\n')
    """
    if rule not in RULES:
        raise ValueError(f"no preference rule {rule!r}; choose one of {', '.join(RULES)}")
    r = RULES[rule]
    return [Preference(p.prompt, r.chosen(p.answer), r.rejected(p.answer)) for p in pairs]


@dataclass(frozen=True)
class DPOConfig(TrainConfig):
    """`lm_train.TrainConfig` plus β, the rule and the evaluation."""

    steps: int = 200  # the SFT model already answers in the format; this only moves its taste
    lr: float = 3e-4  # as SFT's
    eval_every: int = 10  # steps between probability checkpoints
    beta: float = 0.1  # strength of the pull back to the reference (the SFT model): small = move far
    nll_weight: float = 1.0  # α: add α·(SFT loss on the chosen answers), as RPO / Llama 3 do. The default, by
    # decision: plain DPO (α = 0) lowers both answers' probabilities on this small model and drifts to rare
    # characters ("!" and "." differ in one token), or, where "!" is common, answers a bare "!"; see the README
    rule: str = "exclaim"  # a key of RULES
    held_out: float = 0.2  # the same split as SFT (by pair, same seed)
    eval_pairs: int = 60  # held-out prompts sampled before and after
    max_answer_chars: int = 40  # an answer is cut here if it never ends its line
    temperature: float = 1.0  # answers are sampled, as a chat model's would be

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.beta > 0:
            raise ValueError(f"β must be > 0 (got {self.beta}): it sets how far the model may move from its reference")
        if self.rule not in RULES:
            raise ValueError(f"no preference rule {self.rule!r}; choose one of {', '.join(RULES)}")


@dataclass(frozen=True)
class DPOResult:
    tuned: TorchTextLM
    held_out: list[Pair]
    before: list[str]  # sampled answers of the SFT model (the reference)
    after: list[str]  # sampled answers of the DPO model, same prompts and seeds
    follow_before: float  # share of answers that follow the rule
    follow_after: float


def _sampled(lm: TorchTextLM, pairs: list[Pair], config: DPOConfig, check) -> list[str]:
    out = []
    for i, pair in enumerate(pairs):
        check()
        out.append(
            answer(
                lm,
                pair.prompt,
                config.max_answer_chars,
                greedy=False,
                seed=config.seed + i,
                temperature=config.temperature,
            )
        )
    return out


def dpo_target(sft: TorchTextLM, pairs: list[Pair], config: DPOConfig):
    """The DPO job: `training.spec(dpo_target, sft_model, pairs, DPOConfig(beta=0.1))`. Result: a `DPOResult`.

    Trains a copy of `sft` on the rule's (chosen, rejected) pairs against a frozen copy (the
    reference). Reports `loss_policy`, `margin` (mean implicit reward margin), `reward_chosen`,
    `reward_rejected` every step and `logp_chosen` / `logp_rejected` (mean log-probability per
    answer token on held-out pairs) at checkpoints.
    """

    def loop(ctx) -> DPOResult:
        rule = RULES[config.rule]
        train, held = split_pairs(pairs, config.held_out, config.seed)
        prefs, held_prefs = preference_pairs(train, config.rule), preference_pairs(held, config.rule)
        text = "".join(p.prompt + p.chosen + p.rejected for p in prefs + held_prefs)
        ref_lm, _ = extend_vocabulary(sft, text)
        block = ref_lm.block_size or ref_lm.module.config.block_size

        def encoded(ps: list[Preference]) -> tuple[list[Encoded], list[Encoded]]:
            chosen = encode_pairs(ref_lm.tokenizer, [Pair(p.prompt, p.chosen) for p in ps], block)
            rejected = encode_pairs(ref_lm.tokenizer, [Pair(p.prompt, p.rejected) for p in ps], block)
            return chosen, rejected

        (train_c, train_r), (held_c, held_r) = encoded(prefs), encoded(held_prefs)
        ref = copy.deepcopy(ref_lm.module).to(ctx.device).eval().requires_grad_(False)
        policy = _snapshot(ref_lm, tuned_name(sft.name, f"DPO {config.rule}"))
        module = policy.module.to(ctx.device)
        shown = held[: config.eval_pairs]
        before = _sampled(ref_lm, shown, config, ctx.check)

        def batch_losses(gen):
            idx = torch.randint(len(train_c), (config.batch_size,), generator=gen).tolist()
            both = collate([train_c[i] for i in idx] + [train_r[i] for i in idx])  # chosen then rejected, one pass
            x, y, mask = (t.to(ctx.device) for t in both)
            pi = sequence_logprob(module, x, y, mask)  # (2B,)
            with torch.no_grad():
                ref_lp = sequence_logprob(ref, x, y, mask)  # (2B,)
            B = len(idx)
            terms = dpo_loss(pi[:B], pi[B:], ref_lp[:B], ref_lp[B:], config.beta)
            extras = {
                "margin": terms.margin.mean().item(),
                "reward_chosen": terms.chosen_reward.mean().item(),
                "reward_rejected": terms.rejected_reward.mean().item(),
            }
            loss = terms.loss
            if config.nll_weight:
                loss = loss + config.nll_weight * -(pi[:B].sum() / mask[:B].sum())  # mean NLL per chosen answer token
            return {"policy": (loss, extras)}

        def checkpoint(step: int) -> None:
            with torch.no_grad():
                lp = {}
                for name, ex in (("chosen", held_c), ("rejected", held_r)):
                    x, y, mask = (t.to(ctx.device) for t in collate(ex))
                    lp[f"logp_{name}"] = (sequence_logprob(module, x, y, mask).sum() / mask.sum()).item()
            ctx.report(step=step, **lp)

        _optimise({"policy": module}, batch_losses, config, ctx, checkpoint)
        module.cpu()
        after = _sampled(policy, shown, config, ctx.check)
        rate = lambda answers: sum(map(rule.follows, answers)) / len(answers)  # noqa: E731
        return DPOResult(policy, shown, before, after, rate(before), rate(after))

    return loop


def state_dict_bytes(lm: TorchTextLM) -> bytes:
    """The tuned weights as a `.pt` state dict: load with `torch.load(f, weights_only=True)` into
    `GPT(GPTConfig(...))` of the same config (vocab_size included)."""
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in lm.module.state_dict().items()}, buffer)
    return buffer.getvalue()


__all__ = [
    "RULES",
    "DPOConfig",
    "DPOResult",
    "Encoded",
    "Pair",
    "Preference",
    "SFTConfig",
    "SFTResult",
    "Scores",
    "collate",
    "dpo_loss",
    "dpo_target",
    "encode_pairs",
    "extend_vocabulary",
    "follows_format",
    "make_pair",
    "masked_loss",
    "parse_pairs",
    "pairs_to_jsonl",
    "preference_pairs",
    "question_pairs",
    "score",
    "sft_target",
    "split_pairs",
    "state_dict_bytes",
    "steps_to_reach",
]
