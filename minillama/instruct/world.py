"""Self-instruct on the code world: the paper's funnel (PAPER §2.5) played by the course's coding model.

The roles, and who plays them here:

1. **questions** — Llama 2 70B in the paper; here the code world's generator, from compositions never
   trained, of the fine-tuning split (:mod:`minillama.instruct.requests`: no evaluation or dev problem
   shares a composition with them). A question is the docstring's natural-language text plus the
   function's signature;
2. **dedup** — exact, on the whitespace-normalised text;
3. **tests** — the model being tuned writes them (as in the paper): it continues
   ``def f(x):\\n    \"\"\"<question>\\n\\n    >>> f`` — a doctest, the one way the code world's
   modules state a test inside a docstring — and each sampled ``call / expected value`` pair becomes
   an ``assert``;
4. **solutions** — the model samples ten per question, seeing the question and the first of its own tests
   as the docstring's doctest; each runs against all of the model's tests in the sandbox and the first
   that passes is kept.

One difference from the paper, on purpose: the coding model was pretrained on modules of functions,
never on the ``[INST]`` chat format, so it writes tests and solutions in the format it knows (signature +
docstring); the examples it yields are then put in the ``[INST]`` format for fine-tuning
(:mod:`minillama.instruct.ablation`). Because every question comes with reference tests, the course can
measure what the paper could not: how often the model's own tests judge a solution right
(:func:`filter_quality`).
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from typing import Sequence

from minillama.evaluation.benchmarks import HUMANEVAL_STOP
from minillama.instruct.pipeline import PipelineResult, Question, regroup, run_tests
from minillama.sampling import text_sampler


def _docstring(prompt: str) -> str:
    start = prompt.index('"""') + 3
    return prompt[start:prompt.index('"""', start)]


def split_problem(problem: dict) -> tuple[str, str, str]:
    """``(signature, question, shown_test)`` of a MiniEval problem: the ``def`` line, the docstring's
    text before its doctest (dedented, wrapping kept) and the doctest as an ``assert``."""
    signature = problem["prompt"].split("\n", 1)[0]
    doc = textwrap.dedent("    " + _docstring(problem["prompt"]).lstrip())
    text, _, example = doc.partition(">>>")
    call, expected = [line.strip() for line in example.strip().split("\n")[:2]]
    return signature, text.strip(), f"assert {call} == {expected}"


def world_prompt(signature: str, question: str, test: str | None = None) -> str:
    """The solution prompt: ``signature``, then a docstring of ``question`` and, when given, the
    shown ``assert`` as a doctest — the code world's own surface."""
    doc = "\n    ".join(question.strip().split("\n"))
    if test is not None:
        call, expected = assert_parts(test)
        doc += f"\n\n    >>> {call}\n    {expected}"
    return f'{signature}\n    """{doc}\n    """\n'


def assert_parts(test: str) -> tuple[str, str]:
    """``("f(x)", "3")`` of ``"assert f(x) == 3"``."""
    node = ast.parse(test).body[0]
    if not (isinstance(node, ast.Assert) and isinstance(node.test, ast.Compare) and len(node.test.ops) == 1
            and isinstance(node.test.ops[0], ast.Eq)):
        raise ValueError(f"not an 'assert call == value' line: {test!r}")
    return ast.unparse(node.test.left), ast.unparse(node.test.comparators[0])


@dataclass
class WorldQuestions:
    """Questions from the fine-tuning split of held-out compositions
    (:func:`minillama.instruct.requests.split_problems`, ``"train"``: no evaluation or dev problem
    shares its composition), with their reference problem kept on the side for measuring, never
    shown to the model."""
    split: str = "train"

    def __call__(self, n: int, seed: int) -> list[Question]:
        from minillama.instruct.requests import split_problems
        out = []
        for problem in split_problems(self.split, n, seed=seed).values():
            signature, text, _ = split_problem(problem)
            out.append(Question(text, problem["entry_point"], signature, problem=problem))
        return out


def parse_doctest(entry_point: str, completion: str) -> str | None:
    """The ``assert`` of a sampled doctest continuation ``"(args)\\n    value\\n"`` after
    ``>>> entry_point``, or None when it is not a call with literal arguments and a literal value."""
    lines = [line.strip() for line in completion.split("\n")]
    if len(lines) < 2 or not lines[1]:
        return None
    call, expected = f"{entry_point}{lines[0]}", lines[1]
    try:
        node = ast.parse(call, mode="eval").body
        ast.literal_eval(expected)
        if not (isinstance(node, ast.Call) and all(ast.literal_eval(a) is not None for a in node.args)):
            return None
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        return None
    return f"assert {call} == {expected}"


def sample_groups(model, tok, prompts: Sequence[str], n: int, **kw) -> list[list[str]]:
    """``n`` sampled continuations per prompt (the sampling engine), grouped by prompt."""
    outs = text_sampler(model, tok)(list(prompts), n=n, **kw)
    return [outs[i * n:(i + 1) * n] for i in range(len(prompts))]


def doctest_prompt(q: Question) -> str:
    """The test-writing prompt: the question's docstring, open at a doctest of its function. It ends at
    the name: "('" and "([" are single tokens, so a prompt ending in "(" would force a token boundary
    the model never saw (it then writes numbers for every argument)."""
    return world_prompt(q.signature, q.text)[:-len('    """\n')] + f"\n    >>> {q.entry_point}"


