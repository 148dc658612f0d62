"""Attention lab benchmarks: the background trainer's throughput and the default model's memory.

- `transformer_trainer`: tokens/s of `TrainingJob(gpt_target(...))` (per-step `ctx.check` and
  `report`, a validation loss, attention maps of the probe and a model snapshot every
  `eval_every` steps) against a plain torch loop doing the same steps on the same model and
  batches, in the same process and, like the job, in a worker thread. Both are timed from their
  3rd step to the end of the run.
- `transformer_memory`: bytes the default config needs to train: parameters, gradients and the
  AdamW moments, plus the activations autograd keeps for one backward pass (counted with
  `torch.autograd.graph.saved_tensors_hooks`, each storage once); the peak RSS of a fresh
  process training the default for a few steps goes in the notes.
"""

from __future__ import annotations

import subprocess
import sys
import time

import torch

from bench.registry import Result, benchmark
from mllm_core import corpora, training
from mllm_core.lm_train import autocast, encode_split, get_batch
from mllm_core.transformer import GPT, GPTConfig, GPTTrainConfig, build_tokenizer, gpt_target

BENCH_MODEL = GPTConfig(block_size=64, n_layer=4, n_head=4, n_embd=128)  # the comparison model
WARM_STEPS = 3  # steps excluded from both timings (first-call allocations, lazy imports)


def plain_loop(train_ids: torch.Tensor, make_model, block_size: int, train, device: str) -> float:
    """Seconds for steps WARM_STEPS+1 .. train.steps of a bare loop, as in nanoGPT's train.py, on
    `make_model()` (seeded with `train.seed`) and the trainer's batches of `block_size` tokens."""
    torch.manual_seed(train.seed)
    model = make_model().to(device)
    train_ids = train_ids.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=train.lr, weight_decay=train.weight_decay)
    gen = torch.Generator().manual_seed(train.seed)
    t0 = time.perf_counter()
    for step in range(1, train.steps + 1):
        if step == WARM_STEPS + 1:
            t0 = time.perf_counter()
        x, y = get_batch(train_ids, train.batch_size, block_size, gen)
        with autocast(device):
            _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), train.grad_clip)
        optimizer.step()
        loss.item()
    return time.perf_counter() - t0


def timed_job(target, device: str) -> float:
    """Seconds from the job's report of step WARM_STEPS to the end of its thread (final checkpoint included)."""
    job = training.TrainingJob(target, name="bench-trainer", device=device).start()
    try:
        while job.snapshot().step < WARM_STEPS or "loss" not in job.snapshot().history:
            if job.snapshot().finished:
                raise RuntimeError(job.snapshot().error or "the job ended early")
            time.sleep(0.001)
        t0 = time.perf_counter()
        job.join()
        return time.perf_counter() - t0
    finally:
        job.stop(timeout=30)


@benchmark("transformer_trainer")
def transformer_trainer(quick: bool, device: str = "cpu") -> Result:
    device = training.resolve_device(device)
    text = corpora.load(corpora.DEFAULT).text
    steps = 12 if quick else 100
    train = GPTTrainConfig(batch_size=32, steps=steps, max_chars=200_000 if quick else 1_000_000)
    text = text[: train.max_chars]
    tokenizer = build_tokenizer(text, train)
    config = GPTConfig(**{**BENCH_MODEL.__dict__, "vocab_size": tokenizer.vocab_size})
    train_ids = encode_split(text, tokenizer, train.val_fraction, config.block_size).train
    notes = f"{config.n_layer} layers, {config.n_head} heads, {config.n_embd} dims, char tokens (V={config.vocab_size})"
    return trainer_vs_plain_loop(
        lambda: GPT(config), gpt_target(text, config, train), train_ids, config.block_size, train, device, quick, notes
    )


def trainer_vs_plain_loop(
    make_model, target, train_ids: torch.Tensor, block_size: int, train, device: str, quick: bool, notes: str
) -> Result:
    """Tokens/s of the job running `target` against `plain_loop` on `make_model()`, best of 3 runs each
    (1 when `quick`), alternating; `notes` describes the model."""
    threads = training.configure_torch_threads()
    tokens = (train.steps - WARM_STEPS) * train.batch_size * block_size
    plain, ours = float("inf"), float("inf")
    for _ in range(1 if quick else 3):  # alternate, keep the best of each (the host is noisy)
        # the plain loop runs in a worker thread too, as TrainingJob runs its loop: on an
        # oversubscribed host torch ran it 4-8x slower in the main thread than in a worker
        seconds = training.run_sync(
            lambda ctx: plain_loop(train_ids, make_model, block_size, train, device), name="bench-plain-loop"
        )
        plain = min(plain, seconds)
        ours = min(ours, timed_job(target, device))
    return Result(
        value=tokens / ours,
        unit="tokens/s",
        peer="plain torch loop, same model and batches",
        peer_value=tokens / plain,
        goal=">= 0.95x peer",
        notes=(
            f"{notes}, block {block_size}, batch {train.batch_size}, {train.steps} steps, eval every "
            f"{train.eval_every} ({train.eval_batches} batches), "
            + (training.describe_device(device) if device != "cpu" else f"{threads} torch threads")
            + ", both in worker threads"
        ),
    )


_RSS_SCRIPT = """
import resource, torch
from mllm_core import corpora
from mllm_core.transformer import GPTTrainConfig, train_gpt
text = corpora.load(corpora.DEFAULT).text
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
train_gpt(text, train=GPTTrainConfig(steps=STEPS, eval_every=STEPS))
print(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _peak_rss_kb(steps: int) -> tuple[int, int]:
    """(peak RSS after loading the corpus, peak RSS after training) of a fresh process, in KiB."""
    proc = subprocess.run(
        [sys.executable, "-c", _RSS_SCRIPT.replace("STEPS", str(steps))], capture_output=True, text=True, timeout=300
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    before, after = proc.stdout.split()
    return int(before), int(after)


@benchmark("transformer_memory")
def transformer_memory(quick: bool) -> Result:
    train = GPTTrainConfig()
    text = corpora.load(corpora.DEFAULT).text[: train.max_chars]
    tokenizer = build_tokenizer(text, train)
    config = GPTConfig(vocab_size=tokenizer.vocab_size)
    torch.manual_seed(0)
    model = GPT(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=train.lr)
    x, y = get_batch(
        torch.tensor(tokenizer.encode(text[:10_000])), train.batch_size, config.block_size, torch.Generator()
    )
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        _, loss = model(x, y)
    loss.backward()
    optimizer.step()
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    state = sum(
        t.numel() * t.element_size() for s in optimizer.state.values() for t in s.values() if torch.is_tensor(t)
    )
    weights = params * 2 + state  # parameters + gradients + AdamW moments
    activations = sum(saved.values())
    notes = (
        f"GPTConfig() with char tokens (V={config.vocab_size}): {model.num_params():,} parameters; "
        f"weights+grads+AdamW {weights / 2**20:.2f} MiB, activations saved for backward "
        f"(batch {train.batch_size} x block {config.block_size}) {activations / 2**20:.2f} MiB"
    )
    if not quick:
        before, after = _peak_rss_kb(30)
        notes += (
            f"; a fresh process training it peaks at {after / 1024:.0f} MiB RSS (torch, gensim and the corpus "
            f"included), {max(0, after - before) / 1024:.0f} MiB above its peak after loading the corpus"
        )
    return Result(value=(weights + activations) / 2**20, unit="MiB", goal="record", notes=notes)
