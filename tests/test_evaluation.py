"""pass@k against brute force, intervals, and the sample → execute → score loop."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minillama.evaluation.harness import evaluate_generator
from minillama.evaluation.metrics import (bootstrap_interval, estimate_pass_at_k, naive_pass_at_k, pass_at_k,
                                          wilson_interval)


def brute_pass_at_k(n, c, k):
    """Fraction of k-subsets of the n samples that hold at least one correct one."""
    samples = [1] * c + [0] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n,c,k", [(5, 0, 1), (5, 1, 1), (5, 2, 3), (6, 3, 6), (8, 1, 4), (7, 7, 2)])
def test_pass_at_k_matches_brute_force(n, c, k):
    assert math.isclose(pass_at_k(n, c, k), brute_pass_at_k(n, c, k), rel_tol=1e-12, abs_tol=1e-12)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_pass_at_k_matches_exact_binomials(nck):
    n, c, k = nck
    exact = 1 - math.comb(n - c, k) / math.comb(n, k)
    assert math.isclose(pass_at_k(n, c, k), exact, rel_tol=1e-9, abs_tol=1e-12)


def test_pass_at_1_is_the_pass_rate_and_edges():
    assert pass_at_k(200, 37, 1) == pytest.approx(37 / 200)
    assert pass_at_k(200, 0, 100) == 0.0
    assert pass_at_k(200, 101, 100) == 1.0
    with pytest.raises(ValueError):
        pass_at_k(5, 1, 10)


def test_estimate_arrays_and_naive_bias():
    est = estimate_pass_at_k(10, [0, 5, 10], 3)
    assert est.shape == (3,) and est[0] == 0 and est[2] == 1
    np.testing.assert_allclose(estimate_pass_at_k([10, 20], [5, 5], 1), [0.5, 0.25])
    # plugging c/n into 1-(1-p)^k is biased; here it overestimates
    assert naive_pass_at_k(10, 5, 3) < 1 and not math.isclose(naive_pass_at_k(10, 5, 3), pass_at_k(10, 5, 3))


def test_unbiased_on_average():
    """Averaged over draws of n samples with true rate p, the estimator gives 1-(1-p)^k."""
    rng = np.random.default_rng(0)
    p, n, k = 0.1, 20, 5
    c = rng.binomial(n, p, size=20000)
    assert estimate_pass_at_k(n, c, k).mean() == pytest.approx(1 - (1 - p) ** k, abs=0.01)


def test_wilson_interval():
    lo, hi = wilson_interval(0, 20)
    assert lo == pytest.approx(0.0, abs=1e-12) and 0.1 < hi < 0.2
    lo, hi = wilson_interval(50, 100)
    assert lo < 0.5 < hi and hi - lo == pytest.approx(2 * 1.96 * 0.05, rel=0.05)


def test_bootstrap_interval_contains_mean():
    x = np.r_[np.ones(30), np.zeros(70)]
    lo, hi = bootstrap_interval(x, n_boot=500)
    assert lo < 0.3 < hi and hi - lo < 0.25


TOY = {f"Toy/{i}": {"task_id": f"Toy/{i}", "prompt": "def f(x):\n", "entry_point": "f",
                    "test": f"def check(candidate):\n    assert candidate(1) == {i}\n"} for i in range(4)}




def test_greedy_and_sampled_loop():
    calls = []

    def generate(prompts, *, temperature, top_p, max_new_tokens, stop):
        calls.append((temperature, top_p, len(prompts)))
        # task i is solved by returning i for even i; odd tasks get a wrong answer; text after
        # the stop sequence must be cut off (it would be a syntax error)
        return ["    return 1 if x == 1 else 0\n" + "\ndef broken(:\n" for _ in prompts]

    greedy = evaluate_generator(TOY, generate, mode="greedy", n_workers=2)
    assert greedy["pass@1"] == 0.25  # only Toy/1 expects 1
    assert calls[0][:2] == (0.0, 1.0)
    sampled = evaluate_generator(TOY, generate, mode="sampled", n=4, ks=(1, 2), n_workers=2)
    assert calls[-1][:2] == (0.8, 0.95)
    assert sampled["n"] == {t: 4 for t in TOY} and sampled["pass@2"] == 0.25
    assert all("broken" not in s["completion"] for s in sampled["samples"])


def test_binomial_tail_against_a_direct_sum_and_edges():
    from minillama.evaluation.metrics import binomial_tail

    assert binomial_tail(0, 36, 1 / 90) == pytest.approx(1.0)
    # 1 hit in 36 prompts at chance 1/90 is not evidence of retrieval: p = 1 - (89/90)^36
    assert binomial_tail(1, 36, 1 / 90) == pytest.approx(1 - (89 / 90) ** 36)
    assert 0.3 < binomial_tail(1, 36, 1 / 90) < 0.35
    assert binomial_tail(5, 5, 0.5) == pytest.approx(1 / 32)
    with pytest.raises(ValueError):
        binomial_tail(6, 5, 0.5)


def test_paired_ratio_interval_resamples_pairs():
    from minillama.evaluation.metrics import paired_ratio_interval
    before = [1] * 80 + [0] * 20
    same = paired_ratio_interval(before, before)
    assert same == (1.0, 1.0)  # every resample keeps exactly what it had
    half = [1, 0] * 40 + [0] * 20  # keeps half of the solved problems
    lo, hi = paired_ratio_interval(before, half)
    assert lo < 0.5 < hi and hi - lo < 0.35
    lo2, hi2 = paired_ratio_interval(before[:20] + [0] * 80, half[:20] + [0] * 80)  # fewer pairs: wider
    assert hi2 - lo2 > hi - lo
    assert all(map(lambda x: x != x, paired_ratio_interval([0, 0], [1, 1])))  # nothing solved before: nan
    with pytest.raises(ValueError, match="pair item by item"):
        paired_ratio_interval([1, 0], [1])
