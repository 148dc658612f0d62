"""Benchmarks: each measures ours and a peer in the same run (`python -m bench`).

A benchmark is a function in a module `bench/bench_<lab>.py`, registered with `@benchmark`.
It takes `quick: bool` and returns a `Result`. Timing targets live here, never in unit tests.
"""

from bench.registry import Result, benchmark, registry

__all__ = ["Result", "benchmark", "registry"]
