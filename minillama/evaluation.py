"""pass@k, confidence intervals and the sample-then-execute loop of the paper's Table 2.

The model is any callable with the signature of :class:`Generate`, so this module does not
depend on how a model is built or sampled::

    generate(prompts, *, temperature, top_p, max_new_tokens, stop) -> list[str]

Greedy pass@1 is one sample at temperature 0; sampled pass@k (k = 10, 100) draws n samples
per task at T = 0.8, top-p 0.95 (the paper: n = 200) and uses the unbiased estimator of
Chen et al. (2021): ``pass@k = 1 - C(n-c, k) / C(n, k)``, computed as a product so that
C(200, 100) never has to exist as a number.
"""

from __future__ import annotations

import math
from collections import defaultdict
from statistics import NormalDist
from typing import Callable, Iterable, Protocol, Sequence

import numpy as np

from minillama.benchmarks import HUMANEVAL_STOP, truncate
from minillama.execution import evaluate_many, humaneval_program


class Generate(Protocol):
    def __call__(self, prompts: list[str], *, temperature: float, top_p: float,
                 max_new_tokens: int, stop: list[str]) -> list[str]: ...


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


# --- the loop: sample, execute, score ---------------------------------------------------

def generate_samples(problems: dict[str, dict], generate: Generate, *, n: int = 1,
                     temperature: float = 0.0, top_p: float = 1.0, max_new_tokens: int = 384,
                     stop: list[str] = HUMANEVAL_STOP, batch_size: int = 16,
                     prompt_fn: Callable[[dict], str] = lambda p: p["prompt"]) -> list[dict]:
    """``n`` completions per problem as ``{"task_id", "completion"}`` rows, cut at ``stop``
    again here (a generator may return text past its stop sequence)."""
    rows = [(tid, prompt_fn(p)) for tid, p in problems.items() for _ in range(n)]
    samples = []
    for i in range(0, len(rows), batch_size):
        batch = rows[i:i + batch_size]
        outs = generate([prompt for _, prompt in batch], temperature=temperature, top_p=top_p,
                        max_new_tokens=max_new_tokens, stop=list(stop))
        samples += [{"task_id": tid, "completion": truncate(o, stop)} for (tid, _), o in zip(batch, outs)]
    return samples


def score_samples(problems: dict[str, dict], samples: Iterable[dict], *, ks: Sequence[int] = (1, 10, 100),
                  timeout: float = 3.0, n_workers: int | None = None, program_fn=humaneval_program) -> dict:
    """Execute every sample and compute pass@k for each k that every task has samples for.

    Returns ``{"pass@k": float, ..., "n": {task: n}, "correct": {task: c}, "results": [...]}``."""
    samples = list(samples)
    results = evaluate_many([(problems[s["task_id"]], s["completion"]) for s in samples],
                            timeout=timeout, n_workers=n_workers, program_fn=program_fn)
    total, correct = defaultdict(int), defaultdict(int)
    for r in results:
        total[r["task_id"]] += 1
        correct[r["task_id"]] += bool(r["passed"])
    tasks = list(total)
    n, c = [total[t] for t in tasks], [correct[t] for t in tasks]
    out = {f"pass@{k}": float(estimate_pass_at_k(n, c, k).mean()) for k in ks if min(n) >= k}
    out.update(n=dict(total), correct=dict(correct), results=results)
    return out


def evaluate_generator(problems: dict[str, dict], generate: Generate, *, mode: str = "greedy",
                       n: int = 200, ks: Sequence[int] = (1, 10, 100), max_new_tokens: int = 384,
                       timeout: float = 3.0, n_workers: int | None = None, **kw) -> dict:
    """The paper's protocol: ``mode="greedy"`` gives pass@1 from one greedy sample per task;
    ``mode="sampled"`` draws ``n`` samples at T = 0.8, top-p 0.95 and reports pass@k."""
    if mode == "greedy":
        samples = generate_samples(problems, generate, n=1, temperature=0.0, top_p=1.0,
                                   max_new_tokens=max_new_tokens, **kw)
        ks = (1,)
    elif mode == "sampled":
        samples = generate_samples(problems, generate, n=n, temperature=0.8, top_p=0.95,
                                   max_new_tokens=max_new_tokens, **kw)
    else:
        raise ValueError(f"mode must be 'greedy' or 'sampled', not {mode!r}")
    scores = score_samples(problems, samples, ks=ks, timeout=timeout, n_workers=n_workers)
    scores["samples"] = samples
    return scores
