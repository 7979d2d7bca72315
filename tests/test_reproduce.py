"""make reproduce replaces results/<profile>/ only when every notebook ran."""

import json

import nbformat
import pytest

from minillama.course.reproduce import reproduce


def _notebook(path, code):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


RECORD = "from minillama.course.results import record\nrecord('demo', value={value})\n"


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    """A notebooks folder and the quick profile's results folder, in a temporary directory."""
    monkeypatch.setenv("MINILLAMA_PROFILE", "quick")
    monkeypatch.delenv("MINILLAMA_RESULTS_DIR", raising=False)
    nbs, out = tmp_path / "notebooks", tmp_path / "results" / "quick"
    nbs.mkdir()
    return nbs, out


@pytest.mark.slow
def test_a_failed_run_leaves_the_previous_results(dirs):
    nbs, out = dirs
    _notebook(nbs / "01_demo.ipynb", RECORD.format(value=1))
    assert reproduce(out, notebooks_dir=nbs) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["demo"] == {"value": 1} and summary["run"]["failures"] == {}
    assert (out / "REPORT.md").exists() and (out / "notebooks" / "01_demo.ipynb").exists()

    _notebook(nbs / "01_demo.ipynb", RECORD.format(value=2))
    _notebook(nbs / "02_broken.ipynb", "raise RuntimeError('boom')")
    assert reproduce(out, notebooks_dir=nbs) == 1
    assert json.loads((out / "summary.json").read_text())["demo"] == {"value": 1}  # untouched
    incomplete = out.with_name("quick.incomplete")
    assert json.loads((incomplete / "summary.json").read_text())["run"]["failures"]
    assert not list(out.parent.glob(".quick.staging-*"))


@pytest.mark.slow
def test_a_partial_rerun_keeps_the_other_notebooks_results_and_times(dirs):
    nbs, out = dirs
    _notebook(nbs / "01_demo.ipynb", RECORD.format(value=1))
    _notebook(nbs / "02_other.ipynb", "from minillama.course.results import record\nrecord('other', value=7)\n")
    assert reproduce(out, notebooks_dir=nbs) == 0
    first = json.loads((out / "summary.json").read_text())["run"]
    assert first["full_run"]["wall_seconds"] == first["wall_seconds"] and "last full run" not in (out / "REPORT.md").read_text()
    _notebook(nbs / "02_other.ipynb", "from minillama.course.results import record\nrecord('other', value=8)\n")
    assert reproduce(out, only=["02"], notebooks_dir=nbs) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"]["full_run"] == first["full_run"]  # the full run's own times survive the rerun
    assert "The last full run" in (out / "REPORT.md").read_text()
    assert summary["demo"] == {"value": 1} and summary["other"] == {"value": 8}
    run = summary["run"]
    assert run["notebooks"] == ["01_demo", "02_other"] and run["rerun"] == ["02_other"]
    assert set(run["wall_seconds"]) == {"01_demo", "02_other"}
    assert run["wall_seconds_total"] == pytest.approx(sum(run["wall_seconds"].values()), abs=0.2)
    assert reproduce(out, only=["01"], notebooks_dir=nbs) == 0  # a second partial rerun adds to the list
    again = json.loads((out / "summary.json").read_text())["run"]
    assert again["rerun"] == ["01_demo", "02_other"] and again["full_run"] == first["full_run"]


def test_the_recorded_commit_ignores_the_runs_own_results(tmp_path):
    import subprocess

    from minillama.course.reproduce import git_commit

    def git(*a):
        subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)
    git("init", "-q")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "summary.json").write_text("{}")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    (tmp_path / "results" / "summary.json").write_text('{"run": {}}')
    assert not git_commit(tmp_path).endswith("-dirty")
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_commit(tmp_path).endswith("-dirty")
