"""Instruction following (notebook 05): requests and splits, scoring both formats, the statistics of the
ablation, the positive control, and the dev-split recipe choice."""

import pytest

from minillama.instruct import ablation as A
from minillama.instruct import following as FO
from minillama.instruct import requests as R
from minillama.instruct.following import Scored


def test_splits_are_disjoint_by_composition_and_fixed():
    chains = {s: {p["chain"] for p in R.split_problems(s, n).values()}
              for s, n in (("train", 200), ("dev", 100), ("eval", 150))}
    assert not chains["train"] & chains["dev"] and not chains["train"] & chains["eval"]
    assert not chains["dev"] & chains["eval"]
    assert all(R.split_of(c) == s for s, cs in chains.items() for c in cs)
    assert R.split_problems("eval", 20) == R.split_problems("eval", 20)
    with pytest.raises(ValueError, match="unknown split"):
        R.split_problems("test", 5)


def test_a_request_names_the_function_and_arguments_and_gives_no_scaffold():
    for p in R.split_problems("eval", 40).values():
        signature = p["prompt"].split("\n", 1)[0]
        assert p["instruction"].startswith("[INST] ") and p["instruction"].endswith(" [/INST]")
        assert p["entry_point"] + "(" in p["request"] or f"called {p['entry_point']} " in p["request"]
        assert signature not in p["instruction"] and '"""' not in p["instruction"] and "def " not in p["instruction"]
        # the reference answer, between the tags, passes the hidden tests (in-process: our own code)
        code = R.extract_code(p["answer"])
        assert R.followed_format(p["answer"]) and code == p["answer_code"]
        namespace = {}
        exec(code + p["test"], namespace)
        namespace["check"](namespace[p["entry_point"]])


def test_held_out_phrasings_differ_from_the_training_ones():
    assert not set(R.REQUEST_TEMPLATES["train"]) & set(R.REQUEST_TEMPLATES["heldout"])
    train = [p["request"] for p in R.split_problems("train", 60).values()]
    evaluation = [p["request"] for p in R.split_problems("eval", 60).values()]
    openings = lambda reqs: {r.split()[0] for r in reqs}
    assert not openings(train) & openings(evaluation)


def test_extract_code_is_lenient_and_format_is_counted_apart():
    assert R.extract_code(" [PYTHON]\ndef f(x):\n    return x\n[/PYTHON] trailing") == "def f(x):\n    return x\n"
    assert R.extract_code("def f(x):\n    return x\n") == "def f(x):\n    return x\n"  # no tags: all of it
    assert R.followed_format(" [PYTHON]\ndef f(): pass\n[/PYTHON]")
    assert not R.followed_format("def f(): pass\n[/PYTHON]") and not R.followed_format(" [PYTHON]\ndef f(): pass")


def test_a_docstring_answer_ends_where_the_body_ends():
    assert FO.end_of_body("    x = 1\n\n    return x\n[/PYTHON]") == "    x = 1\n\n    return x\n"
    assert FO.end_of_body("    return 1\n\n\ndef g():\n    pass\n") == "    return 1\n\n\n"
    assert FO.end_of_body("    return 1\n") == "    return 1\n"


def test_paired_difference_averages_seeds_per_problem():
    same = [[True, False, True, False]] * 3
    r = FO.paired_difference(same, same[0])
    assert r["difference"] == 0 and r["p"] == 1.0 and r["seeds"] == 3 and r["n"] == 4
    n = 60
    better = [[True] * n for _ in range(3)]
    worse = [i % 3 == 0 for i in range(n)]
    r = FO.paired_difference(better, worse)
    assert r["difference"] == pytest.approx(2 / 3) and r["p"] < 0.001 and 0 < r["ci95"][0] < r["ci95"][1] <= 1
    # one problem solved by one seed of three counts 1/3, not 1
    r = FO.paired_difference([[True, False], [False, False], [False, False]], [False, False])
    assert r["difference"] == pytest.approx(1 / 6)


def _arms(base_inst, base_doc, oracle_inst, oracle_doc, n=100, seeds=3):
    def scored(rate):  # the first round(rate * n) problems pass
        passed = [i < round(rate * n) for i in range(n)]
        return Scored([str(i) for i in range(n)], passed, [""] * n, [True] * n)

    base = {"instruct": scored(base_inst), "docstring": scored(base_doc)}
    scores = {"oracle": {s: {"instruct": scored(oracle_inst), "docstring": scored(oracle_doc)} for s in range(seeds)}}
    return A.Arms({str(i): {} for i in range(n)}, base, scores, {}, 50, {})


