"""Checks for the exercises of notebook 01 (RoPE and θ), against :mod:`minillama.rope`."""

from __future__ import annotations

import math

import torch

from minillama.exercises.verdict import CLOSE, RIGHT, WRONG, call, cases_rng, compare, exercise, grade, shown
from minillama.rope import RopeScaling, apply_rope, apply_rope_interleaved, inv_frequencies, rope_cos_sin, wavelengths


def _log_uniform(rng, lo: float, hi: float) -> float:
    return 10 ** rng.uniform(math.log10(lo), math.log10(hi))


@exercise("01.1")
def check_apply_rope(fn) -> tuple[str, str]:
    """``fn(x, cos, sin)`` rotates ``x [B, H, T, head_dim]`` with the half-split pairing."""
    rng = cases_rng("01.1")
    cases = [((2, 3, 10, 16), list(range(0, 50, 5)), 1e4)]  # fixed
    for _ in range(3):  # random shapes, positions and θ
        T = rng.randint(1, 12)
        shape = (rng.randint(1, 3), rng.randint(1, 4), T, rng.choice([4, 8, 32, 64]))
        cases.append((shape, sorted(rng.sample(range(5000), T)), _log_uniform(rng, 1e3, 1e6)))

    def judge(case):
        shape, positions, theta = case
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(len(positions)))
        positions = torch.tensor(positions)
        inv_freq, _ = inv_frequencies(shape[-1], theta)
        cos, sin = rope_cos_sin(positions, inv_freq)
        want = apply_rope(x, cos, sin)
        got = call(fn, x.clone(), cos.clone(), sin.clone())
        status, why = compare(got, want, rtol=1e-5, atol=1e-5)
        if status == RIGHT or not isinstance(got, torch.Tensor) or got.shape != want.shape:
            return status, why and f"x of shape {shape}, θ = {theta:.3g}: {why}"
        half = shape[-1] // 2
        got = got.float()
        if torch.allclose(got, apply_rope_interleaved(x, positions, inv_freq), atol=1e-5):
            hint = "you paired channels (2i, 2i+1) as Meta does; minillama pairs i with i + d/2 (rotate_half)"
        elif torch.allclose(got, x * cos - torch.cat([-x[..., half:], x[..., :half]], -1) * sin, atol=1e-5):
            hint = "you rotate the wrong way: rotate_half(x1, x2) is (-x2, x1), then x·cos + rotate_half(x)·sin"
        elif torch.allclose(got, x, atol=1e-6):
            hint = "nothing was rotated: the output equals the input"
        else:
            hint = why
        return status, f"x of shape {shape}, θ = {theta:.3g}: {hint}"

    return grade(cases, judge, f"matches apply_rope on {len(cases)} inputs of different shapes, positions and θ")


@exercise("01.2")
def check_longest_wavelength(fn) -> tuple[str, str]:
    """``fn(head_dim, theta)`` returns the longest RoPE wavelength in tokens."""
    rng = cases_rng("01.2")
    cases = [(128, 1e4), (128, 1e6), (64, 5e5), (16, 1e4)]
    cases += [(2 * rng.randint(4, 128), _log_uniform(rng, 1e3, 1e7)) for _ in range(4)]

    def judge(case):
        d, theta = case
        want = wavelengths(d, theta).max().item()
        got = call(fn, d, theta)
        status, why = compare(got, want, rtol=1e-4)
        if status != WRONG or not isinstance(got, (int, float)):
            return status, why and f"head_dim {d}, θ = {theta:.3g}: {why}"
        if math.isclose(got, want / (2 * math.pi), rel_tol=1e-3):
            why = "that is 1/inv_freq, tokens per radian; a full turn takes 2π radians"
        elif math.isclose(got, 2 * math.pi * theta, rel_tol=1e-3):
            why = "the slowest pair is i = d/2 − 1, so its exponent is (d−2)/d, not 1"
        return WRONG, f"head_dim {d}, θ = {theta:.3g}: {why}"

    return grade(cases, judge, f"2π·θ^((d−2)/d) on {len(cases)} (head_dim, θ) pairs")


def _yarn_channels(d: int, theta: float, L: int, s: float) -> tuple[list[int], list[int]]:
    """(fully interpolated, kept) channel pairs of minillama's YaRN (β_fast = 32, β_slow = 1)."""
    base, _ = inv_frequencies(d, theta)
    yarn, _ = inv_frequencies(d, theta, RopeScaling("yarn", s, L))
    interpolated = torch.nonzero(torch.isclose(yarn, base / s, rtol=1e-6)).flatten().tolist()
    kept = torch.nonzero(torch.isclose(yarn, base, rtol=1e-6)).flatten().tolist()
    return interpolated, kept


@exercise("01.3")
def check_yarn_interpolated_channels(fn) -> tuple[str, str]:
    """``fn(head_dim, theta, original_len, factor)``: indices of the channel pairs YaRN divides
    by the factor (those turning less than β_slow = 1 times over ``original_len``)."""
    rng = cases_rng("01.3")
    cases = [(128, 1e4, 4096, 8.0), (128, 1e6, 16384, 4.0), (64, 1e4, 2048, 2.0)]
    while len(cases) < 7:  # random cases where some channels are interpolated and some are not
        case = (rng.choice([32, 64, 128]), _log_uniform(rng, 3e3, 3e6), rng.choice([512, 2048, 4096, 16384]),
                float(rng.choice([2, 4, 8])))
        if 0 < len(_yarn_channels(*case)[0]) < case[0] // 2:
            cases.append(case)

    def judge(case):
        d, theta, L, s = case
        want, kept = _yarn_channels(d, theta, L, s)
        got = call(fn, d, theta, L, s)
        if isinstance(got, (str, bytes)) or not hasattr(got, "__iter__"):
            return WRONG, f"got {shown(got)}, expected a list of channel-pair indices"
        got = sorted(int(i) for i in got)
        name = f"head_dim {d}, θ = {theta:.3g}, L = {L}"
        if got == want:
            return RIGHT, ""
        if got == kept:
            return WRONG, (f"{name}: these are the channels YaRN keeps (more than β_fast turns over L); it "
                           "interpolates the slow ones, which turn less than β_slow times")
        if got and abs(len(got) - len(want)) <= 1 and set(got) & set(want):
            return CLOSE, (f"{name}: {len(got)} channels from {got[0]}, expected {len(want)} from {want[0]}; "
                           "check the rounding: the first fully interpolated pair is ceil() of the boundary")
        return WRONG, (f"{name}: got {got[:6]}{'…' if len(got) > 6 else ''}, expected {want[:6]}"
                       f"{'…' if len(want) > 6 else ''}; pair i turns L·θ^(−2i/d)/(2π) times over L")

    return grade(cases, judge, f"the same channel pairs as minillama's YaRN on {len(cases)} settings")
