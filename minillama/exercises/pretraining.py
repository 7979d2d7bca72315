"""Self-checks for the exercises of notebook 03 (pretraining).

Each check prints and returns ``"right"``, ``"close"`` or ``"wrong"`` with the reason, so a
student learns what was off rather than only that something was.
"""

from __future__ import annotations

import math

from minillama.model import ModelConfig, flops_per_token
from minillama.training.trainer import TrainConfig, lr_at


def _say(verdict: str, why: str) -> str:
    print(f"{verdict}: {why}")
    return verdict


def check_schedule(my_lr, cfg: TrainConfig | None = None) -> str:
    """Exercise 1: write ``my_lr(step, peak, warmup, total)`` = linear warm-up, cosine to peak/30."""
    cfg = cfg or TrainConfig(steps=200, lr=1e-3, warmup=20)
    steps = [0, 5, cfg.warmup - 1, cfg.warmup, 60, 110, 150, cfg.steps - 1]
    ref = [lr_at(s, cfg) for s in steps]
    got = [float(my_lr(s, cfg.lr, cfg.warmup, cfg.steps)) for s in steps]
    if all(math.isclose(a, b, rel_tol=1e-6) for a, b in zip(got, ref)):
        return _say("right", "warm-up, cosine and the peak/30 floor all match lr_at")
    if abs(got[-1] - cfg.lr / 30) > 0.05 * cfg.lr / 30 and abs(got[-1]) < 0.2 * cfg.lr / 30:
        return _say("wrong", f"at the last step you give {got[-1]:.2e}; Code Llama decays to peak/30 = "
                             f"{cfg.lr / 30:.2e}, not to 0")
    if all(math.isclose(a, b, rel_tol=0.05) for a, b in zip(got[3:], ref[3:])):
        return _say("close", "the cosine part matches; the warm-up is off (lr_at reaches the peak at "
                             "step warmup-1: (step+1)/warmup)")
    if all(math.isclose(a, b, rel_tol=0.05) for a, b in zip(got, ref)):
        return _say("close", "within 5% everywhere; check an off-by-one in the cosine's progress")
    worst = max(range(len(steps)), key=lambda i: abs(got[i] - ref[i]) / ref[i])
    return _say("wrong", f"at step {steps[worst]} you give {got[worst]:.2e}, expected {ref[worst]:.2e}")


def check_tokens_seen(answer: float, steps: int, batch_size: int, seq_len: int) -> str:
    """Exercise 2: how many tokens does the model train on (count targets, not rows)?"""
    ref = steps * batch_size * seq_len
    if math.isclose(answer, ref, rel_tol=1e-9):
        return _say("right", f"{ref:,} target tokens: steps × batch × seq_len")
    if math.isclose(answer, steps * batch_size * (seq_len + 1), rel_tol=1e-9):
        return _say("close", "a row has seq_len+1 tokens, but only seq_len of them are predicted")
    if math.isclose(answer, ref, rel_tol=0.05):
        return _say("close", f"within 5% of {ref:,}")
    return _say("wrong", f"expected {ref:,} = {steps} steps × {batch_size} sequences × {seq_len} targets")


def check_training_flops(answer: float, cfg: ModelConfig, seq_len: int, tokens: float) -> str:
    """Exercise 3: total training FLOPs (6·N per token plus attention, ``flops_per_token``)."""
    ref = flops_per_token(cfg, seq_len) * tokens
    ratio = answer / ref
    if math.isclose(ratio, 1.0, rel_tol=0.02):
        return _say("right", f"{ref:.3e} FLOPs")
    if 0.8 < ratio < 1.25:
        return _say("close", f"{ratio:.2f}× the reference {ref:.3e}: did you count the embedding lookup as "
                             "a matmul, or leave out the attention term 6·layers·seq·dim?")
    if math.isclose(ratio, 1 / 3, rel_tol=0.1):
        return _say("wrong", "that is the forward pass only (2·N); backward costs twice the forward")
    return _say("wrong", f"{ratio:.2f}× the reference {ref:.3e}; use 6 × matmul parameters per token")


def check_fim_rule(answer: str) -> str:
    """Exercise 4: which documents does Code Llama turn into FIM examples? Answer in words."""
    a = answer.lower()
    mentions_fit = any(w in a for w in ("fit", "whole", "not cut", "one context", "single context"))
    mentions_rate = "0.9" in a or "90" in a
    if mentions_fit and mentions_rate:
        return _say("right", "documents not cut across contexts, each with probability 0.9")
    if mentions_fit:
        return _say("close", "the right documents, but FIM applies to each with probability 0.9, not always")
    if mentions_rate:
        return _say("close", "rate 0.9, yes, but only for documents not cut across model contexts")
    return _say("wrong", "the paper: documents not cut across contexts get FIM with probability 0.9")
