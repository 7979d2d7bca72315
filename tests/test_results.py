"""Recording results and writing the reproduction report."""

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from minillama.course import results  # noqa: E402
from minillama.paths import RESULTS_ENV  # noqa: E402
from minillama.course.report import write_report  # noqa: E402


def test_record_merges_sections_atomically(tmp_path, monkeypatch):
    monkeypatch.setenv(RESULTS_ENV, str(tmp_path))
    results.record("rope", longest_wavelength=54_000.5)
    results.record("rope", theta=1e6)
    results.record("pretraining", val_loss_l2r_fim=1.25)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary == {"rope": {"longest_wavelength": 54_000.5, "theta": 1e6},
                       "pretraining": {"val_loss_l2r_fim": 1.25}}
    assert not list(tmp_path.glob("*.tmp"))


def test_report_lists_sections_and_figures(tmp_path, monkeypatch):
    monkeypatch.setenv(RESULTS_ENV, str(tmp_path))
    results.record("run", profile="quick", wall_seconds_total=12.0, wall_seconds={"01_rope": 12.0})
    results.record("long_context", ppl_at_16x={"lcft_theta_1e6": 3.5, "pi": 9.25})
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    results.save_figure(fig, "01_demo")
    plt.close(fig)
    text = write_report(tmp_path).read_text()
    assert "Profile `quick`" in text and "| 01_rope | 12.0 |" in text
    assert "lcft_theta_1e6: 3.5" in text and "figures/01_demo.png" in text


def test_default_results_dir_is_outside_the_committed_results(monkeypatch):
    monkeypatch.delenv(RESULTS_ENV, raising=False)
    monkeypatch.setenv("MINILLAMA_PROFILE", "quick")
    assert "artifacts" in str(results.results_dir())


def test_report_renders_nested_figures_as_tables(tmp_path, monkeypatch):
    monkeypatch.setenv(RESULTS_ENV, str(tmp_path))
    results.record("codeworld", pass1={"instances": {"pass@1": 0.5, "n": 150, "ci95": [0.42, 0.58]},
                                       "compositions": {"pass@1": 0.2, "n": 150, "ci95": [0.14, 0.27]}},
                   ppl={"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}, rows=[{"T": 256, "s": 0.1}, {"T": 512, "s": 0.2}])
    text = write_report(tmp_path).read_text()
    assert "|  | `ci95` | `n` | `pass@1` |" in text  # summary.json keeps keys sorted
    assert "| `instances` | [0.42, 0.58] | 150 | 0.5 |" in text
    assert "| `d` | 4 |" in text and "| `1` | 512 | 0.2 |" in text
    assert "instances: " not in text  # never run-on "key: value" text


def test_an_empty_figure_is_not_saved(tmp_path, monkeypatch):
    monkeypatch.setenv(RESULTS_ENV, str(tmp_path))
    fig, ax = plt.subplots()
    ax.set_title("nothing measured")
    assert results.save_figure(fig, "05_empty") is None
    plt.close(fig)
    assert not (tmp_path / "figures" / "05_empty.png").exists()
