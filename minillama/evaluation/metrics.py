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

def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a pass rate of ``successes``/``n`` (sane at 0 and n)."""
    if n == 0:
        return (0.0, 1.0)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
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
