"""Tokenizer lab benchmarks: our byte-level BPE against HuggingFace `tokenizers` (Rust) in the same run.

- `bpe_train`: seconds to learn 1000 merges (vocab 1256) from the first 1 MB of wikipedia-sample.
- `bpe_encode`: MB/s encoding the next 1 MB (held-out text, one call per article, cold cache).
"""

from __future__ import annotations

import tokenizers
from tokenizers import decoders, models, pre_tokenizers, trainers

from bench.registry import Result, benchmark, best_of
from mllm_core import corpora
from mllm_core.tokenizers import BPETokenizer

MB = 1_000_000
PEER = f"tokenizers {tokenizers.__version__} (Rust, ByteLevel BPE)"


def _texts(quick: bool) -> tuple[str, str, int]:
    """(training text, held-out text, vocab size): 1 MB each and 1000 merges; 100 KB and 200 in quick mode."""
    data = corpora.load("wikipedia-sample").text.encode("utf-8")
    n = MB // 10 if quick else MB
    train = data[:n].decode("utf-8", errors="ignore")
    held_out = data[n : 2 * n].decode("utf-8", errors="ignore")
    return train, held_out, 256 + (200 if quick else 1000)


def _train_library(text: str, vocab_size: int) -> tokenizers.Tokenizer:
    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)  # the GPT-2 regex, as ours
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
        show_progress=False,
    )
    tok.train_from_iterator([text], trainer)
    return tok


@benchmark("bpe_train")
def bpe_train(quick: bool) -> Result:
    text, _, vocab_size = _texts(quick)
    ours = best_of(lambda: BPETokenizer().train(text, vocab_size), repeats=1 if quick else 3)
    peer = best_of(lambda: _train_library(text, vocab_size), repeats=1 if quick else 3)
    return Result(
        ours,
        "s",
        PEER,
        peer,
        "<= 5x peer time",
        f"{vocab_size - 256} merges on {len(text.encode()) / MB:.1f} MB of wikipedia-sample (pure Python vs multi-threaded Rust)",
    )


@benchmark("bpe_encode")
def bpe_encode(quick: bool) -> Result:
    train, held_out, vocab_size = _texts(quick)
    ours_tok = BPETokenizer().train(train, vocab_size)
    peer_tok = _train_library(train, vocab_size)
    lines = held_out.split("\n")
    n_mb = len(held_out.encode()) / MB

    def ours() -> None:
        ours_tok._cache.clear()  # cold: the chunk cache fills during the run, as on a new corpus
        for line in lines:
            ours_tok.encode(line)

    ours_s = best_of(ours, repeats=1 if quick else 3)
    peer_s = best_of(lambda: peer_tok.encode_batch(lines), repeats=1 if quick else 3)
    return Result(
        n_mb / ours_s,
        "MB/s",
        PEER,
        n_mb / peer_s,
        None,
        f"{n_mb:.1f} MB held-out wikipedia-sample, {len(lines)} articles; library uses encode_batch (all cores)",
    )
