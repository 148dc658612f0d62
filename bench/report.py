"""Render a `python -m bench --json PATH` result as the README's markdown performance table.

python -m bench.report bench-results.json
"""

from __future__ import annotations

import json
import sys


def fmt(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def table(results: dict) -> str:
    rows = ["| benchmark | ours | peer (same run) | ratio ours/peer | goal |", "|---|---|---|---|---|"]
    for name, r in sorted(results.items()):
        peer = (
            f"{fmt(r['peer_value'])} {r['unit']} ({r['peer']})"
            if r.get("peer_value") is not None
            else (r.get("peer") or "–")
        )
        ratio = f"{r['ratio']:.3g}×" if r.get("ratio") is not None else "–"
        rows.append(f"| `{name}` | {fmt(r['value'])} {r['unit']} | {peer} | {ratio} | {r.get('goal') or '–'} |")
    return "\n".join(rows)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        print(table(json.load(f)))
