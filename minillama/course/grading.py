"""Grading the assignments with nbgrader's autograder, and ``make grading-check``.

A submission here is what a student hands in: the released notebook with its answer cells filled
in (:func:`answered`); :func:`reference_submission` fills in the teacher's reference answers. The
check autogrades every assignment twice in a temporary course folder, with the reference answers
(every test cell must give its full points) and with the stubs as released (every one must give
zero), through nbgrader's own CLI, and prints how long each autograding took.
"""

from __future__ import annotations

import copy
import json
import re
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from minillama.course.assignments import build_course, nbgrader, source_notebooks

REFERENCE, STUBS = "reference", "stubs"
_MARKER = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$")


def _grade_id(cell: dict) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def reference_answers(source_nb: dict) -> dict[str, str]:
    """``{grade id: answer}`` of every answer cell of a source notebook: the cell with its solution
    regions in and the ``### BEGIN/END SOLUTION`` lines out, as a student who wrote it would hand in."""
    answers = {}
    for cell in source_nb["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
            lines = "".join(cell["source"]).splitlines()
            answers[_grade_id(cell)] = "\n".join(line for line in lines if not _MARKER.match(line))
    return answers


def answered(release_nb: dict, answers: dict[str, str]) -> dict:
    """A copy of a released notebook with the answer cells of ``answers`` (by grade id) replaced."""
    unknown = set(answers) - {_grade_id(c) for c in release_nb["cells"]}
    if unknown:
        raise KeyError(f"no answer cell {sorted(unknown)} in this notebook")
    nb = copy.deepcopy(release_nb)
    for cell in nb["cells"]:
        if _grade_id(cell) in answers:
            cell["source"] = answers[_grade_id(cell)]
    return nb


def reference_submission(source: Path, release: Path) -> dict:
    return answered(json.loads(release.read_text()), reference_answers(json.loads(source.read_text())))


def submit(root: Path, student: str, assignment: str, nb: dict) -> Path:
    """Put ``nb`` where ``nbgrader collect`` puts a student's submission."""
    folder = root / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{assignment}.ipynb"
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return path


@dataclass
class Graded:
    student: str
    assignment: str
    score: float
    max_score: float
    cells: dict[str, float]  # grade id of each test cell -> its points
    flagged: bool
    seconds: float = float("nan")  # wall clock
    cpu_seconds: float = float("nan")  # nbgrader's and the kernel's, on every core: what a busy machine does not inflate


def gradebook_result(root: Path, assignment: str, student: str) -> Graded:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        submission = gb.find_submission(assignment, student)
        cells = {g.name: g.score for nb in submission.notebooks for g in nb.grades}
        return Graded(student, assignment, submission.score, submission.max_score, cells,
                      any(nb.flagged for nb in submission.notebooks))


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # finished children and what they waited for
    return usage.ru_utime + usage.ru_stime


def autograde(root: Path, assignment: str, student: str) -> Graded:
    """``nbgrader autograde`` of one submission; its result from the gradebook, with the seconds
    the command took (nbgrader's start, the notebook's run in a kernel, the gradebook)."""
    start, cpu = time.perf_counter(), _children_cpu_seconds()
    nbgrader("autograde", assignment, f"--student={student}", "--force", cwd=root)
    seconds, cpu = time.perf_counter() - start, _children_cpu_seconds() - cpu
    graded = gradebook_result(root, assignment, student)
    graded.seconds, graded.cpu_seconds = seconds, cpu
    return graded


HEADER = f"{'assignment':<18} {'points':>6} {'reference':>9} {'stubs':>5}   seconds (CPU seconds): reference, stubs"


def row(name: str, ref: Graded, stub: Graded) -> str:
    return (f"{name:<18} {ref.max_score:>6g} {ref.score:>9g} {stub.score:>5g}   {ref.seconds:7.1f} "
            f"({ref.cpu_seconds:.1f}), {stub.seconds:7.1f} ({stub.cpu_seconds:.1f})")


def grading_check(names: list[str] | None = None) -> int:
    """Autograde each assignment with the reference answers and with the stubs; 0 if the first
    get full points and the second zero."""
    notebooks = [p for p in source_notebooks() if not names or any(p.name.startswith(n) for n in names)]
    if not notebooks:
        print(f"no notebooks match {names}", file=sys.stderr)
        return 1
    failures, rows = [], []
    with tempfile.TemporaryDirectory(prefix="minillama-grading-") as tmp:
        root = Path(tmp) / "course"
        print(f"releasing {len(notebooks)} assignments in {root} ...", flush=True)
        released = build_course(root, notebooks)
        for path in notebooks:
            submit(root, REFERENCE, path.stem, reference_submission(path, released[path.stem]))
            submit(root, STUBS, path.stem, json.loads(released[path.stem].read_text()))
        print(HEADER, flush=True)
        for path in notebooks:
            print(f"autograding {path.stem}: the reference answers, then the stubs ...", file=sys.stderr, flush=True)
            ref, stub = (autograde(root, path.stem, student) for student in (REFERENCE, STUBS))
            rows.append((ref, stub))
            print(row(path.stem, ref, stub), flush=True)  # as it comes: a long check shows its progress
            if ref.score != ref.max_score:
                failures.append(f"{path.stem}: the reference answers got {ref.score:g}/{ref.max_score:g} {ref.cells}")
            if stub.score != 0:
                failures.append(f"{path.stem}: the stubs got {stub.score:g}/{stub.max_score:g} {stub.cells}")
    wall, cpu = sum(ref.seconds for ref, _ in rows), sum(ref.cpu_seconds for ref, _ in rows)
    print(f"{'total':<18} {sum(ref.max_score for ref, _ in rows):>6g} {'':>9} {'':>5}   {wall:7.1f} ({cpu:.1f}) "
          "for the references")
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    if not failures:
        print(f"every assignment: full points with the reference answers, none with the stubs "
              f"(autograding the references took {wall / 60:.1f} min)")
    return 1 if failures else 0
