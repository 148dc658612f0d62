"""The tokenizers: known answers, lossless round trips, the `tokenizers` library as a reference, save/load."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import Counter

import pytest

from mllm_core import corpora
from mllm_core.tokenizers import BPETokenizer, CharTokenizer, WordTokenizer, encoding_stats, load_tokenizer
from mllm_core.tokenizers.bpe import GPT2_PATTERN, merge, pair_counts, split_chunks, train_merges

HARD_STRINGS = [
    "",
    "a",
    " ",
    "hello world",
    "  leading and trailing spaces  \n\n",
    "日本語のテキスト、中文文本",
    "👩‍👩‍👧‍👦 family with zero-width joiners, 🇫🇷 a flag, 👍🏽 a skin tone",
    "control\x00chars\x01\x07\x1b[31m\t\r\n\x7f",
    "combining e\u0301 and \ufeff BOM and \u200b zero width",
    "lone surrogate \ud800 survives",
    "it's 2024! don't   panic...",
    "😀" * 20,
]


@pytest.fixture(scope="module")
def wiki() -> str:
    """The first 200 KB of the default corpus."""
    return corpora.load("wikipedia-sample").text[:200_000]


@pytest.fixture(scope="module")
def bpe(wiki) -> BPETokenizer:
    return BPETokenizer().train(wiki, vocab_size=600)


def random_text(rng: random.Random, n: int) -> str:
    """Random code points from ASCII, Latin, CJK, emoji, controls and surrogates."""
    ranges = [(0, 0x7F), (0x80, 0x24F), (0x4E00, 0x4FFF), (0x1F300, 0x1FAFF), (0xD800, 0xDFFF), (0, 0x10FFFF)]
    return "".join(chr(rng.randint(*rng.choice(ranges))) for _ in range(n))


# ---------------------------------------------------------------------------------------------
# BPE


def test_bpe_known_answer():
    tok = BPETokenizer(pattern=None).train("aaabdaaabac", vocab_size=259)
    assert tok.encode("aaabdaaabac") == [258, 100, 258, 97, 99]
    assert tok.vocab_size == 259
    assert tok.token_bytes(258) == b"aaab"
    assert [m.count for m in tok.merges] == [4, 2, 2]


def test_pure_helpers():
    assert pair_counts([1, 2, 3, 1, 2]) == Counter({(1, 2): 2, (2, 3): 1, (3, 1): 1})
    assert merge([1, 2, 3, 1, 2], (1, 2), 4) == [4, 3, 4]
    assert merge([7, 7, 7, 7], (7, 7), 8) == [8, 8]
    text = "Hello world, it's 2024!\n\n  ok"
    assert "".join(split_chunks(text)) == text


@pytest.mark.parametrize("pattern", ["gpt2", None])
@pytest.mark.parametrize("text", HARD_STRINGS)
def test_bpe_round_trips_every_string(bpe, text, pattern):
    tok = bpe if pattern == "gpt2" else BPETokenizer(pattern=None).train("abababcabc" * 5, vocab_size=260)
    assert tok.decode(tok.encode(text)) == text


def test_bpe_round_trips_random_unicode(bpe):
    rng = random.Random(0)
    for _ in range(200):
        text = random_text(rng, rng.randint(0, 40))
        assert bpe.decode(bpe.encode(text)) == text


def test_bpe_round_trips_a_large_text_and_compresses_it(bpe, wiki):
    ids = bpe.encode(wiki)
    assert bpe.decode(ids) == wiki
    assert len(wiki.encode()) / len(ids) > 2.0  # 344 merges already halve the sequence


def test_bpe_merges_are_recorded_in_order(bpe):
    assert len(bpe.merges) == 600 - 256
    assert [m.rank for m in bpe.merges] == list(range(344))
    assert [m.new_id for m in bpe.merges] == list(range(256, 600))
    counts = [m.count for m in bpe.merges]
    assert counts == sorted(counts, reverse=True)  # a merge never creates a pair more frequent than itself
    assert all(a < m.new_id and b < m.new_id for m in bpe.merges for a, b in [m.pair])
    assert bpe.id_to_token(bpe.merges[0].new_id) == bpe.id_to_token(bpe.merges[0].pair[0]) + bpe.id_to_token(
        bpe.merges[0].pair[1]
    )


def test_bpe_token_counts_describe_the_encoded_training_text(bpe, wiki):
    assert sum(bpe.token_counts.values()) == len(bpe.encode(wiki))
    assert bpe.token_counts == Counter(bpe.encode(wiki))


def naive_bpe(text: str, n_merges: int, pattern: str | None = GPT2_PATTERN) -> tuple[list[tuple[int, int]], int]:
    """The textbook algorithm: recount every pair before every merge (ties: lowest pair).

    Returns the merges and the number of tokens left in the text.
    """
    chunks = [list(c.encode()) for c in split_chunks(text, pattern)]
    merges = []
    for k in range(n_merges):
        stats = Counter()
        for ids in chunks:
            stats.update(pair_counts(ids))
        if not stats:
            break
        pair = min(stats, key=lambda p: (-stats[p], p))
        merges.append(pair)
        chunks = [merge(ids, pair, 256 + k) for ids in chunks]
    return merges, sum(map(len, chunks))


def test_bpe_incremental_training_matches_the_naive_algorithm(wiki):
    text = wiki[:20_000]
    tok = BPETokenizer().train(text, vocab_size=256 + 60)
    assert [m.pair for m in tok.merges] == naive_bpe(text, 60)[0]


def test_bpe_incremental_training_matches_the_naive_algorithm_on_overlapping_runs():
    # runs like "aaaa" and "abab" make merges overlap their own neighbours: the hard case for
    # updating counts in place
    rng = random.Random(1)
    for _ in range(20):
        text = "".join(rng.choice("aab ") for _ in range(rng.randint(2, 60)))
        for pattern in (None, GPT2_PATTERN):
            expected, n_tokens = naive_bpe(text, 30, pattern)
            merges, counts = train_merges(Counter(c.encode() for c in split_chunks(text, pattern)), 30)
            assert [m.pair for m in merges] == expected, text
            assert sum(counts.values()) == n_tokens, text


def test_bpe_truncated_replays_training(bpe, wiki):
    text = wiki[:5000]
    tok_50 = BPETokenizer().train(wiki, vocab_size=256 + 50)
    assert bpe.truncated(50).encode(text) == tok_50.encode(text)
    assert bpe.truncated(0).encode(text) == list(text.encode())
    with pytest.raises(ValueError):
        bpe.truncated(10_000)


def test_bpe_progress_callback_sees_every_merge():
    seen = []
    BPETokenizer().train("the cat sat on the mat with the hat", vocab_size=262, callback=seen.append)
    assert [m.rank for m in seen] == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    ("text", "vocab_size", "message"),
    [("", 300, "empty"), ("hello", 256, "above 256"), ("hello", 100, "above 256"), ("abc abc", 1000, "allows only")],
)
def test_bpe_bad_input_raises_clear_errors(text, vocab_size, message):
    with pytest.raises(ValueError, match=message):
        BPETokenizer().train(text, vocab_size=vocab_size)


def test_bpe_decode_rejects_unknown_ids(bpe):
    with pytest.raises(ValueError, match="0..599"):
        bpe.decode([1, 600])


# ---------------------------------------------------------------------------------------------
# BPE against the `tokenizers` library


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in for every byte, as the library's ByteLevel uses."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = [b for b in range(256) if b not in printable]
    return {b: chr(c) for b, c in zip(printable + extra, printable + [256 + i for i in range(len(extra))], strict=True)}


def _hf_byte_level(vocab: dict[str, int] | None = None, merges: list | None = None):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    hf = Tokenizer(models.BPE(vocab, merges) if vocab is not None else models.BPE())
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    hf.decoder = decoders.ByteLevel()
    return hf


def test_bpe_compresses_like_the_tokenizers_library(bpe, wiki):
    from tokenizers import pre_tokenizers, trainers

    hf = _hf_byte_level()
    trainer = trainers.BpeTrainer(
        vocab_size=600, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[], show_progress=False
    )
    hf.train_from_iterator([wiki], trainer)
    assert hf.get_vocab_size() == bpe.vocab_size
    n_bytes = len(wiki.encode())
    ours, theirs = n_bytes / len(bpe.encode(wiki)), n_bytes / len(hf.encode(wiki).ids)
    assert ours == pytest.approx(theirs, rel=0.02)
    # the same merges are learned (only the order of equally frequent pairs may differ)
    b2u = _bytes_to_unicode()
    ours_merges = {"".join(b2u[b] for b in bpe.token_bytes(m.new_id)) for m in bpe.merges}
    theirs_merges = {a + b for a, b in json.loads(hf.to_str())["model"]["merges"]}
    assert len(ours_merges & theirs_merges) >= 0.97 * len(ours_merges)


def test_bpe_encodes_exactly_like_the_library_given_our_merges(bpe, wiki):
    b2u = _bytes_to_unicode()
    as_str = {i: "".join(b2u[b] for b in bpe.token_bytes(i)) for i in range(bpe.vocab_size)}
    vocab = {s: i for i, s in as_str.items()}
    merges = [(as_str[m.pair[0]], as_str[m.pair[1]]) for m in bpe.merges]
    hf = _hf_byte_level(vocab, merges)
    text = wiki[-30_000:] + "".join(HARD_STRINGS[:9])  # lone surrogates aside, which the library rejects
    assert bpe.encode(text) == hf.encode(text).ids


# ---------------------------------------------------------------------------------------------
# Word


def test_word_splits_like_basic_english():
    tok = WordTokenizer().train("My name is John.")
    assert tok.tokens("My name is John.") == ["my", "name", "is", "john", "."]


def test_word_special_tokens_and_unknown_words():
    tok = WordTokenizer().train("the cat sat on the mat")
    assert [tok.id_to_token(i) for i in range(4)] == ["<unk>", "<pad>", "<bos>", "<eos>"]
    ids = tok.encode("the dog sat", bos=True, eos=True)
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
    assert ids[2] == tok.unk_id
    assert tok.decode(ids) == "the <unk> sat"


def test_word_vocabulary_is_by_frequency_with_a_min_frequency_cut():
    text = "b a a c c c, d d d d."
    tok = WordTokenizer(min_freq=2).train(text)
    assert tok.itos[4:] == ["d", "c", "a"]  # b, "," and "." occur once
    assert tok.tokens("b d") == ["<unk>", "d"]
    assert WordTokenizer().train(text, vocab_size=6).itos[4:] == ["d", "c"]


def test_word_is_lossy_but_readable():
    tok = WordTokenizer().train("Hello, World! (It works.)")
    assert tok.decode(tok.encode("Hello,   World! (It works.)")) == "hello, world! (it works.)"


@pytest.mark.parametrize(("kwargs", "text"), [({}, "   "), ({"min_freq": 0}, "a b"), ({"vocab_size": 4}, "a b")])
def test_word_bad_input_raises(kwargs, text):
    vocab_size = kwargs.pop("vocab_size", None)
    with pytest.raises(ValueError):
        WordTokenizer(**kwargs).train(text, vocab_size=vocab_size)


# ---------------------------------------------------------------------------------------------
# Char, and what every tokenizer shares
#
# Each tokenizer says which id stands for unknown input (`unk_id`, None when nothing is unknown)
# and which bytes each token stands for (`token_bytes`), so pages need not ask which kind it is.


def test_char_and_word_map_unknown_input_to_unk_id():
    char = CharTokenizer().train("hello")
    assert char.unk_id == 0 and char.id_to_token(char.unk_id) == "<unk>"
    assert char.encode("help!") == [*char.encode("hel"), char.unk_id, char.unk_id]
    word = WordTokenizer().train("the cat sat")
    assert word.unk_id == 0 and word.id_to_token(word.unk_id) == "<unk>"
    assert word.encode("the dog sat") == [word.encode("the")[0], word.unk_id, word.encode("sat")[0]]


@pytest.mark.parametrize("text", HARD_STRINGS)
def test_bpe_has_no_unknown_token(bpe, text):
    assert bpe.unk_id is None
    assert None not in bpe.encode(text) and bpe.decode(bpe.encode(text)) == text


def test_char_and_word_token_bytes_are_the_utf8_of_the_token():
    char = CharTokenizer().train("héllo 👋")
    assert [char.token_bytes(i) for i in char.encode("é👋")] == ["é".encode(), "👋".encode()]
    assert char.token_bytes(char.unk_id) == b"<unk>"  # the text it decodes to
    word = WordTokenizer().train("the café is open.")
    assert [word.token_bytes(i) for i in word.encode("The café.")] == [b"the", "café".encode(), b"."]
    assert [word.token_bytes(i) for i in range(4)] == [b"<unk>", b"<pad>", b"<bos>", b"<eos>"]


@pytest.mark.parametrize("text", HARD_STRINGS)
def test_bpe_token_bytes_spell_the_text(bpe, text):
    assert b"".join(bpe.token_bytes(i) for i in bpe.encode(text)) == text.encode("utf-8", errors="surrogatepass")


def test_token_bytes_cover_the_whole_vocabulary(bpe):
    assert [bpe.token_bytes(i) for i in range(256)] == [bytes([b]) for b in range(256)]
    for tok in (bpe, CharTokenizer().train("日本語 abc"), WordTokenizer().train("a b, c.")):
        assert all(isinstance(tok.token_bytes(i), bytes) and tok.token_bytes(i) for i in range(tok.vocab_size))


def test_char_round_trips_its_training_alphabet():
    text = "日本語 and emoji 👍🏽"
    tok = CharTokenizer().train(text)
    assert tok.decode(tok.encode(text)) == text
    assert tok.encode("?") == [0]


@pytest.mark.parametrize(
    "make",
    [
        lambda t: CharTokenizer().train(t),
        lambda t: WordTokenizer(min_freq=2).train(t),
        lambda t: BPETokenizer().train(t, vocab_size=300),
    ],
    ids=["char", "word", "bpe"],
)
def test_save_and_load_give_the_same_tokenizer(tmp_path, wiki, make):
    tok = make(wiki[:20_000])
    path = tok.save(tmp_path / "tok.json")
    assert path.with_suffix(".vocab").read_text(encoding="utf-8").count("\n") == tok.vocab_size
    loaded = load_tokenizer(path)
    assert type(loaded) is type(tok)
    sample = wiki[20_000:22_000]
    assert loaded.encode(sample) == tok.encode(sample)
    assert loaded.vocab_size == tok.vocab_size
    assert loaded.get_state() == tok.get_state()


def test_load_refuses_another_kind(tmp_path):
    path = WordTokenizer().train("a b").save(tmp_path / "w.json")
    with pytest.raises(ValueError, match="word tokenizer"):
        BPETokenizer.load(path)


def test_load_tokenizer_refuses_an_unknown_kind_or_version(tmp_path):
    payload = CharTokenizer().train("ab").to_dict()
    (tmp_path / "alien.json").write_text(json.dumps({**payload, "kind": "alien"}), encoding="utf-8")
    with pytest.raises(ValueError, match="unknown tokenizer kind 'alien'; known kinds: char, word, bpe"):
        load_tokenizer(tmp_path / "alien.json")
    (tmp_path / "v0.json").write_text(json.dumps({**payload, "version": 0}), encoding="utf-8")
    with pytest.raises(ValueError, match="unsupported tokenizer file version 0"):
        load_tokenizer(tmp_path / "v0.json")


def test_from_dict_reads_what_to_dict_gives(bpe):
    back = BPETokenizer.from_dict(json.loads(json.dumps(bpe.to_dict())))
    assert back.get_state() == bpe.get_state()
    with pytest.raises(ValueError, match="the dict holds a bpe tokenizer, not a char one"):
        CharTokenizer.from_dict(bpe.to_dict())


def test_the_base_module_knows_none_of_its_subclasses(root):
    # base.py <- char.py, word.py, bpe.py <- the package: no import cycle, and each tokenizer loads on use
    script = (
        "import sys\n"
        "import mllm_core.tokenizers.base\n"
        "print(sorted(m for m in sys.modules if m.startswith('mllm_core.tokenizers.')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['mllm_core.tokenizers.base']"


def test_encoding_stats_compare_tokenizers_on_a_text(bpe):
    text = "The cat sat on the zyzzyva."
    word = WordTokenizer().train("the cat sat on the mat.")
    stats = encoding_stats(word, text)
    assert stats["tokens"] == 7 and stats["unk share"] == pytest.approx(1 / 7)  # only "zyzzyva" is unknown
    assert stats["bytes per token"] == pytest.approx(len(text) / 7)
    assert encoding_stats(bpe, text)["unk share"] == 0 and encoding_stats(bpe, "")["tokens"] == 0


def test_token_frequencies_are_training_counts_by_id(bpe):
    word = WordTokenizer().train("b a a")
    assert word.token_frequencies() == [0, 0, 0, 0, 2, 1]  # specials first, then a, b
    assert bpe.token_frequencies() == [bpe.token_counts.get(i, 0) for i in range(bpe.vocab_size)]
    assert bpe.token_frequencies()[bpe.merges[0].new_id] > 0


def test_to_dict_is_what_save_writes(tmp_path, bpe):
    path = bpe.save(tmp_path / "bpe.json")
    assert json.loads(path.read_text(encoding="utf-8")) == json.loads(json.dumps(bpe.to_dict()))
    assert bpe.to_dict()["kind"] == "bpe"
