"""The notebooks as nbgrader assignments: ``make assignments`` builds a course folder, ``make student``
copies its release to ``student/``.

Each numbered notebook of ``notebooks/`` is the source of one assignment of one notebook, named
after it (``01_rope``). Its exercise cells are in nbgrader's format: answer cells whose reference
sits between ``### BEGIN SOLUTION`` and ``### END SOLUTION``, autograded test cells with points,
read-only statements, and cells tagged ``teacher-only`` (the assertion that every reference answer
is graded right) that only the teacher's copy keeps. :func:`build_course` writes the folder nbgrader
expects (``nbgrader_config.py``, ``source/``, then ``release/`` and the gradebook through nbgrader's
own ``generate_assignment``); the students' copies in ``student/`` are that release, so there is one
way solutions leave a notebook. ``tests/test_student.py`` fails when ``student/`` is out of date.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from minillama.paths import require_repo_root

COURSE_ID = "minillama"
TEACHER_ONLY_TAG = "teacher-only"
CODE_STUB = "raise NotImplementedError  # your code here"
#: The profile the autograder runs the notebooks in, unless $MINILLAMA_PROFILE says otherwise: the
#: checks do not depend on it, and ``quick`` runs a notebook in seconds, not minutes.
GRADING_PROFILE = "quick"
#: Seconds one cell may run while autograding before nbgrader stops it (a student's endless loop) and
#: gives up on that submission. Generous: a cell of notebook 03 took over 600 s in the quick profile on two
#: cores shared with a dozen other jobs.
CELL_TIMEOUT_S = 1800


class AssignmentError(Exception):
    """A notebook nbgrader cannot release as it should, or an nbgrader command that failed."""


_POINTS_CALL = re.compile(r"^verdict_\d+\.points\(out_of=(\d+(?:\.\d+)?)\)$")

CONFIG = '''\
"""nbgrader's configuration of the {course} course folder, written by `make assignments`.

