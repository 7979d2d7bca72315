"""The learning-rate schedule and the optimizer, shared by every training loop of the course
(pretraining, long-context fine-tuning, instruction fine-tuning).

Code Llama (PAPER §2.6): AdamW with β = (0.9, 0.95) and a cosine schedule with linear
warm-up ending at peak/30. The paper states neither weight decay nor clipping; the course
uses 0.1 and 1.0, Llama 2's values (Llama 2 itself decays to 10 % of the peak, not 1/30).
"""

from __future__ import annotations

import math

import torch


def lr_at(step: int, steps: int, peak: float, warmup: int, min_ratio: float = 1 / 30) -> float:
    """Learning rate of optimizer step ``step`` (0-based) of ``steps``: linear warm-up over
    ``warmup`` steps to ``peak``, then a cosine that lands on ``peak * min_ratio`` at the last step."""
    min_lr = peak * min_ratio
    if step < warmup:
        return peak * (step + 1) / warmup
    decay_steps = max(steps - warmup - 1, 1)  # the last step (steps-1) lands on min_lr
    progress = min((step - warmup) / decay_steps, 1.0)
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (peak - min_lr)


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Decay the 2-D weights (attention/FFN matrices, embeddings, head), not the 1-D norm gains.

    Decaying a gain pulls it towards 0, i.e. towards switching the layer's input off, which is
    not the "small weights" prior decay is for (the common Llama / nanoGPT grouping)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float = 0.1,
                   betas: tuple[float, float] = (0.9, 0.95), fused: bool | None = None) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups`; the fused kernel on CUDA (``fused=None``), or as asked
    (it exists on the CPU too, which is how the tests run the gpu path)."""
    if fused is None:
        fused = next(model.parameters()).device.type == "cuda" or None
    return torch.optim.AdamW(param_groups(model, weight_decay), lr=lr, betas=tuple(betas), fused=fused)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
