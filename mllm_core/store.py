"""Trained artefacts on disk: one versioned save/load pair per kind, and where they are kept.

Training makes a model; this module keeps it. Every file names its format and carries a
version number, and loading never unpickles code: weights go through `torch.save` and come
back with `torch.load(weights_only=True)` (tensors, numbers, strings, lists and dicts only),
count tables are `.npz` arrays read with `allow_pickle=False`, everything else is JSON.

- a torch language model (`lm.TorchTextLM` around a `transformer.GPT`, a `char_lstm.CharLSTM` or an `mlp.MLP`):
  `save_torch_lm(lm, folder)` writes `model.json` (family, config, name, block size, bos id),
  `weights.pt` (the state dict) and `tokenizer.json` + its readable `tokenizer.vocab`;
- the counting RNN (`rnn.SequenceModel`): `save_sequence_model` (cell, sizes, state dict);
- n-gram counts (`ngram.NGramCounts`, every order at once): `save_ngram_counts`;
- the Attention lab's replay (`transformer.AttentionCheckpoint`s): `save_checkpoints`;
- what a training job reported (metric history, steps, small JSON extras): `save_record`.
`word2vec.Word2Vec` keeps its own pair (`save` / `load`, the same rules).

`zoo` decides which defaults are kept and under which name; this module only reads and
writes. Artefacts are looked up in the cache (`$MLLM_CACHE_DIR/models`, written by the app
after training) and then in the folder shipped with the app (`$MLLM_MODELS_DIR`, by default
`models/` next to the package, filled by `python -m mllm_core.zoo build --out models`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mllm_core import corpora

FORMAT_VERSION = 1  # of every format below; a file of another version is refused, never guessed at
BUNDLED_MODELS = Path(__file__).resolve().parents[1] / "models"  # committed with the app, read-only


class FormatError(ValueError):
    """A file this version of the app cannot read: another kind of artefact, or an unknown version."""


def check_format(payload: dict, fmt: str, path: str | Path) -> dict:
    """Return `payload` if it is format `fmt` at `FORMAT_VERSION`, else raise `FormatError`.

    >>> check_format({"format": "llm-playground/x", "version": 1}, "llm-playground/x", "x.json")["version"]
    1
    >>> check_format({"format": "llm-playground/x", "version": 7}, "llm-playground/x", "x.json")
    Traceback (most recent call last):
    mllm_core.store.FormatError: x.json is llm-playground/x version 7; this app reads version 1 only (rebuild it with python -m mllm_core.zoo build)
    """
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise FormatError(f"{path} holds {found!r}, not {fmt}")
    if payload.get("version") != FORMAT_VERSION:
        raise FormatError(
            f"{path} is {fmt} version {payload.get('version')!r}; this app reads version {FORMAT_VERSION} only "
            "(rebuild it with python -m mllm_core.zoo build)"
        )
    return payload


def _write_json(path: Path, payload: dict, indent: int | None = 1) -> None:
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=indent), encoding="utf-8")


def _read_json(path: Path, fmt: str) -> dict:
    return check_format(json.loads(Path(path).read_text(encoding="utf-8")), fmt, path)


def _torch_save(path: Path, fmt: str, **payload: Any) -> None:
    torch.save({"format": fmt, "version": FORMAT_VERSION, **payload}, path)


def _torch_load(path: str | Path, fmt: str) -> dict:
    return check_format(torch.load(path, map_location="cpu", weights_only=True), fmt, path)


# ---------------------------------------------------------------------------------------------
# Where artefacts live


def cache_models_dir() -> Path:
    """Where the app saves the defaults it trained: `corpora.cache_dir()` / "models"."""
    return corpora.cache_dir() / "models"


def bundled_models_dir() -> Path:
    """The read-only folder shipped with the app: `$MLLM_MODELS_DIR`, else `models/` beside the package."""
    return Path(os.environ.get("MLLM_MODELS_DIR") or BUNDLED_MODELS)


def search_path() -> list[Path]:
    """Where `find` looks, in order: the cache first (the newest), then the shipped folder."""
    return [cache_models_dir(), bundled_models_dir()]


def find(name: str) -> Path | None:
    """The first folder called `name` on the search path, or None."""
    for root in search_path():
        folder = root / name
        if folder.is_dir():
            return folder
    return None


def write_atomically(dest: str | Path, fill: Callable[[Path], None]) -> Path:
    """Make folder `dest` with `fill(folder)`, so that a reader sees it whole or not at all.

    `fill` writes into a hidden folder beside `dest`, which is then renamed; a `dest` already
    there is replaced. Raises OSError when the parent folder cannot be created or written.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.mkdir()
    try:
        fill(tmp)
        if dest.exists():  # rename cannot replace a non-empty folder: move the old one aside first
            old = dest.parent / f".{dest.name}.{uuid.uuid4().hex[:8]}.old"
            dest.rename(old)
            shutil.rmtree(old, ignore_errors=True)
        tmp.rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already unless something failed
    return dest


