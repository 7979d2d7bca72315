"""Self-checks for the exercises of notebook 06 (evaluation).

Each ``check_*`` takes the student's function, compares it with the reference on fixed and
random cases, and prints right / close / wrong (like nn-zero-to-hero's ``cmp``)."""

from __future__ import annotations

import math
import random

from minillama.evaluation.metrics import pass_at_k, wilson_interval


def cmp(name: str, got: float, want: float, tol: float = 1e-9) -> str:
    if got == want:
        verdict = "right"
    elif math.isclose(got, want, rel_tol=1e-6, abs_tol=tol):
        verdict = "close"
    else:
        verdict = "wrong"
    print(f"{name:36s} {verdict:5s}  got {got:.6g}, expected {want:.6g}")
    return verdict


def _cases(seed: int = 0) -> list[tuple[int, int, int]]:
    rng = random.Random(seed)
    fixed = [(1, 1, 1), (10, 0, 1), (10, 3, 1), (10, 3, 5), (200, 1, 100), (200, 150, 100)]
    rand = []
    for _ in range(20):
        n = rng.randint(1, 250)
        rand.append((n, rng.randint(0, n // 8), rng.randint(1, min(n, 20))))  # informative: not all 1.0
    return fixed + rand


def check_pass_at_k(fn) -> bool:
    """Exercise 1: write ``fn(n, c, k)``, the unbiased pass@k estimator."""
    verdicts = [cmp(f"pass@{k} with n={n}, c={c}", float(fn(n, c, k)), pass_at_k(n, c, k))
                for n, c, k in _cases()]
    ok = all(v != "wrong" for v in verdicts)
    print("all right or close!" if ok else "some cases are wrong: check n - c < k and the product form")
    return ok


def check_wilson(fn) -> bool:
    """Exercise 2: write ``fn(successes, n)`` returning the 95% Wilson interval."""
    verdicts = []
    for s, n in [(0, 10), (5, 10), (10, 10), (33, 164), (1, 1000)]:
        lo, hi = fn(s, n)
        rlo, rhi = wilson_interval(s, n)
        verdicts += [cmp(f"Wilson low  {s}/{n}", lo, rlo, 1e-6), cmp(f"Wilson high {s}/{n}", hi, rhi, 1e-6)]
    ok = all(v != "wrong" for v in verdicts)
    print("all right or close!" if ok else "some cases are wrong")
    return ok
