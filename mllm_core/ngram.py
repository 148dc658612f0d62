"""Count-based language models: n-grams with MLE, add-k and Kneser-Ney smoothing.

An n-gram model predicts the next token from the previous n - 1 tokens only, by counting how
often each continuation followed that context in the training text:

    p(w | c) = C(c w) / C(c)          e.g. p(quick | The) = C(The quick) / C(The) = 1 / 2

Nothing is learned by gradient descent, unlike the neural families (`rnn.py`, `transformer.py`):
"training" is counting, so it takes a second on 450K words. The price is sparsity: most long
contexts were never seen, which is what the smoothing methods are for.

- `count_ngrams(sequences, max_order)` counts every order 1..max_order at once with numpy
  (`NGramCounts`); an n-gram is stored as (id of its (n-1)-gram prefix) * V + (last token), so
  the continuations of a context are one contiguous, sorted slice of the table.
- The smoothings `MLE` (falls back to the longest context seen when the full context was never
  seen), `AddK` (Laplace for k = 1) and `KneserNey` (interpolated, discounts from the
  count-of-counts) each write their formula twice, side by side: for one context and for every
  position of a text at once. `SMOOTHING` names them "mle", "add-k" and "kneser-ney".
- `NGramModel(n, smoothing, k)` turns the counts into probabilities with one of them. Several
  models of different n and smoothing share one `NGramCounts` (`NGramModel.from_counts`).
- `NGramTextLM` adapts a model to `mllm_core.lm.TextLM`, so the generation lab samples it like
  the neural models; `train_text_lm(text, n, level)` builds one from raw text.

Every sequence is padded with n - 1 `<s>` on the left and one `</s>` on the right; `<s>` is
never predicted, `</s>` is, and tokens never seen in training map to `<unk>`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from mllm_core.sampling import filter_logits, make_generator, sample_next

UNK, BOS, EOS = "<unk>", "<s>", "</s>"
UNK_ID, BOS_ID, EOS_ID = 0, 1, 2
MAX_N = 10  # counting cost grows linearly with n; the lab's slider stops at 5


# ---------------------------------------------------------------------------------------------
# Tokens


def split_tokens(text: str, level: str = "word") -> list[list[str]]:
    """Cut text into sequences (one per non-empty line) of word or character tokens.

    Words are whitespace tokens with their case and punctuation kept, as in the talk.

    >>> split_tokens("The fox\\n\\nis fast", "word")
    [['The', 'fox'], ['is', 'fast']]
    >>> split_tokens("ab\\nc", "char")
    [['a', 'b'], ['c']]
    """
    _check_level(level)
    lines = [line for line in text.split("\n") if line.strip()]
    return [line.split() for line in lines] if level == "word" else [list(line) for line in lines]


def text_tokens(text: str, level: str = "word") -> list[str]:
    """Text that goes on (a prompt, a text to score) as one list of tokens, a line break as `</s>`.

    Unlike `split_tokens`, empty lines are kept: each line break ends a sequence.

    >>> text_tokens("The fox\\nis", "word"), text_tokens("ab\\n", "char")
    (['The', 'fox', '</s>', 'is'], ['a', 'b', '</s>'])
    """
    _check_level(level)
    out: list[str] = []
    for i, line in enumerate(text.split("\n")):
        if i:
            out.append(EOS)
        out += line.split() if level == "word" else list(line)
    return out


def _check_level(level: str) -> None:
    if level not in ("word", "char"):
        raise ValueError(f"level must be 'word' or 'char', not {level!r}")


# ---------------------------------------------------------------------------------------------
# Counting


@dataclass(eq=False)
class OrderTable:
    """The n-grams of one order, sorted by key = prefix_id * V + last_token.

    Rows include windows that only serve as prefixes (ending at `<s>` padding): their count is 0.
    """

    keys: np.ndarray  # (R,) int64 sorted unique keys; a row's index is the n-gram's id
    counts: np.ndarray  # (R,) int64 occurrences as a predicted window (ends on a real token or </s>)
    starts: np.ndarray  # (P + 1,) int64 rows [starts[c], starts[c + 1]) continue the prefix with id c
    cont: np.ndarray | None = None  # (R,) int64 Kneser-Ney continuation counts N1+(. g); None at the top order


@dataclass(eq=False)
class NGramCounts:
    """All n-gram counts of orders 1..max_order of a tokenised corpus (see `count_ngrams`)."""

    vocab: list[str]  # id -> token; 0 <unk>, 1 <s>, 2 </s>
    index: dict[str, int]  # token -> id
    max_order: int
    stream: np.ndarray  # (N,) int64 padded training ids, sequences one after the other
    tables: list[OrderTable]  # tables[j - 1] holds order j
    n_tokens: int  # predicted positions (real tokens + one </s> per sequence)
    longest: int  # the longest training sequence, in tokens
    cache: dict = field(default_factory=dict, repr=False)  # derived arrays, computed on first use, shared by models

    @property
    def V(self) -> int:  # noqa: N802 - V as in the formulas
        return len(self.vocab)

    def ids(self, tokens: Iterable[str]) -> list[int]:
        """Token ids, `<unk>` for tokens never seen in training."""
        index = self.index
        return [index.get(t, UNK_ID) for t in tokens]

    def find(self, ids: Sequence[int]) -> int:
        """The row of the n-gram `ids` in the table of its order, or -1 when never seen.

        >>> c = count_ngrams([["a", "b", "a", "b"]], 2)
        >>> int(c.tables[1].counts[c.find(c.ids(["a", "b"]))])
        2
        """
        row, V = 0, self.V
        for j, t in enumerate(ids, start=1):
            if j > self.max_order:
                raise ValueError(f"these counts stop at order {self.max_order}")
            keys = self.tables[j - 1].keys
            key = row * V + t
            row = int(keys.searchsorted(key))
            if row == len(keys) or keys[row] != key:
                return -1
        return row

    def window_ids(self, stream: np.ndarray, order: int) -> list[np.ndarray]:
        """Ids of the windows of orders 0..order ending at every position of a padded `stream`.

        Returns `order + 1` arrays of shape (N,): -1 where a window was never seen in training
        (or reaches before the start). Order 0 (the empty window) has id 0 everywhere.
        """
        V, N = self.V, len(stream)
        out = [np.zeros(N, dtype=np.int64)]
        for j in range(1, order + 1):
            keys = self.tables[j - 1].keys
            prev = np.zeros(N, dtype=np.int64)  # id of the window of order j - 1 ending one position earlier
            if j > 1:
                prev[0], prev[1:] = -1, out[-1][:-1]
            key = prev * V + stream
            row = np.minimum(np.searchsorted(keys, key), len(keys) - 1)
            out.append(np.where((prev >= 0) & (keys[row] == key), row, -1))
        return out

    def level(self, order: int, continuation: bool = False) -> _Level:
        """The order's counts as a smoothing reads them, computed once and shared by every model:
        raw counts C(c w), or Kneser-Ney's continuation counts N1+(. c w) (below max_order)."""
        key = ("level", order, "cont" if continuation else "raw")
        if key not in self.cache:
            table = self.tables[order - 1]
            self.cache[key] = _level(table, table.cont if continuation else table.counts, self.V)
        return self.cache[key]

    def longest_seen(self, context: Sequence[int]) -> tuple[int, int]:
        """(length, row) of the longest suffix c of the context ids seen before a token (C(c) > 0).

        The row is c's in the table of order `length`; the empty context (0, 0) is always seen.
        MLE conditions on this suffix, its sampler draws from what followed it, and the page
        names it when it is shorter than the context. At most max_order - 1 ids.

        >>> c = count_ngrams([["a", "b", "c"]], 3)
        >>> c.longest_seen(c.ids(["x", "b"]))[0], c.longest_seen(c.ids(["a", "b"]))[0], c.longest_seen(c.ids(["x"]))
        (1, 2, (0, 0))
        """
        for length in range(len(context), 0, -1):  # a suffix of a seen context is seen: stop at the first
            row = self.find(context[len(context) - length :])
            if row >= 0 and self.level(length + 1).total[row] > 0:
                return length, row
        return 0, 0

    # -- queries for display and sparsity --------------------------------------------------------

    def count(self, ngram: Sequence[str]) -> int:
        """C(ngram): how often `ngram` (1..max_order tokens, `<s>` / `</s>` allowed) occurs in training.

        >>> count_ngrams([["a", "b", "a", "b"]], 2).count(["a", "b"])
        2
        """
        row = self.find(self.ids(ngram))
        return 0 if row < 0 else int(self.tables[len(ngram) - 1].counts[row])

    def table_size(self, order: int) -> int:
        """Distinct n-grams of an order seen in training."""
        check_order(self, order)
        return int((self.tables[order - 1].counts > 0).sum())

    def continuations(self, context: Sequence[str]) -> dict[str, int]:
        """C(context w) of every w seen after `context` (at most max_order - 1 tokens).

        >>> count_ngrams([["a", "b"], ["a", "c"], ["a", "b"]], 2).continuations(["a"])
        {'b': 2, 'c': 1}
        """
        if len(context) >= self.max_order:
            raise ValueError(f"these counts stop at order {self.max_order}: give at most {self.max_order - 1} tokens")
        row = self.find(self.ids(context))
        return {} if row < 0 else self._seen_after(len(context) + 1, row)

    def continuation_table(self, order: int) -> Iterator[tuple[tuple[str, ...], dict[str, int]]]:
        """(context, its continuations) for every context of order - 1 tokens seen before a token,
        in table order: the rows of the page's bigram and trigram tables (meant for small corpora)."""
        for row, context in enumerate(_ngram_tokens(self, order - 1)):
            after = self._seen_after(order, row)
            if after:
                yield context, after

    def _seen_after(self, order: int, row: int) -> dict[str, int]:
        """{w: C(c w)} for the w seen after the context in row `row` of the order below."""
        table, V = self.tables[order - 1], self.V
        lo, hi = table.starts[row], table.starts[row + 1]
        return {self.vocab[k % V]: int(n) for k, n in zip(table.keys[lo:hi], table.counts[lo:hi], strict=True) if n > 0}

    def unseen_share(self, sequences: Sequence[str] | Iterable[Sequence[str]], order: int) -> float:
        """Share of the n-grams of an order in `sequences` never seen in training: sparsity.

        Each sequence is padded as for scoring (`<s>` before, `</s>` after), one n-gram per token.

        >>> count_ngrams([["The", "quick", "fox"]], 2).unseen_share(["The", "quick", "dog"], 2)  # (quick dog), (dog </s>)
        0.5
        """
        check_order(self, order)
        stream, targets = _pad([self.ids(s) for s in _as_sequences(sequences)], order)
        if len(targets) == 0:
            raise ValueError("nothing to score: the text has no tokens")
        rows = self.window_ids(stream, order)[order][targets]
        seen = (rows >= 0) & (self.tables[order - 1].counts[np.maximum(rows, 0)] > 0)
        return float(1 - seen.mean())


