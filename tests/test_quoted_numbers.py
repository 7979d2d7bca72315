"""Numbers quoted in the notebooks' text equal what the reference run measured (``results/cpu/summary.json``),
the attempt log or the profile that produced them. Text cannot print, so each quote is checked here: a rerun
that moves a number fails this test until the text says the new one."""

import json
import re

import pytest

from minillama.codeworld.report import read_log
from minillama.paths import repo_root
from minillama.profiles import get_profile

ROOT = repo_root()
SUMMARY = json.loads((ROOT / "results" / "cpu" / "summary.json").read_text())
CPU = get_profile("cpu")


def markdown(notebook: str) -> str:
    cells = json.loads((ROOT / "notebooks" / notebook).read_text())["cells"]
    # a line break inside a sentence is a space to the reader
    return re.sub(r"\s+", " ", " ".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown"))


def quoted(notebook: str, pattern: str) -> tuple[str, ...]:
    """The groups of ``pattern`` in the notebook's markdown; fails when the sentence is gone."""
    m = re.search(pattern, markdown(notebook))
    assert m, f"{notebook}: no text matches {pattern!r}: update the quote and this test together"
    return m.groups()


def test_the_stdlib_models_token_budget():
    tokens = SUMMARY["pretraining"]["tokens"]
    assert tokens == CPU.train_steps * CPU.batch_size * CPU.seq_len  # 240 × 16 × 256
    (m06,) = quoted("06_evaluation.ipynb", r"trained on ([\d.]+) million tokens of the standard library")
    assert m06 == f"{tokens / 1e6:.2f}"
    m03, per_param = quoted("03_pretraining.ipynb", r"sees ([\d.]+) million tokens \(([\d.]+) per parameter\)")
    assert (m03, per_param) == (f"{tokens / 1e6:.1f}", f"{SUMMARY['pretraining']['tokens_per_parameter']:.2f}")


def test_compositions_in_the_attempt_log_and_in_notebook_06():
    log, log_k, log_n, nb, nb_k, nb_n = quoted(
        "03_pretraining.ipynb", r"compositions ([\d.]+) % \((\d+) / (\d+)\) in the log, ([\d.]+) % \((\d+) / (\d+)\)")
    row = next(r for r in read_log() if r["name"] == "C2-v4-long-4k")  # the shipped reference's row
    assert float(log) == row["compositions"] == pytest.approx(100 * int(log_k) / int(log_n), abs=0.05)
    shipped = SUMMARY["codeworld"]["pass1"]["compositions"]
    assert (int(nb_k), int(nb_n)) == (shipped["passed"], shipped["n"])
    assert nb == f"{100 * shipped['pass@1']:.1f}"


def test_long_context_steps_and_retrieval_numbers():
    lc = SUMMARY["long_context"]
    assert lc["ft_steps"] == CPU.long_context.ft_steps
    (steps,) = quoted("04_long_context.ipynb", r"`ft_steps` steps \(the summary above prints them: (\d+) on the `cpu`")
    assert int(steps) == CPU.long_context.ft_steps
    base, at100 = quoted("04_long_context.ipynb", r"\(the base: (\d+) %\); 50 steps brought it to \d+ %, 100 steps "
                                                  r"\(the profile's setting\) to (\d+) %")
    assert int(base) == round(100 * lc["retrieval_control"])
    assert int(at100) == round(100 * lc["retrieval_at_1x"]["lcft_theta_1e6"])
    (positions,) = quoted("04_long_context.ipynb", r"we use three, ([\d. /]+) \(`retrieval_positions`")
    assert [float(p) for p in positions.split(" / ")] == list(CPU.long_context.retrieval_positions) \
        == lc["retrieval_positions"]


def test_self_instruct_summary():
    si = SUMMARY["self_instruct"]
    # the pilot that chose the learning rate ran on the first reference (world v3), and says so
    (base,) = quoted("05_self_instruct.ipynb", r"run on the \*\*first\*\* reference model \(world v3, now "
                                               r"`models/codeworld-v3/`; base ([\d.]+) %\)")
    v3_row = next(r for r in read_log() if r["name"] == "reference")  # the world-v3 model's own row
    assert abs(float(base) - v3_row["compositions"]) <= 1.0  # the same model, decoded by another generator
    f_u, f_b, p_b = quoted("05_self_instruct.ipynb",
                           r"filtered beat unfiltered\*\* \(\+([\d.]+) points.*?did not beat the base\*\* "
                           r"significantly\s+\(([+−][\d.]+) points, p = ([\d.]+)\)")
    assert f_u == f"{100 * (si['pass1_filtered'] - si['pass1_unfiltered']):.1f}"
    assert f_b.replace("−", "-") == f"{100 * (si['pass1_filtered'] - si['pass1_base']):+.1f}"
    assert si["p_filtered_vs_base"] >= 0.05  # "did not beat the base" is what the paired test says
    assert p_b == f"{si['p_filtered_vs_base']:.2f}"
    fixed, kept, oracle_times, filtered_times = quoted(
        "05_self_instruct.ipynb", r"\((\d+) against (\d+)\), so .*? show each about (\d+) times against (\d+)")
    sizes = CPU.instruct
    assert (int(fixed), int(kept)) == (sizes.n_fixed, si["kept"])
    rows = sizes.sft_steps * sizes.batch_size * (1 - sizes.rehearsal_frac)  # answer rows the fine-tuning draws
    assert (int(oracle_times), int(filtered_times)) == (round(rows / sizes.n_fixed), round(rows / si["kept"]))
