"""Checks for the exercises of notebook 04 (long context), against :mod:`minillama.long_context`
and :mod:`minillama.rope`."""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch

from minillama.exercises.verdict import (CLOSE, RIGHT, WRONG, call, cases_rng, compare, exercise, grade, number,
                                         shown)
from minillama.long_context import naive_attention_scores_mib, ppl_by_context
from minillama.rope import wavelengths


def _judge_number(name: str, raw, want: float, rtol: float, near_misses: list[tuple[float, str]]):
    """Right within ``rtol``; a known mistake (``(value it gives, why)``) is named; else wrong."""
    got = number(raw)
    if got is None:
        return WRONG, f"{name}: got {shown(raw)}, expected a number"
    status, why = compare(got, want, rtol=rtol)
    if status == RIGHT:
        return status, why
    for value, mistake in near_misses:
        if math.isclose(got, value, rel_tol=1e-3):
            return (CLOSE if status == CLOSE else WRONG), f"{name}: {mistake}"
    return status, f"{name}: {why}"


@exercise("04.1")
def check_ppl_at_context(fn) -> tuple[str, str]:
    """``fn(losses [N, T_max - 1], T)``: perplexity of T-token windows, read off the per-position
    losses of longer windows (the model is causal)."""
    rng = cases_rng("04.1")
    g = torch.Generator().manual_seed(0)
    falling = torch.rand(4, 63, generator=g) * 3 + torch.linspace(2, 0, 63)  # loss falls with position
    cases = [(falling, T) for T in (8, 32, 64)]
    for _ in range(4):
        t_max = rng.randint(10, 80)
        losses = torch.rand(rng.randint(1, 5), t_max - 1, generator=g) * rng.uniform(0.5, 4)
        cases.append((losses, rng.randint(2, t_max)))

    def judge(case):
        losses, T = case
        want = ppl_by_context(losses, [T])[T]
        near = [(math.exp(losses[:, :T].mean().item()),
                 f"you averaged {T} positions; a {T}-token window predicts only {T - 1} tokens"),
                (losses[:, :T - 1].mean().item(), "that is the mean loss; perplexity is its exponential"),
                (losses[:, :T - 1].exp().mean().item(), "average the losses first, then exponentiate")]
        return _judge_number(f"T = {T}, losses of shape {tuple(losses.shape)}", call(fn, losses.clone(), T), want,
                             1e-4, near)

    return grade(cases, judge, f"exp(mean of the first T−1 losses) on {len(cases)} windows")


@exercise("04.2")
def check_score_memory(fn) -> tuple[str, str]:
    """``fn(n_heads, T, dtype_bytes)``: MiB of one layer's explicit causal score matrix."""
    rng = cases_rng("04.2")
    cases = [(8, 4096, 4), (32, 16384, 2)]
    cases += [(rng.randint(1, 64), rng.randint(100, 40_000), rng.choice([1, 2, 4])) for _ in range(4)]

    def judge(case):
        n_heads, T, nbytes = case
        want = naive_attention_scores_mib(SimpleNamespace(n_heads=n_heads), T, nbytes)
        near = [(want / 2, "half: the causal mask hides half the matrix, but the kernel stores all of it"),
                (want * 2**20 / 1e6, "MB instead of MiB: divide by 2**20 bytes"),
                (want / nbytes, "multiply by the bytes per element")]
        return _judge_number(f"{n_heads} heads, T = {T}, {nbytes} bytes", call(fn, n_heads, T, nbytes), want, 1e-4,
                             near)

    return grade(cases, judge, f"heads × T² × bytes / 2²⁰ on {len(cases)} settings")


@exercise("04.3")
def check_slowest_turns(fn) -> tuple[str, str]:
    """``fn(head_dim, theta, n_tokens)``: full turns of the slowest RoPE channel pair over ``n_tokens``."""
    rng = cases_rng("04.3")
    cases = [(32, 1e4, 1024), (32, 1e6, 1024), (128, 1e6, 16384)]
    cases += [(2 * rng.randint(4, 64), 10 ** rng.uniform(3, 7), rng.randint(100, 10**6)) for _ in range(4)]

    def judge(case):
        d, theta, n = case
        want = n / wavelengths(d, theta)[-1].item()
        near = [(want * 2 * math.pi, "that is the angle in radians; a turn is 2π"),
                (n / theta / (2 * math.pi), "the slowest pair is i = d/2 − 1, with exponent 2i/d = 1 − 2/d, not 1")]
        return _judge_number(f"head_dim {d}, θ = {theta:.3g}, {n} tokens", call(fn, d, theta, n), want, 1e-4, near)

    return grade(cases, judge, f"n · θ^(−(d−2)/d) / 2π on {len(cases)} settings")
