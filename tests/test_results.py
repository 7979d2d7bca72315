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