def test_the_positive_control_needs_the_gain_and_no_forgetting():
    assert A.control(_arms(0.0, 0.8, 0.5, 0.8))["passed"]
    assert not A.control(_arms(0.0, 0.8, 0.5, 0.6))["passed"]  # forgot the docstring format
    assert not A.control(_arms(0.0, 0.8, 0.08, 0.8))["passed"]  # a gain under 15 points
    no_oracle = _arms(0.0, 0.8, 0.5, 0.8)
    no_oracle.scores = {}
    assert A.control(no_oracle) == {"passed": False, "reason": "the oracle arm did not run"}


def test_format_record_and_min_detectable():
    a = _arms(0.1, 0.8, 0.6, 0.8)
    rec = A.format_record(a, "instruct")
    assert rec["base"]["n"] == 100 and len(rec["oracle"]["per_seed"]) == 3
    assert rec["oracle"]["ci95"][0] < rec["oracle"]["pass@1"] == 0.6 < rec["oracle"]["ci95"][1]
    assert 0 < A.min_detectable(a.runs("oracle", "instruct"), a.runs("base", "instruct")) < 0.5


def test_best_recipe_is_chosen_on_dev_with_the_forgetting_limit():
    records = [{"arm": "base", "instruct": {"pass@1": 0.0}, "docstring": {"pass@1": 0.80}},
               {"arm": "oracle", "steps": 100, "batch_size": 16, "instruct": {"pass@1": 0.60}, "docstring": {"pass@1": 0.70}},
               {"arm": "oracle", "steps": 60, "batch_size": 16, "instruct": {"pass@1": 0.50}, "docstring": {"pass@1": 0.79}},
               {"arm": "oracle", "steps": 40, "batch_size": 16, "instruct": {"pass@1": 0.50}, "docstring": {"pass@1": 0.81}}]
    from minillama.instruct.trials import best_recipe
    assert best_recipe(records)["steps"] == 40  # 100 steps forgot; of the equal two, the cheaper
    assert best_recipe(records[:2]) is None
    records.append({"arm": "oracle", "steps": 200, "batch_size": 16, "instruct": {"pass@1": 0.9},
                    "docstring": {"pass@1": 0.8}})
    assert best_recipe(records)["steps"] == 40  # 3,200 rows: over the notebook's budget
    assert best_recipe(records, max_rows=None)["steps"] == 200


def test_the_base_model_fails_the_instruct_format_and_one_tuned_step_runs():
    """On the shipped coding model, tiny sizes: the base writes no answer in [PYTHON] tags; a few fine-tuning
    steps on reference answers run and change the answers' form."""
    import torch
    from minillama.codeworld.reference import coding_model
    torch.set_num_threads(1)
    model, tok, _ = coding_model("reference")
    problems = R.split_problems("dev", 6)
    base = FO.score(model, tok, problems, "instruct")
    assert sum(base.format_followed) == 0
    data = FO.reference_examples(R.split_problems("train", 40))
    from dataclasses import replace
    from minillama.profiles import get_profile
    sizes = replace(get_profile("quick").instruct, sft_steps=30, batch_size=8, lr=1e-3)
    tuned, losses = A.tune(model, tok, data, sizes, 0, A.world_rehearsal(tok, n=16))
    assert losses[-1] < losses[0]
    after = FO.score(tuned, tok, problems, "instruct")
    assert sum(after.format_followed) >= 3


def test_a_bad_grid_is_refused_before_any_model_is_loaded():
    import subprocess
    import sys
    from minillama.instruct.trials import check_grid
    check_grid([{"steps": 60, "batch_size": 16, "lr": 3e-4, "n": 100}])
    with pytest.raises(ValueError, match="unknown recipe keys"):
        check_grid([{"steps": 60, "stepz": 1}])
    with pytest.raises(ValueError, match="number of steps"):
        check_grid([{"lr": 1e-3}])
    for grid, says in (("nope", "is not JSON"), ('{"steps": 1}', "JSON list"), ('[{"lr": 1}]', "number of steps")):
        out = subprocess.run([sys.executable, "-m", "minillama", "instruct-trials", "--grid", grid],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode != 0 and says in out.stderr and "Traceback" not in out.stderr
