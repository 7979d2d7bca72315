"""The self-instruct pipeline (PAPER §2.5), step by step.

The paper's recipe for Code Llama - Instruct's synthetic data:

1. a large model (Llama 2 70B) writes interview-style questions;
2. exact duplicates are removed;
3. the model being tuned (Code Llama 7B) writes unit tests (``[TESTS]`` tags) and ten
   solutions (``[PYTHON]`` tags) per question, seeing only one of the tests;
4. the tests are run and the first passing solution is kept.

Each role is a pluggable callable, so any causal LM minillama loads can play it (a real Code
Llama on a GPU, or the course's 7M model) and a procedural generator (``tasks.py``) can
stand in where a small model cannot (writing questions; at course scale, writing tests).
:func:`run_pipeline` records a funnel, the count that survives each stage."""

from __future__ import annotations

import ast
import random
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

from minillama.instruct.formats import (B_INST, B_TESTS, E_CODE, E_TESTS, assemble_program, parse_tests,
                                        solution_head, solution_prompt, tests_prompt)
from minillama.instruct.tasks import Task, generate_tasks
from minillama.sampling import sample
from minillama.tokenizer import check_model_tokenizer


@dataclass(frozen=True)
class Question:
    text: str
    entry_point: str | None = None
    signature: str | None = None
    task: Task | None = None  # set when the procedural generator wrote it
    problem: dict | None = field(default=None, compare=False)  # a code-world question's reference (never shown)

    @classmethod
    def from_task(cls, task: Task) -> "Question":
        return cls(task.question, task.entry_point, task.signature, task)


def normalise(text: str) -> str:
    return " ".join(text.split())


def exact_dedup(questions: Sequence[Question]) -> list[Question]:
    """Keep the first of each question text (whitespace-normalised), in order."""
    seen, out = set(), []
    for q in questions:
        key = normalise(q.text)
        if key not in seen:
            seen.add(key)
            out.append(q)
    return out


def _shingles(text: str, n: int = 3) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i:i + n]) for i in range(max(1, len(words) - n + 1))}


def near_dedup(questions: Sequence[Question], threshold: float = 0.7, n: int = 3) -> list[Question]:
    """Extension: drop a question whose word ``n``-gram Jaccard similarity with a kept one is
    ``>= threshold``. Quadratic; fine for thousands (MinHash would scale it)."""
    kept, kept_sh = [], []
    for q in questions:
        sh = _shingles(q.text, n)
        if all(len(sh & k) / max(1, len(sh | k)) < threshold for k in kept_sh):
            kept.append(q)
            kept_sh.append(sh)
    return kept


def _encode_plain(tok, text: str) -> list[int]:
    """Encode a continuation without SentencePiece's dummy leading space."""
    return tok.encode_infilling(text) if hasattr(tok, "encode_infilling") else tok.encode(text)


class LM:
    """Text-in, text-out wrapper over a minillama ``Transformer`` and its tokenizer.

    A prompt is ``(instruction, answer_head)``: tokens are ``encode(instruction, bos) +
    encode(answer_head)``, exactly the split used in fine-tuning, so that generation sees
    the token boundaries it was trained on."""

    def __init__(self, model, tokenizer, batch_size: int = 32):
        check_model_tokenizer(model, tokenizer)
        self.model, self.tok, self.batch_size = model, tokenizer, batch_size

    def prompt_ids(self, instruction: str, head: str) -> list[int]:
        return self.tok.encode(instruction, bos=True) + (self.tok.encode(head) if head else [])

    def _decode(self, ids: Sequence[int]) -> str:
        # A continuation may start with "▁▁▁▁" (indentation): plain decode would drop its
        # first "▁" as if it were SentencePiece's dummy prefix, leaving 3 spaces.
        return self.tok.decode_infilling(ids) if hasattr(self.tok, "decode_infilling") else self.tok.decode(ids)

    def complete(self, prompts: Sequence[tuple[str, str]], *, temperature: float = 0.0, top_p: float = 1.0,
                 max_new_tokens: int = 64, stop: Sequence[str] = (), stop_at_dedent: bool = False,
                 seed: int = 0) -> list[str]:
        ids = [self.prompt_ids(i, h) for i, h in prompts]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # similar lengths batch well
        out: list[str] = [""] * len(ids)
        was_training = self.model.training
        self.model.eval()
        dedent = re.compile(r"\n[^\s]")

        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]

            def should_stop(_, new):
                text = self._decode(new)
                return any(s in text for s in stop) or (stop_at_dedent and dedent.search(text) is not None)

            outs = sample(self.model, [ids[r] for r in rows], 1, max_new_tokens, temperature, top_p,
                          stop_ids=[self.tok.eos_id], should_stop=should_stop, seed=seed + start)
            for r, o in zip(rows, outs):
                text = self._decode(o)
                cuts = [text.find(s) for s in stop if s in text]
                if stop_at_dedent and (m := dedent.search(text)):
                    cuts.append(m.start())
                out[r] = text[: min(cuts)] if cuts else text
        self.model.train(was_training)
        return out