def _pad(seqs_ids: list[list[int]], order: int) -> tuple[np.ndarray, np.ndarray]:
    """(stream, targets): sequences padded as `<s>`*(order-1) + ids + `</s>`, and the predicted positions.

    >>> _pad([[5, 6]], 2)
    (array([1, 1, 5, 6, 2]), array([2, 3, 4]))
    """
    pad = [BOS_ID] * (order - 1)
    flat = list(pad)  # an extra left pad: windows of every order fit before the first sequence
    for ids in seqs_ids:
        flat += pad
        flat += ids
        flat.append(EOS_ID)
    stream = np.asarray(flat, dtype=np.int64)
    return stream, np.flatnonzero(stream != BOS_ID)


def count_ngrams(sequences: Iterable[Sequence[str]], max_order: int) -> NGramCounts:
    """Count the n-grams of every order 1..max_order of `sequences` (lists of tokens).

    Vectorised: each order is one `np.unique` over int64 keys, where a window's key is
    (row of its prefix window in the order below) * V + (its last token).

    >>> c = count_ngrams([["The", "fox"], ["The", "dog"]], 2)
    >>> int(c.tables[1].counts[c.find(c.ids(["The", "fox"]))]), c.n_tokens
    (1, 6)
    """
    if not 1 <= max_order <= MAX_N or int(max_order) != max_order:
        raise ValueError(f"n must be an integer between 1 and {MAX_N}")
    index = {UNK: UNK_ID, BOS: BOS_ID, EOS: EOS_ID}
    seqs_ids = [[index.setdefault(t, len(index)) for t in seq] for seq in sequences]
    seqs_ids = [s for s in seqs_ids if s]
    if not seqs_ids:
        raise ValueError("The corpus has no tokens: give it some text first.")
    longest = max(map(len, seqs_ids))
    vocab = list(index)
    V = len(vocab)
    stream, targets = _pad(seqs_ids, max_order)
    N = len(stream)

    tables: list[OrderTable] = []
    prev_ids = np.zeros(N, dtype=np.int64)  # ids of the windows of the order below (order 0: the empty one)
    prev_rows = 1
    for j in range(1, max_order + 1):
        # windows of order j end at positions >= j - 1; earlier ones would reach before the stream
        key = prev_ids[j - 2 : N - 1] * V + stream[j - 1 :] if j > 1 else stream.copy()
        keys, inverse = np.unique(key, return_inverse=True)
        ids = np.full(N, -1, dtype=np.int64)
        ids[j - 1 :] = inverse.reshape(-1)
        counts = np.bincount(ids[targets], minlength=len(keys)).astype(np.int64)
        starts = np.searchsorted(keys, np.arange(prev_rows + 1, dtype=np.int64) * V)
        table = OrderTable(keys, counts, starts)
        if tables:
            # N1+(. g): distinct predicted windows of order j whose suffix (the last j-1 tokens) is g
            lower = tables[-1]
            suffix_of = np.zeros(len(keys), dtype=np.int64)
            suffix_of[ids[targets]] = prev_ids[targets]
            lower.cont = np.bincount(suffix_of[counts > 0], minlength=len(lower.keys)).astype(np.int64)
        tables.append(table)
        prev_ids, prev_rows = ids, len(keys)
    return NGramCounts(vocab, index, max_order, stream, tables, len(targets), longest)


