"""Paired comparison of two runs on the same problems (McNemar's exact test).

    python -m minillama.codeworld.compare A0-l2r A1-fn50

For each evaluation both runs share (MiniEval tiers, hand-written, infilling sets), the
counts of problems only A solved (b) and only B solved (c), and the exact two-sided McNemar
p-value: under "no difference" each discordant problem is a fair coin.
"""

from __future__ import annotations

import json
import sys

from minillama.evaluation.metrics import mcnemar

from .recipe import cache_dir


def paired(a: dict, b: dict) -> dict:
    """Two runs scored on the same tasks (``{task_id: passed}``): counts and McNemar's exact p."""
    common = sorted(set(a) & set(b))
    test = mcnemar([a[t] for t in common], [b[t] for t in common])
    return {"n": len(common), "a": sum(a[t] for t in common), "b": sum(b[t] for t in common),
            "only_a": test["a_only"], "only_b": test["b_only"], "p": test["p"]}


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
