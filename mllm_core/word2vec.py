"""word2vec: word vectors learned by predicting a word from its neighbours, and nothing else.

Unlike its siblings (the n-gram counts, the RNN and transformer language models), word2vec
is not a language model: it never generates text. It learns two tables of vectors, one row
per vocabulary word, so that a word's *context* vector is close to the *centre* vectors of the
words it appears next to:

- CBOW (the seed's formulation): average the context vectors of the words around a centre
  word, h = mean(C[w_{t-k}], ..., C[w_{t+k}]), and score every vocabulary word v by h · O[v].
- skip-gram: each context word alone predicts the centre word, h = C[w_{t+j}].

The scores are trained either with a full softmax over the vocabulary (exact, costs O(V) per
word: fine for small vocabularies) or with negative sampling (Mikolov et al. 2013: push the
true pair's score up and `negatives` random words' scores down: O(negatives) per word).

Why it is fast on one CPU thread (about 0.7x gensim's C code here, see bench/bench_word2vec.py):
the corpus is one int64 array; each epoch subsamples frequent words, builds every centre's
context window with a handful of vectorised numpy operations and shuffles the centres (so a
batch is a fair sample of the corpus, not one stretch of text); training takes thousands of
centres per step with hand-written gradients (plain SGD with the classic linearly decaying
learning rate, no autograd) and touches only the rows it used (`index_add_`); and the
negatives are shared by small groups of centres (Ji et al. 2016, "Parallelizing word2vec in
shared and distributed memory"), which turns the negative scores into one batched matrix
product instead of thousands of tiny dot products. Summing thousands of gradients computed at
the same point is not the same as applying them one by one: a word hit more than `row_cap`
times in a step moves by their mean times `row_cap`, which keeps small vocabularies stable.

The seed trained CBOW with autograd and Adam; here every formulation (CBOW / skip-gram, full
softmax / negative sampling) uses word2vec's own recipe, SGD with a linearly decaying rate,
and hand-written gradients that the tests check against autograd.
"""

from __future__ import annotations

import difflib
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mllm_core import training, wordsim

FORMAT_VERSION = 1
MAX_SCORE = 6.0  # word2vec's MAX_EXP: gensim gives no update for a score beyond ±6 (saturated sigmoid)
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")  # letters and digits, with inner apostrophes (don't)