# ---------------------------------------------------------------------------------------------
# Smoothing: p(w | c) from the counts, for one context and for every position of a text
#
# The symbols are the page's: p(quick | The) = C(The quick) / C(The). For a context c and a next
# token w, C(c w) counts the n-gram "c w", C(c) = sum over w of C(c w) counts c before a token,
# N1+(c .) is how many different w followed c, and V is the vocabulary size (`<s>` included,
# though it is never predicted: V - 1 tokens can come next). Each method writes its formula
# twice, side by side: `one_context` (the (V,) distribution after one context, for the page and
# for sampling) and `every_position` (p of each token of a text at once, for perplexity).


@dataclass(eq=False)
class _Level:
    """One order's counts as a smoothing reads them, with the per-context sums precomputed."""

    table: OrderTable
    V: int
    counts: np.ndarray  # (R,) C(c w): raw counts, or continuation counts N1+(. c w) (Kneser-Ney, below the top)
    total: np.ndarray  # (P,) C(c), the sum of `counts` over each context's continuations
    types: np.ndarray  # (P,) N1+(c .), the number of continuations with a non-zero count
    discount: float  # Kneser-Ney D = n1 / (n1 + 2 n2) of these counts

    def after(self, row: int) -> _After:
        """The continuations of the context in row `row` of the order below."""
        lo, hi = self.table.starts[row], self.table.starts[row + 1]
        return _After(self.table.keys[lo:hi] % self.V, self.counts[lo:hi], self.total[row], self.types[row])


def _level(table: OrderTable, counts: np.ndarray, V: int) -> _Level:
    csum = np.concatenate([[0], np.cumsum(counts)])
    nz = np.concatenate([[0], np.cumsum(counts > 0)])
    n1, n2 = int((counts == 1).sum()), int((counts == 2).sum())
    discount = n1 / (n1 + 2 * n2) if n1 and n2 else 0.75
    return _Level(table, V, counts, np.diff(csum[table.starts]), np.diff(nz[table.starts]), discount)


@dataclass(frozen=True)
class _After:
    """What followed one context c in training: the w, C(c w), C(c) and N1+(c .)."""

    w: np.ndarray  # (m,) token ids (a few with C(c w) = 0: windows that only lead into longer ones)
    C: np.ndarray  # (m,) C(c w)
    total: int  # C(c)
    types: int  # N1+(c .)


