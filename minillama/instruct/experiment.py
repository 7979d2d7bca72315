"""The self-instruct measurement of notebook 05: the pipeline on training families, SFT on filtered
and on unfiltered data, greedy pass@1 of base / filtered / unfiltered on held-out tasks."""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

from minillama.course import results
from minillama.data.corpus import get_corpus
from minillama.evaluation.metrics import mcnemar, min_detectable_difference, wilson_interval
from minillama.instruct.formats import B_INST, E_CODE, assemble_program, solution_head, solution_prompt
from minillama.instruct.pipeline import (LM, Example, ModelSolutions, ReferenceTests, TaskQuestions, run_pipeline,
                                         run_tests)
from minillama.instruct.sft import finetune, rehearsal_chunks
from minillama.instruct.tasks import Task, generate_tasks
from minillama.profiles import InstructSizes
from minillama.tokenizer import get_tokenizer
from minillama.training.pretrain import get_pretrained


@dataclass
class EvalResult:
    tasks: list[Task]
    programs: list[str]
    passed: list[bool]

    @property
    def pass1(self) -> float:
        return sum(self.passed) / max(1, len(self.passed))

    @property
    def ci(self) -> tuple[float, float]:
        return wilson_interval(sum(self.passed), len(self.passed))

    def summary(self) -> dict:
        return {"pass1": self.pass1, "ci95": list(self.ci), "n": len(self.passed), "solved": sum(self.passed)}


def evaluate_pass1(lm: LM, tasks: Sequence[Task], *, max_new_tokens: int = 64, timeout: float = 3.0,
                   n_workers: int = 2, runner: Callable[..., dict] | None = None) -> EvalResult:
    """Greedy pass@1: the prompt shows the question and the first reference test (as the
    pipeline's solution prompt does); all reference tests score the answer."""
    prompts = [(solution_prompt(t.question, t.tests[0]), solution_head(t.signature)) for t in tasks]
    outs = lm.complete(prompts, temperature=0.0, max_new_tokens=max_new_tokens, stop=[E_CODE, B_INST],
                       stop_at_dedent=True)
    programs = [assemble_program(h, o) for (_, h), o in zip(prompts, outs)]
    passed = run_tests([(p, t.test_code) for p, t in zip(programs, tasks)], timeout=timeout,
                       n_workers=n_workers, runner=runner)
    return EvalResult(list(tasks), programs, passed)


def load_base(profile, verbose: bool = False):
    """The pretrained base model and tokenizer of ``profile`` (trained on first use)."""
    model = get_pretrained(profile, fim=True, verbose=verbose)
    return model.eval(), get_tokenizer(profile), True


def run_experiment(profile, sizes: InstructSizes | None = None, *, seed: int = 0, record: bool = True,
                   verbose: bool = True) -> dict:
    """The whole measurement: pipeline on train families; SFT arms (filtered, unfiltered at a
    fixed size, oracle) over ``sizes.seeds``; greedy pass@1 of base and arms on held-out tasks,
    compared pairwise (McNemar)."""
    sizes = sizes or profile.instruct
    say = print if verbose else (lambda *a, **k: None)
    t0 = time.perf_counter()
    base, tok, pretrained = load_base(profile, verbose)
    lm = LM(base, tok, sizes.gen_batch)
    res = run_pipeline(TaskQuestions("train"), ReferenceTests(),
                       ModelSolutions(lm, n=sizes.n_samples, max_new_tokens=sizes.max_new_tokens, seed=seed),
                       sizes.n_questions, seed=seed)
    say("funnel:", res.funnel)
    heldout = generate_tasks(sizes.n_heldout, "heldout", seed=seed + 1000, unique=True)
    train_questions = {q.text for q in res.questions}
    seen = (generate_tasks(sizes.n_seen, "train", seed=seed + 2000, unique=True, exclude=train_questions)
            if sizes.n_seen else [])
    texts = get_corpus(profile).texts("train")
    rehearsal = rehearsal_chunks(tok, texts, 256, 128, seed=seed)

    def score(model) -> dict:
        m = LM(model, tok, sizes.gen_batch)
        out = {"heldout": evaluate_pass1(m, heldout, max_new_tokens=sizes.max_new_tokens)}
        if seen:
            out["seen"] = evaluate_pass1(m, seen, max_new_tokens=sizes.max_new_tokens)
        return out

    base_scores = score(base)
    scores, losses = train_arms(base, tok, standard_arms(res, sizes), sizes, score, rehearsal, say)
    out = arms_record(res, base_scores, scores)
    out.update(pretrained=pretrained, sizes=asdict(sizes), profile=profile.name,
               seconds=round(time.perf_counter() - t0, 1))
    say("pass@1:", {k: out[k] for k in out if k.startswith("pass1_")})
    if record:
        results.record("self_instruct", **out)
    return {"record": out, "pipeline": res, "scores": {"base": base_scores, **scores}, "losses": losses}


