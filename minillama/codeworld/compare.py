"""Paired comparison of two runs on the same problems (McNemar's exact test).

    python -m minillama.codeworld.compare A0-l2r A1-fn50

For each evaluation both runs share (MiniEval tiers, hand-written, infilling sets), the
counts of problems only A solved (b) and only B solved (c), and the exact two-sided McNemar
p-value: under "no difference" each discordant problem is a fair coin.
"""

from __future__ import annotations

import json
import sys
from math import comb

from .recipe import cache_dir


def mcnemar(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value for b and c discordant pairs."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    p = sum(comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * p)


def paired(a: dict, b: dict) -> dict:
    common = sorted(set(a) & set(b))
    only_a = sum(a[t] and not b[t] for t in common)
    only_b = sum(b[t] and not a[t] for t in common)
    return {"n": len(common), "a": sum(a[t] for t in common), "b": sum(b[t] for t in common),
            "only_a": only_a, "only_b": only_b, "p": mcnemar(only_a, only_b)}


def load(name: str) -> dict:
    return json.loads((cache_dir() / "runs" / name / "result.json").read_text())


def compare(name_a: str, name_b: str) -> dict:
    ra, rb = load(name_a)["results"], load(name_b)["results"]
    out = {}
    for key in ra:
        if key in rb and isinstance(ra[key], dict) and "per_task" in ra[key]:
            out[key] = paired(ra[key]["per_task"], rb[key]["per_task"])
    return out


def main(argv=None):
    a, b = (argv or sys.argv[1:])[:2]
    print(f"{'evaluation':22s} {'n':>4s} {a:>14s} {b:>14s} {'only A':>7s} {'only B':>7s} {'McNemar p':>10s}")
    for key, r in compare(a, b).items():
        print(f"{key:22s} {r['n']:4d} {r['a']:14d} {r['b']:14d} {r['only_a']:7d} {r['only_b']:7d} {r['p']:10.3g}")


if __name__ == "__main__":
    main()