@dataclass(frozen=True)
class _Context:
    """One context (at most n - 1 ids), as the one-context formulas read it."""

    counts: NGramCounts
    levels: list[_Level]  # orders 1..n
    ids: list[int]  # the context c; the formulas use orders 1..len(ids) + 1

    def after(self, j: int) -> _After | None:
        """What followed the last j - 1 ids, or None when they never preceded a token (C(c) = 0)."""
        row = self.counts.find(self.ids[len(self.ids) - (j - 1) :]) if j > 1 else 0
        if row < 0 or self.levels[j - 1].total[row] == 0:
            return None
        return self.levels[j - 1].after(row)

    def longest(self) -> _After:
        """What followed the longest suffix of the context seen before a token (`NGramCounts.longest_seen`)."""
        length, row = self.counts.longest_seen(self.ids)
        return self.levels[length].after(row)


@dataclass(frozen=True)
class _Positions:
    """Every predicted position of a padded text, as the vectorised formulas read it."""

    counts: NGramCounts
    levels: list[_Level]  # orders 1..n
    windows: list[np.ndarray]  # orders 0..n, (N,) window ids at every position of the stream (-1: never seen)
    targets: np.ndarray  # (T,) the positions predicted
    w: np.ndarray  # (T,) the token at each of them

    def at(self, j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(C(c w), C(c), N1+(c .)) at every position, each (T,), c the last j - 1 tokens before w.

        All zero where c never preceded a token; C(c w) zero where c w was never seen.
        """
        lv, row, crow = self.levels[j - 1], self.windows[j][self.targets], self.windows[j - 1][self.targets - 1]
        seen = crow >= 0
        total = np.where(seen, lv.total[np.maximum(crow, 0)], 0)
        types = np.where(seen, lv.types[np.maximum(crow, 0)], 0)
        return np.where(row >= 0, lv.counts[np.maximum(row, 0)], 0), total, types

    def longest(self) -> tuple[np.ndarray, np.ndarray]:
        """(C(c w), C(c)) at every position, each (T,), for the longest c seen before a token there.

        The vectorised twin of `NGramCounts.longest_seen`: a longer seen context overrides a shorter one.
        """
        C = total = np.zeros(len(self.targets), dtype=np.int64)
        for j in range(1, len(self.levels) + 1):
            C_j, total_j, _ = self.at(j)
            seen = total_j > 0
            C, total = np.where(seen, C_j, C), np.where(seen, total_j, total)
        return C, total


def _log(p: np.ndarray) -> torch.Tensor:
    """float32 log-probabilities, -inf where p = 0."""
    with np.errstate(divide="ignore"):
        return torch.from_numpy(np.log(p)).float()


class Smoothing:
    """How a model turns counts into p(w | c): one small class per method, formulas side by side."""

    continuation_counts = False  # below the top order, read N1+(. c w) instead of C(c w)

    def one_context(self, q: _Context) -> np.ndarray:
        """(V,) float64 p(w | c) for every w after the one context of `q`."""
        raise NotImplementedError

    def every_position(self, x: _Positions) -> np.ndarray:
        """(T,) float64 p(w | c) of the token at every position of `x`, each after its own context."""
        raise NotImplementedError

    def draw_from(self, q: _Context) -> tuple[np.ndarray, torch.Tensor]:
        """(ids, float32 log-probabilities) a sampler draws the next token from: every id by default."""
        logp = _log(self.one_context(q))
        return np.arange(len(logp)), logp


class MLE(Smoothing):
    """Maximum likelihood, the plain count ratio, after the longest context seen in training:

        p(w | c) = C(c w) / C(c)

    When C(c) = 0 (c never seen), c is shortened from the left until C(c) > 0; the empty context
    is always seen: p(w) = C(w) / (number of tokens). Tokens never seen after c get p = 0.
    """

    def one_context(self, q: _Context) -> np.ndarray:
        a = q.longest()
        p = np.zeros(q.counts.V)
        seen = a.C > 0
        p[a.w[seen]] = a.C[seen] / a.total
        return p

    def every_position(self, x: _Positions) -> np.ndarray:
        C, total = x.longest()
        return C / total

    def draw_from(self, q: _Context) -> tuple[np.ndarray, torch.Tensor]:
        """The continuations seen only (the other tokens' -inf logits never change a draw).

        Slices of tables of log p(w | c), made once per `NGramCounts` and order and shared by
        every MLE model on them, so a sampling step costs a few binary searches.
        """
        length, row = q.counts.longest_seen(q.ids)
        key = ("mle", length + 1)
        if key not in q.counts.cache:
            lv = q.counts.level(length + 1)
            seen = lv.counts > 0
            starts = np.concatenate([[0], np.cumsum(seen)])[lv.table.starts]  # context row -> its first seen row
            logp = np.log(lv.counts[seen] / lv.total[lv.table.keys[seen] // lv.V]).astype(np.float32)
            q.counts.cache[key] = starts, lv.table.keys[seen] % lv.V, logp
        starts, w, logp = q.counts.cache[key]
        lo, hi = starts[row], starts[row + 1]
        return w[lo:hi], torch.from_numpy(logp[lo:hi])


@dataclass(frozen=True)
class AddK(Smoothing):
    """Add-k (Laplace for k = 1): k more of every possible continuation, seen or not:

        p(w | c) = (C(c w) + k) / (C(c) + k (V - 1))

    V - 1 because `<s>` never comes next (p(<s> | c) = 0). An unseen c (C(c) = 0) gives the
    uniform 1 / (V - 1): add-k never looks at shorter contexts.
    """

    k: float = 1.0  # the pseudo-count

    def __post_init__(self) -> None:
        if not self.k > 0:
            raise ValueError("k must be > 0 for add-k smoothing")

    def one_context(self, q: _Context) -> np.ndarray:
        V, a = q.counts.V, q.after(len(q.ids) + 1)
        p = np.full(V, self.k)
        total = 0
        if a is not None:
            p[a.w] += a.C
            total = a.total
        p[BOS_ID] = 0.0
        return p / (total + self.k * (V - 1))

    def every_position(self, x: _Positions) -> np.ndarray:
        C, total, _ = x.at(len(x.levels))
        return (C + self.k) / (total + self.k * (x.counts.V - 1))


class KneserNey(Smoothing):
    """Interpolated Kneser-Ney: discounted counts, the mass taken off given to the order below:

        p(w | c) = max(C(c w) - D, 0) / C(c)  +  D N1+(c .) / C(c) * p(w | c')

    c' is c without its first token. At the top order C counts n-grams; below it, C(c w) is the
    continuation count N1+(. c w), the number of different tokens seen before c w (a word after
    many contexts is a likely guess in a new one). Below order 1 comes the uniform 1 / (V - 1).
    D = n1 / (n1 + 2 n2) per order, from the numbers of counts equal to 1 and 2 (0.75 if either
    is 0). An unseen c (C(c) = 0) passes p(w | c') on unchanged.
    """

    continuation_counts = True

    def one_context(self, q: _Context) -> np.ndarray:
        p = self.unigram(q.counts, q.levels[0])
        for j in range(2, len(q.ids) + 2):
            a = q.after(j)
            if a is None:
                continue  # unseen context: this order adds nothing, keep the lower-order estimate
            D = q.levels[j - 1].discount
            p = p * (D * a.types / a.total)
            p[a.w] += np.maximum(a.C - D, 0) / a.total
        return p

    def every_position(self, x: _Positions) -> np.ndarray:
        p = self.unigram(x.counts, x.levels[0])[x.w]
        for j in range(2, len(x.levels) + 1):
            C, total, types = x.at(j)
            D, safe = x.levels[j - 1].discount, np.maximum(total, 1)
            p = np.where(total > 0, np.maximum(C - D, 0) / safe + D * types / safe * p, p)
        return p

    @staticmethod
    def unigram(counts: NGramCounts, lv: _Level) -> np.ndarray:
        """(V,) order 1, the formula with c empty and p(w | c') = 1 / (V - 1); cached per counts."""
        key = ("kn1", lv.counts is lv.table.cont)
        if key not in counts.cache:
            V, D, total = counts.V, lv.discount, lv.total[0]
            p = np.full(V, D * lv.types[0] / total / (V - 1))
            p[lv.table.keys % V] += np.maximum(lv.counts - D, 0) / total
            p[BOS_ID] = 0.0
            counts.cache[key] = p
        return counts.cache[key]


SMOOTHING = {"mle": lambda k: MLE(), "add-k": AddK, "kneser-ney": lambda k: KneserNey()}  # name -> (k -> method)
SMOOTHINGS = tuple(SMOOTHING)


# ---------------------------------------------------------------------------------------------
# The model


@dataclass(eq=False)
class NGramModel:
    """An n-gram language model: fit by counting, then query, score and sample.

    >>> m = NGramModel(2).fit([["The", "quick", "fox"], ["The", "fox", "is"]])
    >>> m.prob("quick", ["The"]), m.next_distribution(["The"])
    (0.5, {'quick': 0.5, 'fox': 0.5})
    """

    n: int = 3  # the model sees the previous n - 1 tokens
    smoothing: str = "mle"  # "mle" | "add-k" | "kneser-ney" (see `SMOOTHING`)
    k: float = 1.0  # pseudo-count added to every continuation by add-k (1 = Laplace)
    counts: NGramCounts | None = field(default=None, repr=False)  # set by fit / from_counts
    rule: Smoothing = field(init=False, repr=False)  # the smoothing's formulas

    def __post_init__(self) -> None:
        if int(self.n) != self.n or not 1 <= self.n <= MAX_N:
            raise ValueError(f"n must be an integer between 1 and {MAX_N}")
        if self.smoothing not in SMOOTHING:
            raise ValueError(f"smoothing must be one of {', '.join(SMOOTHINGS)}, not {self.smoothing!r}")
        self.rule = SMOOTHING[self.smoothing](self.k)
        if self.counts is not None and self.counts.max_order < self.n:
            raise ValueError(f"these counts stop at order {self.counts.max_order}; n = {self.n} needs more")

    # -- building ----------------------------------------------------------------------------

    def fit(self, sequences: Iterable[Sequence[str]]) -> NGramModel:
        """Count every order up to n in `sequences` (lists of tokens: sentences or documents)."""
        counts = count_ngrams(sequences, self.n)
        check_order(counts, self.n)
        self.counts = counts
        return self

    @classmethod
    def from_counts(cls, counts: NGramCounts, n: int, smoothing: str = "mle", k: float = 1.0) -> NGramModel:
        """A model of order n <= counts.max_order that shares `counts` (no recounting)."""
        check_order(counts, n)
        return cls(n, smoothing, k, counts)

    @property
    def fitted(self) -> NGramCounts:
        if self.counts is None:
            raise ValueError("fit the model first")
        return self.counts

    @property
    def vocab(self) -> list[str]:
        return self.fitted.vocab

    @property
    def vocab_size(self) -> int:
        return self.fitted.V

    def _levels(self) -> list[_Level]:
        """Orders 1..n as the smoothing reads them (continuation counts below the top for Kneser-Ney)."""
        cont = self.rule.continuation_counts
        return [self.fitted.level(j, cont and j < self.n) for j in range(1, self.n + 1)]

    def _context(self, context_ids: Sequence[int]) -> _Context:
        """The last n - 1 of the context ids (fewer if shorter: a short context uses lower orders only)."""
        ids = list(context_ids)[-(self.n - 1) :] if self.n > 1 else []
        return _Context(self.fitted, self._levels(), ids)

    # -- contexts ----------------------------------------------------------------------------

    def context_for(self, history: Sequence[str]) -> tuple[str, ...]:
        """The context the model conditions on after `history`: its last n - 1 tokens.

        An empty history or one ending a sequence (`</s>`) starts a new sequence, so the context
        is padded with `<s>`; otherwise the history continues unknown text and may be shorter.

        >>> NGramModel(3).context_for([]), NGramModel(3).context_for(["a", "</s>", "b"])
        (('<s>', '<s>'), ('<s>', 'b'))
        """
        return tuple(_context(list(history), self.n, BOS, EOS))

    def backoff_context(self, context: Sequence[str]) -> tuple[str, ...]:
        """The longest suffix of the (last n - 1 tokens of the) context seen in training.

        MLE conditions on it; the page says so when it is shorter than the context.

        >>> m = NGramModel(3).fit([["a", "b", "c"]])
        >>> m.backoff_context(["x", "b"])
        ('b',)
        """
        context = tuple(context)[-(self.n - 1) :] if self.n > 1 else ()
        length, _ = self.fitted.longest_seen(self.fitted.ids(context))
        return context[len(context) - length :] if length else ()

    # -- probabilities -----------------------------------------------------------------------

    def next_probs(self, context_ids: Sequence[int]) -> np.ndarray:
        """(V,) float64 distribution of the next token id after the context ids (last n - 1 used)."""
        return self.rule.one_context(self._context(context_ids))

    def next_distribution(self, context: Sequence[str] = (), top: int | None = None) -> dict[str, float]:
        """token -> p(token | context) for tokens with non-zero probability, most likely first.

        The context is used as given (its last n - 1 tokens); `top` keeps only the most likely.
        """
        p = self.next_probs(self.fitted.ids(context))
        nz = np.flatnonzero(p)
        order = nz[np.argsort(-p[nz], kind="stable")][:top]
        return {self.fitted.vocab[i]: float(p[i]) for i in order}

    def prob(self, token: str, context: Sequence[str] = ()) -> float:
        """p(token | context), using the last n - 1 tokens of the context (fewer if shorter).

        Unseen tokens count as `<unk>`.
        """
        return float(self.next_probs(self.fitted.ids(context))[self.fitted.index.get(token, UNK_ID)])

    def next_logits(self, context_ids: Sequence[int]) -> torch.Tensor:
        """(V,) float32 log-probabilities of the next token (-inf where the probability is 0)."""
        return _log(self.next_probs(context_ids))

    # -- scoring ------------------------------------------------------------------------------

    def log_probs(self, sequences: Iterable[Sequence[str]]) -> np.ndarray:
        """(T,) natural-log probability of every predicted token (each sequence's `</s>` included)."""
        c = self.fitted
        stream, targets = _pad([c.ids(s) for s in _as_sequences(sequences)], self.n)
        if len(targets) == 0:
            raise ValueError("nothing to score: the text has no tokens")
        x = _Positions(c, self._levels(), c.window_ids(stream, self.n), targets, stream[targets])
        with np.errstate(divide="ignore"):
            return np.log(self.rule.every_position(x))

    def perplexity(self, tokens: Sequence[str] | Iterable[Sequence[str]]) -> float:
        """exp(mean negative log-likelihood) per predicted token; inf if any token has probability 0.

        `tokens` is one sequence of tokens or a list of sequences, each scored from its start.
        """
        return _perplexity(self.log_probs(tokens))

    def probability_table(self, order: int | None = None, limit: int | None = None) -> list[tuple]:
        """Rows (context, token, count, p(token | context)) of an order (n unless given), by context.

        Meant for small corpora (the fox sentences); `limit` caps the number of rows.
        """
        order = self.n if order is None else order
        check_order(self.fitted, order)
        c = self.fitted
        model = self if order == self.n else NGramModel.from_counts(c, order, self.smoothing, self.k)
        rows = []
        for context, after in c.continuation_table(order):
            probs = model.next_probs(c.ids(context))
            for token, count in after.items():
                rows.append((context, token, count, float(probs[c.index[token]])))
                if limit is not None and len(rows) >= limit:
                    return rows
        return rows

    # -- sampling ----------------------------------------------------------------------------

    def sample(
        self,
        prompt_tokens: Sequence[str],
        length: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
    ) -> list[str]:
        """`length` new tokens after the prompt, drawn with the shared `sample_next`.

        After `</s>` a new sequence starts (context padded with `<s>`), so `</s>` may appear in
        the output. MLE draws among the continuations seen (the other tokens have logit -inf),
        backing off to a shorter context when the context was never seen; a context with a
        single continuation seen needs no draw (it has probability 1 under any setting).
        """
        c = self.fitted
        if length < 0:
            raise ValueError("length must be >= 0")
        filter_logits(torch.zeros(1), temperature, top_k, top_p)  # bad settings fail before the first draw
        generator = make_generator(seed)
        history, levels = c.ids(prompt_tokens), self._levels()
        out: list[str] = []
        for _ in range(length):
            ids, logits = self.rule.draw_from(_Context(c, levels, _context(history, self.n, BOS_ID, EOS_ID)))
            if len(ids) == 1:  # one possible token (MLE, one continuation seen): p = 1 whatever the settings
                nid = int(ids[0])
            else:
                nid = int(ids[sample_next(logits, temperature, top_k, top_p, generator)])
            history.append(nid)
            out.append(c.vocab[nid])
        return out


def check_order(counts: NGramCounts, n: int) -> None:
    """Raise a clear `ValueError` when order n cannot be used with these counts."""
    if int(n) != n or not 1 <= n <= counts.max_order:
        raise ValueError(f"n must be an integer between 1 and {counts.max_order}")
    if n > counts.longest + 1:
        raise ValueError(
            f"n = {n} is larger than the text: its longest sequence has {counts.longest} tokens; "
            f"pick n <= {counts.longest + 1} or give more text."
        )


def _context(history: Sequence, n: int, bos, eos) -> list:
    """The last n - 1 items of `history`, `bos`-padded when they start a sequence.

    A sequence starts after `eos` or at an empty history; otherwise the history continues text
    we do not see, and the context stays short rather than pretending to be a sequence start.

    >>> _context([], 3, "<s>", "</s>"), _context(["a", "</s>", "b"], 3, "<s>", "</s>"), _context(["b"], 3, "<s>", "</s>")
    (['<s>', '<s>'], ['<s>', 'b'], ['b'])
    """
    if n == 1:
        return []
    tail = list(history[-(n - 1) :])
    if eos in tail:
        tail = tail[len(tail) - tail[::-1].index(eos) :]
    elif history:
        return tail
    return [bos] * (n - 1 - len(tail)) + tail


def backoff_steps(model: NGramModel, prompt: Sequence[str], generated: Sequence[str]) -> list[int]:
    """Steps (0-based) of a sample at which the longest seen context was shorter than the model's.

    MLE conditions on that shorter context there; the page lists those steps.

    >>> m = NGramModel(3).fit([["a", "b", "c"]])
    >>> backoff_steps(m, ["x"], ["b", "c", "</s>"])  # after "x": context ('x',) -> (); after "x b": ('x', 'b') -> ('b',)
    [0, 1]
    """
    steps = []
    for i in range(len(generated)):
        context = model.context_for([*prompt, *generated[:i]])
        if len(model.backoff_context(context)) < len(context):
            steps.append(i)
    return steps


def _as_sequences(tokens) -> list[Sequence[str]]:
    """One sequence of tokens, or a list of them, as a list of sequences."""
    tokens = list(tokens)
    return [tokens] if tokens and isinstance(tokens[0], str) else tokens


def _ngram_tokens(counts: NGramCounts, order: int) -> list[tuple[str, ...]]:
    """The tokens of every row of the order-`order` table (order 0: the empty n-gram)."""
    V, cols = counts.V, []
    rows = np.arange(len(counts.tables[order - 1].keys)) if order else np.zeros(1, dtype=np.int64)
    for j in range(order, 0, -1):  # peel the last token off, then follow the prefix row down
        keys = counts.tables[j - 1].keys[rows]
        cols.append(keys % V)
        rows = keys // V
    vocab = counts.vocab
    return [tuple(vocab[t] for t in reversed(col)) for col in zip(*cols, strict=True)] if cols else [()]


# ---------------------------------------------------------------------------------------------
# Perplexity and sparsity against n


@dataclass(frozen=True)
class CurvePoint:
    """How well the n-gram model of one order fits its training text and held-out text."""

    n: int
    train: float  # perplexity on the training text
    validation: float  # perplexity on held-out text: inf when a token has p = 0, nan without held-out text
    zero_share: float  # share of the held-out tokens given p = 0 (MLE: unseen words or continuations)
    unseen: float  # share of the held-out n-grams never seen in training (sparsity); nan without held-out text
    table: int  # distinct n-grams of order n seen in training


def perplexity_curve(
    counts: NGramCounts,
    train: list[list[str]],
    val: list[list[str]],
    smoothing: str = "mle",
    k: float = 1.0,
    orders: Iterable[int] = range(1, 6),
    max_tokens: int | None = None,
) -> list[CurvePoint]:
    """One `CurvePoint` per n of `orders`, up to the largest n the text allows, on the first
    `max_tokens` tokens (all unless given) of the training and the held-out sequences.

    Train perplexity falls as n grows while held-out perplexity stops improving: memorisation.
    """
    train, val = _head(train, max_tokens), _head(val, max_tokens)
    points = []
    for n in orders:
        if n > counts.longest + 1:
            break
        model = NGramModel.from_counts(counts, n, smoothing, k)
        lp = model.log_probs(val) if val else np.array([np.nan])
        unseen = counts.unseen_share(val, n) if val else float("nan")
        zero_share = float(np.isneginf(lp).mean())
        points.append(CurvePoint(n, model.perplexity(train), _perplexity(lp), zero_share, unseen, counts.table_size(n)))
    return points


def _head(seqs: list[list[str]], max_tokens: int | None) -> list[list[str]]:
    """The first sequences holding at most `max_tokens` tokens (the first one cut if it alone is longer).

    >>> _head([["a", "b"], ["c", "d"], ["e"]], 3), _head([["a", "b", "c"]], 2)
    ([['a', 'b']], [['a', 'b']])
    """
    if max_tokens is None:
        return seqs
    out, total = [], 0
    for seq in seqs:
        if total + len(seq) > max_tokens:
            if not out:
                out.append(seq[:max_tokens])
            break
        out.append(seq)
        total += len(seq)
    return out


def _perplexity(log_probs: np.ndarray) -> float:
    """exp(mean negative log-likelihood); inf if any token has probability 0 (log p = -inf)."""
    return float("inf") if np.isneginf(log_probs).any() else float(math.exp(-log_probs.mean()))


# ---------------------------------------------------------------------------------------------
# Memorisation


@dataclass(frozen=True)
class Memorisation:
    """How much of a sample was copied verbatim from the training text."""

    k: int  # length of the n-grams checked
    share: float  # share of the sample's k-grams that occur verbatim in the training text
    longest: int  # the longest run of sample tokens that occurs verbatim in the training text
    start: int  # where that run starts in the sample
    copied: list[bool]  # per sample token: inside a copied k-gram


def memorisation(counts: NGramCounts, tokens: Sequence[str], k: int) -> Memorisation:
    """Find the sample's k-grams and longest span that occur verbatim in the training text.

    For each start i the match is grown token by token among the training positions that still
    agree, so the cost is one binary search per token plus the (quickly shrinking) candidates.

    >>> c = count_ngrams([["a", "b", "c", "d"]], 2)
    >>> m = memorisation(c, ["x", "b", "c", "d", "a"], 2)
    >>> m.share, m.longest, m.start, m.copied
    (0.5, 3, 1, [False, True, True, True, False])
    """
    if k < 1:
        raise ValueError("k must be >= 1")
    if "by_token" not in counts.cache:
        order = np.argsort(counts.stream, kind="stable")
        counts.cache["by_token"] = order, counts.stream[order]
    order, sorted_ids = counts.cache["by_token"]
    stream, ids, L = counts.stream, counts.ids(tokens), len(tokens)
    match = [0] * L  # match[i]: the longest verbatim copy starting at sample token i
    for i, t in enumerate(ids):
        if t in (UNK_ID, BOS_ID):
            continue
        cand = order[np.searchsorted(sorted_ids, t) : np.searchsorted(sorted_ids, t, side="right")]
        length = 1
        while i + length < L and cand.size:
            cand = cand[cand + length < len(stream)]
            cand = cand[stream[cand + length] == ids[i + length]]
            length += bool(cand.size)
        match[i] = length
    starts = [i for i in range(L - k + 1) if match[i] >= k]
    copied = [False] * L
    for i in starts:
        copied[i : i + k] = [True] * k
    best = max(range(L), key=match.__getitem__, default=0)
    share = len(starts) / (L - k + 1) if k <= L else 0.0
    return Memorisation(k, share, match[best] if L else 0, best, copied)


# ---------------------------------------------------------------------------------------------
# The TextLM adapter


@dataclass
class NGramTextLM:
    """An `NGramModel` as a `mllm_core.lm.TextLM`: text in, log-probabilities of the next id out.

    Char level: one token per character and a newline is `</s>`. Word level: whitespace tokens,
    `decode` joins them with spaces and a line break is `</s>`.

    >>> lm = train_text_lm("abab\\nabba", 2, level="char", smoothing="mle")
    >>> lm.decode(lm.encode("ab\\nba")), round(float(lm.next_logits(lm.encode("a")).exp()[lm.encode("b")[0]]), 3)
    ('ab\\nba', 0.75)
    """

    model: NGramModel
    level: str = "char"  # "char" | "word": how text becomes tokens
    name: str = ""  # shown by the generation lab; "" -> e.g. "3-gram (char, kneser-ney)"

    def __post_init__(self) -> None:
        if self.level not in ("char", "word"):
            raise ValueError(f"level must be 'char' or 'word', not {self.level!r}")
        self.model.fitted  # noqa: B018 - raises when the model was not fitted
        self.name = self.name or f"{self.model.n}-gram ({self.level}, {self.model.smoothing})"

    @property
    def block_size(self) -> int:
        """The model reads only the last n - 1 tokens."""
        return self.model.n - 1

    @property
    def vocab_size(self) -> int:
        return self.model.vocab_size

    @property
    def unk_id(self) -> int:
        """Tokens never seen in training read as `<unk>`, the first id of every n-gram vocabulary."""
        return UNK_ID

    def encode(self, text: str) -> list[int]:
        return self.model.fitted.ids(text_tokens(text, self.level))

    def decode(self, ids: list[int]) -> str:
        vocab = self.model.vocab
        if self.level == "char":
            return "".join("\n" if i == EOS_ID else "" if i == BOS_ID else vocab[i] for i in ids)
        lines, words = [], []
        for i in ids:
            if i == EOS_ID:
                lines.append(" ".join(words))
                words = []
            elif i != BOS_ID:
                words.append(vocab[i])
        return "\n".join([*lines, " ".join(words)])

    def next_logits(self, ids: list[int]) -> torch.Tensor:
        """(V,) float32 log-probabilities of the next id (-inf for impossible ones) after `ids`."""
        return self.model.next_logits(_context(list(ids), self.model.n, BOS_ID, EOS_ID))


def train_text_lm(
    text: str, n: int, level: str = "char", smoothing: str = "kneser-ney", k: float = 1.0, name: str = ""
) -> NGramTextLM:
    """Fit an n-gram model on `text` (one sequence per non-empty line) and wrap it as a TextLM."""
    return NGramTextLM(NGramModel(n, smoothing, k).fit(split_tokens(text, level)), level, name)
