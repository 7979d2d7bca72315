"""The fork server: one per calling process, the parent of every sandboxed process.

Started by :mod:`.host` as ``python -I -S -c <bootstrap>`` (a fresh interpreter, not a fork of
the caller, so it has never held a job's content). At start-up it makes the namespaces that
all its jobs share: a pid namespace of which it is pid 1 (when it dies, for whatever reason,
the kernel kills every sandboxed process), a network namespace with no interface up, and
(without root) a user namespace that grants it the rights to build the others; a mount
namespace where it builds the read-only jail (:mod:`.jail`).

It never receives a job's program, tests or expected values: a job message carries only the
job's limits, plus file descriptors. It keeps a small pool of **slots**. A slot is a reserved
pair of uids (:mod:`.slots`; the lock is held until the slot's last process is gone), a memory
cgroup, and two pre-forked **blank** processes that hold nothing of any job: a blank candidate
(pid 1 of a fresh pid namespace, already in the slot's cgroup and in its own mount and IPC
namespaces over the jail) and a blank tester (in the cgroup). A job is given to a ready slot by
sending each blank its own pipe ends over its own control socket:

* the **tester** gets the read end of the pipe on which the caller writes the trusted setup,
  the tests and the verdict token, and the result pipe;
* the **candidate** gets the read end of the pipe on which the caller writes the program.

So no process that runs untrusted code descends from one that held the tests, and the slow
parts of starting a job (two forks, joining a cgroup, which waits for an RCU grace period,
building the job's namespaces) happen before the job arrives. The server then waits (a
single-threaded event loop over all running jobs), enforces the wall-clock deadline and the
job's memory cap, kills and reaps, writes a JSON report to the job's status pipe, and prepares
the slot again (or gives it back). It exits when the caller's end of the socket closes, or with
the process that started it.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import tempfile
import time

from . import cgroups, jail, roles, seccomp, slots
from .cleanup import remove_tree
from .pool import (DEFAULT_JOB_MEMORY_MB, Job, Slot, kill, rss_mb, run_child, running, set_priority,
                   status_of, write_line)

TESTER_RSS_MB = 200  # a tester holding more after its job is replaced
CANDIDATE_GRACE_S = 0.5  # after the tester saw the candidate die: time to collect how it died
IDLE_RELEASE_S = 30.0  # ready slots are given back after this long without a job
MAX_READY = 16
DEFAULT_TMPFS_MB = 64


class Server:
    def __init__(self, sock: socket.socket, namespaced: bool, jail_root: str | None, jail_ns: int | None,
                 proc_ok: bool, notes: list[str], jobs_dir: str, jobs_dir_handle: str,
                 packages_path: tuple[str, str] | None = None):
        self.sock, self.namespaced, self.notes, self.jobs_dir = sock, namespaced, notes, jobs_dir
        self.jobs_dir_handle = jobs_dir_handle  # the same directory, reachable under the jail too
        self.proc_ok = proc_ok  # /proc shows the pids we fork (needed by the polling fallback)
        self.own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC) if namespaced else None
        self.root = os.geteuid() == 0
        self.memcg, why = cgroups.find_controller()
        self.notes.append(f"job memory cap: {self.memcg}" if self.memcg else
                          f"job memory cap: polling fallback ({why})")
        self.seccomp = seccomp.supported()
        if self.seccomp:
            seccomp.prepare()
        self.notes.append("seccomp filter" if self.seccomp else "no seccomp filter (not x86-64)")
        self.ctx = {"namespaced": namespaced, "jail": jail_root, "jail_ns": jail_ns, "tmpfs_mb": DEFAULT_TMPFS_MB,
                    "packages_path": packages_path}
        self.ready: list[Slot] = []
        self.busy: set[Slot] = set()  # slots with a job
        self.dropping: set[Slot] = set()  # slots whose processes we killed: released once reaped
        self.by_pid: dict[int, tuple[Slot, str]] = {}
        self.target = 2  # slots to keep, busy or not: the most jobs seen at once, plus one
        self.to_prepare: list[Slot] = []  # slots whose next blanks are forked when we are idle
        self.last_job = time.monotonic()
        self.next_poll = 0.0
        self.setup_error: str | None = None
        self.poller = select.poll()
        self.by_ctl: dict[int, Slot] = {}  # testers' control sockets
        self.wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)

    # --- the loop -----------------------------------------------------------------------
    def run(self) -> None:
        if self.memcg:  # left by a fork server that was killed outright
            self.memcg.remove_stale(slots.try_reserve)
        self.poller.register(self.sock, select.POLLIN)
        self.poller.register(self.wake_r, select.POLLIN)
        self._replenish()
        while True:
            events = self.poller.poll(0)
            idle = not events and bool(self.to_prepare or self._slots() < self.target)
            if not events and not idle:
                events = self.poller.poll(self._wait_ms())
            for fd, _ in events:
                if fd == self.wake_r:
                    try:
                        while os.read(self.wake_r, 4096):
                            pass
                    except BlockingIOError:
                        pass
                elif fd in self.by_ctl:
                    self._tester_answered(self.by_ctl[fd])
                elif not self._receive():
                    self._shutdown()
            self._reap()
            self._tick()
            if idle:  # nothing else to do: get the next slot ready
                self._prepare_one()

    def _wait_ms(self) -> int:
        now = time.monotonic()
        soon = now + 1.0
        for slot in self.busy:
            job = slot.job
            soon = min(soon, job.deadline, job.kill_at or job.deadline)
            if not job.running or (job.polled and self.proc_ok):
                soon = min(soon, self.next_poll if job.running else now)
        return max(0, int((soon - now) * 1000) + 1)

    def _receive(self) -> bool:
        try:
            msg, fds, flags, _ = socket.recv_fds(self.sock, 1 << 16, 8)
        except OSError:
            return False
        if not msg:
            return False
        try:
            if flags & socket.MSG_CTRUNC or len(fds) != 4:
                raise ValueError("a job message without its four file descriptors")
            meta = json.loads(msg)
            for key in ("mode", "timeout", "memory_mb", "job_memory_mb", "fsize_mb", "tmpfs_mb", "nproc"):
                meta[key]  # noqa: B018  (a KeyError now rather than in a child)
        except Exception as e:  # never die for one bad message: say so and go on
            if len(fds) == 4:
                write_line(fds[3], {"error": f"fork server: {e!r}"})
            for fd in fds:
                os.close(fd)
            return True
        self._start(meta, fds)
        return True

    # --- slots --------------------------------------------------------------------------
    def _new_slot(self) -> Slot | None:
        """Reserve a uid slot, make its cgroup, fork its tester and candidate. None if no
        slot is free or its processes could not be made."""
        k = lock_fd = cgroup = None
        if self.root:
            try:
                lock_fd, k = slots.reserve(int.from_bytes(os.urandom(2), "big"))
            except (RuntimeError, OSError) as e:
                self.setup_error = f"no uid slot: {e}"
                return None
            if self.memcg:
                try:
                    cgroup = self.memcg.create(k, DEFAULT_JOB_MEMORY_MB)
                except OSError as e:
                    os.close(lock_fd)
                    self.setup_error = f"cannot make the job's cgroup: {e}"
                    return None
        slot = Slot(k, lock_fd, cgroup)
        if self._prepare(slot):
            return slot
        self._drop(slot)
        return None

    def _prepare(self, slot: Slot) -> bool:
        """Fork what the slot lacks: a tester, a blank candidate (and, without a jail, a fresh
        work directory). False if a fork failed."""
        if self.ctx["jail"] is None and slot.workdir is None:
            slot.workdir = tempfile.mkdtemp(prefix="job-", dir=self.jobs_dir)
            if slot.uid is not None:
                os.chown(slot.workdir, slot.uid, slot.uid)
        for role in ("tester", "candidate"):
            if getattr(slot, role) is not None:
                continue
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            child_fd, info = theirs.fileno(), slot.info()
            try:
                if role == "candidate":  # pid 1 of a pid namespace of its own
                    pid = self._fork_in_new_pidns(lambda: roles.blank_candidate(info, self.ctx, child_fd))
                else:
                    pid = os.fork()
                    if pid == 0:
                        run_child(lambda: roles.tester_loop(info, child_fd, self.ctx))
            except OSError as e:
                ours.close()
                self.setup_error = f"fork failed: {e}"
                return False
            finally:
                theirs.close()
            setattr(slot, role, (pid, ours))
            self.by_pid[pid] = (slot, role)
            if role == "tester":
                self.by_ctl[ours.fileno()] = slot
                self.poller.register(ours, select.POLLIN)
        return True

    def _fork_in_new_pidns(self, child) -> int:
        if self.namespaced:
            jail.unshare(jail.CLONE_NEWPID)
        try:
            pid = os.fork()
            if pid == 0:
                run_child(child)
        finally:
            if self.namespaced:  # later forks (testers) stay in our own pid namespace
                jail.setns(self.own_pidns, jail.CLONE_NEWPID)
        return pid

    def _forget(self, slot: Slot, role: str) -> str | None:
        """The slot's ``role`` process was reaped: close its control socket; return what it
        said there if its set-up failed."""
        proc, text = getattr(slot, role), None
        if proc is None:
            return None
        setattr(slot, role, None)
        ctl = proc[1]
        if role == "tester":
            self.by_ctl.pop(ctl.fileno(), None)
            self.poller.unregister(ctl)
        try:  # a process whose set-up failed said why before it exited
            ctl.setblocking(False)
            said = ctl.recv(4096)
            if said and not said.isdigit():
                text = self.setup_error = said.decode("utf-8", "replace")
        except OSError:
            pass
        ctl.close()
        return text

    def _drop(self, slot: Slot) -> None:
        """Kill a slot's processes; the slot is released once they are reaped."""
        for pid in slot.pids():
            kill(pid)
        self.dropping.add(slot)
        self._release_if_empty(slot)

    def _release_if_empty(self, slot: Slot) -> None:
        if slot in self.dropping and not slot.pids():
            self.dropping.discard(slot)
            if slot.cgroup:
                self.memcg.kill(slot.cgroup)
                self.memcg.remove(slot.cgroup)
            if slot.workdir:
                remove_tree(slot.workdir)
            if slot.lock_fd is not None:  # no process of the slot is left: its uids are free
                os.close(slot.lock_fd)
                slot.lock_fd = None

    def _slots(self) -> int:
        """Slots we keep: ready, being prepared, or busy (a busy slot comes back)."""
        return len(self.ready) + len(self.to_prepare) + len(self.busy)

    def _replenish(self) -> None:
        """At start-up: make ``target`` slots ready now."""
        while self._slots() < self.target:
            slot = self._new_slot()
            if slot is None:
                return
            self.ready.append(slot)

    def _prepare_one(self) -> None:
        """One step of keeping ``target`` slots ready: fork a used slot's new candidate (or
        tester), or make a new slot."""
        if self.to_prepare:
            slot = self.to_prepare.pop(0)
            if self._prepare(slot):
                self.ready.append(slot)
            else:
                self._drop(slot)
        else:
            slot = self._new_slot()
            if slot is None:  # no uid slot or fork failed: try again with the next job
                self.target = self._slots()
            else:
                self.ready.append(slot)

    # --- one job ------------------------------------------------------------------------
    def _start(self, meta: dict, fds: list[int]) -> None:
        """fds: split mode [program, tests, result, status]; single [program, token, result, status]."""
        first, second, result_fd, status_fd = fds
        self.last_job = time.monotonic()
        slot = None
        while self.ready and slot is None:
            slot = self.ready.pop(0)
            if not all(running(pid) for pid in slot.pids()):  # a blank died: give the slot up
                self._drop(slot)
                slot = None
        if slot is None:  # cold: the job waits for a slot's set-up
            slot = self._new_slot()
        if slot is None:
            write_line(status_fd, {"error": f"sandbox set-up failed: {self.setup_error}"})
            for fd in fds:
                os.close(fd)
            return
        job = Job(meta, status_fd, slot, polled=slot.cgroup is None or not meta.get("cgroup", True))
        slot.job = job
        self.busy.add(slot)
        self.target = min(MAX_READY, max(self.target, len(self.busy) + 1))
        meta.update(uid=slot.uid, seccomp=self.seccomp)
        write_line(status_fd, {"start": True, "uid": slot.uid,
                                "test_uid": slot.test_uid if meta["mode"] == "split" else None})
        try:
            for pid in slot.pids():  # from preparing at idle priority to work
                set_priority(pid, os.SCHED_OTHER)
            if slot.cgroup:
                limit = None if job.polled else meta["job_memory_mb"]
                if limit != slot.limit_mb:
                    self.memcg.set_limit(slot.cgroup, limit)
                    slot.limit_mb = limit
                self.memcg.reset_peak(slot.cgroup)
            cctl, tctl = slot.candidate[1], slot.tester[1]
            if meta["mode"] == "split":
                call_r, call_w = os.pipe()
                reply_r, reply_w = os.pipe()
                try:
                    socket.send_fds(cctl, [json.dumps(meta).encode()], [first, call_r, reply_w])
                    job.running.add("candidate")
                    socket.send_fds(tctl, [json.dumps(meta).encode()], [second, result_fd, call_w, reply_r])
                    job.running.add("tester")
                finally:
                    for fd in (call_r, call_w, reply_r, reply_w):
                        os.close(fd)
            else:
                socket.send_fds(cctl, [json.dumps(meta).encode()], [first, second, result_fd])
                job.running.add("worker")
        except OSError as e:  # a blank that died under us: the job fails as an error
            job.error = f"fork server: {e!r}"
            self._kill(job)
        finally:
            for fd in (first, second, result_fd):
                os.close(fd)

    def _kill(self, job: Job) -> None:
        """Kill what is still at work on the job: the candidate, and the tester if it is
        stuck in this job (a fresh one replaces it)."""
        slot = job.slot
        if slot.candidate and job.running & {"candidate", "worker"}:
            kill(slot.candidate[0])
        if slot.tester and "tester" in job.running:
            kill(slot.tester[0])

    def _tester_answered(self, slot: Slot) -> None:
        if slot.tester is None:
            return
        try:
            code = slot.tester[1].recv(16)
        except OSError:
            code = b""
        job = slot.job
        if not code or job is None or "tester" not in job.running:
            return  # it died (the reaper handles that) or it was not at work
        self._judge_done(job, "tester", {"exit": int(code), "signal": None})

    def _judge_done(self, job: Job, role: str, status: dict) -> None:
        job.running.discard(role)
        job.status[role] = status
        if role == "tester" and "candidate" in job.running:
            if status["exit"] == 2:
                job.kill_at = time.monotonic() + CANDIDATE_GRACE_S  # let it finish dying
            else:
                self._report(job)  # the verdict is known: the caller need not wait for the rest
                self._kill(job)
        elif role == "worker":
            self._report(job)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            slot, role = self.by_pid.pop(pid, (None, None))
            if slot is None:
                continue  # an orphan that had been re-parented to us
            failed_setup = self._forget(slot, role)
            job = slot.job
            if job is not None:
                name = "worker" if role == "candidate" and job.meta["mode"] == "single" else role
                if failed_setup:  # says more than the broken pipe we may have met sending it the job
                    job.error = f"set-up of the {name} failed: {failed_setup}"
                if name in job.running:
                    self._judge_done(job, name, status_of(status))
            elif slot in self.ready:  # a waiting process died: the slot is broken
                self.ready.remove(slot)
                self._drop(slot)
            self._release_if_empty(slot)
        self._kill_strays()

    def _kill_strays(self) -> None:
        """Orphans re-parented to us (without a pid namespace, a program's descendants): any
        child we did not fork as a slot's process is one of them."""
        try:
            with open(f"/proc/self/task/{os.getpid()}/children") as f:
                pids = [int(p) for p in f.read().split()]
        except OSError:
            return
        for pid in pids:
            if pid not in self.by_pid:
                kill(pid)

    def _tick(self) -> None:
        now = time.monotonic()
        jobs = [s.job for s in list(self.busy)]
        if self.proc_ok and now >= self.next_poll and any(j.polled and j.running for j in jobs):
            self.next_poll = now + cgroups.POLL_S
            for job in jobs:
                if job.running and job.polled:
                    rss = cgroups.tree_rss(job.slot.pids())
                    job.peak_rss = max(job.peak_rss, rss)
                    if rss > job.meta["job_memory_mb"] * 2**20:
                        job.over_memory = True
                        self._kill(job)
        for job in jobs:
            if job.running and now >= job.deadline:
                job.timed_out = True
                self._kill(job)
            elif job.running and job.kill_at is not None and now >= job.kill_at:
                self._kill(job)
            elif not job.running:
                self._finish(job)
        if not self.busy and self.ready and now - self.last_job > IDLE_RELEASE_S:
            for slot in self.ready:
                self._drop(slot)
            self.ready.clear()
            self.target = 2

    def _report(self, job: Job) -> None:
        """Write the job's report to the caller (once)."""
        if job.status_fd is None:
            return
        slot = job.slot
        if not job.polled:
            memory = self.memcg.usage(slot.cgroup)
        else:
            memory = {"peak_mb": round(job.peak_rss / 2**20, 1), "polled": True} if job.peak_rss else {}
            if slot.cgroup:  # an uncapped cgroup still counts: the true peak, to measure the fallback
                memory["cgroup_peak_mb"] = self.memcg.usage(slot.cgroup).get("peak_mb")
        report = {"isolation": self.notes, "timed_out": job.timed_out, "over_memory": job.over_memory, "memory": memory,
                  "error": job.error, **job.status}
        write_line(job.status_fd, report)
        os.close(job.status_fd)
        job.status_fd = None

    def _finish(self, job: Job) -> None:
        """The job's candidate is reaped and its tester answered (or was reaped): make sure
        nothing else of the job is left in the slot's cgroup, report if not done yet, then
        prepare the slot for the next job or give it back."""
        slot = job.slot
        if slot.candidate is not None:  # killed, not reaped yet
            return
        if slot.cgroup and set(self.memcg.pids(slot.cgroup)) - set(slot.pids()):
            self.memcg.kill_except(slot.cgroup, slot.pids())  # strays: dead on the next look
            if time.monotonic() < job.deadline + 10:
                return
        self._report(job)
        slot.job = None
        self.busy.discard(slot)
        # a job's data made the tester grow: give the slot up, so that no later job's memory
        # cap pays for it
        grown = slot.tester is not None and rss_mb(slot.tester[0]) > TESTER_RSS_MB
        if slot.workdir:  # without a jail the job's files are on disk: a fresh directory
            remove_tree(slot.workdir)
            slot.workdir = None
        if not grown and self._slots() < self.target:  # (this slot no longer counts as busy)
            if slot.tester:
                set_priority(slot.tester[0], os.SCHED_IDLE)
            self.to_prepare.append(slot)
        else:
            self._drop(slot)

    def _shutdown(self) -> None:
        """The caller is gone: kill everything, reap, remove cgroups and directories, exit
        (as pid 1, our exit would kill whatever is left anyway)."""
        for pid in list(self.by_pid):
            kill(pid)
        end = time.monotonic() + 5
        while self.by_pid and time.monotonic() < end:
            try:
                pid, _ = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            slot, role = self.by_pid.pop(pid, (None, None))
            if slot is not None:
                setattr(slot, role, None)
        for slot in list(self.busy) + self.ready + list(self.dropping) + self.to_prepare:
            slot.candidate = slot.tester = None
            self.dropping.add(slot)
            self._release_if_empty(slot)
        remove_tree(self.jobs_dir_handle)  # the caller removes it too: whichever of us is left does
        os._exit(0)
