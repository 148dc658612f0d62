"""A tiny GPT: causal multi-head self-attention written out, trained live on char or BPE tokens.

The transformer rung of the model ladder. Where `rnn.py` squeezes the whole past into one hidden
state updated token by token, every position here looks back at every earlier position at once
through attention, softmax(QKᵀ/√d_k)·V with a causal mask so that no token sees its future.
The model follows nanoGPT's layout (token + position embedding, pre-LayerNorm blocks of attention
and MLP with residuals, a tied output head) and shares the family interface
`forward(idx, targets=None) -> (logits, loss)`, so `mllm_core.lm.TorchTextLM` can sample it.

`attention_maps(idx)` returns the softmax weights of every layer and head for a sentence, and
`gpt_target(text, config)` is a `TrainingJob` loop that keeps those maps for a fixed probe
sentence at every checkpoint, so a page can replay how the attention pattern formed.
For one head on one sentence with every intermediate kept, see `attention.py`.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn as nn
from torch.nn import functional as F

from mllm_core.lm import TorchTextLM
from mllm_core.lm_train import TokenSplit, TrainConfig, encode_split, fit
from mllm_core.training import NullContext

POS_ENCODINGS = ("learned", "sinusoidal")


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int = 256  # number of token ids; `gpt_target` sets it from the tokenizer
    block_size: int = 64  # longest context the model sees (positions 0 .. block_size-1)
    n_layer: int = 2  # transformer blocks; 2 is enough to learn character patterns in a minute
    n_head: int = 4  # attention heads per block, each of size n_embd // n_head
    n_embd: int = 64  # width of the residual stream
    dropout: float = 0.0  # off by default: a model this small trained this briefly does not overfit
    pos_encoding: str = (
        "learned"  # "learned" (a trained table, like GPT-2) or "sinusoidal" (fixed, like the 2017 paper)
    )

    def __post_init__(self) -> None:
        if self.pos_encoding not in POS_ENCODINGS:
            raise ValueError(f"pos_encoding must be one of {POS_ENCODINGS}, not {self.pos_encoding!r}")
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if self.pos_encoding == "sinusoidal" and self.n_embd % 2:
            raise ValueError("the sinusoidal encoding needs an even n_embd (sine and cosine pairs)")
        if not 0 <= self.dropout < 1:
            raise ValueError("dropout must be in [0, 1)")


# ---------------------------------------------------------------------------------------------
# Positional encodings


def sinusoidal_encoding(n_positions: int, dim: int) -> torch.Tensor:
    """The fixed encoding of "Attention is all you need": (n_positions, dim).

    PE[pos, 2i] = sin(pos / 10000^(2i/dim)) and PE[pos, 2i+1] = cos(pos / 10000^(2i/dim)).
    Each pair of columns is a clock hand turning at its own speed, so every position gets a
    unique pattern, every row has the same norm √(dim/2), and PE[p]·PE[p+k] depends only on k.

    >>> sinusoidal_encoding(2, 4)
    tensor([[0.0000, 1.0000, 0.0000, 1.0000],
            [0.8415, 0.5403, 0.0100, 0.9999]])
    """
    if n_positions < 1 or dim < 2 or dim % 2:
        raise ValueError("need at least one position and an even dimension >= 2")
    pos = torch.arange(n_positions, dtype=torch.float32)[:, None]  # (P, 1)
    freq = torch.pow(10000.0, -torch.arange(0, dim, 2, dtype=torch.float32) / dim)  # (dim/2,)
    angles = pos * freq  # (P, dim/2)
    pe = torch.empty(n_positions, dim)
    pe[:, 0::2] = torch.sin(angles)
    pe[:, 1::2] = torch.cos(angles)
    return pe


def position_similarity(pe: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """(P, P) dot products of position vectors (cosine similarity when `normalize`).

    >>> position_similarity(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
    tensor([[1., 0.],
            [0., 1.]])
    """
    if normalize:
        pe = F.normalize(pe, dim=-1)
    return pe @ pe.T


# ---------------------------------------------------------------------------------------------
# The model


class CausalSelfAttention(nn.Module):
    """n_head heads of softmax(QKᵀ/√d_k)·V side by side, then one output projection."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.dropout = config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)  # Q, K and V of all heads in one matmul
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        causal = torch.tril(torch.ones(config.block_size, config.block_size, dtype=torch.bool))
        self.register_buffer("causal", causal.view(1, 1, config.block_size, config.block_size), persistent=False)

    def forward(
        self, x: torch.Tensor, need_weights: bool = False, causal: bool = True, fast: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, T, C) -> (y (B, T, C), weights (B, nh, T, T) or None).

        `fast` uses torch's fused `scaled_dot_product_attention` (same numbers, less memory) when
        the weights are not needed; `causal=False` lifts the mask, to show what it prevents.
        """
        B, T, C = x.size()
        hs = C // self.n_head
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)  # 3 x (B, T, C)
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        weights = None
        if fast and causal and not need_weights:
            p = self.dropout if self.training else 0.0
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)  # (B, nh, T, hs)
        else:
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(hs)  # (B, nh, T, T): how well query t matches key s
            if causal:  # position t may only look at s <= t
                scores = scores.masked_fill(~self.causal[:, :, :T, :T], float("-inf"))
            weights = F.softmax(scores, dim=-1)  # (B, nh, T, T), each row sums to 1
            y = self.attn_dropout(weights) @ v  # (B, nh, T, hs): weighted sum of the values
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C): heads side by side again
        return self.resid_dropout(self.c_proj(y)), weights


class MLP(nn.Module):
    """Per-position feed-forward: widen 4x, GELU, project back."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))  # (B, T, C)


class Block(nn.Module):
    """Pre-LayerNorm block: x + attention(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, **attn_kwargs: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        a, weights = self.attn(self.ln_1(x), **attn_kwargs)
        x = x + a  # (B, T, C): attention adds what the other positions say
        x = x + self.mlp(self.ln_2(x))  # (B, T, C): then each position thinks on its own
        return x, weights


class GPT(nn.Module):
    """>>> model = GPT(GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=2, n_embd=8))
    >>> logits, loss = model(torch.zeros(3, 5, dtype=torch.long), targets=torch.zeros(3, 5, dtype=torch.long))
    >>> tuple(logits.shape), loss.shape, tuple(model.attention_maps(torch.zeros(3, 5, dtype=torch.long)).shape)
    ((3, 5, 10), torch.Size([]), (1, 3, 2, 5, 5))
    """

    block_class: type[nn.Module] = Block  # a subclass may swap the block (induction.AttentionOnlyGPT drops the MLP)

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.fast = True  # fused attention in forward(); attention_maps() always takes the explicit path
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)  # token embedding
        if config.pos_encoding == "learned":
            self.wpe = nn.Embedding(config.block_size, config.n_embd)  # one trained vector per position
        else:
            self.register_buffer("pe", sinusoidal_encoding(config.block_size, config.n_embd), persistent=False)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(self.block_class(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying: reading and writing a token share one vector
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # residual projections start small, as in GPT-2
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def init_args(self) -> tuple:
        """`GPT(*model.init_args())` builds a model of the same shape (how it travels between processes)."""
        return (self.config,)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self) -> int:
        """Trainable parameters (the tied output head counted once)."""
        return sum(p.numel() for p in self.parameters())

    def _embed(self, idx: torch.Tensor) -> torch.Tensor:
        if idx.size(1) > self.config.block_size:
            raise ValueError(
                f"the sequence has {idx.size(1)} tokens but the model sees at most {self.config.block_size}"
            )
        T = idx.size(1)
        pos = self.wpe.weight[:T] if self.config.pos_encoding == "learned" else self.pe[:T]  # (T, C)
        return self.drop(self.wte(idx) + pos)  # (B, T, C)

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx (B, T) token ids -> logits (B, T, V) of the next token at every position, and the
        mean cross-entropy against `targets` (B, T) when given (else None)."""
        x = self._embed(idx)  # (B, T, C)
        for block in self.blocks:
            x, _ = block(x, fast=self.fast)
        logits = self.lm_head(self.ln_f(x))  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss

    @torch.no_grad()
    def attention_maps(self, idx: torch.Tensor, causal: bool = True) -> torch.Tensor:
        """The softmax weights of every head: (n_layer, B, n_head, T, T), row t = where token t looks.

        Computed on the model's device, returned on the CPU (they are for looking at). With
        `causal=False` the mask is lifted in every layer: what the trained model would do if it
        were allowed to read the future (it never was, so expect odd patterns).
        """
        was_training = self.training
        self.eval()
        try:
            x = self._embed(idx.to(self.wte.weight.device))  # (B, T, C)
            maps = []
            for block in self.blocks:
                x, weights = block(x, need_weights=True, causal=causal)
                maps.append(weights)  # (B, nh, T, T)
        finally:
            self.train(was_training)
        return torch.stack(maps).cpu()  # (n_layer, B, nh, T, T)


