"""Instruction tuning on the code world and the paper's self-instruct ablation (notebook 05).

1. **The positive control.** Fine-tuning on *reference* answers (the oracle) must teach the request
   format: on held-out problems asked in the Instruct format (:mod:`~minillama.instruct.requests`)
   the tuned model must beat the base by a clear margin, while losing at most a few points in the
   docstring format it was pretrained on (forgetting). Hyperparameters are chosen on the ``dev``
   split (``docs/instruct_trials.md``), never on the evaluation problems.
2. **The ablation.** Three arms of **equal size on the same questions** (those where the funnel kept a
   solution): ``filtered`` (the first solution that passed the funnel's tests), ``unfiltered`` (a
   sampled solution, passing or not: sample ``seed`` of the ten) and ``oracle`` (the reference
   answer). Each is fine-tuned with the same recipe over several seeds.
3. **Statistics that match the design.** Per problem the verdicts are averaged over seeds, so a
   problem counts once; intervals are a bootstrap over problems (the cluster), p-values a paired
   permutation test (:func:`~minillama.instruct.following.paired_difference`); the minimum detectable
   difference is stated for the n used.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Sequence

from minillama.evaluation.metrics import bootstrap_interval
from minillama.instruct.following import FORMATS, Scored, encode_request_example, paired_difference, score
from minillama.instruct.pipeline import Example, PipelineResult
from minillama.instruct.sft import finetune, rehearsal_chunks
from minillama.progress import progress as progress_bar

ARMS = ("oracle", "filtered", "unfiltered")
CONTROL_MARGIN = 0.15  # oracle must beat base by this much in the Instruct format (issue target)
FORGETTING_LIMIT = 0.03  # and lose at most this much in the docstring format


def solution_body(program: str) -> str:
    """The body of a sampled solution (signature, docstring, body): what follows the docstring."""
    parts = program.split('"""', 2)
    return parts[2].strip("\n") if len(parts) == 3 else ""


def arm_examples(res: PipelineResult, arm: str, seed: int = 0) -> list[Example]:
    """The examples of ``arm`` on the questions where the funnel kept a solution, each the question's
    request with an answer: the kept solution (``filtered``), sample ``seed`` of the question's samples
    whether it passed or not (``unfiltered``), or the reference (``oracle``). Same questions, same size."""
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; choose one of {ARMS}")
    out = []
    for q, sols, vs in zip(res.deduplicated, res.solutions, res.verdicts):
        if True not in vs:
            continue
        if arm == "oracle":
            code = q.problem["answer_code"]
        else:
            program = sols[vs.index(True)] if arm == "filtered" else sols[seed % len(sols)]
            code = q.signature + "\n" + solution_body(program) + "\n"
        out.append(Example(q.problem["request"], "", None, code, arm == "oracle" or None))
    return out


def world_rehearsal(tok, seed: int = 0, n: int = 512, length: int = 128) -> list[list[int]]:
    """Rehearsal rows: windows of the code world's modules (the base model's pretraining data), mixed
    into fine-tuning as the paper mixes its code data into instruction tuning."""
    from minillama.codeworld.documents import documents
    return rehearsal_chunks(tok, documents(400, seed=4242), n, length, seed=seed)


def tune(model, tok, examples: Sequence[Example], sizes, seed: int, rehearsal) -> tuple[object, list[float]]:
    """A fine-tuned copy of ``model`` (the recipe of ``sizes``; ``model`` is left as it was)."""
    tuned = copy.deepcopy(model)
    losses = finetune(tuned, tok, examples, steps=sizes.sft_steps, batch_size=sizes.batch_size, lr=sizes.lr,
                      rehearsal=rehearsal, rehearsal_frac=sizes.rehearsal_frac, weight_decay=sizes.weight_decay,
                      seed=seed, encode=encode_request_example)
    return tuned, losses


