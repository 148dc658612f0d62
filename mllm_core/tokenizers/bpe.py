"""Byte-level BPE: start from the 256 byte values and merge the most frequent adjacent pair, again and again.

Ids 0-255 are the raw bytes of the UTF-8 text, merge number r creates id 256 + r. Every string is
representable, so unlike `char.py` (an alphabet seen in training) and `word.py` (a word list) it
never needs `<unk>`: `decode(encode(s)) == s` for every string. An optional GPT-2-style regex
first splits the text into chunks (" word", " 123", "...", whitespace) so merges never cross a
word boundary.

Training is incremental: pair counts are taken once over the unique chunks; a merge then
rewrites only the chunks that contain the pair (found through an index pair -> chunk ids) and
adjusts the counts by the difference. The best pair comes from a heap with lazy invalidation
(stale entries are re-pushed with their true count when they surface); ties go to the lowest
pair of ids, so training is deterministic.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from mllm_core.tokenizers.base import Tokenizer

try:  # the `regex` module knows Unicode classes (\p{L}); `re` needs an approximation
    import regex as _re

    GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
except ImportError:  # pragma: no cover - regex is a dependency of tokenizers/transformers
    import re as _re

    GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?[^\s\w]+|\s+(?!\S)|\s+|_+"""

N_BYTES = 256  # ids 0-255 are the raw byte values
_CACHE_LIMIT = 1 << 16  # chunks remembered by `encode`; the cache is cleared when it is full


@dataclass(frozen=True)
class Merge:
    """One training step: `pair` (two token ids) became token `new_id`; it occurred `count` times."""

    rank: int  # 0 for the first merge
    pair: tuple[int, int]
    new_id: int  # always N_BYTES + rank
    count: int  # occurrences of the pair in the training text when it was merged


# ---------------------------------------------------------------------------------------------
# Pure helpers


def pair_counts(ids: list[int]) -> Counter[tuple[int, int]]:
    """Count adjacent pairs (overlapping ones too).

    >>> pair_counts([1, 2, 3, 1, 2])
    Counter({(1, 2): 2, (2, 3): 1, (3, 1): 1})
    """
    return Counter(zip(ids, ids[1:], strict=False))


def merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every non-overlapping occurrence of `pair`, left to right, by `new_id`.

    >>> merge([1, 2, 3, 1, 2], (1, 2), 4)
    [4, 3, 4]
    >>> merge([5, 5, 5], (5, 5), 6)
    [6, 5]
    """
    a, b = pair
    out: list[int] = []
    i, n = 0, len(ids)
    while i < n:
        if ids[i] == a and i + 1 < n and ids[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def split_chunks(text: str, pattern: str | None = GPT2_PATTERN) -> list[str]:
    """Pre-split `text` with `pattern` (None: one chunk). Joining the chunks gives `text` back.

    >>> split_chunks("Hello world, it's 2024!")
    ['Hello', ' world', ',', ' it', "'s", ' 2024', '!']
    """
    if pattern is None:
        return [text] if text else []
    return _re.findall(pattern, text)


def to_bytes(text: str) -> bytes:
    # surrogatepass keeps even lone surrogates ("\ud800") lossless
    return text.encode("utf-8", errors="surrogatepass")


def from_bytes(data: bytes) -> str:
    """UTF-8 decode; invalid sequences (a partial emoji) become U+FFFD instead of raising."""
    try:
        return data.decode("utf-8", errors="surrogatepass")
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace")


def train_merges(
    chunk_counts: dict[bytes, int],
    n_merges: int,
    callback: Callable[[Merge], None] | None = None,
) -> tuple[list[Merge], Counter[int]]:
    """Learn up to `n_merges` merges from chunks (bytes -> how often the chunk occurs).

    Returns the merges and how often each token occurs in the training text after them. Stops
    early when no adjacent pair is left. `callback(merge)` runs after every merge (progress,
    stopping: it may raise).

    >>> merges, _ = train_merges({b"aaabdaaabac": 1}, 3)
    >>> [(m.pair, m.new_id, m.count) for m in merges]
    [((97, 97), 256, 4), ((97, 98), 257, 2), ((256, 257), 258, 2)]
    """
    words = [list(chunk) for chunk in chunk_counts]  # token ids of each unique chunk
    freqs = list(chunk_counts.values())
    counts: dict[tuple[int, int], int] = defaultdict(int)  # pair -> occurrences in the text
    where: dict[tuple[int, int], set[int]] = defaultdict(set)  # pair -> chunks that may contain it
    for w, (ids, f) in enumerate(zip(words, freqs, strict=True)):
        for pair in zip(ids, ids[1:], strict=False):
            counts[pair] += f
            where[pair].add(w)
    heap = [(-c, pair) for pair, c in counts.items()]  # max-heap on count, then lowest pair
    heapq.heapify(heap)

    merges: list[Merge] = []
    for rank in range(n_merges):
        best = _pop_best(heap, counts)
        if best is None:
            break
        pair, count = best
        new_id = N_BYTES + rank
        grown: set[tuple[int, int]] = set()  # pairs with new_id, whose count only went up
        for w in where.pop(pair):
            new = _merge_and_count(words[w], pair, new_id, freqs[w], counts, grown, where, w)
            if new is not None:  # None: a stale index entry, the pair left this chunk earlier
                words[w] = new
        del counts[pair]
        for p in grown:
            if counts[p] > 0:
                heapq.heappush(heap, (-counts[p], p))
        m = Merge(rank, pair, new_id, count)
        merges.append(m)
        if callback is not None:
            callback(m)

    token_counts: Counter[int] = Counter()
    for ids, f in zip(words, freqs, strict=True):
        for i in ids:
            token_counts[i] += f
    return merges, token_counts


def _merge_and_count(
    ids: list[int],
    pair: tuple[int, int],
    new_id: int,
    f: int,
    counts: dict[tuple[int, int], int],
    grown: set[tuple[int, int]],
    where: dict[tuple[int, int], set[int]],
    w: int,
) -> list[int] | None:
    # `merge` that also moves the neighbours' counts: in x a b y, (x, a) and (b, y) lose `f`
    # occurrences and (x, z) and (z, y) gain them (and chunk `w` joins their index). Only pairs
    # next to a merge change, so this costs O(len(ids)) instead of a recount. Returns None when
    # `pair` is not in `ids`.
    a, b = pair
    out: list[int] = []
    i, n = 0, len(ids)
    while i < n:
        if ids[i] == a and i + 1 < n and ids[i + 1] == b:
            if out:  # x a b -> x z (x may be a z merged just before: (z, a) then cancels out)
                x = out[-1]
                counts[(x, a)] -= f
                counts[(x, new_id)] += f
                grown.add((x, new_id))
                where[(x, new_id)].add(w)
            if i + 2 < n:  # a b y -> z y
                y = ids[i + 2]
                counts[(b, y)] -= f
                counts[(new_id, y)] += f
                grown.add((new_id, y))
                where[(new_id, y)].add(w)
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out if len(out) < n else None


def _pop_best(heap: list[tuple[int, tuple[int, int]]], counts: dict[tuple[int, int], int]):
    # Every pair has a heap entry >= its true count, so the first entry that matches its true
    # count is the maximum. Stale (too high) entries are re-pushed with the true count.
    while heap:
        neg, pair = heapq.heappop(heap)
        true = counts.get(pair, 0)
        if true <= 0:
            continue
        if true == -neg:
            return pair, true
        heapq.heappush(heap, (-true, pair))
    return None


def encode_chunk(ids: list[int], ranks: dict[tuple[int, int], int]) -> list[int]:
    """Apply merges to one chunk, always the earliest-learned applicable pair first.

    `ranks` maps a pair to the id it merges into (lower id = learned earlier).

    >>> encode_chunk(list(b"aaab"), {(97, 97): 256, (256, 97): 257})
    [257, 98]
    """
    while len(ids) >= 2:
        pair = min(zip(ids, ids[1:], strict=False), key=lambda p: ranks.get(p, 1 << 62))
        if pair not in ranks:
            break
        ids = merge(ids, pair, ranks[pair])
    return ids


# ---------------------------------------------------------------------------------------------
# The tokenizer


class BPETokenizer(Tokenizer):
    """Byte-level BPE with optional GPT-2 regex pre-split.

    >>> tok = BPETokenizer(pattern=None).train("aaabdaaabac", vocab_size=259)
    >>> tok.encode("aaabdaaabac")
    [258, 100, 258, 97, 99]
    >>> tok.decode(tok.encode("héllo 👋")) == "héllo 👋"
    True
    """

    kind = "bpe"
    unk_id = None  # every string is a sequence of bytes, and every byte has an id: nothing is unknown

    def __init__(self, pattern: str | None = GPT2_PATTERN) -> None:
        self.pattern = pattern  # pre-split regex; None lets merges cross word boundaries
        self.merges: list[Merge] = []
        self.token_counts: Counter[int] = Counter()  # token -> occurrences in the training text
        self._rebuild()

    def _rebuild(self) -> None:
        self.ranks = {m.pair: m.new_id for m in self.merges}
        self.vocab: list[bytes] = [bytes([i]) for i in range(N_BYTES)]  # id -> its bytes
        for m in self.merges:
            self.vocab.append(self.vocab[m.pair[0]] + self.vocab[m.pair[1]])
        self._cache: dict[str, list[int]] = {}

    # -- training ---------------------------------------------------------------------------

    def train(
        self,
        text: str,
        vocab_size: int | None = None,
        callback: Callable[[Merge], None] | None = None,
        allow_fewer: bool = False,
    ) -> BPETokenizer:
        """Learn `vocab_size - 256` merges from `text` (default vocab 512).

        Raises ValueError for empty text, a vocab below 257, or more merges than the text allows
        (unless `allow_fewer`: then the vocabulary stops where the text does, and `vocab_size`
        says how far that was).

        >>> BPETokenizer().train("aaabdaaabac", 512, allow_fewer=True).vocab_size
        263
        """
        vocab_size = 512 if vocab_size is None else int(vocab_size)
        if not text:
            raise ValueError("cannot train a tokenizer on empty text")
        if vocab_size <= N_BYTES:
            raise ValueError(f"vocab_size must be above {N_BYTES} (the 256 byte tokens come first), not {vocab_size}")
        chunk_counts = Counter(to_bytes(c) for c in split_chunks(text, self.pattern))
        n_merges = vocab_size - N_BYTES
        merges, token_counts = train_merges(chunk_counts, n_merges, callback)
        if len(merges) < n_merges and not allow_fewer:
            raise ValueError(
                f"this text allows only {len(merges)} merges (vocab_size up to {N_BYTES + len(merges)}): "
                f"every adjacent pair is merged already; use more text or a smaller vocab_size than {vocab_size}"
            )
        self.merges, self.token_counts = merges, token_counts
        self._rebuild()
        return self

    def truncated(self, n_merges: int) -> BPETokenizer:
        """A copy that knows only the first `n_merges` merges (to replay training step by step)."""
        if not 0 <= n_merges <= len(self.merges):
            raise ValueError(f"n_merges must be between 0 and {len(self.merges)}, not {n_merges}")
        tok = BPETokenizer(self.pattern)
        tok.merges = self.merges[:n_merges]
        tok._rebuild()
        return tok

    # -- encoding ---------------------------------------------------------------------------

    def encode(self, text: str) -> list[int]:
        out: list[int] = []
        cache = self._cache
        for chunk in split_chunks(text, self.pattern):
            ids = cache.get(chunk)
            if ids is None:
                ids = encode_chunk(list(to_bytes(chunk)), self.ranks)
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                cache[chunk] = ids
            out.extend(ids)
        return out

    def decode(self, ids: Iterable[int]) -> str:
        try:
            data = b"".join(self.vocab[i] for i in ids)
        except (IndexError, TypeError):
            raise ValueError(f"token ids must be integers in 0..{self.vocab_size - 1}") from None
        return from_bytes(data)

    # -- vocabulary -------------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def token_frequencies(self) -> list[int]:
        return [self.token_counts.get(i, 0) for i in range(self.vocab_size)]

    def token_bytes(self, i: int) -> bytes:
        """The token's bytes; several tokens may be needed to make one whole character."""
        return self.vocab[i]

    def id_to_token(self, i: int) -> str:
        """The token's text; bytes that are not whole UTF-8 characters show as \\xNN."""
        return self.vocab[i].decode("utf-8", errors="backslashreplace")

    def merges_text(self) -> str:
        """One merge per line, readable: `rank  'left' + 'right' -> 'merged'  (id, count)`."""
        t = self.id_to_token
        return "".join(
            f"{m.rank}\t{t(m.pair[0])!r} + {t(m.pair[1])!r} -> {t(m.new_id)!r}\t(id {m.new_id}, count {m.count})\n"
            for m in self.merges
        )

    # -- persistence ------------------------------------------------------------------------

    def get_state(self) -> dict[str, Any]:
        return {
            "pattern": self.pattern,
            "merges": [[m.pair[0], m.pair[1], m.count] for m in self.merges],
            "token_counts": {str(k): v for k, v in self.token_counts.items()},
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.pattern = state["pattern"]
        self.merges = [Merge(r, (a, b), N_BYTES + r, c) for r, (a, b, c) in enumerate(state["merges"])]
        self.token_counts = Counter({int(k): v for k, v in state.get("token_counts", {}).items()})
        self._rebuild()


def training_target(text: str, vocab_size: int, split: bool = True) -> Callable[[Any], BPETokenizer]:
    """A training job's loop (`training.TrainingJob`, `zoo.tokenizer_default`): BPE on `text`,
    pre-split with the GPT-2 regex when `split`, reporting every 25th merge (`count`: how often the
    merged pair occurred). A text that allows fewer merges gives a smaller vocabulary."""

    def loop(ctx) -> BPETokenizer:
        n_merges = vocab_size - N_BYTES
        ctx.set_total(n_merges)

        def callback(m: Merge) -> None:
            ctx.check()
            if m.rank % 25 == 0 or m.rank == n_merges - 1:
                ctx.report(step=m.rank + 1, count=m.count)

        return BPETokenizer(GPT2_PATTERN if split else None).train(text, vocab_size, callback, allow_fewer=True)

    return loop