class QuestionWriter(Protocol):
    def __call__(self, n: int, seed: int) -> list[Question]: ...


class TestWriter(Protocol):
    def __call__(self, questions: Sequence[Question]) -> list[list[str]]: ...


class SolutionWriter(Protocol):
    def __call__(self, questions: Sequence[Question], shown_tests: Sequence[str]) -> list[list[str]]: ...


@dataclass
class TaskQuestions:
    """Procedural questions from ``tasks.py`` (the stand-in for Llama 2 70B)."""
    split: str = "train"

    def __call__(self, n: int, seed: int) -> list[Question]:
        return [Question.from_task(t) for t in generate_tasks(n, self.split, seed=seed)]


@dataclass
class ReferenceTests:
    """Tests from the task generator. At course scale the model cannot write correct tests
    (the notebook measures how rarely it does), so the generator, like the 70B question
    writer, stands in for a capable model here; held-out reference tests never enter."""
    n_tests: int = 5

    def __call__(self, questions: Sequence[Question]) -> list[list[str]]:
        if any(q.task is None for q in questions):
            raise ValueError("ReferenceTests needs questions from the task generator (Question.task)")
        return [list(q.task.tests[: self.n_tests]) for q in questions]


@dataclass
class ModelTests:
    """The model being tuned writes ``n_tests`` asserts between ``[TESTS]`` tags (the paper)."""
    lm: LM
    n_tests: int = 5
    temperature: float = 0.0
    max_new_tokens: int = 160

    def __call__(self, questions: Sequence[Question]) -> list[list[str]]:
        prompts = []
        for q in questions:
            # the call's opening is forced when the name is known, as for solutions
            head = f"{B_TESTS}\n" + (f"assert {q.entry_point}(" if q.entry_point else "")
            prompts.append((tests_prompt(q.text, self.n_tests), head))
        outs = self.lm.complete(prompts, temperature=self.temperature, max_new_tokens=self.max_new_tokens,
                                stop=[E_TESTS, B_INST])
        return [parse_tests(h[len(B_TESTS):] + o, self.n_tests) for (_, h), o in zip(prompts, outs)]


@dataclass
class ModelSolutions:
    """The model being tuned samples ``n`` solutions per question, seeing one test (the paper
    samples 10). ``stop_at_dedent`` ends a sample when the function body ends, which a small
    model that never learned ``[/PYTHON]`` needs."""
    lm: LM
    n: int = 10
    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 64
    stop_at_dedent: bool = True
    seed: int = 0

    def __call__(self, questions: Sequence[Question], shown_tests: Sequence[str]) -> list[list[str]]:
        prompts = [(solution_prompt(q.text, t), solution_head(q.signature))
                   for q, t in zip(questions, shown_tests) for _ in range(self.n)]
        outs = self.lm.complete(prompts, temperature=self.temperature, top_p=self.top_p,
                                max_new_tokens=self.max_new_tokens, stop=[E_CODE, B_INST],
                                stop_at_dedent=self.stop_at_dedent, seed=self.seed)
        programs = [assemble_program(h, o) for (_, h), o in zip(prompts, outs)]
        return [programs[i * self.n:(i + 1) * self.n] for i in range(len(questions))]


def regroup(flat: Sequence, like: Sequence[Sequence]) -> list[list]:
    """``flat`` cut into consecutive lists of the lengths of ``like``'s items (per-sample results back
    into per-question lists)."""
    out, k = [], 0
    for group in like:
        out.append(list(flat[k:k + len(group)]))
        k += len(group)
    return out


def compiles(program: str) -> bool:
    try:
        ast.parse(program)
        return True
    except (SyntaxError, ValueError):
        return False


