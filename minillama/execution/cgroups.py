"""A memory cap on each job as a whole: a memory cgroup where the machine offers one, and a
polling fallback where it does not. Standard library only (used by the fork server).

* **cgroup v2** (a ``cgroup2`` mount whose ``memory`` controller our cgroup hands down to its
  children): the job's cgroup gets ``memory.max``, ``memory.swap.max = 0`` and
  ``memory.oom.group = 1`` (an out-of-memory kill takes the whole job).
* **cgroup v1** (a ``memory`` hierarchy, as on this course's reference machines): the job's
  cgroup gets ``memory.limit_in_bytes`` (and the same ``memsw`` limit where swap is
  accounted); the kernel's out-of-memory killer then kills a process of the job.

Either way the job's cgroup is created inside the fork server's own cgroup, only as root,
named after the job's uid slot (which the caller holds a lock on, so no other evaluation can
use the name at the same time), and its processes are the only ones we ever kill through it.
Everything a process of the job allocates counts, tmpfs pages included, from the moment it
joins (its first act after the fork).

* **fallback** (no root, or no usable controller): the fork server adds up the resident
  memory of each job's processes (``/proc/<pid>/stat``) every ``POLL_S`` seconds and kills the
  job when the sum passes the cap. Between two looks the job can overshoot; tmpfs pages are not
  seen (the tmpfs has its own size cap). bench/bench_sandbox_memory.py measures the overshoot.
"""

from __future__ import annotations

import os
import signal

POLL_S = 0.02
PREFIX = "minillama-sandbox-slot"


def _own_cgroup_lines() -> list[tuple[str, str, str]]:
    with open("/proc/self/cgroup") as f:
        return [tuple(line.rstrip("\n").split(":", 2)) for line in f if line.count(":") >= 2]


