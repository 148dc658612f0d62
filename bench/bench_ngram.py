"""N-gram lab benchmarks: our vectorised counts against `nltk.lm.MLE` in the same run.

- `ngram_fit`: seconds to count every order up to 5 on the first 90% of the wikipedia-sample
  articles (whitespace tokens, one sequence per article); the peer is `nltk.lm.MLE(5)` fed by
  `padded_everygram_pipeline`. Quick mode uses the first 3 articles.
- `ngram_sample`: seconds to sample 1000 tokens from those 5-gram MLE models, prompt "The";
  the peer is nltk's `MLE.generate`. Ours goes through the shared `sampling.sample_next`
  (the notes give the 3-gram's time too: fewer contexts with a single continuation there).
"""

from __future__ import annotations

import functools
import time

import nltk
from nltk.lm import MLE
from nltk.lm.preprocessing import padded_everygram_pipeline

from bench.registry import Result, benchmark, best_of
from mllm_core import corpora
from mllm_core.ngram import NGramModel, split_tokens

N = 5
PEER = f"nltk {nltk.__version__} lm.MLE + padded_everygram_pipeline"


@functools.cache
def _sequences(quick: bool) -> list[list[str]]:
    train, _ = corpora.train_val_split(corpora.load("wikipedia-sample").text)
    seqs = split_tokens(train, "word")
    return seqs[:3] if quick else seqs


def _fit_nltk(seqs: list[list[str]]) -> MLE:
    train, vocab = padded_everygram_pipeline(N, seqs)
    model = MLE(N)
    model.fit(train, vocab)
    return model


@functools.cache
def _timed_nltk(quick: bool) -> tuple[float, MLE]:
    """nltk's fit, timed once (35 s on the full data): both entries reuse the fitted model."""
    t0 = time.perf_counter()
    model = _fit_nltk(_sequences(quick))
    return time.perf_counter() - t0, model


@benchmark("ngram_fit")
def ngram_fit(quick: bool) -> Result:
    seqs = _sequences(quick)
    ours = best_of(lambda: NGramModel(N).fit(seqs), repeats=3)
    peer, _ = _timed_nltk(quick)
    return Result(
        ours,
        "s",
        PEER,
        peer,
        "<= 0.1x peer time",
        f"all orders 1..{N} on {sum(map(len, seqs)):,} whitespace tokens in {len(seqs)} articles",
    )


@benchmark("ngram_sample")
def ngram_sample(quick: bool) -> Result:
    model = NGramModel(N).fit(_sequences(quick))
    ours = best_of(lambda: model.sample(["The"], 1000, seed=0), repeats=3)
    trigram = NGramModel.from_counts(model.counts, 3)
    ours_3 = best_of(lambda: trigram.sample(["The"], 1000, seed=0), repeats=3)
    _, peer_model = _timed_nltk(quick)
    peer = best_of(lambda: peer_model.generate(1000, text_seed=["The"], random_seed=0), repeats=1 if quick else 3)
    return Result(
        ours,
        "s",
        "nltk lm.MLE.generate",
        peer,
        "<= 0.05 s",
        f"1000 tokens from the {N}-gram MLE model, prompt 'The': one shared sample_next call per step with more "
        f"than one continuation seen (a single continuation needs no draw); from the 3-gram: {ours_3:.3f} s",
    )
