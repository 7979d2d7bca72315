"""A small seccomp filter for processes that run untrusted code (x86-64 only).

It refuses, with EPERM, what a program under test never needs and what would reach outside
its namespaces or widen the kernel's attack surface:

* sockets other than IPv4/IPv6 (their network namespace has no interface up): no Unix
  sockets, so no host service behind a socket file (``/run/...``) and no abstract socket of
  another job, no vsock to a hypervisor, no netlink, packet or crypto sockets;
  ``socketpair`` stays allowed (a private pair, as multiprocessing uses);
* reading or writing other processes (``ptrace``, ``process_vm_readv``/``writev``,
  ``pidfd_getfd``, ``kcmp``), kernel keyrings, ``bpf``, ``perf_event_open``,
  ``userfaultfd``, ``io_uring``;
* new namespaces (``unshare``, ``setns``, ``clone`` with a namespace flag; ``clone3``
  answers ENOSYS so the C library falls back to ``clone``), mounts and ``chroot``, modules,
  ``kexec``, swap, reboot, accounting, file handles;
* what would let a job leave a bit in the machine's shared state for a later job, or read
  one that an earlier job left: asking whether a file's pages are in the page cache
  (``mincore``, ``cachestat``, ``preadv2``/``pwritev2`` with ``RWF_NOWAIT``, Linux AIO,
  which can ask the same) and pushing them out of it or pulling them in without reading
  (``fadvise64``, ``readahead``, ``madvise`` with ``MADV_COLD``/``MADV_PAGEOUT``/
  ``MADV_WILLNEED``/``MADV_POPULATE_*``); the machine's memory and process counts
  (``sysinfo``); the machine-wide socket cookie counter (``getsockopt(SO_COOKIE)``);
  between jobs at the same time, file locks and watches on the files they all can read
  (``flock``, ``fcntl`` lock and ``F_NOTIFY`` commands, ``inotify``) and KSM page merging
  (``madvise(MADV_MERGEABLE)``), whose copy-on-write timing tells whether another process
  holds the same page.

Everything else is allowed. 32-bit (x32, int 0x80) system calls are refused outright.
"""

from __future__ import annotations

import ctypes
import errno
import platform

from .jail import (CLONE_NEWCGROUP, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWTIME,
                   CLONE_NEWUSER, CLONE_NEWUTS, check, libc)

AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
RET_ALLOW, RET_ERRNO, RET_KILL_PROCESS = 0x7FFF0000, 0x00050000, 0x80000000
LD_W_ABS, JEQ_K, JGE_K, JSET_K, RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
AF_INET, AF_INET6 = 2, 10
NR_SOCKET, NR_CLONE, NR_CLONE3 = 41, 56, 435
NR_MADVISE, NR_GETSOCKOPT, NR_PREADV2, NR_PWRITEV2 = 28, 55, 327, 328
RWF_NOWAIT = 0x8
# MADV_WILLNEED, MADV_MERGEABLE, MADV_COLD, MADV_PAGEOUT, MADV_POPULATE_READ, MADV_POPULATE_WRITE
MADV_DENIED = (3, 12, 20, 21, 22, 23)
NR_FCNTL = 72
# F_GETLK, F_SETLK, F_SETLKW, F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW, F_NOTIFY
FCNTL_DENIED = (5, 6, 7, 36, 37, 38, 1026)
SOL_SOCKET, SO_COOKIE = 1, 57
NS_FLAGS = (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET
            | CLONE_NEWCGROUP | CLONE_NEWTIME)
DENIED = {  # x86-64 numbers
    "ptrace": 101, "syslog": 103, "personality": 135, "vhangup": 153, "modify_ldt": 154,
    "pivot_root": 155, "chroot": 161, "acct": 163, "mount": 165, "umount2": 166, "swapon": 167,
    "swapoff": 168, "reboot": 169, "iopl": 172, "ioperm": 173, "init_module": 175,
    "delete_module": 176, "quotactl": 179, "kexec_load": 246, "add_key": 248, "request_key": 249,
    "keyctl": 250, "unshare": 272, "perf_event_open": 298, "fanotify_init": 300,
    "name_to_handle_at": 303, "open_by_handle_at": 304, "setns": 308, "process_vm_readv": 310,
    "process_vm_writev": 311, "kcmp": 312, "finit_module": 313, "kexec_file_load": 320, "bpf": 321,
    "userfaultfd": 323, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
    "fspick": 433, "pidfd_getfd": 438, "process_madvise": 440, "mount_setattr": 442,
    # the page cache and machine-wide counters: channels from one job to a later one
    "mincore": 27, "sysinfo": 99, "readahead": 187, "io_setup": 206, "io_submit": 209,
    "fadvise64": 221, "io_pgetevents": 333, "cachestat": 451,
    # locks and watches on files every job can read: channels between jobs at the same time
    "flock": 73, "inotify_init": 253, "inotify_add_watch": 254, "inotify_init1": 294,
}


