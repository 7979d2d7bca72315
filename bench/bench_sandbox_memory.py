"""How well the job memory cap holds: two hostile jobs under a 100 MB cap for the job as a
whole, with the memory cgroup (where this machine offers one) and with the polling fallback
(the fork server adds up the job's resident memory every 20 ms and kills the job past the
cap). "children": five forked children that each fill 40 MB and hold it; "one": a single
process that fills 600 MB as fast as it can (the per-process limit is 1 GiB).

    python bench/bench_sandbox_memory.py [--trials 10] [--cap 100]
    python bench/bench_sandbox_memory.py --smoke   # seconds: checks that it runs

Prints, for each job and mechanism, how often the job got all the memory it wanted anyway,
and its peak memory: from the cgroup's own counter where there is a cgroup (the true peak,
also when the fallback is the one enforcing the cap), else from the fallback's samples (which
count pages shared by forked processes once per process, so they overstate).
"""

from __future__ import annotations

import argparse
import os
import statistics

from minillama.execution import Limits, run_program

HOG = """\
import os, time
def grow(mb):
    chunks = []
    for _ in range(mb // 10):
        b = bytearray(10 * 2**20)
        for j in range(0, len(b), 4096): b[j] = 1
        chunks.append(b)
    return len(chunks) * 10
def hold(n, mb):
    r, w = os.pipe()
    for _ in range(n):
        if os.fork() == 0:
            b = bytearray(mb * 2**20)
            for j in range(0, len(b), 4096): b[j] = 1
            os.write(w, b'x'); time.sleep(10); os._exit(0)
    got, end = 0, time.time() + 3
    os.set_blocking(r, False)
    while time.time() < end and got < n:
        try: got += len(os.read(r, 16))
        except BlockingIOError: time.sleep(0.01)
    return got
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--cap", type=int, default=100, help="the job's memory cap, MB")
    ap.add_argument("--smoke", action="store_true", help="seconds: one trial each (checks the benchmark runs)")
    args = ap.parse_args(argv)
    if args.smoke:
        args.trials = 1
    caps = run_program("pass", trusted="", full_report=True)["isolation"]
    mechanisms = ["polling"] + (["cgroup"] if any("cgroup v" in c for c in caps) else [])
    print(f"a {args.cap} MB cap on the job, {args.trials} trials each; isolation: {', '.join(caps)}")
    for shape, tests in (("children", "assert hold(5, 40) == 5\n"), ("one", "assert grow(600) == 600\n")):
        for mech in mechanisms:
            measure(shape, mech, tests, args, caps)


def measure(shape: str, mech: str, tests: str, args, caps: list[str]) -> None:
    limits = Limits(job_memory_mb=args.cap, memory_cgroup=mech == "cgroup")
    peaks, escaped = [], 0
    for _ in range(args.trials):
        out = run_program(HOG, tests, trusted="", timeout=8, limits=limits, full_report=True)
        escaped += out["passed"]
        peak = out["memory"].get("cgroup_peak_mb", out["memory"].get("peak_mb"))
        if peak is not None:
            peaks.append(peak)
    source = "cgroup counter" if any("cgroup v" in c for c in caps) else "polled RSS sum"
    summary = (f"peak MB ({source}): median {statistics.median(peaks):.0f}, max {max(peaks):.0f}"
               if peaks else "no peak reported")
    print(f"{shape:8s} {mech:8s} got all it wanted in {escaped}/{args.trials} trials; {summary}; "
          f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
