"""Self-checks for the exercises of notebook 04 (long context).

Each ``check_*`` runs the student's function on a few inputs, compares it with
``minillama.long_context.experiment`` / ``minillama.rope`` and prints ✅ right, 🟡 close or ❌ wrong with
the reason, returning True only when right.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from minillama.long_context import naive_attention_scores_mib, ppl_by_context
from minillama.rope import wavelengths


def _verdict(name: str, got, expected: float, rtol: float = 1e-4, close_if: Callable[[float], str | None] = None) -> bool:
    try:
        g = float(got)
    except (TypeError, ValueError):
        print(f"❌ {name}: wrong — got {got!r}, not a number (not implemented yet?)")
        return False
    if not math.isfinite(g):
        print(f"❌ {name}: wrong — got {g}, not finite")
        return False
    if math.isclose(g, expected, rel_tol=rtol, abs_tol=1e-9):
        print(f"✅ {name}: right ({g:.6g})")
        return True
    reason = close_if(g) if close_if else None
    if reason:
        print(f"🟡 {name}: close — got {g:.6g}, expected {expected:.6g}. {reason}")
    else:
        print(f"❌ {name}: wrong — got {g:.6g}, expected {expected:.6g}")
    return False


def _call(name: str, fn, *args):
    try:
        return fn(*args), True
    except Exception as exc:  # the student's code: report, don't crash the notebook
        print(f"❌ {name}: wrong — it raised {type(exc).__name__}: {exc}")
        return None, False


def check_ppl_at_context(fn: Callable[[torch.Tensor, int], float]) -> bool:
    """``fn(losses [N, T_max-1], T)`` is the perplexity of T-token windows, read off the
    per-position losses of longer windows (the model is causal)."""
    g = torch.Generator().manual_seed(0)
    losses = torch.rand(4, 63, generator=g) * 3 + torch.linspace(2, 0, 63)  # a falling curve
    ok = True
    for T in (8, 32, 64):
        expected = ppl_by_context(losses, [T])[T]
        got, ran = _call("ppl_at_context", fn, losses.clone(), T)
        if not ran:
            return False

        def why(v, T=T):
            if math.isclose(v, math.exp(losses[:, :T].mean().item()), rel_tol=1e-4):
                return f"You averaged T={T} positions; a T-token window predicts only T-1 tokens."
            if math.isclose(v, losses[:, : T - 1].mean().item(), rel_tol=1e-4):
                return "That is the mean loss; perplexity is its exponential."
            if math.isclose(v, losses[:, : T - 1].exp().mean().item(), rel_tol=1e-4):
                return "Average the losses first, then exponentiate (the mean of exps is larger)."
            return None

        ok &= _verdict(f"ppl_at_context(T={T})", got, expected, close_if=why)
    return ok


def check_score_memory(fn: Callable[[int, int, int], float]) -> bool:
    """``fn(n_heads, T, dtype_bytes)``: MiB of one layer's explicit causal score matrix."""
    ok = True
    for n_heads, T, nbytes in ((8, 4096, 4), (32, 16384, 2)):
        expected = naive_attention_scores_mib(type("C", (), {"n_heads": n_heads})(), T, nbytes)
        got, ran = _call("score_memory", fn, n_heads, T, nbytes)
        if not ran:
            return False

        def why(v, T=T, expected=expected):
            if math.isclose(v, expected / 2, rel_tol=1e-3):
                return "Half: the causal mask zeroes half the matrix, but the kernel still stores all of it."
            if math.isclose(v, expected * 2**20 / 1e6, rel_tol=1e-3):
                return "MB instead of MiB: divide by 2**20 bytes."
            if math.isclose(v, expected / nbytes, rel_tol=1e-3):
                return "Multiply by the bytes per element."
            return None

        ok &= _verdict(f"score_memory(heads={n_heads}, T={T}, bytes={nbytes})", got, expected, close_if=why)
    return ok


def check_slowest_turns(fn: Callable[[int, float, int], float]) -> bool:
    """``fn(head_dim, theta, n_tokens)``: how many full turns the slowest RoPE channel makes
    over ``n_tokens`` positions (below 1, the model never saw that channel go round)."""
    ok = True
    for head_dim, theta, n in ((32, 1e4, 1024), (32, 1e6, 1024), (128, 1e6, 16384)):
        expected = n / wavelengths(head_dim, theta)[-1].item()
        got, ran = _call("slowest_turns", fn, head_dim, theta, n)
        if not ran:
            return False

        def why(v, expected=expected, head_dim=head_dim, theta=theta, n=n):
            if math.isclose(v, expected * 2 * math.pi, rel_tol=1e-3):
                return "That is the angle in radians; a turn is 2π."
            if math.isclose(v, n * theta ** -1 / (2 * math.pi), rel_tol=1e-3):
                return "The slowest pair is i = d/2 - 1, with exponent 2i/d = 1 - 2/d, not 1."
            return None

        ok &= _verdict(f"slowest_turns(d={head_dim}, θ={theta:.0e}, n={n})", got, expected, rtol=1e-3, close_if=why)
    return ok