@dataclass
class WorldTests:
    """The model writes ``n_tests`` doctests per question (sampled at ``temperature``); the distinct
    parseable ones become its tests."""
    model: object
    tok: object
    n_tests: int = 5
    temperature: float = 0.8
    max_new_tokens: int = 48
    seed: int = 0
    progress: bool = True  # a bar of tests written (stderr, or a widget in a notebook)

    def __call__(self, questions: Sequence[Question]) -> list[list[str]]:
        groups = sample_groups(self.model, self.tok, [doctest_prompt(q) for q in questions], self.n_tests,
                               temperature=self.temperature, top_p=0.95, max_new_tokens=self.max_new_tokens,
                               stop=['"""', ">>>"], seed=self.seed,
                               progress="self-instruct: writing tests" if self.progress else False)
        found = [[parse_doctest(q.entry_point, o) for o in outs] for q, outs in zip(questions, groups)]
        return [list(dict.fromkeys(t for t in tests if t)) for tests in found]


@dataclass
class WorldSolutions:
    """``n`` sampled solutions per question; a solution is the whole program (prompt + body)."""
    model: object
    tok: object
    n: int = 10
    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 192
    seed: int = 0
    progress: bool = True  # a bar of solutions sampled

    def __call__(self, questions: Sequence[Question], shown_tests: Sequence[str]) -> list[list[str]]:
        prompts = [world_prompt(q.signature, q.text, t) for q, t in zip(questions, shown_tests)]
        groups = sample_groups(self.model, self.tok, prompts, self.n, temperature=self.temperature, top_p=self.top_p,
                               max_new_tokens=self.max_new_tokens, stop=HUMANEVAL_STOP, seed=self.seed,
                               progress="self-instruct: sampling solutions" if self.progress else False)
        return [[p + o.rstrip() + "\n" for o in outs] for p, outs in zip(prompts, groups)]


def reference_job(problem: dict, program: str) -> tuple[str, str]:
    return program, problem["test"] + f"\ncheck({problem['entry_point']})\n"


def filter_quality(res: PipelineResult, n_workers: int = 2) -> dict:
    """Every sampled solution judged twice — by the model's tests (the filter) and by the question's
    reference tests (the truth): the confusion counts, the filter's precision (a solution it passes is
    right), recall (a right solution passes it) and negative predictive value (one it fails is wrong),
    per sample and per kept example;
    and how many of the model's tests the reference solution passes."""
    rows = [(q, s, v) for q, sols, vs in zip(res.deduplicated, res.solutions, res.verdicts) for s, v in zip(sols, vs)]
    truth = run_tests([reference_job(q.problem, s) for q, s, _ in rows], n_workers=n_workers)
    cells = {"pass_right": 0, "pass_wrong": 0, "fail_right": 0, "fail_wrong": 0}
    for (_, _, v), t in zip(rows, truth):
        cells[f"{'pass' if v else 'fail'}_{'right' if t else 'wrong'}"] += 1
    by_question = regroup(truth, res.solutions)
    kept_right = sum(right[vs.index(True)] for right, vs in zip(by_question, res.verdicts) if True in vs)
    tests = [(q, t) for q, ts in zip(res.deduplicated, res.tests) for t in ts]
    true_tests = run_tests([(q.problem["prompt"] + q.problem["canonical_solution"], t + "\n") for q, t in tests],
                           n_workers=n_workers)
    passed = cells["pass_right"] + cells["pass_wrong"]
    failed = cells["fail_right"] + cells["fail_wrong"]
    return {**cells, "samples": len(rows),
            "precision": cells["pass_right"] / passed if passed else None,
            "npv": cells["fail_wrong"] / failed if failed else None,
            "recall": (cells["pass_right"] / (cells["pass_right"] + cells["fail_right"])
                       if cells["pass_right"] + cells["fail_right"] else None),
            "kept": len(res.kept), "kept_right": int(kept_right),
            "kept_precision": kept_right / len(res.kept) if res.kept else None,
            "tests_written": len(tests), "tests_true": int(sum(true_tests)),
            "right_per_question": [sum(right) for right in by_question]}


@dataclass
class QuestionExampleTests:
    """The question writer's own example as the only test: the doctest every code-world question
    comes with (the stand-in for a capable test writer). The reference's hidden tests (4-6 asserts
    with an edge case) stay hidden, so :func:`filter_quality` still measures what one example misses."""

    def __call__(self, questions: Sequence[Question]) -> list[list[str]]:
        return [[split_problem(q.problem)[2]] for q in questions]


def pass_at_k_curve(correct: Sequence[int], n: int) -> dict[int, float]:
    """Mean unbiased pass@k over questions for k = 1 … n, from each question's correct count."""
    from minillama.evaluation.metrics import estimate_pass_at_k
    return {k: float(estimate_pass_at_k(n, list(correct), k).mean()) for k in range(1, n + 1)}


@dataclass
class Funnels:
    """Both funnels of one question set: the paper's (the model's own tests) and the ablation's (the
    question's example as the test), each with :func:`filter_quality`."""
    paper: PipelineResult
    paper_quality: dict
    ablation: PipelineResult
    quality: dict


def world_funnels(model, tok, sizes, seed: int = 0, say=print) -> Funnels:
    """``sizes.n_questions`` held-out questions through both funnels, ``sizes.n_samples`` solutions
    per question (T 0.8, top-p 0.95)."""
    from minillama.instruct.pipeline import run_pipeline
    model.eval()
    solutions = WorldSolutions(model, tok, n=sizes.n_samples, seed=seed)
    paper = run_pipeline(WorldQuestions(), WorldTests(model, tok, seed=seed), solutions, sizes.n_questions, seed=seed,
                         progress=True)
    say("the paper's funnel (the model writes the tests):", paper.funnel)
    ablation = run_pipeline(WorldQuestions(), QuestionExampleTests(), solutions, sizes.n_questions, seed=seed,
                            progress=True)
    say("the ablation's funnel (the question's example is the test):", ablation.funnel)
    return Funnels(paper, filter_quality(paper), ablation, filter_quality(ablation))


