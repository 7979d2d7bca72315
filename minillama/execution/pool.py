"""What the fork server keeps per uid slot and per job, and the small process helpers it
uses (see :mod:`.server`). Standard library only."""

from __future__ import annotations

import json
import os
import signal
import socket
import time

from . import slots

DEFAULT_JOB_MEMORY_MB = 1024  # a slot's cgroup limit until a job sets its own


class Slot:
    """A reserved uid pair, its cgroup, its tester and its next (or current) candidate."""

    def __init__(self, k: int | None, lock_fd: int | None, cgroup: str | None):
        self.k, self.lock_fd, self.cgroup = k, lock_fd, cgroup
        self.uid, self.test_uid = slots.uids(k) if k is not None else (None, None)
        self.candidate: tuple[int, socket.socket] | None = None  # (pid, control socket)
        self.tester: tuple[int, socket.socket] | None = None
        self.job: Job | None = None
        self.workdir: str | None = None
        self.limit_mb: int | None = DEFAULT_JOB_MEMORY_MB  # what its cgroup is capped at

    def info(self) -> dict:
        return {"uid": self.uid, "test_uid": self.test_uid, "cgroup": self.cgroup, "workdir": self.workdir}

    def pids(self) -> list[int]:
        return [p[0] for p in (self.candidate, self.tester) if p]


class Job:
    def __init__(self, meta: dict, status_fd: int, slot: Slot, polled: bool):
        self.meta, self.slot, self.polled = meta, slot, polled
        self.status_fd: int | None = status_fd
        self.deadline = time.monotonic() + meta["timeout"]
        self.running: set[str] = set()  # "candidate" | "worker" | "tester" still at work
        self.status: dict[str, dict] = {}
        self.timed_out = self.over_memory = False
        self.kill_at: float | None = None
        self.peak_rss = 0
        self.error: str | None = None


def kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)  # not reaped yet, so the pid is still that process
    except ProcessLookupError:
        pass


def set_priority(pid: int, policy: int) -> None:
    if os.geteuid() == 0:  # without root, blanks keep the normal priority throughout
        try:
            os.sched_setscheduler(pid, policy, os.sched_param(0))
        except OSError:
            pass


def write_line(fd: int, obj: dict) -> None:
    try:
        os.write(fd, (json.dumps(obj) + "\n").encode())
    except OSError:
        pass


def run_child(body) -> None:
    """Run a forked child's ``body``; whatever happens, the child never returns into the
    server's code."""
    try:
        body()
    finally:
        os._exit(3)


def status_of(status: int) -> dict:
    if os.WIFSIGNALED(status):
        return {"signal": os.WTERMSIG(status), "exit": None}
    return {"exit": os.WEXITSTATUS(status), "signal": None}


def running(pid: int) -> bool:
    """Whether our child ``pid`` has not exited yet (without reaping it)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
    except ChildProcessError:
        return False


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` in MB (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, IndexError, ValueError):
        return 0.0