def _arg(i: int) -> int:
    """Offset of the low 32 bits of system call argument ``i`` in struct seccomp_data."""
    return 16 + 8 * i


class _Filter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_Filter))]


def _program() -> list[tuple[int, int | str, int | str, int]]:
    """The BPF program as (code, jump-if-true, jump-if-false, k); jumps name a label."""
    eperm, enosys = RET_ERRNO | errno.EPERM, RET_ERRNO | errno.ENOSYS
    prog = [(LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
            (JEQ_K, 0, "kill", AUDIT_ARCH_X86_64),
            (LD_W_ABS, 0, 0, 0),  # seccomp_data.nr
            (JGE_K, "eperm", 0, X32_SYSCALL_BIT),
            (JEQ_K, "socket", 0, NR_SOCKET),
            (JEQ_K, "clone", 0, NR_CLONE),
            (JEQ_K, "enosys", 0, NR_CLONE3),
            (JEQ_K, "rwf", 0, NR_PREADV2), (JEQ_K, "rwf", 0, NR_PWRITEV2),
            (JEQ_K, "madvise", 0, NR_MADVISE),
            (JEQ_K, "getsockopt", 0, NR_GETSOCKOPT),
            (JEQ_K, "fcntl", 0, NR_FCNTL)]
    prog += [(JEQ_K, "eperm", 0, nr) for nr in sorted(DENIED.values())]
    prog += [(RET_K, 0, 0, RET_ALLOW),
             ("socket", 0, 0, 0), (LD_W_ABS, 0, 0, _arg(0)),  # the family
             (JEQ_K, "allow", 0, AF_INET), (JEQ_K, "allow", 0, AF_INET6), (RET_K, 0, 0, eperm),
             ("rwf", 0, 0, 0), (LD_W_ABS, 0, 0, _arg(5)),  # the RWF_* flags
             (JSET_K, "eperm", "allow", RWF_NOWAIT),
             ("madvise", 0, 0, 0), (LD_W_ABS, 0, 0, _arg(2))]  # the advice
    prog += [(JEQ_K, "eperm", 0, advice) for advice in MADV_DENIED]
    prog += [(RET_K, 0, 0, RET_ALLOW),
             ("getsockopt", 0, 0, 0), (LD_W_ABS, 0, 0, _arg(1)),  # level
             (JEQ_K, 0, "allow", SOL_SOCKET), (LD_W_ABS, 0, 0, _arg(2)),  # option
             (JEQ_K, "eperm", "allow", SO_COOKIE),
             ("fcntl", 0, 0, 0), (LD_W_ABS, 0, 0, _arg(1))]  # the command
    prog += [(JEQ_K, "eperm", 0, cmd) for cmd in FCNTL_DENIED]
    prog += [(RET_K, 0, 0, RET_ALLOW),
             ("clone", 0, 0, 0), (LD_W_ABS, 0, 0, _arg(0)),  # the flags
             (JSET_K, "eperm", 0, NS_FLAGS),
             ("allow", 0, 0, 0), (RET_K, 0, 0, RET_ALLOW),
             ("eperm", 0, 0, 0), (RET_K, 0, 0, eperm),
             ("enosys", 0, 0, 0), (RET_K, 0, 0, enosys),
             ("kill", 0, 0, 0), (RET_K, 0, 0, RET_KILL_PROCESS)]
    return prog


def _assemble(prog) -> list[tuple[int, int, int, int]]:
    labels, out = {}, []
    for ins in prog:
        if isinstance(ins[0], str):
            labels[ins[0]] = len(out)
        else:
            out.append(ins)
    resolved = []
    for i, (code, jt, jf, k) in enumerate(out):
        jt = labels[jt] - i - 1 if isinstance(jt, str) else jt
        jf = labels[jf] - i - 1 if isinstance(jf, str) else jf
        assert 0 <= jt < 256 and 0 <= jf < 256
        resolved.append((code, jt, jf, k))
    return resolved


def supported() -> bool:
    return platform.machine() == "x86_64"


_prepared: list = []  # [program struct, its instruction array], built once by the fork server


def prepare() -> None:
    """Assemble the filter now, so that each sandboxed process only has to install it."""
    if not _prepared:
        ins = _assemble(_program())
        arr = (_Filter * len(ins))(*[_Filter(*i) for i in ins])
        _prepared[:] = [_Prog(len(ins), arr), arr]


def install() -> None:
    """Install the filter on the calling thread (after PR_SET_NO_NEW_PRIVS). Irreversible."""
    prepare()
    check(libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(_prepared[0]), 0, 0), "seccomp")
