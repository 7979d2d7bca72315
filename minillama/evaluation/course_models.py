"""The course's own models on HumanEval and HumanEval infilling, scored by execution.

Three measurements, all greedy by default and all scored in the sandbox
(:mod:`minillama.execution`):

- :func:`evaluate_humaneval`: left-to-right completion of HumanEval prompts, cut at
  ``HUMANEVAL_STOP`` (greedy pass@1, or sampled pass@k at T = 0.8, top-p 0.95);
- :func:`evaluate_infilling`: HumanEval infilling (single-line / multi-line, from
  :func:`minillama.benchmarks.load_humaneval_infilling`, or random-span from
  :func:`random_span_tasks`) with Code Llama's PSM or SPM prompt, generation until EOT, the
  program ``prompt + middle + suffix + tests`` executed;
- the same with **token healing** (``heal=True``): the prompt's last prefix token is removed
  and the model regenerates it, constrained to tokens consistent with the removed text.
  This is the random-span question the paper raises (prompts that end inside a token) and
  that notebook 02 leaves open.

Generation uses :mod:`minillama.sampling` (one prefill per prompt shared by its samples,
finished rows leave the batch). Healing needs a constrained first step; it is done with plain
forwards over the (short) kept prompt and the batched, cached decoder takes over as soon as
the removed text is covered.

A prompt longer than ``context`` tokens is trimmed: the left of a HumanEval prompt, and for
infilling whole lines from the far ends of prefix and suffix (the text near the hole stays).
Scoring always uses the full, untrimmed task.
"""

from __future__ import annotations

import random
import time
from typing import Callable, Sequence

from minillama.evaluation.benchmarks import load_humaneval, load_humaneval_infilling
from minillama.evaluation.harness import Generate, evaluate_generator
from minillama.evaluation.metrics import wilson_interval
from minillama.execution import evaluate_many
from minillama.fim import cut_at_stop, infilling_prompt
from minillama.healing import heal_prompt, healed_start, model_next_logits, token_boundaries
from minillama.generate import generate, truncate_at_stop, word_start_variants
from minillama.sampling import batch_generator, text_sampler
from minillama.tokenizer import check_model_tokenizer

# (prompts ids, max_new_tokens, stop_ids) -> new ids per prompt (stop token may be included)
BatchGenerate = Callable[[list[list[int]], int, list[int]], list[list[int]]]


# --- HumanEval, left to right ------------------------------------------------------------

def text_generator(model, tok, context: int | None = None) -> Generate:
    """Like :func:`minillama.generate.completion_fn`, but the prompt is trimmed from the left to
    fit ``context`` tokens (the model's ``max_seq_len`` by default) with room for the answer."""
    check_model_tokenizer(model, tok)
    context = context or model.cfg.max_seq_len

    def run(prompts: list[str], *, temperature: float = 0.0, top_p: float = 1.0, max_new_tokens: int = 256,
            stop: Sequence[str] = (), seed: int | None = None) -> list[str]:
        keep = max(1, context - max_new_tokens - 1)
        ids = [[tok.bos_id] + tok.encode(p)[-keep:] for p in prompts]
        stops = word_start_variants(stop)

        def should_stop(_, new):
            text = tok.decode_infilling(new)
            return any(s in text for s in stops)

        outs = generate(model, ids, max_new_tokens, temperature, top_p, stop_ids=[tok.eos_id, tok.eot_id],
                        seed=seed, should_stop=should_stop if stop else None)
        return [truncate_at_stop(tok.decode_infilling(o), stop) for o in outs]

    return run


def _summary(passed: int, total: int, seconds: float) -> dict:
    rate = passed / max(total, 1)
    lo, hi = wilson_interval(passed, total)
    lo, hi = min(lo, rate), max(hi, rate)  # rounding can put a bound a hair past the rate
    return {"pass@1": rate, "passed": passed, "total": total, "ci95": (lo, hi),
            "seconds": round(seconds, 2)}


def evaluate_humaneval(model, tok, problems: dict[str, dict] | None = None, limit: int | None = None,
                       mode: str = "greedy", n: int = 10, ks: Sequence[int] = (1, 5, 10),
                       max_new_tokens: int = 128, context: int | None = None, batch_size: int = 16,
                       timeout: float = 3.0, generate_fn: Generate | None = None) -> dict:
    """HumanEval for a trained model: ``mode="greedy"`` gives pass@1 (with a 95 % Wilson
    interval); ``mode="sampled"`` draws ``n`` samples per problem at T = 0.8, top-p 0.95 and
    reports pass@k for each k <= n. ``limit`` keeps the first ``limit`` problems.
    ``generate_fn`` replaces the model (any :class:`minillama.evaluation.harness.Generate`)."""
    problems = problems or load_humaneval()
    if limit is not None:
        problems = dict(list(problems.items())[:limit])
    gen = generate_fn or text_sampler(model, tok, context)
    t = time.perf_counter()
    rows = batch_size * n if mode == "sampled" else batch_size  # a problem's n samples in one call: one prefill
    scores = evaluate_generator(problems, gen, mode=mode, n=n, ks=[k for k in ks if k <= n],
                                max_new_tokens=max_new_tokens, timeout=timeout, batch_size=rows)
    seconds = time.perf_counter() - t
    passed = sum(bool(r["passed"]) for r in scores["results"])
    out = _summary(passed, len(scores["results"]), seconds)  # per-sample rate and its interval
    out.update({k: v for k, v in scores.items() if k.startswith("pass@")})
    out.update(mode=mode, problems=len(problems), samples=scores["samples"], results=scores["results"])
    return out


