"""Students' copies are current, keep the self-checks and drop the answers."""

import json

from minillama.course import student
from minillama.paths import repo_root


def test_student_copies_are_current():
    assert student.stale_copies() == [], "student/ is out of date: run `make student` and commit it"


def test_solutions_are_removed_and_checks_kept():
    for name, text in student.student_copies().items():
        original = json.loads((repo_root() / "notebooks" / name).read_text())
        copy = json.loads(text)
        tags = [c.get("metadata", {}).get("tags", []) for c in copy["cells"]]
        assert not any("solution" in t for t in tags), name
        n_solutions = sum("solution" in c.get("metadata", {}).get("tags", []) for c in original["cells"])
        assert n_solutions, f"{name} has no solution cell: every exercise has one (tests/test_exercises.py)"
        assert len(copy["cells"]) == len(original["cells"]) - n_solutions
        assert any("## Exercises" in "".join(c["source"]) for c in copy["cells"]), f"{name} has no exercises"
    rope = json.loads(student.student_copies()["01_rope.ipynb"])
    source = "\n".join("".join(c["source"]) for c in rope["cells"])
    assert "check_apply_rope" in source and "return x * cos + rotated * sin" not in source
