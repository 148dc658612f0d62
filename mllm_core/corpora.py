"""Real text to train on, offline first.

Embedded corpora come from files that installed packages ship (gensim's test data) or are
written here in code, so every default works without a network:

- ``wikipedia-sample`` (the default everywhere): ~106 English Wikipedia articles (~450K words)
  from the dump excerpt in gensim's wheel, cleaned of markup, one article per line.
- ``lee-news``: the Lee background corpus, 300 short news stories, one per line.
- ``fox`` and ``hello``: the toy examples of the talk, made in code.

Online corpora (tiny Shakespeare, War and Peace, WikiText-2) are downloaded on request into a
cache folder with progress reporting and a sanity check; without a network `load` raises
`OfflineError` with a message a page can show as it is. User uploads go through
`from_upload`, which turns bad bytes into a clear `CorpusError`.
"""

from __future__ import annotations

import bz2
import functools
import gzip
import hashlib
import logging
import os
import re
import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT = "wikipedia-sample"
MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # the app's upload cap (.streamlit/config.toml says 20 MB too)


class CorpusError(ValueError):
    """Input text that cannot be used as a corpus; the message is meant for the user."""


class OfflineError(CorpusError):
    """An online corpus was requested but could not be downloaded."""


@dataclass(frozen=True)
class Corpus:
    name: str
    text: str  # documents separated by newlines
    description: str
    source: str  # where the text comes from (file, URL or "built in")

    @property
    def documents(self) -> list[str]:
        """Non-empty lines: articles, stories or sentences."""
        return [line for line in self.text.split("\n") if line.strip()]

    @functools.cached_property
    def n_words(self) -> int:  # counted once: pages show it at every rerun
        return len(self.text.split())

    @functools.cached_property
    def digest(self) -> str:
        """`text_digest(text)`, computed once: what caches key a corpus by (hashing the text itself
        at every rerun cost the server about as much as the rerun)."""
        return text_digest(self.text)

    def ref(self) -> TextRef | str:
        """What a training job's spec carries: the name of a corpus any process can load again
        (embedded or online), else the text itself (an upload, typed text)."""
        return TextRef(self.name) if self.name in _EMBEDDED or self.name in ONLINE else self.text


@dataclass(frozen=True)
class TextRef:
    """A corpus by name in a job spec: the worker that runs the job loads the text itself.

    >>> TextRef("fox").text().split()[:2]
    ['The', 'quick']
    """

    name: str

    def text(self) -> str:
        return load(self.name).text


# ---------------------------------------------------------------------------------------------
# Embedded corpora

FOX_TEXT = "The quick brown fox jumps over the lazy dog\nThe fox is much faster than the lazy dog"
HELLO_TEXT = "hello"


def _gensim_datapath(filename: str) -> str:
    from gensim.test.utils import datapath

    return datapath(filename)


_MARKUP_LINE = re.compile(r"^\s*[*=#:;!{|]")  # lists, headings, tables, indents
_EMPHASIS = re.compile(r"'{2,}")  # ''italic'' and '''bold'''


def clean_wiki_article(text: str) -> str:
    """Turn `filter_wiki` output into one line of prose.

    Drops headings, tables, indented lines, references and short list items, keeps list items
    that read as sentences, removes bold/italic quote marks and collapses whitespace.

    >>> clean_wiki_article("==History==\\n'''Anarchism''' is a  philosophy.\\n* a list item")
    'Anarchism is a philosophy.'
    """
    paragraphs = []
    for line in text.split("\n"):
        line = line.strip()
        if line.startswith("*") and "ISBN" not in line:
            line = line.lstrip("* ")  # list items are often full sentences; references are not
            if len(line.split()) < 8:
                continue
        if not line or _MARKUP_LINE.match(line):
            continue
        line = " ".join(_EMPHASIS.sub("", line).split())
        if len(line.split()) >= 3:
            paragraphs.append(line)
    return " ".join(paragraphs)


