"""Corpora: embedded text parses to clean prose, uploads fail clearly, online loading uses the
cache and reports being offline, without touching the network."""

import io
import urllib.error

import pytest

from mllm_core import corpora
from mllm_core.corpora import CorpusError, OfflineError


def test_wikipedia_sample_is_clean_prose_one_article_per_line():
    corpus = corpora.load("wikipedia-sample")
    docs = corpus.documents
    assert 100 <= len(docs) <= 110
    assert 400_000 < corpus.n_words < 500_000
    assert docs[0].startswith("Anarchism is a political philosophy")
    assert "'''" not in corpus.text and "==" not in corpus.text and "[[" not in corpus.text
    assert corpora.load("wikipedia-sample") is corpus  # parsed once per process


def test_default_is_the_wikipedia_sample_and_names_list_embedded_first():
    assert corpora.DEFAULT == "wikipedia-sample"
    assert corpora.names()[0] == "wikipedia-sample"
    assert set(corpora.ONLINE) <= set(corpora.names())
    assert "tiny-shakespeare" not in corpora.names(online=False)


def test_lee_news_has_300_stories():
    assert len(corpora.load("lee-news").documents) == 300


def test_toy_corpora_are_exact():
    assert corpora.load("fox").documents == [
        "The quick brown fox jumps over the lazy dog",
        "The fox is much faster than the lazy dog",
    ]
    assert corpora.load("hello").text == "hello"


def test_unknown_corpus_names_the_choices():
    with pytest.raises(CorpusError, match="wikipedia-sample"):
        corpora.load("no-such-corpus")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"   \n\n", "empty"),
        (b"\x00\x01\x02binary", "binary"),
        ("caf\u00e9".encode("latin-1"), "not UTF-8"),
    ],
)
def test_bad_uploads_get_clear_messages(data, message):
    with pytest.raises(CorpusError, match=message):
        corpora.from_upload(data, "notes.txt")


def test_uploads_over_the_cap_are_refused():
    with pytest.raises(CorpusError, match="limit"):
        corpora.from_upload(b"a" * 101, "big.txt", max_bytes=100)


def test_a_good_upload_is_normalised():
    corpus = corpora.from_upload("\ufeffline one\r\nline two\r\n".encode(), "story.txt")
    assert corpus.text == "line one\nline two\n"
    assert corpus.name == "story" and corpus.source == "upload"


def test_typed_text_must_not_be_empty():
    with pytest.raises(CorpusError):
        corpora.from_text("  ")
    assert corpora.from_text("hi").text == "hi"


def test_train_val_split_by_documents_and_by_characters():
    train, val = corpora.train_val_split("\n".join(str(i) for i in range(20)), 0.1)
    assert train.split("\n") == [str(i) for i in range(18)] and val.split("\n") == ["18", "19"]
    train, val = corpora.train_val_split("abcdefghij", 0.2)
    assert (train, val) == ("abcdefgh", "ij")
    with pytest.raises(ValueError):
        corpora.train_val_split("abc", 1.5)


def test_text_digest_is_the_sha1_of_the_utf8_text():
    assert corpora.text_digest("") == "da39a3ee5e6b4b0d3255bfef95601890afd80709"  # SHA-1 of no bytes
    assert corpora.text_digest("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d"  # FIPS 180 example
    assert corpora.text_digest("é") != corpora.text_digest("e")
    assert len(corpora.text_digest("lone \ud800 surrogate")) == 40  # lenient text is fingerprinted, not refused


# -- online corpora, with the network replaced -------------------------------------------------


class FakeResponse(io.BytesIO):
    def __init__(self, data: bytes):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MLLM_CACHE_DIR", str(tmp_path))
    return tmp_path


def shakespeare_bytes() -> bytes:
    return ("First Citizen:\nBefore we proceed any further, hear me speak.\n" * 20_000).encode()


def test_offline_download_raises_a_clear_message(cache, monkeypatch):
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(corpora.urllib.request, "urlopen", no_network)
    with pytest.raises(OfflineError, match="offline — pick an embedded corpus or upload one"):
        corpora.load("tiny-shakespeare")
    assert not any(cache.iterdir())  # no partial file is left behind


def test_download_reports_progress_then_the_cache_is_used(cache, monkeypatch):
    calls = []
    data = shakespeare_bytes()
    monkeypatch.setattr(corpora.urllib.request, "urlopen", lambda url, timeout: calls.append(url) or FakeResponse(data))
    progress = []
    corpus = corpora.load("tiny-shakespeare", progress=lambda done, total: progress.append((done, total)))
    assert corpus.text.startswith("First Citizen")
    assert progress[-1] == (len(data), len(data)) and len(progress) > 1
    assert corpora.is_cached("tiny-shakespeare")

    monkeypatch.setattr(
        corpora.urllib.request, "urlopen", lambda *a, **k: pytest.fail("network used despite the cache")
    )
    assert corpora.load("tiny-shakespeare").text == corpus.text
    assert len(calls) == 1


def test_a_download_that_fails_the_sanity_check_is_removed(cache, monkeypatch):
    monkeypatch.setattr(
        corpora.urllib.request, "urlopen", lambda url, timeout: FakeResponse(b"<html>error page</html>")
    )
    with pytest.raises(CorpusError, match="truncated"):
        corpora.load("tiny-shakespeare")
    assert not corpora.is_cached("tiny-shakespeare")

    monkeypatch.setattr(corpora.urllib.request, "urlopen", lambda url, timeout: FakeResponse(b"x" * 1_100_000))
    with pytest.raises(CorpusError, match="does not look like"):
        corpora.load("tiny-shakespeare")
    assert not corpora.is_cached("tiny-shakespeare")


def test_gutenberg_headers_are_stripped(cache):
    body = "Pierre said hello. " * 200_000
    text = f"Project Gutenberg header\n*** START OF THE PROJECT GUTENBERG EBOOK WAR AND PEACE ***\n{body}\n*** END OF THE PROJECT GUTENBERG EBOOK ***\nlicense"
    (cache / corpora.ONLINE["war-and-peace"].filename).write_text(text)
    corpus = corpora.load("war-and-peace")
    assert corpus.text == body.strip()


def test_the_parsed_wikipedia_sample_is_saved_once_and_read_back(tmp_path, monkeypatch):
    """A second process reads the saved parse (0.1 s) instead of parsing the dump again (seconds)."""
    parsed = corpora._wikipedia_sample().text  # parsed in this process earlier, or now (saved nowhere: conftest)
    monkeypatch.setenv("MLLM_CACHE_DIR", str(tmp_path / "cache"))
    calls = []

    def parse():
        calls.append(1)
        return parsed

    assert corpora._saved_or_parsed("wikipedia-sample", parse) == parsed and calls == [1]
    saved = tmp_path / "cache" / "models" / corpora.parsed_artefact("wikipedia-sample") / "text.txt.gz"
    assert saved.is_file() and saved.stat().st_size < len(parsed.encode()) / 2
    assert corpora._saved_or_parsed("wikipedia-sample", parse) == parsed and calls == [1]  # read, not parsed
    saved.write_bytes(b"not gzip")  # a damaged copy is parsed again, never trusted
    assert corpora._saved_or_parsed("wikipedia-sample", parse) == parsed and calls == [1, 1]
