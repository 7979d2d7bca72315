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
    from minillama.codeworld.reference import RECIPE_ARGS
    shipped_name = RECIPE_ARGS[RECIPE_ARGS.index("--name") + 1]
    row = next(r for r in read_log() if r["name"] == shipped_name)  # the shipped reference's row
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
    inst, doc, ctrl = si["instruct_format"], si["docstring_format"], si["control"]
    pct = lambda d: f"{100 * d['pass@1']:.1f}"
    base_i, n, base_fmt, base_d = quoted(
        "05_self_instruct.ipynb", r"Asked in the Instruct format, the coding model solves ([\d.]+) % of the (\d+) "
                                  r"held-out problems \(([\d.]+) % of its answers in `\[PYTHON\]` tags\); asked the same "
                                  r"problems in its own docstring format it solves ([\d.]+) %")
    assert (base_i, int(n), base_d) == (pct(inst["base"]), si["n_eval"], pct(doc["base"]))
    assert base_fmt == f"{100 * inst['base']['format']:.0f}"
    n_ex, oracle_i, seeds, gain, lo, hi, oracle_d, change = quoted(
        "05_self_instruct.ipynb", r"Fine-tuned on (\d+) reference answers .*? it solves ([\d.]+) % of the held-out "
                                  r"requests \(mean of (\d) seeds; ([+-][\d.]+) points \[([+-][\d.]+), ([+-][\d.]+)\] "
                                  r"over the base, bootstrap over problems\) and ([\d.]+) % in the docstring format "
                                  r"\(([+-][\d.]+) points")
    g, d = ctrl["instruct_gain"], ctrl["docstring_change"]
    assert (int(n_ex), oracle_i, int(seeds)) == (si["n_examples"], pct(inst["oracle"]), len(si["seeds"]))
    assert (gain, lo, hi) == tuple(f"{100 * x:+.1f}" for x in (g["difference"], *g["ci95"]))
    assert (oracle_d, change) == (pct(doc["oracle"]), f"{100 * d['difference']:+.1f}")
    assert ("The positive control passes" in markdown("05_self_instruct.ipynb")) == si["control_passed"]
    filt, unf, orc, fu, fu_lo, fu_hi, p = quoted(
        "05_self_instruct.ipynb", r"equal in size: filtered ([\d.]+) %, unfiltered ([\d.]+) %, oracle ([\d.]+) % in the "
                                  r"Instruct format\. Filtered − unfiltered: ([+-][\d.]+) points \[([+-][\d.]+), "
                                  r"([+-][\d.]+)\], paired permutation p = ([\d.e+-]+)")
    c = si["comparisons"]["filtered vs unfiltered, instruct"]
    assert (filt, unf, orc) == (pct(inst["filtered"]), pct(inst["unfiltered"]), pct(inst["oracle"]))
    assert (fu, fu_lo, fu_hi, p) == (*(f"{100 * x:+.1f}" for x in (c["difference"], *c["ci95"])), f"{c['p']:.2g}")
    tt, tw, kept_paper, nq = quoted("05_self_instruct.ipynb", r"tests are rarely true \((\d+) of (\d+)\).*?the paper's "
                                                              r"funnel keeps (\d+) of (\d+) questions")
    pq = si["filter"]["model tests"]
    assert (int(tt), int(tw), int(kept_paper), int(nq)) == (pq["tests_true"], pq["tests_written"],
                                                            si["paper_funnel"]["with_passing_solution"],
                                                            si["funnel"]["deduplicated"])
    sizes = CPU.instruct
    assert si["sizes"]["sft_steps"] == sizes.sft_steps and si["sizes"]["lr"] == sizes.lr  # the run used the profile


def test_the_instruct_recipe_is_the_dev_trials_choice():
    """The cpu profile's fine-tuning recipe is what the logged dev trials choose by their stated rule, and the
    table in docs/instruct_trials.md is those trials."""
    from minillama.instruct.trials import best_recipe, trials_table
    records = [json.loads(line) for line in (ROOT / "docs" / "instruct_trials.jsonl").read_text().splitlines()]
    best = best_recipe(records)
    sizes = CPU.instruct
    assert (best["steps"], best["batch_size"], best["lr"], best["rehearsal_frac"], best.get("weight_decay", 0.0)) == \
        (sizes.sft_steps, sizes.batch_size, sizes.lr, sizes.rehearsal_frac, sizes.weight_decay)
    assert trials_table(records) in (ROOT / "docs" / "instruct_trials.md").read_text()