PARSE_VERSION = 1  # of the cleaning rules above: a saved parse of another version is ignored
WIKI_DUMP = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"  # in gensim's test data


def parsed_artefact(name: str) -> str:
    """The folder name of a saved parse, e.g. "corpus-wikipedia-sample-v1" (`store.find` looks it up)."""
    return f"corpus-{name}-v{PARSE_VERSION}"


def save_parsed(name: str, root: str | Path) -> Path:
    """Write corpus `name`'s parsed text into `root`/`parsed_artefact(name)`/text.txt.gz."""
    return _write_parsed(name, load(name).text, root)


def _write_parsed(name: str, text: str, root: str | Path) -> Path:
    from mllm_core import store  # (store imports this module)

    data = gzip.compress(text.encode("utf-8"), 6)
    return store.write_atomically(Path(root) / parsed_artefact(name), lambda f: (f / "text.txt.gz").write_bytes(data))


def _parse_wiki_dump() -> str:
    from gensim.corpora.wikicorpus import extract_pages, filter_wiki

    articles = []
    with bz2.open(_gensim_datapath(WIKI_DUMP), "rb") as f:
        for title, text, _ in extract_pages(f, filter_namespaces=("0",)):
            if ":" in title or text.lstrip().lower().startswith("#redirect"):
                continue
            article = clean_wiki_article(filter_wiki(text))
            if article:
                articles.append(article)
    return "\n".join(articles)


def _saved_or_parsed(name: str, parse: Callable[[], str]) -> str:
    """`parse()`'s text, read from a saved parse when there is one (the cache, then the app's
    `models/`: seconds of regular expressions become 0.1 s of gunzip), else parsed and saved to
    the cache for the next process (a worker, the next start)."""
    from mllm_core import store

    folder = store.find(parsed_artefact(name))
    if folder is not None:
        try:
            return gzip.decompress((folder / "text.txt.gz").read_bytes()).decode("utf-8")
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            log.warning("cannot read %s (%s); parsing %s again", folder, exc, name)
    text = parse()
    try:
        _write_parsed(name, text, store.cache_models_dir())
    except OSError as exc:  # a read-only or missing cache: parse again next time
        log.info("cannot save the parsed %s: %s", name, exc)
    return text


@functools.cache
def _wikipedia_sample() -> Corpus:
    text = _saved_or_parsed("wikipedia-sample", _parse_wiki_dump)
    return Corpus(
        "wikipedia-sample",
        text,
        f"{text.count(chr(10)) + 1} English Wikipedia articles (Anarchism ... Algorithm), one per line",
        f"gensim test data: {WIKI_DUMP}",
    )


@functools.cache
def _lee_news() -> Corpus:
    path = _gensim_datapath("lee_background.cor")
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    lines = [" ".join(line.split()) for line in text.split("\n") if line.strip()]
    return Corpus(
        "lee-news",
        "\n".join(lines),
        f"{len(lines)} short news stories (Lee corpus)",
        f"gensim test data: {Path(path).name}",
    )


_EMBEDDED: dict[str, Callable[[], Corpus]] = {
    "wikipedia-sample": _wikipedia_sample,
    "lee-news": _lee_news,
    "fox": lambda: Corpus("fox", FOX_TEXT, "The two fox sentences of the n-gram example", "built in"),
    "hello": lambda: Corpus("hello", HELLO_TEXT, "The HELLO toy: four characters, one word", "built in"),
}


# ---------------------------------------------------------------------------------------------
# Online corpora


@dataclass(frozen=True)
class OnlineSource:
    url: str
    filename: str
    description: str
    min_bytes: int  # a download smaller than this is truncated or an error page
    must_contain: str  # a phrase the real text contains (sanity check)
    strip_gutenberg: bool = False


