"""Students' copies are nbgrader's release of the notebooks (one mechanism: the one ``make assignments``
runs): current, with every cell but the teacher-only ones, the checks locked, the answers stubbed."""

import json

import pytest

from minillama.course import assignments
from minillama.paths import repo_root

pytest.importorskip("nbgrader")


@pytest.fixture(scope="module")
def released() -> dict[str, str]:
    return assignments.release_copies()  # nbgrader generate_assignment, in a temporary course folder


def _meta(cell: dict) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def test_student_copies_are_current(released):
    assert released, "no notebook was released"
    assert assignments.stale_copies(expected=released) == [], \
        "student/ is out of date: run `make student` and commit it"


def test_the_release_is_the_notebook_with_stubs_locked_tests_and_no_teacher_cells(released):
    for name, text in released.items():
        original = assignments.with_cell_ids(json.loads((repo_root() / "notebooks" / name).read_text()), name)["cells"]
        copy = json.loads(text)["cells"]
        kept = [c for c in original if assignments.TEACHER_ONLY_TAG not in c.get("metadata", {}).get("tags", [])]
        assert len(kept) == len(original) - 1, f"{name}: one teacher-only cell"
        assert [c["id"] for c in copy] == [c["id"] for c in kept], f"{name}: the same cells in the same order"
        n_tests = 0
        for before, after in zip(kept, copy):
            meta, source = _meta(before), "".join(after["source"])
            if meta.get("solution"):  # the signature stays, the body is the stub
                signature = "".join(before["source"]).splitlines()[0]
                assert source == f"{signature}\n    {assignments.CODE_STUB}", f"{name}: {meta['grade_id']}"
            else:
                assert source == "".join(before["source"]), f"{name}: a cell other than an answer changed"
            if meta.get("locked"):  # tests, statements, the checks' import: read-only in Jupyter
                assert after["metadata"]["editable"] is False and after["metadata"]["deletable"] is False
                assert _meta(after)["checksum"], f"{name}: nbgrader records what a read-only cell holds"
            n_tests += bool(meta.get("grade"))
            assert after.get("outputs", []) == [], f"{name}: the release has no outputs"
        assert n_tests >= 2, f"{name}: {n_tests} test cells"


def _nb(*cells: dict) -> dict:
    return {"cells": [{"cell_type": "code", "source": s, "metadata": m, "outputs": []} for s, m in cells]}


def test_a_notebook_that_nbgrader_would_release_wrongly_is_refused():
    test = {"nbgrader": {"grade": True, "grade_id": "t", "locked": True, "points": 2, "solution": False}}
    answer = {"nbgrader": {"grade": False, "grade_id": "a", "locked": False, "solution": True}}
    good = ("# Test of exercise 1: f against g\nverdict_1 = ex.check_f(f)\nverdict_1.points(out_of=2)", test)
    assignments.check_source(_nb(("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION", answer),
                                 good), "ok.ipynb")
    bad = {
        "worth": ("# Test\nverdict_1 = ex.check_f(f)\nverdict_1.points(out_of=3)", test),  # metadata says 2
        "must end with": ("# Test\nverdict_1 = ex.check_f(f)", test),  # no value: nbgrader would give full points
        "says what it checks": ("verdict_1 = ex.check_f(f)\nverdict_1.points(out_of=2)", test),
        "outside an answer cell": ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION", {}),
        "must not be an nbgrader cell": ("assert ok", {**answer, "tags": [assignments.TEACHER_ONLY_TAG]}),
    }
    for phrase, cell in bad.items():
        with pytest.raises(assignments.AssignmentError, match=phrase):
            assignments.check_source(_nb(cell), "bad.ipynb")


def test_cells_without_an_id_get_one_that_does_not_change():
    nb = {"cells": [{"id": "keep", "source": "a"}, {"source": ["b"]}, {"source": "b"}]}
    ids = [c["id"] for c in assignments.with_cell_ids(json.loads(json.dumps(nb)), "x.ipynb")["cells"]]
    assert ids[0] == "keep" and len(set(ids)) == 3
    assert ids == [c["id"] for c in assignments.with_cell_ids(json.loads(json.dumps(nb)), "x.ipynb")["cells"]]
