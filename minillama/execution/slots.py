"""uid slots: which uids a job may use, reserved so that no two jobs on the machine (in this
process or any other evaluation running at the same time) ever share one.

Slot ``k`` owns uids ``UID_BASE + 2k`` (candidate or worker) and ``UID_BASE + 2k + 1``
(tester), and the name of the job's memory cgroup. A reservation is an open-file-description
lock (``F_OFD_SETLK``) on byte ``k`` of one root-owned lock file: atomic, system-wide, and
released by the kernel when the last descriptor of that open file closes. The fork server
reserves its slots itself (:meth:`.server.Server._new_slot`) and holds each descriptor, never
shared with the processes of the slot, until every one of them has been reaped (the slot is
kept for the next job in between); so a slot is free again exactly when nothing of its jobs is
left, and a server killed outright releases its slots with its descriptors. Only root uses
slots (without root there is only one uid to run as).
"""

from __future__ import annotations

import fcntl
import os
import stat
import struct

UID_BASE = int(os.environ.get("MINILLAMA_SANDBOX_UID_BASE", "40000"))
N_SLOTS = 1024
UID_SPAN = 2 * N_SLOTS  # sandbox uids are UID_BASE .. UID_BASE + UID_SPAN - 1
LOCK_FILE = "/run/minillama-sandbox.lock"
_F_OFD_SETLK = getattr(fcntl, "F_OFD_SETLK", 37)


def uids(slot: int) -> tuple[int, int]:
    """(candidate or worker uid, tester uid) of ``slot``."""
    return UID_BASE + 2 * slot, UID_BASE + 2 * slot + 1


def _open_lock_file() -> int:
    os.makedirs(os.path.dirname(LOCK_FILE), exist_ok=True)
    fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != 0 or st.st_mode & 0o022:
        os.close(fd)
        raise PermissionError(f"{LOCK_FILE} must be a regular file owned by root and writable only by it")
    return fd


def _lock_byte(fd: int, k: int) -> bool:
    # struct flock: short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid (0 for OFD)
    arg = struct.pack("hhxxxxqqixxxx", fcntl.F_WRLCK, os.SEEK_SET, k, 1, 0)
    try:
        fcntl.fcntl(fd, _F_OFD_SETLK, arg)
        return True
    except (BlockingIOError, PermissionError):
        return False


def try_reserve(k: int) -> int | None:
    """The lock descriptor of slot ``k`` if it is free, else None."""
    fd = _open_lock_file()
    if _lock_byte(fd, k):
        return fd
    os.close(fd)
    return None


def reserve(hint: int = 0) -> tuple[int, int]:
    """(lock descriptor, slot) of a free slot, searching from ``hint``. Closing every copy of
    the descriptor releases the slot. RuntimeError if all are taken."""
    for i in range(N_SLOTS):
        k = (hint + i) % N_SLOTS
        fd = _open_lock_file()  # one open file per reservation: the lock belongs to it
        if _lock_byte(fd, k):
            return fd, k
        os.close(fd)
    raise RuntimeError(f"all {N_SLOTS} sandbox uid slots are in use")