ONLINE: dict[str, OnlineSource] = {
    "tiny-shakespeare": OnlineSource(
        "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        "tiny-shakespeare.txt",
        "Tiny Shakespeare: 40K lines of plays (1.1 MB)",
        1_000_000,
        "First Citizen",
    ),
    "war-and-peace": OnlineSource(
        "https://www.gutenberg.org/cache/epub/2600/pg2600.txt",
        "war-and-peace.txt",
        "Tolstoy's War and Peace, Project Gutenberg (3.2 MB)",
        3_000_000,
        "Pierre",
        strip_gutenberg=True,
    ),
    "wikitext-2": OnlineSource(
        "https://huggingface.co/datasets/Salesforce/wikitext/resolve/main/wikitext-2-raw-v1/train-00000-of-00001.parquet",
        "wikitext-2-raw-train.parquet",
        "WikiText-2 (raw) training split: 600 Wikipedia articles, 2M words",
        5_000_000,
        "Valkyria",
    ),
}


def cache_dir() -> Path:
    """Where downloads are kept: `$MLLM_CACHE_DIR`, else ~/.cache/llm-playground."""
    return Path(os.environ.get("MLLM_CACHE_DIR") or Path.home() / ".cache" / "llm-playground")


ProgressFn = Callable[[int, int | None], None]  # (bytes so far, total bytes or None)


