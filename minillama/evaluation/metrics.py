"""The numbers of an evaluation: pass@k, confidence intervals and paired tests.

Sampled pass@k (k = 10, 100) uses the unbiased estimator of Chen et al. (2021):
``pass@k = 1 - C(n-c, k) / C(n, k)``, computed as a product so that C(200, 100) never has
to exist as a number. Two models scored on the same problems are compared with a paired
test (:func:`mcnemar`), never by whether their intervals overlap.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Sequence

import numpy as np


# --- pass@k -----------------------------------------------------------------------------

def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``c`` correct among ``n`` samples: 1 - C(n-c, k)/C(n, k).

    C(n-c, k)/C(n, k) = prod_{i=n-c+1}^{n} (1 - k/i), a product of numbers in [0, 1]:
    no overflow, no cancellation."""
    if not 0 <= c <= n or k < 1:
        raise ValueError(f"need 0 <= c <= n and k >= 1, got n={n} c={c} k={k}")
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    if n - c < k:  # every k-subset holds a correct sample
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def estimate_pass_at_k(num_samples: int | Sequence[int], num_correct: Sequence[int], k: int) -> np.ndarray:
    """pass@k for each task; ``num_samples`` is one n for all tasks or one per task."""
    num_correct = np.asarray(num_correct)
    if np.ndim(num_samples) == 0:
        num_samples = np.full(len(num_correct), int(num_samples))
    return np.array([pass_at_k(int(n), int(c), k) for n, c in zip(num_samples, num_correct)])


def naive_pass_at_k(n: int, c: int, k: int) -> float:
    """The biased estimate 1 - (1 - c/n)^k: plugs the sample rate into the k-try formula.
    Kept to show, in the notebook, why the unbiased estimator is needed."""
    return 1.0 - (1.0 - c / n) ** k


# --- confidence intervals ---------------------------------------------------------------