# --- infilling tasks ---------------------------------------------------------------------

def random_span_tasks(problems: dict[str, dict] | None = None, n_per_problem: int = 1,
                      seed: int = 0) -> dict[str, dict]:
    """Random-span infilling (the FIM paper's third HumanEval infilling set): the middle is a
    span of the canonical solution between two character positions drawn uniformly, so the
    cuts fall anywhere, inside tokens too. Tasks look like those of
    :func:`minillama.benchmarks.load_humaneval_infilling` (``prompt``, ``canonical_solution``,
    ``suffix``, ``test``, ``entry_point``); a fixed ``seed`` gives a fixed set."""
    problems = problems or load_humaneval()
    rng = random.Random(seed)
    tasks = {}
    for problem in problems.values():
        sol = problem["canonical_solution"]
        for _ in range(n_per_problem):
            a, b = sorted(rng.sample(range(len(sol) + 1), 2))  # a < b: a non-empty middle
            tid = f"RandomSpanInfilling/{problem['task_id']}/{a}_{b}"
            tasks[tid] = {"task_id": tid, "prompt": problem["prompt"] + sol[:a],
                          "canonical_solution": sol[a:b], "suffix": sol[b:],
                          "test": problem["test"], "entry_point": problem["entry_point"]}
    return tasks


def infilling_tasks(kind: str, problems: dict[str, dict] | None = None, limit: int | None = None,
                    seed: int = 0) -> list[dict]:
    """``kind`` in single-line / multi-line / random-span; ``limit`` keeps a fixed random
    subset (``seed``), in task-id order."""
    if kind == "random-span":
        tasks = random_span_tasks(problems, seed=seed)
    else:
        tasks = load_humaneval_infilling(kind, problems)
    ids = sorted(tasks)
    if limit is not None and limit < len(ids):
        ids = sorted(random.Random(seed).sample(ids, limit))
    return [tasks[i] for i in ids]


def ends_inside_token(tok, task: dict) -> bool:
    """Does the prefix end where no token of the whole program's tokenization ends?"""
    prefix = task["prompt"]
    doc = prefix + task["canonical_solution"] + task["suffix"]
    return len(prefix) not in token_boundaries(tok, doc)


def fit_context(tok, prefix: str, suffix: str, budget: int, spm: bool = False) -> tuple[str, str]:
    """Drop whole lines from the start of ``prefix`` and the end of ``suffix`` (the longer
    side first) until the infilling prompt has at most ``budget`` tokens."""
    while len(infilling_prompt(tok, prefix, suffix, spm)) > budget:
        if len(suffix) > len(prefix) or "\n" not in prefix.rstrip("\n"):
            cut = suffix.rstrip("\n").rfind("\n")
            if cut > 0:
                suffix = suffix[:cut + 1]
                continue
        cut = prefix.find("\n")
        if 0 <= cut < len(prefix) - 1:
            prefix = prefix[cut + 1:]
            continue
        break  # one huge line: leave it (the model sees a longer prompt)
    return prefix, suffix


# --- infilling ---------------------------------------------------------------------------

def model_batch_generate(model) -> BatchGenerate:
    return batch_generator(model)  # greedy; returns the stop id, so "stopped" is measured


