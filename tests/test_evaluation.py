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


# --- paired intervals and the verdicts they support ----------------------------------------------

def test_t_quantile_matches_the_tables():
    from minillama.evaluation.metrics import t_quantile

    for df, want in ((1, 12.706), (5, 2.571), (23, 2.069), (1000, 1.962)):
        assert t_quantile(0.975, df) == pytest.approx(want, abs=1e-3)
    assert t_quantile(0.95, 10) == pytest.approx(1.812, abs=1e-3)
    with pytest.raises(ValueError):
        t_quantile(0.3, 5)


def test_paired_t_interval_is_wider_than_two_standard_errors_for_few_windows():
    from minillama.evaluation.metrics import paired_t_interval

    a, b = [1.0, 1.2, 0.9, 1.1, 1.3, 1.0], [0.8, 1.1, 0.8, 0.9, 1.0, 0.9]
    t = paired_t_interval(a, b)
    d = np.subtract(a, b)
    assert t["diff"] == pytest.approx(d.mean()) and t["n"] == 6
    half = (t["ci95"][1] - t["ci95"][0]) / 2
    assert half == pytest.approx(2.571 * d.std(ddof=1) / np.sqrt(6), rel=1e-3) and half > 2 * t["se"]
    with pytest.raises(ValueError, match="at least 2"):
        paired_t_interval([1.0], [0.0])


def test_paired_bootstrap_uses_the_pairing_and_the_weights():
    from minillama.evaluation.metrics import paired_bootstrap

    rng = np.random.default_rng(0)
    shared = rng.normal(3.0, 1.0, 300)  # items differ far more than the systems do
    a, b = shared + 0.05 + rng.normal(0, 0.02, 300), shared
    r = paired_bootstrap(a, b)
    assert 0.04 < r["ci95"][0] < r["diff"] < r["ci95"][1] < 0.06  # paired: the 1.0 spread of items cancels
    unpaired_half = 1.96 * np.sqrt(a.var() / 300 + b.var() / 300)
    assert (r["ci95"][1] - r["ci95"][0]) / 2 < unpaired_half / 5
    w = np.r_[np.ones(150), np.full(150, 9.0)]  # the weighted mean follows the heavy items
    a2 = np.r_[np.full(150, 1.0), np.full(150, 0.0)]
    assert paired_bootstrap(a2, np.zeros(300), w)["diff"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="same"):
        paired_bootstrap([1.0, 2.0], [1.0])


def test_superiority_non_inferiority_and_the_floor():
    from minillama.evaluation.metrics import (INFERIOR, NON_INFERIOR, SUPERIOR, UNDECIDED, at_the_floor,
                                              non_inferiority, superiority)

    assert superiority((0.01, 0.2)) == SUPERIOR and superiority((-0.2, -0.01)) == INFERIOR
    assert superiority((-0.01, 0.2)) == UNDECIDED
    assert non_inferiority((-0.04, 0.04), 0.05) == NON_INFERIOR  # could be 4 points worse: within 5
    assert non_inferiority((-0.064, 0.064), 0.05) == UNDECIDED  # could be 6.4 points worse
    assert non_inferiority((-0.2, -0.06), 0.05) == INFERIOR
    with pytest.raises(ValueError):
        non_inferiority((0.0, 0.1), 0.0)
    assert at_the_floor(1, 2) and at_the_floor(0, 0) and at_the_floor(5, 0)  # 5 discordant: p = 0.0625
    assert not at_the_floor(6, 0) and not at_the_floor(4, 11)  # 6 all one way: p = 0.031
