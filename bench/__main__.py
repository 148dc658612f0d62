"""python -m bench [--quick] [--device cpu|cuda|mps] [--json PATH] [--only NAME ...]"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import time

from bench.registry import registry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller inputs, for a smoke run")
    parser.add_argument("--json", metavar="PATH", help="write {name: {value, unit, peer, peer_value, ratio}}")
    parser.add_argument(
        "--device", default="cpu", help="where the benchmarks that train a neural model run (cpu, cuda, mps)"
    )
    parser.add_argument("--only", nargs="*", metavar="NAME", help="run only these benchmarks")
    args = parser.parse_args(argv)

    benches = registry()
    names = args.only or sorted(benches)
    unknown = [n for n in names if n not in benches]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(sorted(benches))}")
    results = {}
    for name in names:
        t0 = time.perf_counter()
        bench = benches[name]
        device = {"device": args.device} if "device" in inspect.signature(bench).parameters else {}
        result = bench(args.quick, **device)
        results[name] = result.to_dict()
        ratio = f"{result.ratio:.3g}x" if result.ratio is not None else "-"
        peer = f"{result.peer_value:.4g} ({result.peer})" if result.peer_value is not None else "-"
        print(
            f"{name:24s} {result.value:10.4g} {result.unit:10s} peer {peer:40s} ratio {ratio:8s} [{time.perf_counter() - t0:.1f}s]",
            flush=True,
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