def download(
    url: str, dest: Path, progress: ProgressFn | None = None, timeout: float = 20.0, chunk: int = 1 << 16
) -> Path:
    """Download `url` to `dest` atomically (a partial file never looks complete).

    Raises `OfflineError` on any network failure.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
            total = response.headers.get("Content-Length")
            total = int(total) if total and total.isdigit() else None
            done = 0
            while block := response.read(chunk):
                out.write(block)
                done += len(block)
                if progress:
                    progress(done, total)
    except OSError as exc:  # URLError, timeouts and resets are all OSErrors
        tmp.unlink(missing_ok=True)
        raise OfflineError(
            f"Could not download {url} ({exc}). You are offline — pick an embedded corpus or upload one."
        ) from exc
    tmp.replace(dest)
    return dest


def _strip_gutenberg(text: str) -> str:
    start = re.search(r"\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG[^\n]*\n", text)
    end = re.search(r"\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG", text)
    return text[start.end() if start else 0 : end.start() if end else len(text)].strip()


def _read_online(source: OnlineSource, path: Path) -> str:
    if path.suffix == ".parquet":
        import pandas as pd

        lines = pd.read_parquet(path)["text"].tolist()
        # WikiText lines are paragraphs and " = Heading = " lines; keep paragraphs only
        text = "\n".join(line.strip() for line in lines if line.strip() and not line.strip().startswith("="))
    else:
        text = path.read_text(encoding="utf-8", errors="replace").replace("\r\n", "\n")
    return _strip_gutenberg(text) if source.strip_gutenberg else text


def load_online(name: str, progress: ProgressFn | None = None, refresh: bool = False) -> Corpus:
    """Load an online corpus from the cache, downloading it first when needed."""
    source = ONLINE[name]
    path = cache_dir() / source.filename
    if refresh or not path.exists():
        download(source.url, path, progress)
    if path.stat().st_size < source.min_bytes:
        path.unlink()
        raise CorpusError(
            f"The download of {name} is truncated ({path.stat().st_size if path.exists() else 0} bytes); try again."
        )
    text = _read_online(source, path)
    if source.must_contain not in text:
        path.unlink()
        raise CorpusError(f"The download of {name} does not look like {name}; it was removed, try again.")
    return Corpus(name, text, source.description, source.url)


def is_cached(name: str) -> bool:
    return name in ONLINE and (cache_dir() / ONLINE[name].filename).exists()


# ---------------------------------------------------------------------------------------------
# Public API


def names(online: bool = True) -> list[str]:
    """Corpus names: the embedded ones first (the default leads), then the online ones."""
    return list(_EMBEDDED) + (list(ONLINE) if online else [])


def embedded_names() -> list[str]:
    return list(_EMBEDDED)


_parse_lock = threading.Lock()  # two threads asking for the same embedded corpus parse it once


def load(name: str = DEFAULT, progress: ProgressFn | None = None) -> Corpus:
    """Load a corpus by name. Embedded ones are parsed once per process and cached."""
    if name in _EMBEDDED:
        with _parse_lock:
            return _EMBEDDED[name]()
    if name in ONLINE:
        return load_online(name, progress)
    raise CorpusError(f"Unknown corpus {name!r}; choose one of {', '.join(names())}.")


def from_upload(data: bytes, filename: str = "upload.txt", max_bytes: int = MAX_UPLOAD_BYTES) -> Corpus:
    """Validate an uploaded file and return it as a corpus; `CorpusError` says what is wrong."""
    if len(data) > max_bytes:
        raise CorpusError(f"{filename} is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB.")
    if not data.strip():
        raise CorpusError(f"{filename} is empty.")
    if b"\x00" in data[:8192]:
        raise CorpusError(f"{filename} looks like a binary file; upload plain UTF-8 text (.txt).")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"{filename} is not UTF-8 text (byte {exc.start} is invalid); save it as UTF-8 and upload it again."
        ) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return Corpus(Path(filename).stem, text, f"uploaded file {filename} ({len(data):,} bytes)", "upload")


def from_text(text: str, name: str = "custom") -> Corpus:
    """Wrap text typed into a page; empty text raises `CorpusError`."""
    if not text.strip():
        raise CorpusError("The text is empty; type or paste some text first.")
    return Corpus(name, text, "text typed into the page", "typed")


def train_val_split(text: str, val_fraction: float = 0.1) -> tuple[str, str]:
    """Split by documents (lines): the first (1 - val_fraction) for training, the rest for validation.

    With a single line the split falls back to characters, so toy corpora still get a
    validation part.

    >>> train_val_split("a\\nb\\nc\\nd\\ne\\nf\\ng\\nh\\ni\\nj")
    ('a\\nb\\nc\\nd\\ne\\nf\\ng\\nh\\ni', 'j')
    """
    if not 0 < val_fraction < 1:
        raise ValueError("val_fraction must be in (0, 1)")
    lines = [line for line in text.split("\n") if line.strip()]
    if len(lines) >= 2:
        n_val = max(1, round(len(lines) * val_fraction))
        return "\n".join(lines[:-n_val]), "\n".join(lines[-n_val:])
    cut = int(len(text) * (1 - val_fraction))
    return text[:cut], text[cut:]


def head_bytes(text: str, n_bytes: int) -> str:
    """The first `n_bytes` bytes of `text` (never cutting a character in two).

    Only the first `n_bytes` characters are encoded: each is at least one byte.

    >>> head_bytes("café au lait", 4), head_bytes("café au lait", 5)
    ('caf', 'café')
    """
    return text[:n_bytes].encode("utf-8", errors="surrogatepass")[:n_bytes].decode("utf-8", errors="ignore")


def text_digest(text: str) -> str:
    """A short fingerprint of `text` (SHA-1 of its UTF-8 bytes), to key caches by content.

    Lone surrogates (possible in text decoded leniently) are encoded as they are instead of failing.

    >>> text_digest("abc")
    'a9993e364706816aba3e25717850c26c9cd0d89d'
    """
    return hashlib.sha1(text.encode("utf-8", errors="surrogatepass")).hexdigest()


__all__ = [
    "DEFAULT",
    "MAX_UPLOAD_BYTES",
    "ONLINE",
    "Corpus",
    "CorpusError",
    "OfflineError",
    "cache_dir",
    "clean_wiki_article",
    "download",
    "embedded_names",
    "from_text",
    "from_upload",
    "is_cached",
    "load",
    "load_online",
    "names",
    "head_bytes",
    "text_digest",
    "train_val_split",
]