def folder_size(folder: str | Path) -> int:
    """Bytes of every file under `folder`."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


# ---------------------------------------------------------------------------------------------
# Torch language models: a GPT, a char-LSTM or an MLP with its tokenizer

TORCH_LM = "llm-playground/torch-lm"


def _families() -> dict[str, tuple[type, type, Callable]]:
    """family -> (module class, config class, build(config, vocab_size) -> module)."""
    from mllm_core.char_lstm import CharLSTM, CharLSTMConfig
    from mllm_core.mlp import MLP, MLPConfig
    from mllm_core.transformer import GPT, GPTConfig

    return {
        "gpt": (GPT, GPTConfig, lambda config, vocab_size: GPT(config)),
        "char-lstm": (CharLSTM, CharLSTMConfig, lambda config, vocab_size: CharLSTM(config, vocab_size)),
        "mlp": (MLP, MLPConfig, lambda config, vocab_size: MLP(config, vocab_size)),
    }


def save_torch_lm(lm, folder: str | Path) -> Path:
    """Write `lm` (a `TorchTextLM` around a GPT, a CharLSTM or an MLP) into `folder` (created if needed).

    model.json: format, version, family, the module's config, vocab_size, name, block_size,
    bos_id; weights.pt: the state dict; tokenizer.json and tokenizer.vocab: `tokenizer.save`.
    """
    family = next((f for f, (cls, _, _) in _families().items() if isinstance(lm.module, cls)), None)
    if family is None:
        raise ValueError(f"cannot save a {type(lm.module).__name__}: only {', '.join(_families())} models")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": TORCH_LM,
        "version": FORMAT_VERSION,
        "family": family,
        "config": dataclasses.asdict(lm.module.config),
        "vocab_size": lm.tokenizer.vocab_size,
        "name": lm.name,
        "block_size": lm.block_size,
        "bos_id": lm.bos_id,
    }
    _torch_save(folder / "weights.pt", TORCH_LM + "/weights", state_dict=lm.module.state_dict())
    lm.tokenizer.save(folder / "tokenizer.json")
    _write_json(folder / "model.json", meta)  # last: a folder with model.json is complete
    return folder


def load_torch_lm(folder: str | Path):
    """The `TorchTextLM` that `save_torch_lm` wrote, on the CPU in eval mode."""
    from mllm_core.lm import TorchTextLM
    from mllm_core.tokenizers import load_tokenizer

    folder = Path(folder)
    meta = _read_json(folder / "model.json", TORCH_LM)
    if meta["family"] not in _families():
        raise FormatError(f"{folder} holds a {meta['family']!r} model; this app knows {', '.join(_families())}")
    _, config_cls, build = _families()[meta["family"]]
    module = build(config_cls(**meta["config"]), meta["vocab_size"])
    module.load_state_dict(_torch_load(folder / "weights.pt", TORCH_LM + "/weights")["state_dict"])
    tokenizer = load_tokenizer(folder / "tokenizer.json")
    return TorchTextLM(meta["name"], module.eval(), tokenizer, block_size=meta["block_size"], bos_id=meta["bos_id"])


# ---------------------------------------------------------------------------------------------
# The counting RNN

SEQUENCE_MODEL = "llm-playground/sequence-model"


def save_sequence_model(model, path: str | Path) -> Path:
    """Write an `rnn.SequenceModel` (cell name, sizes, state dict) to one file."""
    _torch_save(
        Path(path),
        SEQUENCE_MODEL,
        cell=model.cell_name,
        vocab_size=model.vocab_size,
        hidden_size=model.head.in_features,
        n_out=model.head.out_features,
        state_dict=model.state_dict(),
    )
    return Path(path)


def load_sequence_model(path: str | Path):
    """The `rnn.SequenceModel` that `save_sequence_model` wrote, in eval mode."""
    from mllm_core.rnn import SequenceModel

    state = _torch_load(path, SEQUENCE_MODEL)
    model = SequenceModel(state["cell"], state["vocab_size"], state["hidden_size"], state["n_out"])
    model.load_state_dict(state["state_dict"])
    return model.eval()


# ---------------------------------------------------------------------------------------------
# n-gram counts

NGRAM_COUNTS = "llm-playground/ngram-counts"


def save_ngram_counts(counts, path: str | Path) -> Path:
    """Write `ngram.NGramCounts` (every order's table and the training stream) as a compressed .npz."""
    meta = {
        "format": NGRAM_COUNTS,
        "version": FORMAT_VERSION,
        "vocab": counts.vocab,
        "max_order": counts.max_order,
        "n_tokens": counts.n_tokens,
        "longest": counts.longest,
        "has_cont": [t.cont is not None for t in counts.tables],
    }
    arrays = {"meta": np.array(json.dumps(meta, ensure_ascii=False)), "stream": counts.stream}
    for j, table in enumerate(counts.tables, start=1):
        arrays |= {f"keys{j}": table.keys, f"counts{j}": table.counts, f"starts{j}": table.starts}
        if table.cont is not None:
            arrays[f"cont{j}"] = table.cont
    with open(path, "wb") as f:  # a file object: savez would add ".npz" to a path without it
        np.savez_compressed(f, **arrays)
    return Path(path)


def load_ngram_counts(path: str | Path):
    """The `ngram.NGramCounts` that `save_ngram_counts` wrote."""
    from mllm_core.ngram import NGramCounts, OrderTable

    with np.load(path, allow_pickle=False) as data:
        meta = check_format(json.loads(str(data["meta"])), NGRAM_COUNTS, path)
        tables = [
            OrderTable(data[f"keys{j}"], data[f"counts{j}"], data[f"starts{j}"], data[f"cont{j}"] if has_cont else None)
            for j, has_cont in enumerate(meta["has_cont"], start=1)
        ]
        stream = data["stream"]
    vocab = list(meta["vocab"])
    index = {token: i for i, token in enumerate(vocab)}
    return NGramCounts(vocab, index, meta["max_order"], stream, tables, meta["n_tokens"], meta["longest"])


# ---------------------------------------------------------------------------------------------
# The Attention lab's checkpoints

CHECKPOINTS = "llm-playground/attention-checkpoints"


def save_checkpoints(checkpoints: list, path: str | Path) -> Path:
    """Write `transformer.AttentionCheckpoint`s; the maps are kept in float16 (weights in [0, 1],
    for looking at: half the bytes, differences below 1e-3)."""
    _torch_save(
        Path(path),
        CHECKPOINTS,
        steps=[c.step for c in checkpoints],
        loss=[c.loss for c in checkpoints],
        val_loss=[c.val_loss for c in checkpoints],
        maps=[c.maps.detach().cpu().half() for c in checkpoints],  # each (n_layer, n_head, T, T)
    )
    return Path(path)


def load_checkpoints(path: str | Path) -> list:
    """The `AttentionCheckpoint`s that `save_checkpoints` wrote, oldest first, maps in float32."""
    from mllm_core.transformer import AttentionCheckpoint

    state = _torch_load(path, CHECKPOINTS)
    rows = zip(state["steps"], state["loss"], state["val_loss"], state["maps"], strict=True)
    return [AttentionCheckpoint(step, loss, val, maps.float()) for step, loss, val, maps in rows]


# ---------------------------------------------------------------------------------------------
# What a job reported while it trained

RECORD = "llm-playground/job-record"


@dataclasses.dataclass(frozen=True)
class JobRecord:
    """The part of a finished job's snapshot worth keeping with its result."""

    history: dict[str, list[tuple[int, float]]]  # metric -> [(step, value), ...], as in `JobSnapshot.history`
    total_steps: int | None
    extras: dict[str, Any]  # small JSON values the job published (scores, token lists, counts)


def save_record(record: JobRecord, path: str | Path) -> Path:
    """Write a `JobRecord` as JSON (NaN allowed: word2vec's ρ is NaN before any pair is known)."""
    _write_json(
        Path(path),
        {
            "format": RECORD,
            "version": FORMAT_VERSION,
            "history": {k: [list(p) for p in v] for k, v in record.history.items()},
            "total_steps": record.total_steps,
            "extras": record.extras,
        },
        indent=None,  # a thousand losses, one line: a third of the bytes of an indented file
    )
    return Path(path)


def load_record(path: str | Path) -> JobRecord:
    payload = _read_json(Path(path), RECORD)
    history = {k: [(int(s), float(v)) for s, v in series] for k, series in payload["history"].items()}
    return JobRecord(history, payload["total_steps"], payload["extras"])


__all__ = [
    "FORMAT_VERSION",
    "FormatError",
    "JobRecord",
    "bundled_models_dir",
    "cache_models_dir",
    "check_format",
    "find",
    "folder_size",
    "load_checkpoints",
    "load_ngram_counts",
    "load_record",
    "load_sequence_model",
    "load_torch_lm",
    "save_checkpoints",
    "save_ngram_counts",
    "save_record",
    "save_sequence_model",
    "save_torch_lm",
    "search_path",
    "write_atomically",
]
