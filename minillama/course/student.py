"""Students' copies of the notebooks: ``make student`` writes them to ``student/``.

A cell tagged ``solution`` is the teacher's answer to the exercise stub (tagged ``exercise``)
just before it, or the teacher-only assertion that every answer is graded right; students get
the stub and the check, not the answer (the convention: :mod:`minillama.exercises.verdict`).
Outputs are never kept. ``tests/test_student.py`` fails when ``student/`` is out of date with
``notebooks/``; ``tests/test_exercises.py`` when a copy holds a line of a solution.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from minillama.paths import require_repo_root

SOLUTION_TAG = "solution"


def student_notebook(nb: dict) -> dict:
    """The notebook without solution cells and without outputs."""
    cells = []
    for cell in nb["cells"]:
        if SOLUTION_TAG in cell.get("metadata", {}).get("tags", []):
            continue
        cell = dict(cell)
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
        cells.append(cell)
    return {**nb, "cells": cells}


def render(nb: dict) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def student_copies(notebooks_dir: Path | None = None) -> dict[str, str]:
    """``{file name: notebook JSON text}`` for every numbered notebook."""
    notebooks_dir = notebooks_dir or require_repo_root("make student") / "notebooks"
    return {p.name: render(student_notebook(json.loads(p.read_text())))
            for p in sorted(notebooks_dir.glob("[0-9][0-9]_*.ipynb"))}


def write_student(out: Path | None = None) -> list[Path]:
    out = out or require_repo_root("make student") / "student"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in student_copies().items():
        (out / name).write_text(text)
        written.append(out / name)
    for stale in set(out.glob("*.ipynb")) - set(written):
        stale.unlink()  # a notebook that was renamed or removed
    return written


def stale_copies(out: Path | None = None) -> list[str]:
    """Names of student notebooks that are missing or differ from a fresh build."""
    out = out or require_repo_root("make student") / "student"
    expected = student_copies()
    stale = [n for n, text in expected.items() if not (out / n).exists() or (out / n).read_text() != text]
    stale += [p.name for p in out.glob("*.ipynb") if p.name not in expected]
    return sorted(stale)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale copies (exit 1 if any)")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_copies()
        print("student/ is current" if not stale else f"stale in student/: {', '.join(stale)}; run `make student`")
        return 1 if stale else 0
    for path in write_student():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
