"""Self-checks for the exercises of notebook 01 (RoPE and θ).

Each ``check_*`` function runs the student's function on a few inputs, compares it with
``minillama.rope`` and prints ✅ right, 🟡 close or ❌ wrong with the reason, returning True
only when right. :func:`check` is the shared comparison the others use.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from minillama.rope import RopeScaling, apply_rope, apply_rope_interleaved, inv_frequencies, rope_cos_sin, wavelengths


def _as_tensor(value) -> torch.Tensor | None:
    if value is None:
        return None
    try:
        return torch.as_tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        return None


def check(name: str, got, expected, rtol: float = 1e-5, atol: float = 1e-6, hint: str = "") -> bool:
    """Compare ``got`` with ``expected`` (numbers, lists or tensors) and say how they differ.

    ✅ right: within ``rtol``/``atol``. 🟡 close: within 100× that (rounding, float32 vs
    float64, an off-by-a-little constant). ❌ wrong: anything else, with the largest error
    and where it is. Returns True only for ✅.
    """
    g, e = _as_tensor(got), _as_tensor(expected)
    if g is None:
        print(f"❌ {name}: wrong — got {got!r}, which is not a number or tensor (not implemented yet?)")
        return False
    if g.shape != e.shape:
        print(f"❌ {name}: wrong — shape {tuple(g.shape)}, expected {tuple(e.shape)}")
        return False
    if not torch.isfinite(g).all():
        print(f"❌ {name}: wrong — contains NaN or inf")
        return False
    err = (g - e).abs()
    allowed = atol + rtol * e.abs()
    if bool((err <= allowed).all()):
        print(f"✅ {name}: right")
        return True
    worst = int((err - allowed).flatten().argmax())
    where = f" at index {tuple(int(i) for i in torch.unravel_index(torch.tensor(worst), e.shape))}" if e.dim() else ""
    detail = (f"largest error {err.flatten()[worst].item():.3g}{where} "
              f"(got {g.flatten()[worst].item():.6g}, expected {e.flatten()[worst].item():.6g})")
    if bool((err <= 100 * allowed).all()):
        print(f"🟡 {name}: close but not within tolerance — {detail}. Rounding or a float32 step? {hint}".rstrip())
    else:
        print(f"❌ {name}: wrong — {detail}. {hint}".rstrip())
    return False


def check_apply_rope(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]) -> bool:
    """``fn(x, cos, sin)`` rotates ``x [B, H, T, head_dim]`` with the half-split pairing."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 10, 16, generator=g)
    positions = torch.arange(10) * 5
    inv_freq, _ = inv_frequencies(16, 10_000.0)
    cos, sin = rope_cos_sin(positions, inv_freq)
    expected = apply_rope(x, cos, sin)
    try:
        got = fn(x.clone(), cos, sin)
    except Exception as exc:  # the student's code: report, don't crash the notebook
        print(f"❌ apply_rope: wrong — it raised {type(exc).__name__}: {exc}")
        return False
    hint = ""
    gt = _as_tensor(got)
    if gt is not None and gt.shape == expected.shape:
        if torch.allclose(gt.float(), apply_rope_interleaved(x, positions, inv_freq), atol=1e-5):
            hint = "You paired channels (2i, 2i+1) as Meta does; minillama pairs i with i + d/2 (rotate_half)."
        elif torch.allclose(gt.float(), x * cos - torch.cat([-x[..., 8:], x[..., :8]], -1) * sin, atol=1e-5):
            hint = "You rotate the wrong way: rotate_half(x1, x2) must be (-x2, x1), and x*cos + rotate_half(x)*sin."
        elif torch.allclose(gt.float(), x, atol=1e-6):
            hint = "Nothing was rotated: the output equals the input."
    return check("apply_rope", got, expected, rtol=1e-5, atol=1e-5, hint=hint)


def check_longest_wavelength(fn: Callable[[int, float], float]) -> bool:
    """``fn(head_dim, theta)`` returns the longest wavelength in tokens."""
    cases = [(128, 1e4), (128, 1e6), (64, 5e5), (16, 1e4)]
    try:
        got = [float(fn(d, theta)) for d, theta in cases]
    except Exception as exc:
        print(f"❌ longest wavelength: wrong — it raised {type(exc).__name__}: {exc}")
        return False
    expected = [wavelengths(d, theta).max().item() for d, theta in cases]
    hint = ""
    if all(math.isclose(gv, ev / (2 * math.pi), rel_tol=1e-3) for gv, ev in zip(got, expected)):
        hint = "That is 1/inv_freq, in radians per token; a full turn takes 2π radians."
    elif all(math.isclose(gv, 2 * math.pi * theta, rel_tol=1e-3) for gv, (_, theta) in zip(got, cases)):
        hint = "The slowest channel is i = d/2 − 1, so its exponent is (d−2)/d, not 1."
    return check("longest wavelength", got, expected, rtol=1e-4, atol=0, hint=hint)


def check_yarn_interpolated_channels(fn: Callable[[int, float, int, float], list[int]]) -> bool:
    """``fn(head_dim, theta, original_len, factor)`` returns the channel-pair indices that YaRN
    interpolates fully (divides by the factor), with beta_fast=32, beta_slow=1."""
    cases = [(128, 1e4, 4096, 8.0), (128, 1e6, 16384, 4.0), (64, 1e4, 2048, 2.0)]
    all_right = True
    for d, theta, L, s in cases:
        base, _ = inv_frequencies(d, theta)
        yarn, _ = inv_frequencies(d, theta, RopeScaling("yarn", s, L))
        expected = torch.nonzero(torch.isclose(yarn, base / s, rtol=1e-6)).flatten().tolist()
        kept = torch.nonzero(torch.isclose(yarn, base, rtol=1e-6)).flatten().tolist()
        try:
            got = sorted(int(i) for i in fn(d, theta, L, s))
        except Exception as exc:
            print(f"❌ YaRN channels (d={d}, θ={theta:g}, L={L}): wrong — it raised {type(exc).__name__}: {exc}")
            return False
        name = f"YaRN interpolated channels (d={d}, θ={theta:g}, L={L})"
        if got == expected:
            print(f"✅ {name}: right ({len(got)} of {d // 2} channels, from {expected[0] if expected else '-'})")
            continue
        all_right = False
        if got == kept:
            print(f"❌ {name}: wrong — these are the channels YaRN keeps (more than beta_fast turns over L); "
                  "it interpolates the slow ones, which turn less than beta_slow times.")
        elif got and expected and abs(len(got) - len(expected)) <= 2 and set(got) & set(expected):
            print(f"🟡 {name}: close — got {len(got)} channels from {got[0]}, expected {len(expected)} from "
                  f"{expected[0]}. Check the rounding: the ramp's upper end is ceil() of the channel index.")
        else:
            print(f"❌ {name}: wrong — got {got[:6]}{'…' if len(got) > 6 else ''}, expected "
                  f"{expected[:6]}{'…' if len(expected) > 6 else ''}. A channel turns L·inv_freq/(2π) times over L.")
    return all_right
