"""The benchmark registry and the shared timing helper."""

from __future__ import annotations

import importlib
import pkgutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass


@dataclass
class Result:
    value: float  # our measurement
    unit: str  # "s", "words/s", "MB/s", ...
    peer: str | None = None  # what we compare with, e.g. "tokenizers 0.23 (Rust)"
    peer_value: float | None = None  # the peer's measurement in the same run
    goal: str | None = None  # the target from the issue, e.g. "<= 5x peer time"
    notes: str = ""

    @property
    def ratio(self) -> float | None:
        """ours / peer (for times lower is better, for rates higher is better)."""
        if self.peer_value in (None, 0):
            return None
        return self.value / self.peer_value

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ratio"] = self.ratio
        return d


_REGISTRY: dict[str, Callable[[bool], Result]] = {}


def benchmark(name: str):
    """Register `fn(quick: bool) -> Result` under `name`."""

    def decorate(fn: Callable[[bool], Result]) -> Callable[[bool], Result]:
        if name in _REGISTRY:
            raise ValueError(f"benchmark {name!r} registered twice")
        _REGISTRY[name] = fn
        return fn

    return decorate


def registry() -> dict[str, Callable[[bool], Result]]:
    """Import every `bench/bench_*.py` module and return {name: function}."""
    import bench

    for info in pkgutil.iter_modules(bench.__path__):
        if info.name.startswith("bench_"):
            importlib.import_module(f"bench.{info.name}")
    return dict(_REGISTRY)


def best_of(fn: Callable[[], object], repeats: int = 3) -> float:
    """The fastest of `repeats` wall-clock timings of `fn()`, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best
