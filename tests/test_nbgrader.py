"""A class taught with nbgrader, through nbgrader's own CLI in a temporary course folder.

The instructor builds the course from notebook 01 (``make assignments`` does the same from every
notebook) and releases it; three students fetch it and submit; the instructor collects, autogrades,
exports the gradebook and writes the feedback. ada hands in the reference answers; bob a right, a
wrong and a close answer; eve claims the points of a test she did not pass by editing its test cell,
edits a read-only statement and deletes another test cell. One assignment keeps this inside ``make
test``; ``make grading-check`` autogrades all six with the reference answers and with the stubs.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from minillama.course.assignments import COURSE_ID, build_course, nbgrader
from minillama.course.grading import answered, gradebook_result, reference_answers
from minillama.paths import repo_root

pytest.importorskip("nbgrader")

ASSIGNMENT = "01_rope"
SOURCE = repo_root() / "notebooks" / f"{ASSIGNMENT}.ipynb"

BOB = {  # right, wrong (the exponent 1 instead of (d-2)/d), close (floor instead of ceil at the boundary)
    "exercise_2": "def longest_wavelength(head_dim, theta):\n    return 2 * math.pi * theta",
    "exercise_3": ("def yarn_interpolated(head_dim, theta, original_len, factor):\n"
                   "    boundary = head_dim * math.log(original_len / (2 * math.pi)) / (2 * math.log(theta))\n"
                   "    return list(range(max(math.floor(boundary), 0), head_dim // 2))"),
}
FORGED_TEST = "verdict_1 = None\n2.0  # full points, whatever the answer"


def _cell(nb: dict, grade_id: str) -> dict:
    (cell,) = [c for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id]
    return cell


def eve_tampers(nb: dict) -> dict:
    """The stub of exercise 1 kept, its test cell forged; exercise 2's statement edited; exercise 3's
    test cell deleted; answers 2 and 3 right."""
    _cell(nb, "exercise_1_tests")["source"] = FORGED_TEST
    _cell(nb, "exercise_2_statement")["source"] = "**Exercise 2** (2 points). Skip this one."
    nb["cells"].remove(_cell(nb, "exercise_3_tests"))
    return nb


@pytest.fixture(scope="module")
def classroom(tmp_path_factory):
    """Run the whole flow once; the tests below read what it left."""
    tmp = tmp_path_factory.mktemp("class")
    root = tmp / "course"
    released = build_course(root, [SOURCE])[ASSIGNMENT]
    nbgrader("release_assignment", ASSIGNMENT, cwd=root)

    exchange = [f"--Exchange.root={root / 'exchange'}", f"--course={COURSE_ID}"]
    home = tmp / "students"
    home.mkdir()
    nbgrader("fetch_assignment", ASSIGNMENT, *exchange, cwd=home)
    fetched = json.loads((home / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text())
    reference = reference_answers(json.loads(SOURCE.read_text()))
    handed_in = {
        "ada": answered(fetched, reference),
        "bob": answered(fetched, {**reference, **BOB}),
        "eve": eve_tampers(answered(fetched, {k: v for k, v in reference.items() if k != "exercise_1"})),
    }
    for student, nb in handed_in.items():
        folder = tmp / student
        shutil.copytree(home / ASSIGNMENT, folder / ASSIGNMENT)
        (folder / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").write_text(json.dumps(nb, indent=1, ensure_ascii=False))
        nbgrader("submit", ASSIGNMENT, *exchange, f"--student={student}", cwd=folder)

    nbgrader("collect", ASSIGNMENT, cwd=root)
    autograde = nbgrader("autograde", ASSIGNMENT, cwd=root)
    nbgrader("export", cwd=root)
    nbgrader("generate_feedback", ASSIGNMENT, cwd=root)
    return {"root": root, "released": json.loads(released.read_text()), "fetched": fetched,
            "log": autograde.stdout + autograde.stderr,
            "grades": {row["student_id"]: row for row in csv.DictReader((root / "grades.csv").open())},
            "feedback": {s: (root / "feedback" / s / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
                         for s in handed_in}}


def test_the_release_is_what_students_fetch_and_has_no_answer(classroom):
    assert classroom["fetched"] == classroom["released"]
    answers = [line.strip() for answer in reference_answers(json.loads(SOURCE.read_text())).values()
               for line in answer.splitlines()[1:]]  # below the signature
    text = json.dumps(classroom["released"], ensure_ascii=False)
    assert not [line for line in answers if json.dumps(line, ensure_ascii=False)[1:-1] in text]
    assert "teacher-only" not in text and "BEGIN SOLUTION" not in text


def test_collect_puts_each_submission_in_the_course_folder(classroom):
    submitted = classroom["root"] / "submitted"
    assert sorted(p.name for p in submitted.iterdir()) == ["ada", "bob", "eve"]
    assert all((submitted / s / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").is_file() for s in ("ada", "bob", "eve"))


def test_the_reference_answers_get_every_point(classroom):
    ada = gradebook_result(classroom["root"], ASSIGNMENT, "ada")
    assert ada.cells == {"exercise_1_tests": 2, "exercise_2_tests": 2, "exercise_3_tests": 2}
    assert (ada.score, ada.max_score, ada.flagged) == (6, 6, False)


def test_a_wrong_and_a_close_answer_get_partial_points_and_feedback_that_says_why(classroom):
    bob = gradebook_result(classroom["root"], ASSIGNMENT, "bob")
    assert bob.cells == {"exercise_1_tests": 2, "exercise_2_tests": 0, "exercise_3_tests": 1}
    assert (bob.score, bob.flagged) == (3, False)
    feedback = classroom["feedback"]["bob"]
    assert "exercise 01.1: right" in feedback
    assert "exercise 01.2: wrong" in feedback and "so its exponent is (d−2)/d, not 1" in feedback
    assert "exercise 01.3: close" in feedback and "the first fully interpolated pair is ceil()" in feedback


def test_edited_and_deleted_test_cells_are_restored_and_the_submission_flagged(classroom):
    eve = gradebook_result(classroom["root"], ASSIGNMENT, "eve")
    # the forged test cell was graded as released (a stub: 0), the deleted one was put back (2)
    assert eve.cells == {"exercise_1_tests": 0, "exercise_2_tests": 2, "exercise_3_tests": 2}
    assert (eve.score, eve.flagged) == (4, True)
    feedback = classroom["feedback"]["eve"]
    assert "Flagged by the autograder" in feedback
    for name in ("exercise_1_tests", "exercise_2_statement", "exercise_3_tests"):
        assert name in feedback
    assert "exercise 01.1: not attempted" in feedback
    assert "eve/01_rope/01_rope flagged" in classroom["log"]


def test_the_gradebook_totals(classroom):
    grades = classroom["grades"]
    assert {s: (float(g["score"]), float(g["max_score"])) for s, g in grades.items()} == \
        {"ada": (6, 6), "bob": (3, 6), "eve": (4, 6)}
    assert all(g["assignment"] == ASSIGNMENT for g in grades.values())


def test_the_grading_check_fails_when_a_reference_loses_a_point_or_a_stub_earns_one(monkeypatch, capsys):
    from minillama.course import grading

    scores = {("01_rope", "reference"): 6, ("01_rope", "stubs"): 0, ("02_fim", "reference"): 5,
              ("02_fim", "stubs"): 1}
    monkeypatch.setattr(grading, "build_course", lambda root, notebooks: {p.stem: p for p in notebooks})
    monkeypatch.setattr(grading, "reference_submission", lambda source, release: {})
    monkeypatch.setattr(grading, "submit", lambda *args: None)
    monkeypatch.setattr(grading, "autograde", lambda root, assignment, student: grading.Graded(
        student, assignment, scores[assignment, student], 6, {}, False, 1.0, 1.0))
    assert grading.grading_check(["01"]) == 0
    assert grading.grading_check(["01", "02"]) == 1
    err = capsys.readouterr().err
    assert "02_fim: the reference answers got 5/6" in err and "02_fim: the stubs got 1/6" in err
    assert "FAILED: 01_rope" not in err
