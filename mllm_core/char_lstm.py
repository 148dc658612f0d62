"""A character-level LSTM language model (the seed's War and Peace project), for the generation lab.

Where `rnn.py` writes its cells out to show how they work, this model uses torch's fused
`nn.LSTM`, because here the point is the text it learns to write. It answers the family interface
`forward(idx (B, T), targets=None) -> (logits (B, T, V), loss)`, so `lm.TorchTextLM` wraps it
and `sampling.generate` samples it like every other model of the playground.

The loop, the batches and the validation estimate are `lm_train.fit`'s, shared with the
transformer. Train it in the background with `training.TrainingJob(char_lstm_target(text))`, in a
script with `training.run_sync(char_lstm_target(text))`, or directly with `char_lstm_target(text)()`
(no job: no progress reports).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mllm_core.lm import TorchTextLM, unknown_pieces
from mllm_core.lm_train import TrainConfig, encode_split, fit
from mllm_core.sampling import generate
from mllm_core.tokenizers.char import CharTokenizer
from mllm_core.training import NullContext


@dataclass(frozen=True)
class CharLSTMConfig:
    """The model's size; the defaults write readable text in about a minute on a CPU."""

    block_size: int = 64  # characters per training sequence (backprop through this many steps)
    n_embd: int = 32  # size of each character's embedding
    hidden_size: int = 128  # LSTM state size (256 writes better text but trains 3x slower on a CPU)
    n_layers: int = 1  # stacked LSTM layers
    dropout: float = 0.0  # between stacked layers (only used when n_layers > 1)

    def __post_init__(self) -> None:
        if self.block_size < 2:
            raise ValueError("block_size must be at least 2")
        if min(self.n_embd, self.hidden_size, self.n_layers) < 1:
            raise ValueError("sizes must be at least 1")


@dataclass(frozen=True)
class CharLSTMTrainConfig(TrainConfig):
    """`lm_train.TrainConfig` plus the alphabet and the samples published while it trains."""

    steps: int = 2000  # updates in total (about a minute on 2 CPU threads)
    lr: float = 4e-3  # Adam's learning rate
    eval_every: int = 100  # report val_loss every this many steps
    eval_batches: int = 4  # batches averaged for val_loss
    max_vocab: int = 128  # keep the most frequent characters; the rest become <unk>
    max_chars: int | None = 1_000_000  # train on the first characters of the text (None: all of it)
    sample_every: int = 250  # publish a fresh sample and model snapshot every this many steps
    sample_len: int = 200  # characters per sample
    sample_prompt: str = "The "  # what samples start from
    temperature: float = 0.8  # sampling temperature of the published samples


class CharLSTM(nn.Module):
    """Embedding -> LSTM -> linear read-out over the characters.

    >>> m = CharLSTM(CharLSTMConfig(n_embd=4, hidden_size=8), vocab_size=10)
    >>> logits, loss = m(torch.zeros(2, 5, dtype=torch.long), torch.zeros(2, 5, dtype=torch.long))
    >>> tuple(logits.shape), loss.dim()
    ((2, 5, 10), 0)
    """

    def __init__(self, config: CharLSTMConfig, vocab_size: int):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(vocab_size, config.n_embd)
        self.lstm = nn.LSTM(
            config.n_embd,
            config.hidden_size,
            num_layers=config.n_layers,
            dropout=config.dropout if config.n_layers > 1 else 0.0,
            batch_first=True,
        )
        self.head = nn.Linear(config.hidden_size, vocab_size)

    def init_args(self) -> tuple:
        """`CharLSTM(*model.init_args())` builds a model of the same shape."""
        return (self.config, self.embed.num_embeddings)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        out, _ = self.lstm(self.embed(idx))  # (B, T, H); every sequence starts from a zero state
        logits = self.head(out)  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        return logits, loss


def sample_text(lm: TorchTextLM, train: CharLSTMTrainConfig, seed: int | None = None) -> str:
    """`train.sample_len` characters after `train.sample_prompt`, drawn with `sampling.generate`.

    A prompt with characters the model never saw is dropped: the sample starts a new line instead.
    """
    prompt = "" if unknown_pieces(lm, train.sample_prompt) else train.sample_prompt
    steps = generate(lm, prompt, train.sample_len, temperature=train.temperature, seed=seed)
    return prompt + "".join(step.token for step in steps)


def sample_snapshots(ctx, model: nn.Module, as_lm, train: CharLSTMTrainConfig):
    """`lm_train.fit`'s callback that publishes `model` (a `TorchTextLM` copy), `sample` and
    `sample_step` every `train.sample_every` steps and at the last one (the MLP's loop uses it too).

    `as_lm(module) -> TorchTextLM` wraps a copy of the training module with its tokenizer.
    """

    def on_step(step: int, loss: float, val_loss: float | None) -> None:
        if step > 0 and (step % train.sample_every == 0 or step == train.steps):
            lm = as_lm(copy.deepcopy(model).eval())  # readers sample it while training goes on
            ctx.publish(
                model=lm, model_step=step, sample=sample_text(lm, train, seed=train.seed + step), sample_step=step
            )

    return on_step


def char_lstm_target(
    text: str,
    config: CharLSTMConfig | None = None,
    train: CharLSTMTrainConfig | None = None,
    name: str = "char-LSTM",
):
    """A training loop for `TrainingJob`: returns `target(ctx=None) -> TorchTextLM` listed as `name`.

    It trains with `lm_train.fit` (loss every step, val_loss every `eval_every`) and publishes
    `model` (a `TorchTextLM` snapshot), `sample` (text) and `sample_step` (the step that wrote
    it) every `sample_every` steps and at the end. Raises ValueError at once for unusable input.
    """
    config = config or CharLSTMConfig()
    train = train or CharLSTMTrainConfig()
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the training text is empty")
    if len(text) < 4 * (config.block_size + 1):
        raise ValueError(f"the text is too short: need at least {4 * (config.block_size + 1)} characters")

    def target(ctx=None) -> TorchTextLM:
        ctx = ctx if ctx is not None else NullContext()
        body = text[: train.max_chars] if train.max_chars else text
        tokenizer = CharTokenizer().train(body, vocab_size=train.max_vocab)
        data = encode_split(body, tokenizer, train.val_fraction, config.block_size)
        bos_id = tokenizer.stoi.get("\n", tokenizer.stoi.get(" "))
        torch.manual_seed(train.seed)
        model = CharLSTM(config, tokenizer.vocab_size)

        def as_lm(module: nn.Module) -> TorchTextLM:
            return TorchTextLM(name, module, tokenizer, block_size=config.block_size, bos_id=bos_id)

        return as_lm(fit(model, data, config.block_size, train, ctx, sample_snapshots(ctx, model, as_lm, train)))

    return target