def train_arms(base, tok, arms: dict[str, Callable[[int], Sequence[Example]]], sizes: InstructSizes,
               score: Callable[[object], dict], rehearsal=(), say=print, encode=None) -> tuple[dict, dict]:
    """Fine-tune a copy of ``base`` for every arm and seed of ``sizes.seeds``: ``arms[name](seed)``
    gives the arm's examples (same steps, batch and lr for every arm, so only the data differs).
    Returns ``scores[name][seed]`` (``score(model)``) and ``losses[name][seed]``; an arm with no
    examples is left out (not run), never replaced by the base model. ``encode``: the examples'
    format (:func:`minillama.instruct.sft.finetune`)."""
    scores, losses = {}, {}
    for name, data_for in arms.items():
        for seed in sizes.seeds:
            data = list(data_for(seed))
            if not data:
                say(f"{name}: no examples -> not run")
                break
            model = copy.deepcopy(base)
            losses.setdefault(name, {})[seed] = finetune(
                model, tok, data, steps=sizes.sft_steps, batch_size=sizes.batch_size, lr=sizes.lr,
                rehearsal=rehearsal, rehearsal_frac=sizes.rehearsal_frac, seed=seed, encode=encode)
            scores.setdefault(name, {})[seed] = score(model)
            say(f"{name} (seed {seed}, {len(data)} examples): held-out pass@1 {scores[name][seed]['heldout'].pass1:.1%}")
    return scores, losses


def compare_arms(a: dict, b: dict, split: str = "heldout") -> dict:
    """Paired comparison of two arms on the same tasks: McNemar per seed (an arm given as one
    result, like the base, is paired with every seed of the other), and pooled over seeds
    (the seed × task pairs concatenated: more power, at the price of treating seeds as
    independent). ``a``/``b``: ``{seed: {split: EvalResult}}`` or one ``{split: EvalResult}``."""
    def per_seed(x):
        return x if all(isinstance(k, int) for k in x) else None
    sa, sb = per_seed(a), per_seed(b)
    seeds = sorted(sa or sb or {0: None})
    pick = lambda x, sx, s: (sx[s] if sx is not None else x)[split].passed
    tests = {s: mcnemar(pick(a, sa, s), pick(b, sb, s)) for s in seeds}
    pooled_a = [v for s in seeds for v in pick(a, sa, s)]
    pooled_b = [v for s in seeds for v in pick(b, sb, s)]
    pooled = mcnemar(pooled_a, pooled_b)
    rate = (pooled["a_only"] + pooled["b_only"]) / max(pooled["n"], 1)
    mdd = min_detectable_difference(len(pick(a, sa, seeds[0])), max(rate, 0.05))
    return {"per_seed": tests, "pooled": pooled, "min_detectable_difference": mdd}


def mean_pass1(arm: dict, split: str = "heldout") -> float:
    """Mean pass@1 over seeds (or the one result)."""
    runs = list(arm.values()) if all(isinstance(k, int) for k in arm) else [arm]
    return sum(r[split].pass1 for r in runs) / len(runs)


def standard_arms(res, sizes: InstructSizes) -> dict[str, Callable[[int], list[Example]]]:
    """The three arms of the ablation: the kept (execution-filtered) examples; ``n_fixed`` first
    samples drawn before filtering (passing or not); ``n_fixed`` reference solutions (the oracle)."""
    return {"filtered": lambda seed: res.kept,
            "unfiltered": lambda seed: res.unfiltered(n=sizes.n_fixed, seed=seed),
            "oracle": lambda seed: res.oracle(n=sizes.n_fixed, seed=seed)}


def arms_record(res, base_scores: dict, scores: dict, split: str = "heldout") -> dict:
    """What ``summary.json`` keeps of the ablation. An arm that did not run has pass@1 None."""
    def p1(name):
        return mean_pass1(scores[name], split) if name in scores else None

    def p_value(a, b):
        if a not in scores or (b != "base" and b not in scores):
            return None
        return compare_arms(scores[a], base_scores if b == "base" else scores[b], split)["pooled"]["p"]

    per_seed = {name: {str(seed): r[split].summary() for seed, r in runs.items()} for name, runs in scores.items()}
    mdd = (compare_arms(next(iter(scores.values())), base_scores, split)["min_detectable_difference"]
           if scores else None)
    return dict(kept=len(res.kept), n_train_examples=len(res.kept), sft_ran=bool(scores),
                n_heldout=len(base_scores[split].passed), funnel=res.funnel,
                seeds=sorted({s for runs in scores.values() for s in runs}),
                pass1_base=base_scores[split].pass1, pass1_filtered=p1("filtered"),
                pass1_unfiltered=p1("unfiltered"), pass1_oracle=p1("oracle"),
                p_filtered_vs_unfiltered=p_value("filtered", "unfiltered"),
                p_filtered_vs_base=p_value("filtered", "base"), p_unfiltered_vs_base=p_value("unfiltered", "base"),
                p_oracle_vs_base=p_value("oracle", "base"), min_detectable_difference=mdd,
                scores={"base": {split: base_scores[split].summary()}, **per_seed})