def _mounts() -> list[tuple[str, str, str]]:
    """(mount point, filesystem type, super options) of each mount."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.split(" - ", 1)
            fstype, _, opts = right.split()[:3]
            out.append((left.split()[4], fstype, opts))
    return out


class Controller:
    """Where job cgroups are made and how they are driven."""

    def __init__(self, version: int, base: str):
        self.version, self.base = version, base

    def __repr__(self):
        return f"cgroup v{self.version} memory controller at {self.base}"

    def path(self, slot: int) -> str:
        return f"{self.base}/{PREFIX}{slot}"

    def _write(self, path: str, name: str, value: str) -> None:
        with open(f"{path}/{name}", "w") as f:
            f.write(value)

    def create(self, slot: int, limit_mb: int) -> str:
        """An empty cgroup for the jobs of ``slot``, capped at ``limit_mb``."""
        path = self.path(slot)
        try:
            os.mkdir(path)
        except FileExistsError:  # left by a fork server that died: empty it, then reuse
            self.kill(path)
        if self.version == 2:
            for name, value in (("memory.swap.max", "0"), ("memory.oom.group", "1")):
                if os.path.exists(f"{path}/{name}"):
                    self._write(path, name, value)
        self.set_limit(path, limit_mb)
        return path

    def set_limit(self, path: str, limit_mb: int | None) -> None:
        """Cap at ``limit_mb`` (None: no cap)."""
        if self.version == 2:
            self._write(path, "memory.max", "max" if limit_mb is None else str(limit_mb * 2**20))
            return
        limit = "-1" if limit_mb is None else str(limit_mb * 2**20)
        names = ["memory.limit_in_bytes"]
        if os.path.exists(f"{path}/memory.memsw.limit_in_bytes"):  # memsw >= memory at all times
            with open(f"{path}/memory.limit_in_bytes") as f:
                raising = limit_mb is None or int(f.read()) < limit_mb * 2**20
            names = ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"] if raising else \
                ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
        for name in names:
            self._write(path, name, limit)

    def reset_peak(self, path: str) -> None:
        """Count the peak afresh, for the next job (cgroup v1; v2's memory.peak keeps counting)."""
        if self.version == 1:
            self._write(path, "memory.max_usage_in_bytes", "0")

    @staticmethod
    def join(path: str) -> None:
        """Move the calling process into ``path`` (before it allocates anything of its own)."""
        with open(f"{path}/cgroup.procs", "w") as f:
            f.write("0")

    @staticmethod
    def pids(path: str) -> list[int]:
        try:
            with open(f"{path}/cgroup.procs") as f:
                return [int(p) for p in f.read().split()]
        except FileNotFoundError:
            return []

    def kill(self, path: str) -> None:
        """SIGKILL every process in ``path`` (the caller reaps those that are its children)."""
        if self.version == 2 and os.path.exists(f"{path}/cgroup.kill"):
            self._write(path, "cgroup.kill", "1")
            return
        for pid in self.pids(path):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def kill_except(self, path: str, keep: list[int]) -> None:
        """SIGKILL every process in ``path`` but ``keep``."""
        for pid in self.pids(path):
            if pid not in keep:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def usage(self, path: str) -> dict:
        """Peak memory (MB) and out-of-memory kills of the job, where the kernel says."""
        out = {}
        names = ("memory.peak", "memory.events") if self.version == 2 else \
            ("memory.max_usage_in_bytes", "memory.oom_control")
        try:
            with open(f"{path}/{names[0]}") as f:
                out["peak_mb"] = round(int(f.read()) / 2**20, 1)
        except (OSError, ValueError):
            pass
        try:
            with open(f"{path}/{names[1]}") as f:
                fields = dict(line.split() for line in f if len(line.split()) == 2)
            out["oom_kills"] = int(fields.get("oom_kill", 0))
        except (OSError, ValueError):
            pass
        return out

    def slots_left(self) -> list[int]:
        """Slots whose cgroup exists here (normally only those in use)."""
        try:
            names = os.listdir(self.base)
        except OSError:
            return []
        return [int(n[len(PREFIX):]) for n in names if n.startswith(PREFIX) and n[len(PREFIX):].isdigit()]

    def remove_stale(self, try_reserve) -> None:
        """Remove the cgroups of slots nobody holds (``try_reserve(k)``: the slot's lock
        descriptor, or None if taken), left by a fork server that was killed outright; their
        processes died with its pid namespace."""
        for k in self.slots_left():
            try:
                fd = try_reserve(k)
            except OSError:
                return
            if fd is not None:
                self.kill(self.path(k))
                self.remove(self.path(k))
                os.close(fd)

    def remove(self, path: str) -> bool:
        """rmdir; False while processes remain (the caller kills them and tries again)."""
        try:
            os.rmdir(path)
        except FileNotFoundError:
            pass
        except OSError:
            return False
        return True


def find_controller() -> tuple[Controller | None, str]:
    """The memory controller we can use (as root), or None and why not."""
    if os.geteuid() != 0:
        return None, "not root"
    try:
        lines, mounts = _own_cgroup_lines(), _mounts()
    except OSError as e:
        return None, f"cannot read cgroup information ({e.strerror})"
    for hid, controllers, rel in lines:
        if hid == "0" and controllers == "":
            for point, fstype, _ in mounts:
                if fstype == "cgroup2":
                    base = point + rel.rstrip("/")
                    try:
                        with open(f"{base}/cgroup.subtree_control") as f:
                            if "memory" in f.read().split():
                                return Controller(2, base), ""
                    except OSError:
                        pass
    for hid, controllers, rel in lines:
        if "memory" in controllers.split(","):
            for point, fstype, opts in mounts:
                if fstype == "cgroup" and "memory" in opts.split(","):
                    base = point + rel.rstrip("/")
                    if os.access(base, os.W_OK):
                        return Controller(1, base), ""
    return None, "no memory cgroup controller that this process may use"


def tree_rss(roots: list[int]) -> int:
    """Resident bytes of ``roots`` and all their descendants, from one pass over /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except (OSError, IndexError):
                continue
            pid = int(name)
            children.setdefault(int(fields[1]), []).append(pid)
            rss[pid] = int(fields[21])
    total, stack = 0, list(roots)
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total * os.sysconf("SC_PAGE_SIZE")