def infill_middles(model, tok, tasks: Sequence[dict], spm: bool = False, heal_tokens: bool = False,
                   max_new_tokens: int = 64, context: int | None = None, batch_size: int = 16,
                   generate_fn: BatchGenerate | None = None) -> list[dict]:
    """Greedy middles for infilling tasks: ``{"middle", "stopped", "healed"}`` per task.

    PSM prompt ``[BOS, PRE] enc(prefix) [SUF] enc_inf(suffix) [MID]`` and SPM prompt
    ``[BOS, PRE, SUF] enc_inf(suffix) [MID] enc(prefix)`` (:func:`minillama.fim.infilling_prompt`);
    with ``heal_tokens`` the last token of ``enc(prefix)`` is removed from the prompt and
    regenerated under the healing constraint (needs ``model``); the middle is then the
    generated text after that token's text."""
    check_model_tokenizer(model, tok)
    stop_ids = [tok.eot_id, tok.eos_id]
    gen = generate_fn or model_batch_generate(model)
    context = context or (model.cfg.max_seq_len if model is not None else 10**9)
    budget = max(8, context - max_new_tokens)
    prepared = []  # (prompt ids, forced start ids, removed text, prefix as prompted)
    for task in tasks:
        prefix, suffix = fit_context(tok, task["prompt"], task["suffix"], budget, spm)
        pre_ids = tok.encode(prefix)
        removed = ""
        if heal_tokens:
            pre_ids, removed = heal_prompt(tok, pre_ids)
        suf_ids = tok.encode_infilling(suffix)
        if spm:
            prompt = [tok.bos_id, tok.prefix_id, tok.suffix_id] + suf_ids + [tok.middle_id] + pre_ids
        else:
            prompt = [tok.bos_id, tok.prefix_id] + pre_ids + [tok.suffix_id] + suf_ids + [tok.middle_id]
        start = healed_start(model_next_logits(model), tok, prompt, removed) if removed else []
        prepared.append((prompt, start, removed, prefix, pre_ids))
    outs = []
    for i in range(0, len(prepared), batch_size):
        chunk = prepared[i:i + batch_size]
        outs += gen([p + s for p, s, *_ in chunk], max_new_tokens, stop_ids)
    results = []
    for (prompt, start, removed, prefix, pre_ids), out in zip(prepared, outs):
        ids, stopped = cut_at_stop(start + list(out), stop_ids)
        if spm or not prefix:
            # the middle continues enc(prefix): decode both together, take what follows the prefix
            full = tok.decode(pre_ids + ids)
            kept = tok.decode(pre_ids) if pre_ids else ""
            text = full[len(kept):] if full.startswith(kept) else full
        else:
            text = tok.decode_infilling(ids)
        if removed:  # the regenerated token's text was part of the prefix
            middle = text[len(removed):] if text.startswith(removed) else text
        else:
            middle = text
        results.append({"middle": middle, "stopped": stopped, "healed": bool(removed)})
    return results


def agreement(middles: Sequence[str], truths: Sequence[str]) -> dict:
    """Finer than pass@1, for models that rarely pass: ``exact_match``; ``first_char``, the
    share of middles whose first character is right (where a prompt that ends inside a token
    goes wrong first); ``prefix_chars``, the mean length of the common start with the truth."""
    n = max(len(truths), 1)

    def common(a: str, b: str) -> int:
        k = 0
        while k < min(len(a), len(b)) and a[k] == b[k]:
            k += 1
        return k

    return {"exact_match": sum(m == t for m, t in zip(middles, truths)) / n,
            "first_char": sum(bool(m) and bool(t) and m[0] == t[0] for m, t in zip(middles, truths)) / n,
            "prefix_chars": sum(common(m, t) for m, t in zip(middles, truths)) / n}


def score_infilling(tasks: Sequence[dict], middles: Sequence[str], timeout: float = 3.0) -> list[dict]:
    """Execute ``prompt + middle + suffix`` with the task's tests, in the sandbox."""
    return evaluate_many([(t, m) for t, m in zip(tasks, middles)], timeout=timeout)


def evaluate_infilling(model, tok, kind: str = "single-line", spm: bool = False, limit: int | None = None,
                       heal: bool = False, problems: dict[str, dict] | None = None, seed: int = 0,
                       max_new_tokens: int = 64, context: int | None = None, batch_size: int = 16,
                       timeout: float = 3.0, generate_fn: BatchGenerate | None = None,
                       tasks: Sequence[dict] | None = None) -> dict:
    """pass@1 (greedy, 95 % Wilson interval) on HumanEval infilling.

    ``kind``: ``"single-line"``, ``"multi-line"`` or ``"random-span"``; ``limit`` tasks drawn
    with ``seed`` (all when None); ``spm`` picks the prompt layout; ``heal`` turns on token
    healing. ``generate_fn(prompts_ids, max_new_tokens, stop_ids)`` replaces the model's
    decoder (healing still asks ``model`` for its first, constrained step)."""
    if heal and model is None:
        raise ValueError("token healing needs the model for its constrained first step")
    tasks = list(tasks) if tasks is not None else infilling_tasks(kind, problems, limit, seed)
    t = time.perf_counter()
    outs = infill_middles(model, tok, tasks, spm, heal, max_new_tokens, context, batch_size, generate_fn)
    out = score_middles(tasks, [o["middle"] for o in outs], [o["stopped"] for o in outs], timeout)
    out.update(kind=kind, layout="SPM" if spm else "PSM", heal=heal, seconds=round(time.perf_counter() - t, 2))
    return out


def score_middles(tasks: Sequence[dict], middles: Sequence[str], stopped: Sequence[bool] | None = None,
                  timeout: float = 3.0) -> dict:
    """pass@1 with its 95 % Wilson interval, :func:`agreement` and the share of middles that
    ended with EOT, for given middles (e.g. generated ones post-processed)."""
    t = time.perf_counter()
    results = score_infilling(tasks, middles, timeout)
    passed = sum(bool(r["passed"]) for r in results)
    out = _summary(passed, len(tasks), time.perf_counter() - t)
    out.update(stopped=sum(stopped) / max(len(stopped), 1) if stopped is not None else None,
               **agreement(middles, [t_["canonical_solution"] for t_ in tasks]),
               middles=list(middles), results=results)
    return out
