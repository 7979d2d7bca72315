"""The self-instruct measurement of notebook 05: the pipeline on training families, SFT on filtered
and on unfiltered data, greedy pass@1 of base / filtered / unfiltered on held-out tasks."""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

from minillama.course import results
from minillama.data.corpus import get_corpus
from minillama.evaluation.metrics import wilson_interval
from minillama.instruct.formats import B_INST, E_CODE, assemble_program, solution_head, solution_prompt
from minillama.instruct.pipeline import LM, ModelSolutions, ReferenceTests, TaskQuestions, run_pipeline, run_tests
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
    """The whole measurement: pipeline on train families, SFT on filtered and on unfiltered
    data (same count, same steps), greedy pass@1 of base / filtered / unfiltered."""
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

    scores = {"base": score(base)}
    losses = {}
    for name, data in (("filtered", res.kept), ("unfiltered", res.unfiltered(seed=seed))):
        if not data:
            say(f"{name}: no examples, the fine-tuned model is the base model")
            scores[name], losses[name] = scores["base"], []
            continue
        model = copy.deepcopy(base)
        losses[name] = finetune(model, tok, data, steps=sizes.sft_steps, batch_size=sizes.batch_size, lr=sizes.lr,
                                rehearsal=rehearsal, rehearsal_frac=sizes.rehearsal_frac, seed=seed)
        scores[name] = score(model)
    summary = {k: {s: r.summary() for s, r in v.items()} for k, v in scores.items()}
    say("pass@1:", summary)
    out = dict(pass1_base=scores["base"]["heldout"].pass1, pass1_filtered=scores["filtered"]["heldout"].pass1,
               pass1_unfiltered=scores["unfiltered"]["heldout"].pass1, n_heldout=len(heldout),
               funnel=res.funnel, scores=summary, n_train_examples=len(res.kept), pretrained=pretrained,
               sizes=asdict(sizes), profile=profile.name, seconds=round(time.perf_counter() - t0, 1))
    if record:
        results.record("self_instruct", **out)
    return {"record": out, "pipeline": res, "scores": scores, "losses": losses}
