"""Perplexity against context length, on held-out long documents.

* **Held-out long documents.** Few test-split files reach ``16L`` tokens, so the files of one
  top-level package (``asyncio/…``, ``email/…``) are concatenated in path order: related code
  that refers back to itself, the nearest thing to a repository the stdlib offers.
* **Fixed targets.** For each context length T we score the same tokens, the last L of each
  ``16L`` window, given the T tokens before them (:func:`context_sweep`): only the amount of
  context changes. The ``16L`` forward also gives the per-position loss curve. (The causal
  prefix trick, :func:`ppl_by_context`, is cheaper but scores different tokens at each T.)
* **Paired differences.** All methods see the same windows; a difference counts only when the
  95 % t interval of the per-window difference excludes 0 (:func:`paired_difference`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Sequence

import torch
import torch.nn.functional as F

from minillama.model import Transformer


def package_of(path: str) -> str:
    """Top-level package of a stdlib path; a top-level module is its own package."""
    return path.split("/", 1)[0] if "/" in path else path


def package_texts(docs) -> dict[str, str]:
    """Concatenate the files of each top-level package, in path order."""
    groups: dict[str, list] = defaultdict(list)
    for d in sorted(docs, key=lambda d: d.path):
        groups[package_of(d.path)].append(d.text)
    return {name: "\n\n".join(texts) for name, texts in groups.items()}


def long_documents(corpus, tokenizer, split: str = "test", min_tokens: int = 0) -> dict[str, torch.Tensor]:
    """Token ids (BOS first) of each package of ``split`` with at least ``min_tokens`` tokens."""
    texts = package_texts(corpus.docs(split))
    names = sorted(texts)
    ids = tokenizer.encode_batch([texts[n] for n in names], bos=True)
    return {n: torch.tensor(i, dtype=torch.long) for n, i in zip(names, ids) if len(i) >= min_tokens}


def eval_windows(docs: dict[str, torch.Tensor], seq_len: int, max_windows: int) -> torch.Tensor:
    """``[N, seq_len]`` non-overlapping windows, taken round-robin over documents so that a
    few windows still cover several packages."""
    per_doc = [[doc[i: i + seq_len] for i in range(0, len(doc) - seq_len + 1, seq_len)]
               for doc in docs.values()]
    out, k = [], 0
    while len(out) < max_windows and any(k < len(w) for w in per_doc):
        out += [w[k] for w in per_doc if k < len(w)]
        k += 1
    if not out:
        raise ValueError(f"no held-out document reaches {seq_len} tokens; use a shorter length")
    return torch.stack(out[:max_windows])


@torch.no_grad()
def token_losses(model: Transformer, windows: torch.Tensor, batch_size: int = 1) -> torch.Tensor:
    """Cross-entropy ``[N, T-1]`` of predicting token t+1 from tokens 0..t of each window.

    Batch size 1 by default: at 16L the logits alone are T × vocab floats per row. The
    windows go to the model's device; the losses come back on the CPU.
    """
    model.eval()
    device = model.tok_embeddings.weight.device
    out = []
    for i in range(0, len(windows), batch_size):
        w = windows[i: i + batch_size].to(device)
        logits = model(w[:, :-1])
        out.append(F.cross_entropy(logits.float().transpose(1, 2), w[:, 1:], reduction="none").cpu())
    return torch.cat(out)


def perplexity(model: Transformer, windows: torch.Tensor, batch_size: int = 1) -> float:
    """exp(mean next-token loss) over all positions of the windows."""
    return math.exp(token_losses(model, windows, batch_size).mean().item())


def ppl_by_context(losses: torch.Tensor, lengths: Sequence[int]) -> dict[int, float]:
    """Perplexity of T-token windows for each T, from the losses of longer windows.

    A T-token window predicts T-1 tokens; by causality they are the first T-1 losses here.
    """
    if max(lengths) > losses.shape[1] + 1:
        raise ValueError(f"losses cover windows of {losses.shape[1] + 1} tokens, asked for {max(lengths)}")
    return {T: math.exp(losses[:, : T - 1].mean().item()) for T in lengths}


@torch.no_grad()
def context_sweep(model: Transformer, windows: torch.Tensor, lengths: Sequence[int], n_targets: int,
                  full_losses: torch.Tensor | None = None) -> dict[int, torch.Tensor]:
    """Mean loss ``[N]`` per window on the same last ``n_targets`` tokens, given T tokens of
    context for each T in ``lengths``: the input is the last T+1 tokens of the window.

    The targets never change, only how much precedes them, so a falling curve means more
    context helps (the first T positions of a window would also change *which* tokens are
    scored: file headers at the start of a window are harder than code in the middle).
    ``full_losses`` (from :func:`token_losses` on the whole windows) saves the longest forward.
    """
    out = {}
    for T in lengths:
        if not n_targets <= T <= windows.shape[1] - 1:
            raise ValueError(f"context {T} must lie between n_targets={n_targets} and the window's "
                             f"{windows.shape[1] - 1} predicted tokens")
        if full_losses is not None and T == windows.shape[1] - 1:
            losses = full_losses
        else:
            losses = token_losses(model, windows[:, -(T + 1):])
        out[T] = losses[:, -n_targets:].mean(dim=1)
    return out


def sweep_ppl(sweep: dict[int, torch.Tensor]) -> dict[int, float]:
    return {T: math.exp(v.mean().item()) for T, v in sweep.items()}


def paired_difference(window_loss_a: torch.Tensor, window_loss_b: torch.Tensor) -> dict:
    """Is method A's perplexity really lower than B's? Both were scored on the same windows,
    so compare window by window: the mean per-window difference in mean loss with its 95 % t
    interval (a handful of windows: ±2 standard errors would be too narrow). ``verdict`` is
    "lower", "higher" or "indistinguishable" (the interval holds 0)."""
    from minillama.evaluation.metrics import paired_t_interval

    d = (window_loss_a - window_loss_b).tolist()
    if len(d) < 2:
        mean = d[0] if d else 0.0
        return {"loss_diff": mean, "se": float("inf"), "ci95": (-math.inf, math.inf), "ppl_ratio": math.exp(mean),
                "verdict": "indistinguishable"}
    t = paired_t_interval(d, [0.0] * len(d))
    lo, hi = t["ci95"]
    verdict = "lower" if hi < 0 else "higher" if lo > 0 else "indistinguishable"
    return {"loss_diff": t["diff"], "se": t["se"], "ci95": (lo, hi), "ppl_ratio": math.exp(t["diff"]),
            "verdict": verdict}


def position_loss(losses: torch.Tensor) -> torch.Tensor:
    """Mean loss at each position ``[T-1]`` over windows."""
    return losses.mean(dim=0)


def log_binned(curve: torch.Tensor, n_bins: int = 40) -> tuple[list[float], list[float]]:
    """Average a per-position curve over log-spaced bins (positions 1..T), for a log-x plot."""
    T = len(curve)
    edges = sorted({int(round(x)) for x in torch.logspace(0, math.log10(T), n_bins + 1).tolist()})
    xs, ys = [], []
    for a, b in zip(edges[:-1], edges[1:]):
        xs.append(math.sqrt(a * b))
        ys.append(curve[a - 1: b - 1].mean().item())
    return xs, ys


def format_ppl_table(ppl: dict[str, dict[int, float]], pretrain_len: int) -> str:
    lengths = sorted(next(iter(ppl.values())))
    head = f"{'method':<18}" + "".join(f"{f'{T // pretrain_len}x ({T})':>14}" if T >= pretrain_len
                                      else f"{T:>14}" for T in lengths)
    lines = [head]
    for key, row in ppl.items():
        lines.append(f"{key:<18}" + "".join(f"{row[T]:>14.2f}" for T in lengths))
    return "\n".join(lines)
