"""The MLP language model (Bengio et al. 2003; makemore part 2): a fixed window of k tokens.

Where an n-gram *counts* what follows each context of n − 1 tokens, the MLP *learns* it: each of
the last k tokens is looked up in an embedding table C, the k vectors are concatenated, a hidden
tanh layer mixes them and a linear layer gives the logits of the next token. Contexts that were
never seen still get a sensible answer, because similar tokens end up with similar rows of C.
Unlike the char-LSTM (`char_lstm.py`) it has no memory beyond its window: what happened k + 1
tokens ago is invisible to it.

It answers the family interface `forward(idx (B, T), targets=None) -> (logits (B, T, V), loss)`:
every position of a sequence is predicted from its own window, and the first positions, whose
window reaches before the sequence, see a learned "nothing here" row of C. `lm_train.fit` trains
it like every other neural model, and `lm.TorchTextLM` wraps it for sampling and scoring.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mllm_core.char_lstm import sample_snapshots
from mllm_core.lm import TorchTextLM
from mllm_core.lm_train import TrainConfig, encode_split, fit
from mllm_core.tokenizers.char import CharTokenizer
from mllm_core.tokenizers.word import WordTokenizer
from mllm_core.training import NullContext

LEVELS = ("char", "word")  # what a token is


@dataclass(frozen=True)
class MLPConfig:
    """The model's size; the defaults are makemore's (window 3, 10-dim embeddings, 200 hidden units)."""

    window: int = 3  # k: tokens of context the model reads
    n_embd: int = 10  # size of each token's row of C
    hidden: int = 200  # tanh units of the hidden layer
    block_size: int = 32  # tokens per training sequence (each position is one example)

    def __post_init__(self) -> None:
        if not 1 <= self.window <= 16:
            raise ValueError("the window k must be between 1 and 16 tokens")
        if min(self.n_embd, self.hidden) < 1:
            raise ValueError("sizes must be at least 1")
        if self.block_size < 1:
            raise ValueError("block_size must be at least 1")


@dataclass(frozen=True)
class MLPTrainConfig(TrainConfig):
    """`lm_train.TrainConfig` plus the tokens and the samples published while it trains."""

    steps: int = 3000  # updates in total (about 15 s on one CPU thread at the default size)
    batch_size: int = 64  # sequences per update: 64 x 32 = 2,048 examples
    lr: float = 3e-3  # Adam's learning rate
    eval_every: int = 100  # report val_loss every this many steps
    eval_batches: int = 4  # batches averaged for val_loss
    level: str = "char"  # "char" or "word" tokens
    max_vocab: int = 128  # keep the most frequent tokens; the rest become <unk> (words: raise it)
    max_chars: int | None = 1_000_000  # train on the first characters of the text (None: all of it)
    sample_every: int = 500  # publish a sample and model snapshot this often (token-by-token sampling is slow
    # next to a training step of a model this small)
    sample_len: int = 120  # tokens per sample
    sample_prompt: str = "The "  # what samples start from
    temperature: float = 0.8  # sampling temperature of the published samples

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, not {self.level!r}")


class MLP(nn.Module):
    """C -> concatenate the window -> tanh hidden layer -> logits.

    Position t of a sequence reads tokens t − k + 1 .. t; a position before the sequence reads
    row V of C (the "nothing here" token), which is never a target.

    >>> m = MLP(MLPConfig(window=3, n_embd=2, hidden=8), vocab_size=5)
    >>> logits, loss = m(torch.zeros(2, 7, dtype=torch.long), torch.zeros(2, 7, dtype=torch.long))
    >>> tuple(logits.shape), tuple(m.C.weight.shape), loss.dim()
    ((2, 7, 5), (6, 2), 0)
    """

    def __init__(self, config: MLPConfig, vocab_size: int):
        super().__init__()
        self.config = config
        self.vocab_size = vocab_size
        self.C = nn.Embedding(vocab_size + 1, config.n_embd)  # row V: before the text
        self.hidden = nn.Linear(config.window * config.n_embd, config.hidden)
        self.head = nn.Linear(config.hidden, vocab_size)

    def init_args(self) -> tuple:
        return (self.config, self.vocab_size)

    def windows(self, idx: torch.Tensor) -> torch.Tensor:
        """(B, T) ids -> (B, T, k): the k ids each position reads, padded on the left with V.

        >>> MLP(MLPConfig(window=2), vocab_size=9).windows(torch.tensor([[4, 5, 6]])).tolist()
        [[[9, 4], [4, 5], [5, 6]]]
        """
        k = self.config.window
        pad = torch.full((idx.shape[0], k - 1), self.vocab_size, dtype=idx.dtype, device=idx.device)
        return torch.cat([pad, idx], dim=1).unfold(1, k, 1)  # (B, T + k − 1) -> (B, T, k)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        B, T = idx.shape
        emb = self.C(self.windows(idx))  # (B, T, k, n_embd)
        h = torch.tanh(self.hidden(emb.reshape(B, T, -1)))  # (B, T, hidden)
        logits = self.head(h)  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        return logits, loss


def build_tokenizer(text: str, train: MLPTrainConfig):
    """The char or word tokenizer of `train.level`, keeping the `max_vocab` most frequent tokens."""
    tokenizer = CharTokenizer() if train.level == "char" else WordTokenizer()
    return tokenizer.train(text, vocab_size=train.max_vocab)


def check_input(text: str, config: MLPConfig, train: MLPTrainConfig) -> None:
    """Raise ValueError with a message for the page when `text` cannot train this model.

    >>> check_input("abc " * 10, MLPConfig(window=8), MLPTrainConfig())
    Traceback (most recent call last):
    ...
    ValueError: the text is too short: 40 chars, need at least 132 (4 training sequences of 32 + 1)
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the training text is empty")
    body = text[: train.max_chars] if train.max_chars else text
    need = 4 * (config.block_size + 1)
    n_tokens = len(body) if train.level == "char" else len(body.split())
    if n_tokens < need:
        raise ValueError(
            f"the text is too short: {n_tokens:,} {train.level}s, need at least {need:,} "
            f"(4 training sequences of {config.block_size} + 1)"
        )
    if n_tokens <= config.window:
        raise ValueError(f"the window ({config.window}) must be smaller than the text ({n_tokens} {train.level}s)")


