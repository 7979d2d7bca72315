"""``python -m minillama eval-canonical`` and ``python -m minillama check``: the sandbox from
the command line. ``__main__`` calls :func:`add_parser`."""

from __future__ import annotations

import argparse
import collections
import time


def eval_canonical(args: argparse.Namespace) -> int:
    from minillama.benchmarks import load_humaneval, load_humaneval_infilling
    from minillama.execution import evaluate_many

    problems = load_humaneval()
    if args.infilling:
        problems = load_humaneval_infilling(args.infilling, problems)
    items = list(problems.values())[: args.limit] if args.limit else list(problems.values())
    t = time.perf_counter()
    results = evaluate_many([(p, p["canonical_solution"]) for p in items], timeout=args.timeout,
                            n_workers=args.workers, progress=args.progress)
    counts = collections.Counter(r["result"].split(":")[0] for r in results)
    print(f"{len(results)} canonical solutions in {time.perf_counter() - t:.1f} s: {dict(counts)}")
    for r in results:
        if not r["passed"]:
            print(f"  {r['task_id']}: {r['result']}")
    return 0 if counts["passed"] == len(results) else 1


def check(args: argparse.Namespace) -> int:
    from minillama.execution import run_program, sandbox_capabilities

    if args.file is None:
        print("sandbox isolation on this machine:", ", ".join(sandbox_capabilities()) or "none")
        return 0
    program = open(args.file).read()
    tests = open(args.tests).read() if args.tests else ""
    out = run_program(program, tests, timeout=args.timeout)
    print(f"{out['result']}  ({out['seconds']:.2f} s; isolation: {', '.join(out['isolation']) or 'none'})")
    return 0 if out["passed"] else 1


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("eval-canonical", help="run HumanEval's canonical solutions through the sandbox")
    p.add_argument("--infilling", choices=["single-line", "multi-line"], default=None,
                   help="use the infilling tasks built from HumanEval instead")
    p.add_argument("--limit", type=int, default=None, help="only the first N tasks")
    p.add_argument("--timeout", type=float, default=3.0)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--progress", action="store_true")
    p.set_defaults(func=eval_canonical)

    p = subparsers.add_parser("check", help="run a Python file (and tests) in the sandbox, or show its isolation")
    p.add_argument("file", nargs="?", default=None)
    p.add_argument("--tests", default=None, help="a file of tests run after the program")
    p.add_argument("--timeout", type=float, default=3.0)
    p.set_defaults(func=check)
