"""A character-level LSTM language model (the seed's War and Peace project), for the generation lab.

Where `rnn.py` writes its cells out to show how they work, this model uses torch's fused
`nn.LSTM`, because here the point is the text it learns to write. It answers the family interface
`forward(idx (B, T), targets=None) -> (logits (B, T, V), loss)`, so `lm.TorchTextLM` wraps it
and `sampling.generate` samples it like every other model of the playground.

Train it in the background with `training.TrainingJob(char_lstm_target(text, config))`, or in a
script with `training.run_sync(char_lstm_target(text, config))`, or directly with
`char_lstm_target(text, config)()` (no job: no progress reports).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mllm_core.lm import TorchTextLM, unknown_pieces
from mllm_core.sampling import generate
from mllm_core.tokenizers.char import CharTokenizer


@dataclass
class CharLSTMConfig:
    """Model size and training schedule; the defaults write readable text in about a minute on a CPU."""

    name: str = "char-LSTM"  # how the trained model is listed in the generation lab
    block_size: int = 64  # characters per training sequence (backprop through this many steps)
    n_embd: int = 32  # size of each character's embedding
    hidden_size: int = 128  # LSTM state size (256 writes better text but trains 3x slower on a CPU)
    n_layers: int = 1  # stacked LSTM layers
    dropout: float = 0.0  # between stacked layers (only used when n_layers > 1)
    vocab_size: int = 128  # keep the most frequent characters; the rest become <unk>
    max_chars: int | None = 1_000_000  # train on the first characters of the text (None: all of it)
    val_fraction: float = 0.1  # share of the text (by lines) held out for val_loss
    batch_size: int = 32  # sequences per update
    lr: float = 4e-3  # Adam's learning rate
    max_steps: int = 2000  # updates in total (about a minute on 2 CPU threads)
    eval_every: int = 100  # report val_loss every this many steps
    eval_batches: int = 4  # batches averaged for val_loss
    sample_every: int = 250  # publish a fresh sample and model snapshot every this many steps
    sample_len: int = 200  # characters per sample
    sample_prompt: str = "The "  # what samples start from
    temperature: float = 0.8  # sampling temperature of the published samples
    seed: int = 0  # initialisation, batches and samples


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

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        out, _ = self.lstm(self.embed(idx))  # (B, T, H); every sequence starts from a zero state
        logits = self.head(out)  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        return logits, loss


def _validate(text: str, config: CharLSTMConfig) -> None:
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the training text is empty")
    if config.block_size < 2:
        raise ValueError("block_size must be at least 2")
    if min(config.n_embd, config.hidden_size, config.n_layers, config.batch_size, config.max_steps) < 1:
        raise ValueError("sizes, batch size and max_steps must be at least 1")
    if config.lr <= 0:
        raise ValueError("learning rate must be positive")
    if not 0 < config.val_fraction < 1:
        raise ValueError("val_fraction must be between 0 and 1")
    if len(text) < 4 * (config.block_size + 1):
        raise ValueError(f"the text is too short: need at least {4 * (config.block_size + 1)} characters")


def split_text(text: str, val_fraction: float) -> tuple[str, str]:
    """Hold out the last `val_fraction` of the characters (at a line break when there is one).

    >>> split_text("abcd\\nefgh\\nij", 0.1)
    ('abcd\\nefgh\\n', 'ij')
    """
    cut = int(len(text) * (1 - val_fraction))
    newline = text.rfind("\n", 0, cut)
    if newline > len(text) // 2:
        cut = newline + 1
    return text[:cut], text[cut:]


def _batch(data: torch.Tensor, block: int, batch: int, gen: torch.Generator, device: str):
    starts = torch.randint(0, len(data) - block - 1, (batch,), generator=gen)
    rows = starts.unsqueeze(1) + torch.arange(block + 1)  # (B, T+1)
    chunk = data[rows].to(device)
    return chunk[:, :-1], chunk[:, 1:]  # inputs (B, T), targets (B, T)


def sample_text(lm: TorchTextLM, config: CharLSTMConfig, seed: int | None = None) -> str:
    """`config.sample_len` characters after `config.sample_prompt`, drawn with `sampling.generate`.

    A prompt with characters the model never saw is dropped: the sample starts a new line instead.
    """
    prompt = "" if unknown_pieces(lm, config.sample_prompt) else config.sample_prompt
    steps = generate(lm, prompt, config.sample_len, temperature=config.temperature, seed=seed)
    return prompt + "".join(step.token for step in steps)


def char_lstm_target(text: str, config: CharLSTMConfig | None = None):
    """A training loop for `TrainingJob`: returns `target(ctx=None) -> TorchTextLM`.

    With a ctx it calls `ctx.check()` every step, reports `loss` every step and `val_loss` every
    `eval_every` steps, and publishes `model` (a `TorchTextLM` snapshot) and `sample` (text)
    every `sample_every` steps and at the end. Raises ValueError at once for unusable input.
    """
    config = config or CharLSTMConfig()
    _validate(text, config)

    def target(ctx=None) -> TorchTextLM:
        device = ctx.device if ctx is not None else "cpu"
        body = text[: config.max_chars] if config.max_chars else text
        train_text, val_text = split_text(body, config.val_fraction)
        if len(val_text) < config.block_size + 2:  # too little held out: validate on the training text
            val_text = train_text
        tokenizer = CharTokenizer().train(train_text, vocab_size=config.vocab_size)
        train_data = torch.tensor(tokenizer.encode(train_text), dtype=torch.long)  # (N,)
        val_data = torch.tensor(tokenizer.encode(val_text), dtype=torch.long)  # (M,)
        bos_id = tokenizer.stoi.get("\n", tokenizer.stoi.get(" "))

        torch.manual_seed(config.seed)
        gen = torch.Generator().manual_seed(config.seed)
        model = CharLSTM(config, tokenizer.vocab_size).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=config.lr)
        if ctx is not None:
            ctx.set_total(config.max_steps)

        def snapshot() -> TorchTextLM:
            frozen = copy.deepcopy(model).eval()  # readers sample it while training goes on
            return TorchTextLM(config.name, frozen, tokenizer, block_size=config.block_size, bos_id=bos_id)

        @torch.no_grad()
        def val_loss() -> float:
            model.eval()
            vgen = torch.Generator().manual_seed(config.seed + 1)  # the same batches every time
            losses = [
                model(*_batch(val_data, config.block_size, config.batch_size, vgen, device))[1].item()
                for _ in range(config.eval_batches)
            ]
            model.train()
            return sum(losses) / len(losses)

        for step in range(1, config.max_steps + 1):
            if ctx is not None:
                ctx.check()
            _, loss = model(*_batch(train_data, config.block_size, config.batch_size, gen, device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # LSTMs occasionally spike
            opt.step()
            if ctx is None:
                continue
            last = step == config.max_steps
            if step % config.eval_every == 0 or last:
                ctx.report(step=step, loss=loss.item(), val_loss=val_loss())
            else:
                ctx.report(step=step, loss=loss.item())
            if step % config.sample_every == 0 or last:
                lm = snapshot()
                ctx.publish(model=lm, sample=sample_text(lm, config, seed=config.seed + step))
        return snapshot()

    return target