@dataclass
class Arms:
    """Scores of the base and of every arm and seed, in both formats, on the same problems."""
    problems: dict
    base: dict[str, Scored]  # format -> Scored
    scores: dict[str, dict[int, dict[str, Scored]]]  # arm -> seed -> format -> Scored
    losses: dict[str, dict[int, list[float]]]
    n_examples: int
    seconds: dict

    def scored(self, arm: str, fmt: str) -> list[Scored]:
        """``arm``'s results in ``fmt``, one per seed in seed order (the base: one)."""
        if arm == "base":
            return [self.base[fmt]]
        return [self.scores[arm][s][fmt] for s in sorted(self.scores[arm])]

    def runs(self, arm: str, fmt: str) -> list[list[bool]]:
        """Per-seed verdict lists of ``arm`` in ``fmt`` (the base: one run)."""
        return [s.passed for s in self.scored(arm, fmt)]


def world_arms(model, tok, res: PipelineResult, sizes, problems: dict, *, arms: Sequence[str] = ARMS,
               base_scores: dict[str, Scored] | None = None, say=print, progress: bool = True) -> Arms:
    """Fine-tune a copy of ``model`` per arm of ``arms`` and seed of ``sizes.seeds``, and score the base
    (unless ``base_scores`` already holds it) and each tuned model greedily on ``problems`` in both formats.
    ``progress``: a bar of the arm x seed runs (each a fine-tune and two scorings, the longest part of
    notebook 05)."""
    t0 = time.perf_counter()
    base = base_scores or {fmt: score(model, tok, problems, fmt) for fmt in FORMATS}
    say(f"base: instruct {base['instruct'].pass1:.1%}, docstring {base['docstring'].pass1:.1%}")
    scores, losses, secs = {}, {}, {"base": time.perf_counter() - t0, "tune": 0.0, "score": 0.0}
    n_examples = len(arm_examples(res, "oracle"))
    if not n_examples:
        say("the funnel kept no question: no arm can run")
    rehearsal = {seed: world_rehearsal(tok, seed) for seed in sizes.seeds} if n_examples else {}  # shared by the arms
    bar = progress_bar(total=len(arms) * len(sizes.seeds) if n_examples else 0, desc="instruct arms: tune + score",
                       enabled=progress and bool(n_examples), unit="run")
    for arm in arms if n_examples else ():
        for seed in sizes.seeds:
            bar.set_postfix(arm=arm, seed=seed, refresh=False)
            t = time.perf_counter()
            tuned, losses.setdefault(arm, {})[seed] = tune(model, tok, arm_examples(res, arm, seed), sizes, seed,
                                                         rehearsal[seed])
            secs["tune"] += time.perf_counter() - t
            t = time.perf_counter()
            scores.setdefault(arm, {})[seed] = {fmt: score(tuned, tok, problems, fmt) for fmt in FORMATS}
            secs["score"] += time.perf_counter() - t
            r = scores[arm][seed]
            say(f"{arm} (seed {seed}, {n_examples} examples): instruct {r['instruct'].pass1:.1%}, "
                f"docstring {r['docstring'].pass1:.1%}")
            bar.update()
    bar.close()
    return Arms(problems, base, scores, losses, n_examples, {k: round(v, 1) for k, v in secs.items()})


def cluster_interval(runs: Sequence[Sequence[bool]], *, n_boot: int = 10_000, seed: int = 0) -> list[float]:
    """95 % bootstrap interval of pass@1 over problems, each problem's verdicts averaged over seeds."""
    import numpy as np
    return list(bootstrap_interval(np.asarray(runs, dtype=float).mean(0), n_boot=n_boot, seed=seed))