def mlp_target(text: str, config: MLPConfig | None = None, train: MLPTrainConfig | None = None, name: str = ""):
    """A training loop for `TrainingJob`: returns `target(ctx=None) -> TorchTextLM` listed as `name`
    (default "MLP (k=…)").

    It trains with `lm_train.fit` (loss every step, val_loss every `eval_every`) and publishes
    `model` (a `TorchTextLM` snapshot), `sample` (text) and `sample_step` every `sample_every`
    steps and at the end. Raises ValueError at once for unusable input (empty text, a text
    shorter than a few windows).
    """
    config = config or MLPConfig()
    train = train or MLPTrainConfig()
    name = name or f"MLP (k={config.window})"
    check_input(text, config, train)
    body = text[: train.max_chars] if train.max_chars else text

    def target(ctx=None) -> TorchTextLM:
        ctx = ctx if ctx is not None else NullContext()
        tokenizer = build_tokenizer(body, train)
        data = encode_split(body, tokenizer, train.val_fraction, config.block_size)
        torch.manual_seed(train.seed)
        model = MLP(config, tokenizer.vocab_size)
        bos = tokenizer.stoi.get("\n", tokenizer.stoi.get(" ")) if train.level == "char" else None

        def as_lm(module: nn.Module) -> TorchTextLM:
            return TorchTextLM(name, module, tokenizer, block_size=config.block_size, bos_id=bos)

        return as_lm(fit(model, data, config.block_size, train, ctx, sample_snapshots(ctx, model, as_lm, train)))

    return target


VOWELS = set("aeiouAEIOU")


def token_group(token: str) -> str:
    """What colour a character gets on the embedding map.

    >>> [token_group(t) for t in ("a", "B", "7", " ", "<unk>")]
    ['vowel', 'consonant', 'digit', 'other', 'other']
    """
    if len(token) != 1:
        return "other"
    if token in VOWELS:
        return "vowel"
    if token.isdigit():
        return "digit"
    return "consonant" if token.isalpha() else "other"


MAP_CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789 .,"  # the characters the embedding map shows, as makemore's


def map_ids(lm: TorchTextLM, top: int = 150) -> list[int]:
    """The ids the embedding map shows: for characters the lower-case letters, digits, space, full
    stop and comma that the model knows (rare characters keep rows near their random start and
    would hide the clusters); for words the `top` most frequent (a word vocabulary is sorted so).
    """
    if lm.tokenizer.kind == "char":
        return [lm.tokenizer.stoi[c] for c in MAP_CHARACTERS if c in lm.tokenizer.stoi]
    specials = {lm.tokenizer.unk_id, lm.tokenizer.pad_id, lm.tokenizer.bos_id, lm.tokenizer.eos_id}
    return [i for i in range(lm.vocab_size) if i not in specials][:top]


def embedding_pca(lm: TorchTextLM, ids: list[int] | None = None) -> tuple[list[str], np.ndarray]:
    """(tokens, (N, 2) coordinates): the rows `ids` of C (default: every token, not the "nothing
    here" row) projected on their own two principal components.

    PCA by SVD of the centred rows, signs fixed so that the largest coordinate of each axis is
    positive (the same picture on every run).
    """
    ids = list(range(lm.vocab_size)) if ids is None else ids
    table = lm.module.C.weight.detach().float().cpu().numpy()[ids]  # (N, n_embd)
    centred = table - table.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    coords = centred @ vt[:2].T  # (N, 2)
    if coords.shape[1] < 2:  # a 1-dimensional embedding: draw it on a line
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    signs = np.sign(coords[np.abs(coords).argmax(axis=0), [0, 1]])
    coords = coords * np.where(signs == 0, 1, signs)
    return [lm.tokenizer.id_to_token(i) for i in ids], coords


__all__ = [
    "LEVELS",
    "MLP",
    "MLPConfig",
    "MLPTrainConfig",
    "build_tokenizer",
    "check_input",
    "map_ids",
    "embedding_pca",
    "mlp_target",
]