# ---------------------------------------------------------------------------------------------
# Training


@dataclass(frozen=True)
class GPTTrainConfig(TrainConfig):
    """`lm_train.TrainConfig` (steps, batch, lr, checkpoints) plus the tokens and the probe sentence."""

    steps: int = 1000  # ~1 minute for the default GPTConfig on 1-2 CPU threads
    weight_decay: float = 0.01  # AdamW decoupled weight decay
    eval_every: int = 50  # steps between validation loss, attention checkpoint and model snapshot
    tokenizer: str = "char"  # "char" (one token per character) or "bpe" (learned subwords)
    bpe_vocab_size: int = 512  # merges + 256 bytes when tokenizer == "bpe"
    max_chars: int | None = 1_000_000  # use at most this many characters (None = all); 1M is plenty for 1000 steps
    bpe_train_chars: int = 200_000  # the BPE merges are learned on this many characters
    probe: str = "the cat sat on the mat because it was tired"  # sentence whose attention is kept at checkpoints

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.tokenizer not in ("char", "bpe"):
            raise ValueError(f"tokenizer must be 'char' or 'bpe', not {self.tokenizer!r}")


@dataclass(frozen=True)
class AttentionCheckpoint:
    """The probe sentence's attention at one step of training."""

    step: int
    loss: float  # training loss at that step
    val_loss: float | None
    maps: torch.Tensor  # (n_layer, n_head, T, T) for the probe sentence