@dataclass(frozen=True)
class Word2VecConfig:
    dim: int = 100  # vector size (the seed used 300; 100 is gensim's default and 3x faster)
    window: int = 5  # max context words on each side; each centre draws its own window in 1..window
    min_count: int = 5  # rarer words are dropped from the vocabulary (and from the text)
    negatives: int = 5  # noise words per centre word with negative sampling
    lr: float = 0.025  # initial SGD learning rate, decayed linearly to lr * 1e-4 (gensim's default)
    batch_size: int = 2048  # centre words per step; bigger is faster per word, too big hurts quality
    epochs: int = 5  # passes over the corpus when fit() gets neither epochs nor max_seconds
    subsample: float = 1e-3  # Mikolov's threshold t: frequent words are kept with prob (sqrt(f/t) + 1) t/f
    mode: str = "cbow"  # "cbow": averaged context predicts the centre; "skipgram": each context word does
    loss: str = "negative-sampling"  # or "full-softmax" (exact, O(vocabulary) per word: small vocabularies)
    max_norm: float | None = None  # renormalise context vectors longer than this (as nn.Embedding(max_norm=))
    group: int = 16  # centres sharing one draw of negatives (1 = classic per-centre negatives)
    row_cap: int = 32  # a row hit by more examples in one step moves by their mean x row_cap, not their sum
    seed: int = 0  # initial vectors, subsampling, windows and negatives

    def validate(self) -> None:
        if self.mode not in ("cbow", "skipgram"):
            raise ValueError(f"mode must be 'cbow' or 'skipgram', not {self.mode!r}")
        if self.loss not in ("negative-sampling", "full-softmax"):
            raise ValueError(f"loss must be 'negative-sampling' or 'full-softmax', not {self.loss!r}")
        for name in ("dim", "window", "min_count", "batch_size", "epochs", "group", "row_cap"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.negatives < 1 and self.loss == "negative-sampling":
            raise ValueError("negative sampling needs at least one negative")
        if not self.lr > 0:
            raise ValueError("lr must be positive")
        if self.max_norm is not None and not self.max_norm > 0:
            raise ValueError("max_norm must be positive (or None)")


@dataclass(frozen=True)
class FitProgress:
    """What `fit` tells its callback, about once a second."""

    epoch: int  # epochs finished
    words: int  # corpus words processed so far (before subsampling, as gensim counts them)
    total_words: int | None  # words the run will process, when it is bounded by epochs
    fraction: float  # how far the learning-rate schedule is, in [0, 1]
    elapsed: float  # training seconds (time spent in the callback excluded)
    loss: float  # mean loss per centre word since the last report
    lr: float  # current learning rate
    wordsim: float  # WordSim-353 Spearman ρ of the context vectors now (NaN if < 3 pairs known)
    simlex: float  # SimLex-999 Spearman ρ

    @property
    def words_per_second(self) -> float:
        return self.words / self.elapsed if self.elapsed > 0 else 0.0


class UnknownWordError(ValueError):
    """A queried word is not in the vocabulary; `suggestions` holds close spellings."""

    def __init__(self, word: str, suggestions: list[str]):
        self.word, self.suggestions = word, suggestions
        hint = f" Did you mean: {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"'{word}' is not in the vocabulary.{hint}")


# ---------------------------------------------------------------------------------------------
# Pure helpers: tokens, vocabulary, subsampling, windows


def tokenize(text: str) -> list[list[str]]:
    """Lower-cased words of each non-empty line (a line is a document: windows never cross it).

    >>> tokenize("The cat's hat.\\n\\nIt sat, in 1999!")
    [['the', "cat's", 'hat'], ['it', 'sat', 'in', '1999']]
    """
    docs = (_WORD.findall(line.lower()) for line in text.split("\n"))
    return [doc for doc in docs if doc]


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """Mikolov's subsampling: P(keep w) = (sqrt(f / t) + 1) * t / f with f = count / total, t = sample.

    Words rarer than about t are always kept; a word making up 10% of the text with t = 1e-3
    is kept ~11% of the time. `sample` = 0 keeps everything.

    >>> keep_probabilities(np.array([100, 100, 9_800]), 1e-2).round(3).tolist()
    [1.0, 1.0, 0.111]
    """
    if sample <= 0:
        return np.ones(len(counts))
    f = counts / counts.sum()
    return np.minimum(1.0, (np.sqrt(f / sample) + 1) * sample / f)


def context_windows(doc: np.ndarray, reach: np.ndarray, window: int) -> np.ndarray:
    """Which neighbours of each position are its context: a (N, 2 * window) boolean mask.

    Column j is the offset `offsets(window)[j]` (-window..-1, 1..window). A neighbour counts
    when it exists, is in the same document and is within the position's own `reach` (word2vec
    draws each centre's reach uniformly in 1..window, which weights near words more).

    >>> context_windows(np.array([0, 0, 0, 1]), np.array([1, 2, 1, 1]), 2).astype(int).tolist()
    [[0, 0, 1, 0], [0, 1, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]]
    """
    n = len(doc)
    mask = np.zeros((n, 2 * window), dtype=bool)  # (N, 2W)
    for j, o in enumerate(offsets(window)):
        k = abs(o)
        if k >= n:
            continue
        if o < 0:  # neighbour i - k of position i (i >= k)
            mask[k:, j] = (doc[k:] == doc[:-k]) & (reach[k:] >= k)
        else:  # neighbour i + k of position i (i < n - k)
            mask[:-k, j] = (doc[:-k] == doc[k:]) & (reach[:-k] >= k)
    return mask


def offsets(window: int) -> np.ndarray:
    """>>> offsets(2).tolist()
    [-2, -1, 1, 2]
    """
    return np.concatenate([np.arange(-window, 0), np.arange(1, window + 1)])


def _shifted(ids: np.ndarray, window: int) -> np.ndarray:
    """(N, 2W) ids of each position's neighbours at every offset (0 where out of range)."""
    n = len(ids)
    out = np.zeros((n, 2 * window), dtype=np.int64)
    for j, o in enumerate(offsets(window)):
        k = abs(o)
        if k >= n:
            continue
        if o < 0:
            out[k:, j] = ids[:-k]
        else:
            out[:-k, j] = ids[k:]
    return out


# ---------------------------------------------------------------------------------------------
# The model


@dataclass
class _Corpus:
    ids: np.ndarray  # (N,) int64 word ids of the in-vocabulary tokens, documents concatenated
    doc: np.ndarray  # (N,) int64 document number of each token
    raw_words: int  # tokens before dropping rare words (what a "word" is in words/s)


class Word2Vec:
    """CBOW or skip-gram word vectors; `fit` trains, the other methods query.

    >>> model = Word2Vec(Word2VecConfig(dim=8, min_count=1, epochs=2)).fit("a b c a b c\\na c b")
    >>> model.vocab, model.vector("a").shape
    (['a', 'b', 'c'], torch.Size([8]))
    """

    def __init__(self, config: Word2VecConfig | None = None):
        self.config = config or Word2VecConfig()
        self.config.validate()
        self.words: list[str] = []  # vocabulary, most frequent first
        self.counts = np.zeros(0, dtype=np.int64)  # (V,) corpus counts
        self.index: dict[str, int] = {}
        self.w_context = torch.zeros(0, self.config.dim)  # (V, D) input vectors: C in the docstring
        self.w_center = torch.zeros(0, self.config.dim)  # (V, D) output vectors: O in the docstring
        self.history: list[FitProgress] = []  # what fit reported, last entry = the end of training

    # -- vocabulary ------------------------------------------------------------------------------

    @property
    def vocab(self) -> list[str]:
        """The vocabulary, most frequent word first."""
        return self.words

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def __len__(self) -> int:
        return len(self.words)

    def _build(self, docs: list[list[str]]) -> _Corpus:
        counter = Counter(w for d in docs for w in d)
        raw = sum(counter.values())
        kept = sorted((w for w, c in counter.items() if c >= self.config.min_count), key=lambda w: -counter[w])
        if len(kept) < 2:
            raise ValueError(
                f"The corpus is too small: {len(kept)} word(s) appear at least min_count={self.config.min_count} "
                f"times ({raw} words in all). Lower min_count or use a bigger corpus."
            )
        self.words = kept
        self.index = {w: i for i, w in enumerate(kept)}
        self.counts = np.array([counter[w] for w in kept], dtype=np.int64)
        ids, doc = [], []
        for n, d in enumerate(docs):
            row = [self.index[w] for w in d if w in self.index]
            ids.extend(row)
            doc.extend([n] * len(row))
        corpus = _Corpus(np.array(ids, dtype=np.int64), np.array(doc, dtype=np.int64), raw)
        if not context_windows(corpus.doc, np.full(len(corpus.ids), 1), 1).any():
            raise ValueError("The corpus is too small: no two vocabulary words are neighbours in a document.")
        return corpus

    # -- training --------------------------------------------------------------------------------

    def fit(
        self,
        text_or_token_lists: str | Iterable[list[str]],
        epochs: int | None = None,
        max_seconds: float | None = None,
        callback: Callable[[FitProgress], bool | None] | None = None,
        report_seconds: float = 1.0,
    ) -> Word2Vec:
        """Build the vocabulary, initialise the vectors and train; returns self.

        The run ends after `epochs` passes or `max_seconds` of training, whichever comes first
        (only `epochs`, default `config.epochs`, when neither is given); the learning rate decays
        linearly along whichever budget is nearer its end, so a timed run still ends on a small
        rate. `callback(progress)` runs about every `report_seconds`; returning True stops the
        run early (the model keeps what it learned). Time spent inside the callback (e.g. while
        a job is paused) does not count against `max_seconds`.
        """
        cfg = self.config
        training.configure_torch_threads()  # once per process; MLLM_TORCH_THREADS=1 in tests and benchmarks
        if epochs is None and max_seconds is None:
            epochs = cfg.epochs
        if epochs is not None and epochs < 1:
            raise ValueError("epochs must be at least 1")
        docs = tokenize(text_or_token_lists) if isinstance(text_or_token_lists, str) else list(text_or_token_lists)
        corpus = self._build(docs)
        V, D = len(self.words), cfg.dim
        gen = torch.Generator().manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        self.w_context = (torch.rand(V, D, generator=gen) - 0.5) / D  # word2vec's init
        self.w_center = torch.zeros(V, D)
        self.history = []
        keep = keep_probabilities(self.counts.astype(np.float64), cfg.subsample)
        noise_cdf = torch.from_numpy(np.cumsum(self.counts.astype(np.float64) ** 0.75))
        noise_cdf /= noise_cdf[-1].clone()
        total_words = corpus.raw_words * epochs if epochs is not None else None

        clock, paused = time.perf_counter(), 0.0
        words, epoch, next_report = 0, 0, report_seconds
        loss_sum, loss_n = 0.0, 0
        while epochs is None or epoch < epochs:
            centers, ctx, mask = self._epoch_batches(corpus, keep, rng)
            n = len(centers)
            for start in range(0, n, cfg.batch_size):
                elapsed = time.perf_counter() - clock - paused
                fraction = min(
                    1.0,
                    max(
                        (words + corpus.raw_words * start / n) / total_words if total_words else 0.0,
                        elapsed / max_seconds if max_seconds else 0.0,
                    ),
                )
                if max_seconds is not None and elapsed >= max_seconds:
                    done = words + round(corpus.raw_words * start / n)
                    return self._finish(
                        epoch, done, total_words, elapsed, loss_sum / loss_n if loss_n else math.nan, callback
                    )
                lr = cfg.lr * max(1e-4, 1.0 - fraction)
                end = start + cfg.batch_size
                loss_sum += self._step(centers[start:end], ctx[start:end], mask[start:end], lr, noise_cdf, gen)
                loss_n += 1
                if callback is not None and elapsed >= next_report:
                    done = words + round(corpus.raw_words * min(end, n) / n)  # the last batch may be short
                    progress = self._progress(epoch, done, total_words, fraction, elapsed, loss_sum / loss_n, lr)
                    loss_sum, loss_n = 0.0, 0
                    t0 = time.perf_counter()
                    stop = callback(progress)
                    paused += time.perf_counter() - t0
                    next_report = elapsed + report_seconds
                    if stop:
                        return self._finish(epoch, done, total_words, elapsed, math.nan, None)
            words += corpus.raw_words
            epoch += 1
        elapsed = time.perf_counter() - clock - paused
        return self._finish(epoch, words, total_words, elapsed, loss_sum / loss_n if loss_n else math.nan, callback)

    def _finish(self, epoch, words, total_words, elapsed, loss, callback) -> Word2Vec:
        progress = self._progress(epoch, words, total_words, 1.0, elapsed, loss, 0.0)
        if callback is not None:
            callback(progress)
        return self

    def _progress(self, epoch, words, total_words, fraction, elapsed, loss, lr) -> FitProgress:
        progress = FitProgress(
            epoch,
            words,
            total_words,
            fraction,
            elapsed,
            loss,
            lr,
            self.evaluate("wordsim353"),
            self.evaluate("simlex999"),
        )
        self.history.append(progress)
        return progress

    def _epoch_batches(self, corpus: _Corpus, keep: np.ndarray, rng: np.random.Generator):
        """One epoch's centres (N,), their neighbours' ids (N, 2W) and context mask (N, 2W), as tensors.

        The examples come in a random order. In text order a batch is a few thousand
        neighbouring words whose windows overlap, so its summed, stale gradients (and the
        negatives a group shares) are strongly correlated: a topic's words take big steps, which
        learns fast at first and then levels off. Shuffled, a batch is a fair sample of the
        corpus and WordSim-353 ρ keeps rising with training: at 60 s it matches gensim's (mean of
        5 seeds, see bench/bench_word2vec.py), at 30 s text order is ahead (0.436 vs 0.416).
        """
        kept = rng.random(len(corpus.ids)) < keep[corpus.ids]  # subsample frequent words anew each epoch
        ids, doc = corpus.ids[kept], corpus.doc[kept]
        reach = rng.integers(1, self.config.window + 1, len(ids))  # each centre's own window size
        mask = context_windows(doc, reach, self.config.window)
        order = torch.from_numpy(rng.permutation(len(ids)))
        ctx = torch.from_numpy(_shifted(ids, self.config.window))
        return torch.from_numpy(ids)[order], ctx[order], torch.from_numpy(mask)[order]

    @torch.no_grad()
    def _step(self, centers: torch.Tensor, ctx: torch.Tensor, mask: torch.Tensor, lr: float, noise_cdf, gen) -> float:
        """One SGD step on a batch of B centres; returns the mean loss per centre (or per pair)."""
        cfg = self.config
        counts = mask.sum(1)  # (B,) context words per centre
        flat = ctx[mask]  # (nnz,) context ids, centre by centre
        if cfg.mode == "cbow":
            offsets = torch.zeros_like(counts)
            offsets[1:] = counts.cumsum(0)[:-1]
            h = F.embedding_bag(flat, self.w_context, offsets, mode="mean")  # (B, D); empty window -> 0
            targets = centers
        else:  # skip-gram: every (context, centre) pair is its own example
            h = self.w_context[flat]  # (nnz, D)
            targets = centers.repeat_interleave(counts)  # (nnz,)
        if cfg.loss == "full-softmax":
            grad_h, loss = self._softmax_update(h, targets, lr)
        else:
            grad_h, loss = self._negative_sampling_update(h, targets, lr, noise_cdf, gen)
        if cfg.mode == "cbow":  # word2vec.c adds the averaged context's gradient to every context word
            grad_h = grad_h.repeat_interleave(counts, dim=0)  # (nnz, D)
        _add_rows(self.w_context, flat, grad_h, torch.bincount(flat, minlength=len(self.words)), cfg.row_cap)
        if cfg.max_norm is not None:  # after the update, so no context vector is ever longer than max_norm
            torch.embedding_renorm_(self.w_context, flat, cfg.max_norm, 2.0)
        return loss

    def _negative_sampling_update(self, h, targets, lr, noise_cdf, gen) -> tuple[torch.Tensor, float]:
        """Raise σ(h·O[target]), lower σ(h·O[noise]) for `negatives` noise words per centre; update O.

        Groups of `config.group` consecutive examples share their noise words, so their scores
        are one batched matrix product (G, D) @ (D, K) per group. Returns (gradient step for h
        (B, D), mean loss).
        """
        cfg = self.config
        B, D = h.shape
        G, K = cfg.group, cfg.negatives
        n_groups = -(-B // G)
        hg = F.pad(h, (0, 0, 0, n_groups * G - B)).view(n_groups, G, D)  # (g, G, D), zero rows pad
        noise = torch.searchsorted(noise_cdf, torch.rand(n_groups, K, generator=gen, dtype=torch.float64))
        noise = noise.clamp_(max=len(noise_cdf) - 1)  # (g, K) word ids drawn from unigram^0.75
        o_pos = self.w_center[targets]  # (B, D)
        o_neg = self.w_center[noise]  # (g, K, D)
        s_pos = (h * o_pos).sum(1)  # (B,)
        s_neg = torch.bmm(hg, o_neg.transpose(1, 2))  # (g, G, K)
        p_pos, p_neg = torch.sigmoid(s_pos), torch.sigmoid(s_neg)
        tg = F.pad(targets, (0, n_groups * G - B), value=-1).view(n_groups, G, 1)
        # a noise word equal to the target is no negative (frequent in a small vocabulary), nor is a padding row
        same = (noise.unsqueeze(1) == tg) | (tg < 0)  # (g, G, K)
        loss = -(torch.log(p_pos + 1e-7).sum() + torch.log1p(-p_neg + 1e-7).masked_fill(same, 0.0).sum()).item() / B
        # no update for those, nor (as in gensim) for a saturated score |s| >= 6
        p_neg.masked_fill_(same | (s_neg.abs() >= MAX_SCORE), 0.0)
        g_pos = (1.0 - p_pos).masked_fill_(s_pos.abs() >= MAX_SCORE, 0.0).mul_(lr)  # (B,) lr * d log σ(s) / ds
        g_neg = p_neg.mul_(-lr)  # (g, G, K)
        grad_h = torch.bmm(g_neg, o_neg).view(-1, D)[:B].addcmul_(g_pos.unsqueeze(1), o_pos)  # (B, D)
        V = len(self.words)
        hits = torch.bincount(targets, minlength=V) + G * torch.bincount(noise.view(-1), minlength=V)  # (V,)
        _add_rows(self.w_center, targets, h * g_pos.unsqueeze(1), hits, cfg.row_cap)
        _add_rows(self.w_center, noise.view(-1), torch.bmm(g_neg.transpose(1, 2), hg).view(-1, D), hits, cfg.row_cap)
        return grad_h, loss

    def _softmax_update(self, h, targets, lr) -> tuple[torch.Tensor, float]:
        """Exact cross-entropy over the whole vocabulary (the seed's formulation), in row chunks."""
        V = len(self.words)
        rows = max(16, (1 << 22) // V)  # keep the (rows, V) logits under ~16 MB
        grads, loss = [], 0.0
        for i in range(0, len(h), rows):
            hb, tb = h[i : i + rows], targets[i : i + rows]  # (b, D), (b,)
            logits = hb @ self.w_center.T  # (b, V)
            logp = torch.log_softmax(logits, dim=1)
            loss -= logp.gather(1, tb.unsqueeze(1)).sum().item()
            g = logp.exp_().neg_()  # (b, V): lr * d log p(target) / d logits = lr * (onehot - p)
            g[torch.arange(len(tb)), tb] += 1.0
            g.mul_(lr)
            grads.append(g @ self.w_center)  # (b, D), before O changes
            self.w_center.addmm_(g.T, hb, alpha=min(1.0, self.config.row_cap / len(hb)))  # (V, D): every row is hit
        return torch.cat(grads), loss / max(1, len(h))

    # -- queries ---------------------------------------------------------------------------------

    def _check(self, word: str) -> int:
        if not self.words:
            raise ValueError("The model is not trained yet.")
        if word not in self.index:
            raise UnknownWordError(word, difflib.get_close_matches(word, self.words, n=5, cutoff=0.75))
        return self.index[word]

    def vectors(self, which: str = "context") -> torch.Tensor:
        """The (V, D) table: "context" (input vectors, the usual word vectors), "center" (output
        vectors) or "sum" (input + output).

        The sum is GloVe's choice (it adds its two tables) and one of Levy, Goldberg & Dagan's
        (2015) lessons for word2vec: the output vector adds what a word predicts to what predicts
        it. On the shipped default it lifts WordSim-353 ρ from 0.433 to 0.474 (SimLex-999 0.216
        vs 0.213).
        """
        if which == "sum":
            return self.w_context + self.w_center
        if which not in ("context", "center"):
            raise ValueError(f"which must be 'context', 'center' or 'sum', not {which!r}")
        return self.w_context if which == "context" else self.w_center

    def vector(self, word: str, which: str = "context") -> torch.Tensor:
        """The (D,) vector of `word`; `UnknownWordError` (a ValueError) suggests close spellings."""
        return self.vectors(which)[self._check(word)].clone()

    def _nearest(self, query: torch.Tensor, exclude: set[int], topn: int, which: str) -> list[tuple[str, float]]:
        unit = F.normalize(self.vectors(which), dim=1)  # (V, D)
        cos = unit @ F.normalize(query, dim=0)  # (V,)
        if exclude:
            cos[list(exclude)] = -math.inf
        best = torch.topk(cos, min(topn, len(self.words) - len(exclude)))
        return [(self.words[i], float(c)) for c, i in zip(best.values.tolist(), best.indices.tolist(), strict=True)]

    def most_similar(self, word: str, topn: int = 10, which: str = "context") -> list[tuple[str, float]]:
        """The `topn` words whose vectors have the highest cosine with `word`'s (itself excluded)."""
        i = self._check(word)
        return self._nearest(self.vectors(which)[i], {i}, topn, which)

    def analogy(self, a: str, b: str, c: str, topn: int = 5, which: str = "context") -> list[tuple[str, float]]:
        """a is to b as c is to ?: the words nearest to unit(b) - unit(a) + unit(c) (3CosAdd), a, b, c excluded.

        `analogy("man", "king", "woman")` asks for the female king.
        """
        ids = [self._check(w) for w in (a, b, c)]
        unit = F.normalize(self.vectors(which)[ids], dim=1)  # (3, D)
        return self._nearest(unit[1] - unit[0] + unit[2], set(ids), topn, which)

    def evaluate(self, benchmark: str = "wordsim353", which: str = "context") -> float:
        """Spearman ρ on WordSim-353 or SimLex-999 over the pairs in the vocabulary (NaN if < 3)."""
        return wordsim.score(self.vectors(which).numpy(), self.index, benchmark)[0]

    def snapshot(self) -> Word2Vec:
        """A frozen copy for readers in other threads while this model keeps training."""
        copy = Word2Vec(self.config)
        copy.words, copy.index, copy.counts = self.words, self.index, self.counts
        copy.w_context, copy.w_center = self.w_context.clone(), self.w_center.clone()
        copy.history = list(self.history)
        return copy

    # -- save / load -----------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write a versioned torch checkpoint (plain tensors, lists and numbers only)."""
        torch.save(
            {
                "format": "llm-playground/word2vec",
                "version": FORMAT_VERSION,
                "config": asdict(self.config),
                "words": self.words,
                "counts": torch.from_numpy(self.counts),
                "w_context": self.w_context,
                "w_center": self.w_center,
            },
            path,
        )

    @classmethod
    def load(cls, path: str | Path) -> Word2Vec:
        state = torch.load(path, weights_only=True)
        if state.get("format") != "llm-playground/word2vec" or state.get("version") != FORMAT_VERSION:
            raise ValueError(f"{path} is not a word2vec checkpoint of version {FORMAT_VERSION}")
        model = cls(Word2VecConfig(**state["config"]))
        model.words = list(state["words"])
        model.index = {w: i for i, w in enumerate(model.words)}
        model.counts = state["counts"].numpy()
        model.w_context, model.w_center = state["w_context"], state["w_center"]
        return model

    def to_tsv(self, which: str = "context") -> tuple[str, str]:
        """(vectors.tsv, metadata.tsv) in the TensorFlow Embedding Projector's format."""
        rows = self.vectors(which).tolist()
        vectors = "\n".join("\t".join(f"{x:.5f}" for x in row) for row in rows) + "\n"
        return vectors, "\n".join(self.words) + "\n"


def check_corpus(config: Word2VecConfig, text_or_token_lists: str | Iterable[list[str]]) -> int:
    """The vocabulary size `fit` would get; raises its ValueError when the corpus is too small.

    >>> check_corpus(Word2VecConfig(min_count=1), "a b a")
    2
    """
    docs = tokenize(text_or_token_lists) if isinstance(text_or_token_lists, str) else list(text_or_token_lists)
    model = Word2Vec(config)
    model._build(docs)
    return len(model)


def _add_rows(table: torch.Tensor, index: torch.Tensor, src: torch.Tensor, hits: torch.Tensor, cap: int) -> None:
    """table[index] += src (duplicates summed), but a row hit more than `cap` times gets sum * cap / hits.

    Summing thousands of gradients taken at the same stale point overshoots where one SGD
    example at a time would not (a small vocabulary diverges); capping bounds the step.

    >>> t = torch.zeros(2, 1)
    >>> _add_rows(t, torch.tensor([0, 0, 0, 0, 1]), torch.ones(5, 1), torch.tensor([4, 1]), cap=2)
    >>> t.flatten().tolist()
    [2.0, 1.0]
    """
    scale = (cap / hits.clamp(min=cap)).to(src.dtype)  # (V,) 1 for rows hit <= cap times
    table.index_add_(0, index, src.mul_(scale[index].unsqueeze(1)))


def training_target(
    config: Word2VecConfig, text: str | list[list[str]], epochs: int | None = None, max_seconds: float | None = None
):
    """A `TrainingJob` target: trains, reports loss and ρ, publishes a queryable snapshot.

    Each report publishes `model` (a `Word2Vec.snapshot()`) and `progress` (the `FitProgress`);
    the job's result is the trained model, also after a stop.
    """

    def target(ctx) -> Word2Vec:
        model = Word2Vec(config)

        def report(p: FitProgress) -> bool:
            if p.total_words:
                ctx.set_total(p.total_words)
            elif p.fraction > 0:
                ctx.set_total(round(p.words / p.fraction))
            metrics = {"wordsim": p.wordsim, "simlex": p.simlex}
            if not math.isnan(p.loss):
                metrics["loss"] = p.loss
            ctx.report(step=p.words, **metrics)
            ctx.publish(model=model.snapshot(), progress=p)
            ctx.wait_if_paused()
            return ctx.should_stop()

        return model.fit(text, epochs=epochs, max_seconds=max_seconds, callback=report)

    return target