def wilson_interval(successes: int, n: int, confidence: float = 0.95, z: float | None = None) -> tuple[float, float]:
    """Wilson score interval for a pass rate of ``successes``/``n`` (sane at 0 and n); ``z``, when
    given, replaces the normal quantile of ``confidence`` (e.g. a textbook's rounded 1.96)."""
    if n == 0:
        return (0.0, 1.0)
    z = NormalDist().inv_cdf(0.5 + confidence / 2) if z is None else z
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def bootstrap_interval(per_task: Sequence[float], confidence: float = 0.95, n_boot: int = 2000,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap over tasks for the mean of per-task scores (e.g. pass@k)."""
    x = np.asarray(per_task, dtype=float)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(n_boot, len(x)))].mean(axis=1)
    alpha = (1 - confidence) / 2
    return (float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha)))


def paired_ratio_interval(before: Sequence[float], after: Sequence[float], confidence: float = 0.95,
                          n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``mean(after) / mean(before)`` resampling *pairs*: item ``i``
    scored ``before[i]`` on its original and ``after[i]`` on its perturbed form (e.g. the share of a
    model's pass rate it keeps when the names change). A resample whose ``before`` mean is 0 counts as
    ratio 0; with no passing item before at all the interval is ``(nan, nan)``."""
    b, a = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    if len(b) != len(a):
        raise ValueError(f"before and after must pair item by item: {len(b)} vs {len(a)} items")
    if len(b) == 0 or b.sum() == 0:
        return (float("nan"), float("nan"))
    idx = np.random.default_rng(seed).integers(0, len(b), size=(n_boot, len(b)))
    num, den = a[idx].mean(axis=1), b[idx].mean(axis=1)
    ratios = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    alpha = (1 - confidence) / 2
    return (float(np.quantile(ratios, alpha)), float(np.quantile(ratios, 1 - alpha)))


# --- paired comparisons ------------------------------------------------------------------

def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test: the probability, if neither side were better, of a split at
    least as uneven as ``wins`` : ``losses`` (ties are left out before calling)."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def mcnemar(a: Sequence[bool], b: Sequence[bool]) -> dict:
    """McNemar's exact test for two systems scored on the same items.

    Only the discordant items count: ``a_only`` (A right, B wrong) and ``b_only``. Returns those
    counts, the difference in accuracy with its 95 % interval (Wald on the paired
    differences), and the two-sided exact p-value (a sign test on the discordant pairs)."""
    if len(a) != len(b):
        raise ValueError(f"paired results need the same items: {len(a)} vs {len(b)}")
    n = len(a)
    a_only = sum(bool(x) and not bool(y) for x, y in zip(a, b))
    b_only = sum(bool(y) and not bool(x) for x, y in zip(a, b))
    diff = (a_only - b_only) / max(n, 1)
    var = ((a_only + b_only) / max(n, 1) - diff ** 2) / max(n, 1)
    half = 1.959963984540054 * math.sqrt(max(var, 0.0))
    return {"n": n, "a_only": a_only, "b_only": b_only, "diff": diff, "ci95": (diff - half, diff + half),
            "p": sign_test(a_only, b_only)}


def min_detectable_difference(n: int, discordant_rate: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest accuracy difference a paired test on ``n`` items detects with ``power``, when a
    share ``discordant_rate`` of items is discordant (normal approximation to McNemar's test)."""
    if n < 1 or not 0 < discordant_rate <= 1:
        raise ValueError("need n >= 1 and a discordant rate in (0, 1]")
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
    return z * math.sqrt(discordant_rate / n)


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X ≥ k) for X ~ Binomial(n, p): the one-sided exact p-value of ``k`` hits in ``n`` tries
    against a chance rate ``p`` (e.g. 1 key of 90 guessed right)."""
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    return min(1.0, sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k, n + 1)))


# --- intervals of paired differences, and the verdicts they support --------------------------

def t_quantile(q: float, df: int) -> float:
    """The ``q`` quantile of Student's t with ``df`` degrees of freedom (no scipy here): the
    density is integrated with Simpson's rule and the cdf inverted by bisection, to ~1e-6."""
    if not 0.5 <= q < 1 or df < 1:
        raise ValueError(f"need 0.5 <= q < 1 and df >= 1, got q={q}, df={df}")
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def cdf(t: float, steps: int = 2000) -> float:  # 0.5 + the integral of the density from 0 to t
        x = np.linspace(0.0, t, steps + 1)
        f = np.exp(log_c - (df + 1) / 2 * np.log1p(x * x / df))
        simpson = np.where(np.arange(steps + 1) % 2 == 1, 4.0, 2.0)
        simpson[0] = simpson[-1] = 1.0
        return 0.5 + float((simpson * f).sum()) * t / steps / 3

    lo, hi = 0.0, 1.0
    while cdf(hi) < q:
        lo, hi = hi, 2 * hi
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < q else (lo, mid)
    return (lo + hi) / 2


def paired_t_interval(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> dict:
    """Mean of the per-item differences ``a - b`` (the same items scored twice, e.g. evaluation
    windows) with its t interval: with a handful of windows, ±2 standard errors is too narrow."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if d.ndim != 1 or len(d) < 2:
        raise ValueError(f"a paired interval needs at least 2 items scored twice, got {len(d)}")
    mean, se = float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d)))
    half = t_quantile(0.5 + confidence / 2, len(d) - 1) * se
    return {"n": len(d), "diff": mean, "se": se, "ci95": (mean - half, mean + half)}


def paired_bootstrap(a: Sequence[float], b: Sequence[float], weights: Sequence[float] | None = None,
                     confidence: float = 0.95, n_boot: int = 2000, seed: int = 0) -> dict:
    """Percentile bootstrap of the difference of two weighted means over the same items: ``a`` and
    ``b`` are per-item scores of two systems (e.g. mean loss per validation row or per middle),
    ``weights`` what each item counts for (e.g. its tokens: the pooled mean loss is token-weighted).
    Items are resampled together, so what the two systems share cancels: that is the pairing."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    w = np.ones_like(a) if weights is None else np.asarray(weights, dtype=float)
    if not (a.shape == b.shape == w.shape) or a.ndim != 1 or len(a) < 2:
        raise ValueError(f"need two systems' scores on the same >= 2 items (and one weight each), got shapes "
                         f"{a.shape}, {b.shape}, {w.shape}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(n_boot, len(a)))
    ww = w[idx]
    diffs = ((a[idx] - b[idx]) * ww).sum(axis=1) / ww.sum(axis=1)
    alpha = (1 - confidence) / 2
    diff = float(((a - b) * w).sum() / w.sum())
    return {"n": len(a), "diff": diff, "ci95": (float(np.quantile(diffs, alpha)), float(np.quantile(diffs, 1 - alpha)))}


SUPERIOR, INFERIOR, NON_INFERIOR, UNDECIDED = "superior", "inferior", "non-inferior", "undecided"


def superiority(ci: tuple[float, float]) -> str:
    """What an interval of "A − B" (higher is better for A) shows about "A is better than B":
    ``superior`` when it lies above 0, ``inferior`` when below, ``undecided`` when it holds 0."""
    lo, hi = ci
    return SUPERIOR if lo > 0 else INFERIOR if hi < 0 else UNDECIDED


def non_inferiority(ci: tuple[float, float], margin: float) -> str:
    """What an interval of "A − B" (higher is better for A) shows about "A is at least as good as
    B, to within ``margin``": ``non-inferior`` when its lower end is above ``-margin``,
    ``inferior`` when its upper end is below ``-margin`` (A is worse by more than the margin),
    ``undecided`` otherwise. The margin must be fixed before looking at the data."""
    if margin <= 0:
        raise ValueError(f"a non-inferiority margin is a positive amount, got {margin}")
    lo, hi = ci
    return NON_INFERIOR if lo > -margin else INFERIOR if hi < -margin else UNDECIDED


def at_the_floor(passed_a: int, passed_b: int, alpha: float = 0.05) -> bool:
    """True when two pass counts on the same tasks are too small for a paired test to find anything:
    even if every pass were discordant and all on one side, the exact McNemar (sign) test would give
    p ≥ ``alpha``. With alpha 0.05 that is 5 passes or fewer between the two."""
    return sign_test(passed_a + passed_b, 0) >= alpha
