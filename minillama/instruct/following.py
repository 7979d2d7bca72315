"""Instruction following, measured: greedy pass@1 of a model asked in the Instruct format and in the
docstring format on the same problems (:mod:`minillama.instruct.requests`), and the encoding of an
instruction-tuning example in the Instruct format.

An answer to ``[INST] request [/INST]`` is scored on its code (:func:`~minillama.instruct.requests.
extract_code`, the text between ``[PYTHON]`` tags or all of it), run in the sandbox against MiniEval's
hidden tests; whether it came between the tags is counted on the side (``format``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from minillama.evaluation.metrics import wilson_interval
from minillama.instruct.formats import B_INST, E_CODE, format_instruction
from minillama.instruct.pipeline import Example, _encode_plain, run_tests
from minillama.instruct.requests import extract_code, followed_format, format_answer
from minillama.instruct.sft import IGNORE_INDEX

FORMATS = ("instruct", "docstring")
MAX_NEW_TOKENS = 192  # as MiniEval's greedy runs: the longest reference answer is ~130 tokens


def encode_request_example(tok, ex: Example, system: str | None = None) -> tuple[list[int], list[int]]:
    """Token ids and labels of one example in the Instruct format: ``[BOS] [INST] request [/INST]``
    carries no loss; `` [PYTHON]\\n{code}\\n[/PYTHON]`` and EOS do. ``ex.question`` is the request's
    text, ``ex.code`` the answer's code (a ``def`` with its body)."""
    prompt = tok.encode(format_instruction(ex.question, system), bos=True)
    answer = _encode_plain(tok, format_answer(ex.code)) + [tok.eos_id]
    return prompt + answer, [IGNORE_INDEX] * len(prompt) + answer


def reference_examples(problems: dict[str, dict]) -> list[Example]:
    """The oracle's data: each problem's request with its reference answer."""
    return [Example(p["request"], "", None, p["answer_code"], True) for p in problems.values()]


@dataclass
class Scored:
    """Greedy pass@1 of one model on problems in one format, per problem (paired across models)."""
    task_ids: list[str]
    passed: list[bool]
    answers: list[str]
    format_followed: list[bool]

    @property
    def pass1(self) -> float:
        return sum(self.passed) / max(1, len(self.passed))

    def summary(self) -> dict:
        n, k = len(self.passed), sum(self.passed)
        return {"pass@1": k / max(n, 1), "passed": k, "n": n, "ci95": list(wilson_interval(k, n)),
                "format": sum(self.format_followed) / max(n, 1)}


def score(model, tok, problems: dict[str, dict], fmt: str, *, n_workers: int = 2,
          progress: bool | str = False) -> Scored:
    """Greedy pass@1 of ``model`` on ``problems`` asked in ``fmt``: ``"instruct"`` (the request in
    ``[INST]`` tags; the answer's code is run) or ``"docstring"`` (MiniEval's prompt, continued)."""
    from minillama.instruct.world import reference_job
    from minillama.evaluation.benchmarks import HUMANEVAL_STOP
    from minillama.sampling import text_sampler
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {FORMATS}")
    ids = list(problems)
    model.eval()
    gen = text_sampler(model, tok)
    if fmt == "instruct":
        # no stop string at [/PYTHON]: it would be cut from the answer, and the answer's form is
        # measured too; a tuned model ends with EOS after the tag
        answers = gen([problems[t]["instruction"] for t in ids], temperature=0.0, max_new_tokens=MAX_NEW_TOKENS,
                      stop=[B_INST], progress=progress)
        programs = [extract_code(a) for a in answers]
        followed = [followed_format(a) for a in answers]
    else:
        answers = gen([problems[t]["prompt"] for t in ids], temperature=0.0, max_new_tokens=MAX_NEW_TOKENS,
                      stop=[*HUMANEVAL_STOP, E_CODE], progress=progress)  # a tuned model's answer ends at [/PYTHON]
        answers = [end_of_body(a) for a in answers]
        programs = [problems[t]["prompt"] + a for t, a in zip(ids, answers)]
        followed = [True] * len(ids)
    passed = run_tests([reference_job(problems[t], p) for t, p in zip(ids, programs)], n_workers=n_workers)
    return Scored(ids, passed, answers, followed)


def end_of_body(completion: str) -> str:
    """A docstring-format completion cut where the function's body ends: at the first line that is
    not indented. HumanEval's stop strings catch the lines a base model writes there (``def``,
    ``class``, ``#`` …); a tuned model may close its answer with ``[/PYTHON]`` tokens instead, and
    no body goes on below its own indentation, so the cut applies to every model alike."""
    m = _DEDENT.search(completion)
    return completion[:m.start() + 1] if m else completion


_DEDENT = re.compile(r"\n[^\s]")


def score_both(model, tok, problems: dict[str, dict], **kw) -> dict[str, Scored]:
    """:func:`score` in both formats, ``{"instruct": …, "docstring": …}``."""
    return {fmt: score(model, tok, problems, fmt, **kw) for fmt in FORMATS}


def paired_difference(a: Sequence[Sequence[bool]], b: Sequence[Sequence[bool]] | Sequence[bool], *,
                      n_boot: int = 10_000, seed: int = 0) -> dict:
    """Difference of pass@1, ``a`` minus ``b``, on the same problems, with seeds: ``a`` and ``b`` are
    lists of runs (one per seed, each a per-problem list of verdicts) or ``b`` one run (the base).
    Per problem the verdicts are averaged over seeds first, so a problem counts once; then a
    bootstrap over problems (the problem is the cluster) gives the 95 % interval and a paired
    permutation test (sign flips of the per-problem differences) the two-sided p."""
    import numpy as np
    A = np.asarray(a, dtype=float)
    B = np.asarray(b, dtype=float)
    A = A[None] if A.ndim == 1 else A
    B = B[None] if B.ndim == 1 else B
    d = A.mean(0) - B.mean(0)  # one difference per problem
    rng = np.random.default_rng(seed)
    n = len(d)
    boot = d[rng.integers(0, n, size=(n_boot, n))].mean(1)
    flips = rng.choice((-1.0, 1.0), size=(n_boot, n))
    null = np.abs((flips * d).mean(1))
    p = (1 + np.sum(null >= abs(d.mean()) - 1e-12)) / (n_boot + 1)
    return {"difference": float(d.mean()), "ci95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))],
            "p": float(p), "n": int(n), "seeds": int(A.shape[0])}