def min_detectable(runs_a, runs_b, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest difference in pass@1 a paired test on these problems detects with ``power``: from
    the spread of the per-problem differences (seed-averaged), normal approximation."""
    import numpy as np
    d = np.asarray(runs_a, dtype=float).mean(0) - np.asarray(runs_b, dtype=float).mean(0)
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
    sd = float(d.std(ddof=1)) if len(d) > 1 else 0.0
    return z * max(sd, 1.0 / len(d)) / len(d) ** 0.5


def format_record(a: Arms, fmt: str) -> dict:
    """``{arm: {"pass@1", "ci95", "n", "per_seed"}}`` in ``fmt`` (the seed-averaged pass@1, its
    problem-clustered interval, the number of problems)."""
    out = {}
    for arm in ("base", *a.scores):
        scored = a.scored(arm, fmt)
        runs = [s.passed for s in scored]
        out[arm] = {"pass@1": sum(map(sum, runs)) / (len(runs) * len(runs[0])), "ci95": cluster_interval(runs),
                    "n": len(runs[0]), "per_seed": [sum(r) / len(r) for r in runs],
                    "format": sum(s.summary()["format"] for s in scored) / len(scored)}
    return out


def control(a: Arms) -> dict:
    """The positive control: oracle minus base in the Instruct format (must be at least
    :data:`CONTROL_MARGIN` with the interval above 0) and in the docstring format (must not fall by
    more than :data:`FORGETTING_LIMIT`)."""
    if "oracle" not in a.scores:
        return {"passed": False, "reason": "the oracle arm did not run"}
    gain = paired_difference(a.runs("oracle", "instruct"), a.runs("base", "instruct"))
    forget = paired_difference(a.runs("oracle", "docstring"), a.runs("base", "docstring"))
    passed = (gain["difference"] >= CONTROL_MARGIN and gain["ci95"][0] > 0
              and forget["difference"] >= -FORGETTING_LIMIT)
    return {"passed": bool(passed), "instruct_gain": gain, "docstring_change": forget,
            "margin": CONTROL_MARGIN, "forgetting_limit": FORGETTING_LIMIT}


def world_record(f, a: Arms, sizes, dev: dict | None = None) -> dict:
    """What ``summary.json`` keeps (``self_instruct``): both formats' pass@1 per arm, the control, the
    paired comparisons, the minimum detectable difference, the funnels and the filter's quality."""
    from minillama.instruct.world import pass_at_k_curve
    ctrl = control(a)
    rec = {"instruct_format": format_record(a, "instruct"), "docstring_format": format_record(a, "docstring"),
           "control": ctrl, "control_passed": ctrl["passed"], "seeds": list(sizes.seeds),
           "n_examples": a.n_examples, "n_eval": len(a.problems), "sizes": asdict(sizes), "seconds_arms": a.seconds,
           "overlap": "none: evaluation, dev and fine-tuning problems are disjoint by composition"}
    comparisons = {}
    for x, y in (("filtered", "unfiltered"), ("filtered", "base"), ("unfiltered", "base"), ("oracle", "filtered")):
        if x in a.scores and (y == "base" or y in a.scores):
            for fmt in FORMATS:
                comparisons[f"{x} vs {y}, {fmt}"] = paired_difference(a.runs(x, fmt), a.runs(y, fmt))
    rec["comparisons"] = comparisons
    if "filtered" in a.scores and "unfiltered" in a.scores:
        rec["p_filtered_vs_unfiltered"] = comparisons["filtered vs unfiltered, instruct"]["p"]
        rec["mdd"] = min_detectable(a.runs("filtered", "instruct"), a.runs("unfiltered", "instruct"))
    else:
        rec["p_filtered_vs_unfiltered"] = rec["mdd"] = None
    drop = ("right_per_question",)
    n = sizes.n_samples
    rec.update(funnel=f.ablation.funnel, paper_funnel=f.paper.funnel, tests="question example",
               filter={"model tests": {k: v for k, v in f.paper_quality.items() if k not in drop},
                       "question example": {k: v for k, v in f.quality.items() if k not in drop}},
               passk_samples={"right": pass_at_k_curve(f.quality["right_per_question"], n),
                              "passes the filter": pass_at_k_curve([sum(v) for v in f.ablation.verdicts], n),
                              "n": n, "questions": len(f.ablation.deduplicated)})
    if dev is not None:
        rec["dev"] = dev
    return rec


def run_world_experiment(model, tok, sizes, *, seed: int = 0, say=print) -> dict:
    """Notebook 05 in one call (the CLI's ``self-instruct``): the funnels on the fine-tuning split, the
    arms on the evaluation split, the record."""
    from minillama.instruct.requests import split_problems
    from minillama.instruct.world import world_funnels
    t0 = time.perf_counter()
    f = world_funnels(model, tok, sizes, seed, say)
    a = world_arms(model, tok, f.ablation, sizes, split_problems("eval", sizes.n_heldout), say=say)
    record = world_record(f, a, sizes) | {"seconds": round(time.perf_counter() - t0, 1)}
    return {"record": record, "funnels": f, "arms": a}