def build_tokenizer(text: str, train: GPTTrainConfig):
    """A char or BPE tokenizer trained on `text` (BPE on its first `bpe_train_chars` characters)."""
    if train.tokenizer == "char":
        from mllm_core.tokenizers import CharTokenizer

        return CharTokenizer().train(text)
    from mllm_core.tokenizers import BPETokenizer

    return BPETokenizer().train(text[: train.bpe_train_chars], vocab_size=train.bpe_vocab_size)


@functools.lru_cache(maxsize=4)
def _tokens(text: str, tokenizer: str, bpe_vocab_size: int, bpe_train_chars: int, val_fraction: float, block_size: int):
    train = GPTTrainConfig(tokenizer=tokenizer, bpe_vocab_size=bpe_vocab_size, bpe_train_chars=bpe_train_chars)
    tok = build_tokenizer(text, train)
    return tok, encode_split(text, tok, val_fraction, block_size)


def tokens(text: str, train: GPTTrainConfig, block_size: int) -> tuple[Any, TokenSplit]:
    """The tokenizer of `text` and its encoded train/validation split, shared by every job of this
    process that reads the same text the same way (neither is ever modified).

    A class of 25 training the default on one worker holds one copy of the 1M token ids (8 MB each)
    and encodes them once (0.3 s each), not 25 times.
    """
    return _tokens(text, train.tokenizer, train.bpe_vocab_size, train.bpe_train_chars, train.val_fraction, block_size)


def probe_ids(tokenizer, text: str, block_size: int) -> list[int]:
    """Encode a sentence for `attention_maps`, or raise a ValueError a page can show as it is.

    Characters that encode to the tokenizer's `<unk>` (`unk_id`) are refused, by name.

    >>> from mllm_core.tokenizers import CharTokenizer
    >>> probe_ids(CharTokenizer().train("abc "), "cab", 8)
    [4, 2, 3]
    >>> probe_ids(CharTokenizer().train("abc "), "cabé", 8)
    Traceback (most recent call last):
    ValueError: not in the model's vocabulary (never seen in training): 'é'
    """
    if not text:
        raise ValueError("type a sentence first")
    unk = tokenizer.unk_id  # None: every character has ids (byte-level BPE)
    unknown = [] if unk is None else sorted({c for c in set(text) if unk in tokenizer.encode(c)})
    if unknown:
        listed = ", ".join(repr(c) for c in unknown[:10])
        raise ValueError(f"not in the model's vocabulary (never seen in training): {listed}")
    ids = tokenizer.encode(text)
    if len(ids) > block_size:
        raise ValueError(
            f"the sentence is {len(ids)} tokens long but the model sees at most {block_size} (its block size); shorten it"
        )
    return ids


