"""Generation lab benchmarks: the shared sampler's cost per token and the speed of leaderboard scoring.

- `generation_sample_next`: microseconds per `sample_next(logits, temperature=0.8, top_k=40)` on a
  GPT-2-sized vocabulary (V = 50257) against nanoGPT's inline sampling step (divide by T,
  `torch.topk`, mask, softmax, `torch.multinomial`) on the same logits, in the same process.
  Ours also validates its arguments, keeps exactly k tokens on ties and refuses NaN logits.
- `generation_scoring`: characters per second of `metrics.evaluate` (sliding windows batched
  through the module) on the default transformer (untrained weights: speed does not depend on
  them) against scoring the same model token by token through `next_logits`, the path every
  non-torch TextLM takes.
"""

from __future__ import annotations

import time

import torch

from bench.registry import Result, benchmark, best_of
from mllm_core import corpora, metrics, training
from mllm_core.lm import TorchTextLM
from mllm_core.sampling import make_generator, sample_next
from mllm_core.tokenizers import CharTokenizer
from mllm_core.transformer import GPT, GPTConfig

GPT2_VOCAB = 50257


def _nanogpt_step(logits: torch.Tensor, temperature: float, top_k: int, generator: torch.Generator) -> int:
    """nanoGPT's `generate` loop body for one token, on a (V,) vector."""
    logits = logits / temperature
    v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
    logits = logits.masked_fill(logits < v[-1], -float("Inf"))
    probs = torch.softmax(logits, dim=-1)
    return int(torch.multinomial(probs, num_samples=1, generator=generator))


@benchmark("generation_sample_next")
def sample_next_cost(quick: bool) -> Result:
    training.configure_torch_threads()  # as the app does (MLLM_TORCH_THREADS overrides)
    draws = 100 if quick else 500
    logits = torch.randn(GPT2_VOCAB, generator=torch.Generator().manual_seed(0)) * 3  # (V,)

    def ours() -> None:
        g = make_generator(0)
        for _ in range(draws):
            sample_next(logits, temperature=0.8, top_k=40, generator=g)

    def peer() -> None:
        g = make_generator(0)
        for _ in range(draws):
            _nanogpt_step(logits, 0.8, 40, g)

    ours_s, peer_s = best_of(ours), best_of(peer)
    small = torch.randn(100)
    t0 = time.perf_counter()
    for _ in range(draws):
        sample_next(small, temperature=0.8, top_k=40, top_p=0.9)
    char_us = (time.perf_counter() - t0) / draws * 1e6
    return Result(
        value=ours_s / draws * 1e6,
        unit="µs/token",
        peer="nanoGPT's inline top-k sampling step (torch)",
        peer_value=peer_s / draws * 1e6,
        goal="<= 2x peer time",
        notes=f"V={GPT2_VOCAB}, T=0.8, top-k=40; with a char vocabulary (V=100, top-k and top-p) ours takes {char_us:.0f} µs/token",
    )


@benchmark("generation_scoring")
def scoring_speed(quick: bool) -> Result:
    training.configure_torch_threads()
    torch.manual_seed(0)
    text = corpora.train_val_split(corpora.load("wikipedia-sample").text)[1]
    tok = CharTokenizer().train(text)
    config = GPTConfig(vocab_size=tok.vocab_size)
    model = TorchTextLM("gpt", GPT(config).eval(), tok, block_size=config.block_size)
    n_batched, n_stepwise = (2_000, 200) if quick else (30_000, 600)

    class Stepwise:  # the same model, seen only through next_logits
        name, block_size, vocab_size = "gpt", config.block_size, tok.vocab_size
        encode, decode, next_logits = model.encode, model.decode, model.next_logits

    batched_s = best_of(lambda: metrics.evaluate(model, text, max_chars=n_batched), repeats=2)
    stepwise_s = best_of(lambda: metrics.evaluate(Stepwise(), text, max_chars=n_stepwise), repeats=1)
    return Result(
        value=n_batched / batched_s,
        unit="chars/s",
        peer="the same model scored token by token (next_logits)",
        peer_value=n_stepwise / stepwise_s,
        goal=">= 10x peer rate",
        notes=f"default GPTConfig (block {config.block_size}), windows of {config.block_size} with stride "
        f"{config.block_size // 2}; {n_batched:,} chars batched, {n_stepwise:,} token by token",
    )
