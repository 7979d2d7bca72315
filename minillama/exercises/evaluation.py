"""Checks for the exercises of notebook 06 (evaluation), against :mod:`minillama.evaluation.metrics`."""

from __future__ import annotations

import math

from minillama.evaluation.metrics import pass_at_k, wilson_interval
from minillama.exercises.verdict import CLOSE, RIGHT, WRONG, call, cases_rng, compare, exercise, grade, number, shown


@exercise("06.1")
def check_pass_at_k(fn) -> tuple[str, str]:
    """``fn(n, c, k)``: the unbiased pass@k estimate from ``c`` correct among ``n`` samples."""
    rng = cases_rng("06.1")
    cases = [(1, 1, 1), (10, 0, 1), (10, 3, 1), (10, 3, 5), (10, 8, 5), (200, 1, 100), (200, 150, 100)]
    for _ in range(12):
        n = rng.randint(1, 250)
        cases.append((n, rng.randint(0, n // 8), rng.randint(1, min(n, 20))))  # informative: mostly below 1.0

    def judge(case):
        n, c, k = case
        want = pass_at_k(n, c, k)
        raw = call(fn, n, c, k)
        got = number(raw)
        name = f"n = {n}, c = {c}, k = {k}"
        if got is None:
            return WRONG, f"{name}: got {shown(raw)}, expected a number"
        status, why = compare(got, want, rtol=1e-6, atol=1e-9)
        if status == RIGHT:
            return status, why
        if c < n and math.isclose(got, 1 - (1 - c / n) ** k, rel_tol=1e-9):
            return WRONG, f"{name}: that is the plug-in 1 − (1 − c/n)^k, which is biased low"
        if n - c < k and got != 1.0:
            return WRONG, f"{name}: with n − c < k every k-subset holds a correct sample: pass@k is 1"
        return status, f"{name}: {why}"

    return grade(cases, judge, f"1 − C(n−c, k)/C(n, k) on {len(cases)} (n, c, k)")


Z_ROUNDED = (1.955, 1.965)  # every z that rounds to 1.96


def _within_rounded_z(got, s: int, n: int, atol: float = 1e-9) -> bool:
    """True when each bound of ``got`` lies between the Wilson bounds for the smallest and the largest
    z that round to 1.96 (each bound moves monotonically with z): the tolerance of the rounding of z."""
    lows, highs = zip(*(wilson_interval(s, n, z=z) for z in Z_ROUNDED))
    bounds = [number(g) for g in got]
    if any(b is None for b in bounds):
        return False
    return all(min(pair) - atol <= b <= max(pair) + atol for b, pair in zip(bounds, (lows, highs)))


@exercise("06.2")
def check_wilson(fn) -> tuple[str, str]:
    """``fn(successes, n)``: the 95 % Wilson score interval ``(low, high)`` of a pass rate."""
    rng = cases_rng("06.2")
    cases = [(0, 10), (5, 10), (10, 10), (33, 164), (1, 1000)]
    cases += [(rng.randint(0, n), n) for n in (rng.randint(1, 2000) for _ in range(5))]

    def judge(case):
        s, n = case
        want = wilson_interval(s, n)
        got = call(fn, s, n)
        name = f"{s}/{n}"
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            return WRONG, f"{name}: got {shown(got)}, expected a pair (low, high)"
        status, why = compare(list(got), list(want), rtol=1e-6, atol=1e-9)
        if status == RIGHT:
            return status, why
        if _within_rounded_z(got, s, n):
            return RIGHT, ""  # a textbook's z = 1.96 is the 97.5 % quantile (1.959964…) to the precision it shows
        if status == CLOSE:
            return CLOSE, f"{name}: {why}"
        p = s / n
        for z in (1.96, 1.959963984540054):
            half = z * math.sqrt(p * (1 - p) / n)
            wald = (max(0.0, p - half), min(1.0, p + half))
            if all(number(g) is not None and math.isclose(number(g), w, abs_tol=1e-6) for g, w in zip(got, wald)):
                return WRONG, f"{name}: that is the normal (Wald) interval p ± z·√(p(1−p)/n); Wilson recentres it"
        return status, f"{name}: {why}"

    return grade(cases, judge, f"Wilson's interval on {len(cases)} pass rates, 0/n and n/n included")