def train_gpt(
    text: str,
    config: GPTConfig | None = None,
    train: GPTTrainConfig | None = None,
    ctx: Any = None,
    callback: Callable[[int, float], None] | None = None,
    name: str | None = None,
) -> TorchTextLM:
    """Train a GPT on `text` with `lm_train.fit` and return it as a `TorchTextLM`; with or without a job.

    At every checkpoint it publishes `checkpoints` (a list of `AttentionCheckpoint` for
    `train.probe`), `model` (a snapshot `TorchTextLM`, a copy, so readers never race the
    optimizer); at the start `probe_tokens`, `num_params` and `config`. `callback(step, loss)`
    is called every step for plain use. `config.vocab_size` is replaced by the tokenizer's.
    """
    config = config or GPTConfig()
    train = train or GPTTrainConfig()
    if train.max_chars is not None:
        text = text[: train.max_chars]
    if not text.strip():
        raise ValueError("the corpus is empty")
    ctx = ctx if ctx is not None else NullContext()
    torch.manual_seed(train.seed)
    tokenizer, data = tokens(text, train, config.block_size)
    config = replace(config, vocab_size=tokenizer.vocab_size)
    probe = tokenizer.encode(train.probe)[: config.block_size] or [0]
    probe_idx = torch.tensor([probe], dtype=torch.long)  # (1, T)
    label = name or f"GPT ({train.tokenizer}, {config.n_layer}x{config.n_head}x{config.n_embd})"
    model = GPT(config)
    checkpoints: list[AttentionCheckpoint] = []
    ctx.publish(num_params=model.num_params(), probe_tokens=[tokenizer.decode([i]) for i in probe], config=config)

    def on_step(step: int, loss: float, val_loss: float | None) -> None:
        if callback is not None and step > 0:
            callback(step, loss)
        if val_loss is None:
            return
        maps = model.attention_maps(probe_idx)[:, 0]  # (n_layer, nh, T, T)
        checkpoints.append(AttentionCheckpoint(step, loss, val_loss, maps))
        snapshot = TorchTextLM(label, copy.deepcopy(model).eval(), tokenizer, block_size=config.block_size)
        ctx.publish(checkpoints=list(checkpoints), model=snapshot, model_step=step)

    fit(model, data, config.block_size, train, ctx, on_step)
    return TorchTextLM(label, model, tokenizer, block_size=config.block_size)


CPU_FLOPS = 15e9  # training FLOP/s of one CPU thread: the default GPT trains ~19k tokens/s (bench) at 0.76 MFLOP/token


def training_flops_per_token(config: GPTConfig) -> int:
    """Forward + backward FLOPs per token (nanoGPT's estimate): 6 per parameter, plus attention's
    12 · n_layer · n_embd · block_size.

    >>> training_flops_per_token(GPTConfig(vocab_size=100))  # 110,592 parameters
    761856
    """
    n_params = GPT(config).num_params()
    return 6 * n_params + 12 * config.n_layer * config.n_embd * config.block_size


def estimated_seconds(config: GPTConfig, train: GPTTrainConfig, flops: float = CPU_FLOPS) -> float:
    """A rough training time: steps x batch x block tokens at `flops` per second (a CPU thread by default).

    >>> round(estimated_seconds(GPTConfig(vocab_size=100), GPTTrainConfig(steps=1000)))  # about a minute
    104
    """
    tokens = train.steps * train.batch_size * config.block_size
    return tokens * training_flops_per_token(config) / flops


def gpt_target(
    text: str,
    config: GPTConfig | GPTTrainConfig | None = None,
    train: GPTTrainConfig | None = None,
    name: str | None = None,
):
    """A `TrainingJob` target that trains a GPT on `text`: `TrainingJob(gpt_target(text, GPTConfig()))`.

    `config` is the model's `GPTConfig` (a `GPTTrainConfig` there is taken as `train`, so
    `gpt_target(text, GPTTrainConfig(steps=100))` works too). The job's result is a `TorchTextLM`.
    """
    if isinstance(config, GPTTrainConfig):
        config, train = None, config

    def target(ctx) -> TorchTextLM:
        return train_gpt(text, config, train, ctx=ctx, name=name)

    return target


__all__ = [
    "GPT",
    "AttentionCheckpoint",
    "GPTConfig",
    "GPTTrainConfig",
    "estimated_seconds",
    "gpt_target",
    "position_similarity",
    "probe_ids",
    "sinusoidal_encoding",
    "train_gpt",
    "training_flops_per_token",
]
