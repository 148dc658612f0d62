"""word2vec against gensim's C implementation, on the same tokens, settings and one thread each.

- `word2vec_speed`: training words per second (corpus words before subsampling, as gensim
  counts them; vocabulary building excluded on both sides), best of a few interleaved runs.
- `word2vec_quality`: WordSim-353 Spearman ρ after the same wall-clock budget (60 s; 2 s with
  --quick), the mean over 5 seeds, since one run's ρ moves by ±0.02 with the seed alone on
  both sides (--quick runs one seed). gensim runs as many whole epochs as its measured speed fits in the budget (its
  learning rate then decays over exactly those epochs); ours then runs `fit(max_seconds=...)`
  with the time gensim actually took, so a change of machine load cannot favour either side.
  Both sets of vectors are scored by the same function, `wordsim.score`.
"""

from __future__ import annotations

import functools
import time

from bench.registry import Result, benchmark

SETTINGS = {"dim": 100, "window": 5, "negatives": 5, "min_count": 5, "subsample": 1e-3}


@functools.cache
def _sentences() -> list[list[str]]:
    from mllm_core import corpora, word2vec

    docs = word2vec.tokenize(corpora.load("wikipedia-sample").text)
    # gensim truncates sentences at 10,000 tokens; give both sides the same chunks
    return [doc[i : i + 10_000] for doc in docs for i in range(0, len(doc), 10_000)]


def _gensim(epochs: int, seed: int = 0):
    """A trained gensim model and its (raw words, seconds) for `epochs` epochs."""
    from gensim.models import Word2Vec as GensimWord2Vec

    sents = _sentences()
    model = GensimWord2Vec(
        vector_size=SETTINGS["dim"],
        window=SETTINGS["window"],
        negative=SETTINGS["negatives"],
        min_count=SETTINGS["min_count"],
        sample=SETTINGS["subsample"],
        sg=0,
        workers=1,
        seed=seed,
    )
    model.build_vocab(sents)
    t0 = time.perf_counter()
    _, raw_words = model.train(sents, total_examples=len(sents), epochs=epochs)
    return model, raw_words, time.perf_counter() - t0


def _ours(epochs: int | None = None, max_seconds: float | None = None, seed: int = 0):
    import torch

    from mllm_core import training, word2vec

    training.configure_torch_threads(1)  # marks threads as configured, so fit() keeps our choice
    torch.set_num_threads(1)  # ... also when another benchmark configured them first
    config = word2vec.Word2VecConfig(**SETTINGS, seed=seed)
    model = word2vec.Word2Vec(config).fit(_sentences(), epochs=epochs, max_seconds=max_seconds)
    end = model.history[-1]
    return model, end.words, end.elapsed


def _gensim_version() -> str:
    import gensim

    return f"gensim {gensim.__version__} Word2Vec (C, workers=1)"


@benchmark("word2vec_speed")
def speed(quick: bool) -> Result:
    epochs, rounds = (1, 1) if quick else (5, 3)
    ours = theirs = 0.0
    for _ in range(rounds):  # interleaved, so both sides see the same machine load
        _, words, seconds = _gensim(epochs)
        theirs = max(theirs, words / seconds)
        _, words, seconds = _ours(epochs=epochs)
        ours = max(ours, words / seconds)
    return Result(
        ours,
        "words/s",
        peer=_gensim_version(),
        peer_value=theirs,
        goal=">= 0.5x peer",
        notes=f"CBOW, negative sampling, {SETTINGS}, {epochs} epoch(s) of wikipedia-sample, 1 torch thread, "
        f"best of {rounds}",
    )


SEEDS = (0, 1, 2, 3, 4)


@benchmark("word2vec_quality")
def quality(quick: bool) -> Result:
    from statistics import mean

    from mllm_core import wordsim

    budget = 2.0 if quick else 60.0
    seeds = SEEDS[:1] if quick else SEEDS  # the smoke run only checks that it runs
    probe = 1 if quick else 5  # one epoch alone runs slower than the rest (warm-up): 60 s became 45 s
    _, _, probe_seconds = _gensim(probe)
    epochs = max(1, int(budget * probe / probe_seconds))  # as many epochs as gensim runs in the budget now
    rows = []  # per seed: (our ρ, gensim ρ, our SimLex, gensim SimLex, our epochs, seconds)
    for seed in seeds:
        theirs, _, their_seconds = _gensim(epochs, seed)
        ours, _, _ = _ours(max_seconds=their_seconds, seed=seed)  # exactly gensim's time, whatever the load did
        vectors, index = theirs.wv.vectors, theirs.wv.key_to_index
        rows.append(
            (
                ours.evaluate("wordsim353"),
                wordsim.score(vectors, index)[0],
                ours.evaluate("simlex999"),
                wordsim.score(vectors, index, "simlex999")[0],
                ours.history[-1].epoch,
                their_seconds,
            )
        )
    ours_rho, their_rho, ours_simlex, their_simlex, our_epochs, seconds = zip(*rows, strict=True)
    per_seed = ", ".join(f"{a:.3f} vs {b:.3f}" for a, b in zip(ours_rho, their_rho, strict=True))
    return Result(
        mean(ours_rho),
        "WordSim-353 ρ",
        peer=_gensim_version(),
        peer_value=mean(their_rho),
        goal=">= peer",
        notes=f"{budget:.0f} s budget, mean of seeds {seeds} (ours vs gensim: {per_seed}); "
        f"ours {min(our_epochs)}-{max(our_epochs)} epochs, gensim {epochs} epochs in {min(seconds):.1f}-"
        f"{max(seconds):.1f} s; SimLex-999 ours {mean(ours_simlex):.3f} vs gensim {mean(their_simlex):.3f}",
    )
