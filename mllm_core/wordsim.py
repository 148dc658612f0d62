"""Word-similarity benchmarks: do cosine similarities of word vectors agree with people?

WordSim-353 (relatedness: "coffee"–"cup" scores high) and SimLex-999 (similarity proper:
"coffee"–"cup" scores low) give word pairs with human scores; a set of vectors is judged by the
Spearman rank correlation ρ between its cosines and those scores, over the pairs whose two words
are both in the vocabulary. Both files ship in gensim's wheel (its test data), so nothing is
downloaded. This module only scores vectors; `word2vec.py` trains them.
"""

from __future__ import annotations

import functools
import importlib.util
import math
from pathlib import Path

import numpy as np

BENCHMARKS = {"wordsim353": "wordsim353.tsv", "simlex999": "simlex999.txt"}


@functools.cache
def load_pairs(name: str = "wordsim353") -> tuple[tuple[str, str, float], ...]:
    """The (word1, word2, human score) triples of a benchmark, words lower-cased.

    >>> load_pairs("wordsim353")[0]
    ('love', 'sex', 6.77)
    """
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHMARKS)}")
    pairs = []
    for line in (_gensim_test_data() / BENCHMARKS[name]).read_text(encoding="utf-8").splitlines():
        fields = line.strip().split("\t")
        if line.startswith("#") or len(fields) < 3:
            continue
        pairs.append((fields[0].lower(), fields[1].lower(), float(fields[2])))
    return tuple(pairs)


def _gensim_test_data() -> Path:
    # find gensim's folder without importing it (the import takes seconds)
    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("the word-similarity benchmarks ship with gensim, which is not installed")
    return Path(spec.submodule_search_locations[0]) / "test" / "test_data"


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's ρ: the Pearson correlation of the ranks (ties get their average rank).

    >>> spearman(np.array([1.0, 2.0, 3.0]), np.array([10.0, 30.0, 20.0]))
    0.5
    """
    from scipy.stats import rankdata

    if len(x) < 3:
        return math.nan
    rx, ry = rankdata(x), rankdata(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = math.sqrt(float((rx * rx).sum() * (ry * ry).sum()))
    return float((rx * ry).sum() / denom) if denom else math.nan


def score(vectors: np.ndarray, index: dict[str, int], name: str = "wordsim353") -> tuple[float, int]:
    """(ρ, number of pairs used) of `vectors` (V, D) whose rows `index` maps words to.

    Only the pairs with both words in `index` count; ρ is NaN with fewer than three.
    """
    pairs = [(index[a], index[b], s) for a, b, s in load_pairs(name) if a in index and b in index]
    if len(pairs) < 3:
        return math.nan, len(pairs)
    a, b, human = (np.array(col) for col in zip(*pairs, strict=True))
    va, vb = vectors[a], vectors[b]  # (P, D) each
    norms = np.linalg.norm(va, axis=1) * np.linalg.norm(vb, axis=1)
    cos = (va * vb).sum(1) / np.maximum(norms, 1e-12)  # (P,)
    return spearman(cos, human), len(pairs)