def run_tests(jobs: Sequence[tuple[str, str]], *, timeout: float = 3.0, n_workers: int = 2,
              runner: Callable[..., dict] | None = None, progress: bool | str = False) -> list[bool]:
    """Pass/fail of each ``(program, tests)`` job in the sandbox. Programs that do not parse
    fail without a process; identical jobs run once. ``progress`` (True or a label): a bar."""
    from minillama.progress import progress as progress_bar

    if runner is None:
        from minillama.execution import run_program as runner
    unique = {job for job in jobs if compiles(job[0])}

    def one(job):
        return runner(job[0], job[1], timeout=timeout)["passed"]

    with ThreadPoolExecutor(max(1, n_workers)) as pool, \
            progress_bar(total=len(unique), desc=progress if isinstance(progress, str) else "running tests",
                         enabled=bool(progress), unit="program") as bar:
        verdict = {}
        for job, passed in zip(unique, pool.map(one, unique)):
            verdict[job] = passed
            bar.update()
    return [verdict.get(job, False) for job in jobs]


@dataclass
class Example:
    """One instruction-tuning example: the solution prompt (question + the one shown test)
    and the solution code."""
    question: str
    shown_test: str
    signature: str | None
    code: str
    passed: bool | None = None


@dataclass
class PipelineResult:
    questions: list[Question]
    deduplicated: list[Question]
    tests: list[list[str]]
    solutions: list[list[str]]
    verdicts: list[list[bool]]
    kept: list[Example]
    funnel: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)

    def unfiltered(self, n: int | None = None, seed: int = 0) -> list[Example]:
        """The ablation: the *first* sampled solution of each question, passing or not,
        subsampled to ``n`` (default: as many as were kept), so only filtering differs."""
        pool = [Example(q.text, t[0], q.signature, s[0], v[0])
                for q, t, s, v in zip(self.deduplicated, self.tests, self.solutions, self.verdicts) if t and s]
        n = len(self.kept) if n is None else n
        return random.Random(seed).sample(pool, min(n, len(pool)))

    def oracle(self, n: int, seed: int = 0) -> list[Example]:
        """The upper bound: ``n`` questions with their *reference* solutions (from the task
        generator), as if every filter decision were right and every question solved."""
        pool = [Example(q.text, q.task.tests[0], q.signature, q.task.solution, True)
                for q in self.deduplicated if q.task is not None]
        return random.Random(seed).sample(pool, min(n, len(pool)))


def run_pipeline(write_questions: QuestionWriter, write_tests: TestWriter, write_solutions: SolutionWriter,
                 n_questions: int, *, seed: int = 0, near_duplicates: bool = False, timeout: float = 3.0,
                 n_workers: int = 2, runner: Callable[..., dict] | None = None,
                 progress: bool = False) -> PipelineResult:
    """Questions → deduplicated → tests → solutions seeing one test → run → keep the first
    passing solution per question. ``progress``: a bar for running the solutions (the model's
    writers show their own)."""
    secs = {}
    t = time.perf_counter()
    questions = write_questions(n_questions, seed)
    deduped = exact_dedup(questions)
    funnel = {"questions": len(questions), "deduplicated": len(deduped)}
    if near_duplicates:
        deduped = near_dedup(deduped)
        funnel["near_deduplicated"] = len(deduped)
    secs["questions"] = time.perf_counter() - t

    t = time.perf_counter()
    tests = write_tests(deduped)
    with_tests = [i for i, ts in enumerate(tests) if ts]
    funnel["with_tests"] = len(with_tests)
    secs["tests"] = time.perf_counter() - t

    t = time.perf_counter()
    solutions: list[list[str]] = [[] for _ in deduped]
    if with_tests:
        sampled = write_solutions([deduped[i] for i in with_tests], [tests[i][0] for i in with_tests])
        for i, s in zip(with_tests, sampled):
            solutions[i] = s
    secs["solutions"] = time.perf_counter() - t

    t = time.perf_counter()
    jobs = [(s, "\n".join(ts) + "\n") for ts, sols in zip(tests, solutions) for s in sols]
    flat = run_tests(jobs, timeout=timeout, n_workers=n_workers, runner=runner,
                     progress="self-instruct: running solutions" if progress else False)
    verdicts = regroup(flat, solutions)
    secs["execution"] = time.perf_counter() - t

    kept = []
    for q, ts, sols, vs in zip(deduped, tests, solutions, verdicts):
        if True in vs:
            kept.append(Example(q.text, ts[0], q.signature, sols[vs.index(True)], True))
    funnel.update(solutions_sampled=len(jobs), solutions_compiling=sum(map(compiles, (j[0] for j in jobs))),
                  solutions_passing=sum(flat), with_passing_solution=len(kept))
    return PipelineResult(questions, deduped, tests, solutions, verdicts, kept, funnel, secs)