nbgrader reads it from the folder its commands run in: run them from this folder. Rebuilding
(`make assignments`) rewrites this file, source/ and release/; the gradebook and submissions stay.
"""
import os
import sys

from nbconvert.preprocessors import TagRemovePreprocessor
from nbgrader.converters import GenerateAssignment
from nbgrader.preprocessors import CheckCellMetadata, ClearOutput, DeduplicateIds, OverwriteCells, OverwriteKernelspec

from minillama.course.edited_cells import FlagEditedCells

here = os.path.dirname(os.path.abspath(__file__))
c = get_config()  # noqa: F821 (nbgrader defines it)

c.CourseDirectory.root = here
c.CourseDirectory.course_id = "{course}"
# nbgrader runs the `alembic` command to open the gradebook: the one beside this Python, also when
# nbgrader was started as .venv/bin/nbgrader without activating the environment
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")

# Release: the teacher-only cells go first, then nbgrader's own steps (stubs, locks, checksums).
c.GenerateAssignment.preprocessors = [TagRemovePreprocessor,
                                      *GenerateAssignment.class_traits()["preprocessors"].default()]
c.TagRemovePreprocessor.enabled = True
c.TagRemovePreprocessor.remove_cell_tags = {{"{teacher_only}"}}
c.ClearSolutions.code_stub = {{"python": "{stub}"}}

# Autograde: flag a submission that changed or deleted a read-only or test cell, before nbgrader
# restores those cells from the release; put back a deleted test cell.
c.Autograde.sanitize_preprocessors = [ClearOutput, DeduplicateIds, OverwriteKernelspec, FlagEditedCells,
                                      OverwriteCells, CheckCellMetadata]
c.OverwriteCells.add_missing_cells = True
c.Execute.timeout = {timeout}  # seconds a cell may run
# The checks do not depend on the profile; the quick one runs a notebook in seconds.
os.environ.setdefault("MINILLAMA_PROFILE", "{profile}")

# Where release_assignment puts assignments and students submit (nbgrader's exchange). On a shared
# machine or JupyterHub, point it at a folder every student can write to, e.g. /srv/nbgrader/exchange.
c.Exchange.root = os.path.join(here, "exchange")
'''


def config_text() -> str:
    return CONFIG.format(course=COURSE_ID, teacher_only=TEACHER_ONLY_TAG, stub=CODE_STUB, timeout=CELL_TIMEOUT_S,
                         profile=GRADING_PROFILE)


def source_notebooks(notebooks_dir: Path | None = None) -> list[Path]:
    notebooks_dir = notebooks_dir or require_repo_root("make assignments") / "notebooks"
    return sorted(notebooks_dir.glob("[0-9][0-9]_*.ipynb"))


def _nbgrader_meta(cell: dict) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def check_source(nb: dict, name: str) -> None:
    """Refuse a source notebook that nbgrader would release wrongly: a test cell whose value is not
    its points (nbgrader reads the last value as the cell's credit), a solution region outside an
    answer cell, or a teacher-only cell that nbgrader also tracks."""
    problems = []
    for i, cell in enumerate(nb["cells"]):
        meta, source = _nbgrader_meta(cell), "".join(cell["source"])
        where = f"{name}, cell {i} ({meta.get('grade_id', cell.get('id'))})"
        if meta.get("grade") and cell["cell_type"] == "code":
            last = source.strip().splitlines()[-1] if source.strip() else ""
            m = _POINTS_CALL.match(last)
            if not m or float(m.group(1)) != float(meta.get("points", -1)):
                problems.append(f"{where}: a test cell worth {meta.get('points')} points must end with "
                                f"`verdict_N.points(out_of={meta.get('points')})`, not {last!r}")
            if not source.startswith("# "):
                problems.append(f"{where}: a test cell starts with a comment that says what it checks")
        if "BEGIN SOLUTION" in source and not meta.get("solution"):
            problems.append(f"{where}: a solution region outside an answer cell")
        if TEACHER_ONLY_TAG in cell.get("metadata", {}).get("tags", []) and meta:
            problems.append(f"{where}: a {TEACHER_ONLY_TAG} cell must not be an nbgrader cell")
    if problems:
        raise AssignmentError("cannot release:\n  " + "\n  ".join(problems))


def with_cell_ids(nb: dict, name: str) -> dict:
    """``nb`` with an id on every cell. A cell written without one would get a random id from
    nbformat at each release, and the release would differ every time: give it one made of the
    notebook's name, the cell's place and its text instead."""
    for i, cell in enumerate(nb["cells"]):
        if "id" not in cell:
            cell["id"] = hashlib.sha1(f"{name}:{i}:{''.join(cell['source'])}".encode()).hexdigest()[:8]
    return nb


def nbgrader(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run nbgrader's CLI (of this Python) in ``cwd``; raise with its output if it fails."""
    if importlib.util.find_spec("nbgrader") is None:
        raise AssignmentError("nbgrader is not installed: it comes with the dev extra, `pip install -e '.[dev]'` "
                              "(or `make setup`)")
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd, capture_output=True, text=True,
                          env=env)
    # nbgrader logs a config file it cannot load and goes on without it: never grade like that
    if done.returncode != 0 or "Exception while loading config file" in done.stderr:
        raise AssignmentError(f"nbgrader {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done


def build_course(root: Path, notebooks: list[Path] | None = None) -> dict[str, Path]:
    """Write the course folder ``root`` (config, ``source/``) from ``notebooks`` (default: every
    numbered notebook) and release every assignment of ``source/`` with one ``nbgrader
    generate_assignment``. Returns ``{assignment id: released notebook}`` of ``notebooks``."""
    notebooks = notebooks if notebooks is not None else source_notebooks()
    if not notebooks:
        raise AssignmentError("no notebooks to release")
    for path in notebooks:
        check_source(json.loads(path.read_text()), path.name)
    root.mkdir(parents=True, exist_ok=True)
    (root / "nbgrader_config.py").write_text(config_text())
    for path in notebooks:
        source_dir = root / "source" / path.stem
        source_dir.mkdir(parents=True, exist_ok=True)
        nb = with_cell_ids(json.loads(path.read_text()), path.name)
        (source_dir / path.name).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    nbgrader("generate_assignment", "*", "--force", cwd=root)  # one process: nbgrader takes seconds to start
    return {path.stem: root / "release" / path.stem / path.name for path in notebooks}


def release_copies(notebooks_dir: Path | None = None) -> dict[str, str]:
    """``{file name: released notebook text}``, built in a temporary course folder."""
    with tempfile.TemporaryDirectory(prefix="minillama-release-") as tmp:
        released = build_course(Path(tmp) / "course", source_notebooks(notebooks_dir))
        return {path.name: path.read_text() for path in released.values()}


def write_student(out: Path | None = None) -> list[Path]:
    out = out or require_repo_root("make student") / "student"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in release_copies().items():
        (out / name).write_text(text)
        written.append(out / name)
    for stale in set(out.glob("*.ipynb")) - set(written):
        stale.unlink()  # a notebook that was renamed or removed
    return written


def stale_copies(out: Path | None = None, expected: dict[str, str] | None = None) -> list[str]:
    """Names of student notebooks that are missing or differ from a fresh release."""
    out = out or require_repo_root("make student") / "student"
    expected = expected if expected is not None else release_copies()
    stale = [n for n, text in expected.items() if not (out / n).exists() or (out / n).read_text() != text]
    stale += [p.name for p in out.glob("*.ipynb") if p.name not in expected]
    return sorted(stale)
