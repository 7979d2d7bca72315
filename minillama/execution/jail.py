"""Isolation primitives for the sandbox's child processes: namespaces, the read-only jail,
each job's private tmpfs and /proc, rlimits, uids and capabilities. Standard library only (the
fork server imports this with ``python -I -S``).

The jail is a directory tree built once per fork server: a small tmpfs holding read-only bind
mounts of ``/usr``, ``/etc``, the ``/lib*`` and ``/bin``-style directories and the Python
standard library, with every ``site-packages`` / ``dist-packages`` under them covered by an
empty tmpfs, and a ``/dev`` of five device nodes, plus the allowed packages (numpy by default,
see ``host.PACKAGES_ENV``) under ``/sandbox-packages``. Nothing else of the machine is in it: not
the user's home, not the course's data, not the benchmarks' test files. The server then makes a
mount namespace whose root *is* the jail (pivot_root), and each job gets a copy of that
namespace with one size-capped tmpfs (seen as both ``/tmp`` and ``/dev/shm``), a ``/proc``
of its own pid namespace and its own IPC and network namespaces. Testers enter the jail's namespace
too (without a tmpfs of their own): the standard library may be installed where their uid could
not read it otherwise (``/root/.pyenv``), and they import the allowed packages from it.
"""

from __future__ import annotations

import ctypes
import glob
import os
import platform
import resource
import signal

CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 0x1, 0x2, 0x4, 0x8, 0x20
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 0x40000
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 4, 36, 38
SYS_MOUNT_SETATTR, AT_RECURSIVE, MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID = 442, 0x8000, 0x1, 0x2
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41}

# what the jail shows of the machine (each only if it exists; symlinks are copied as symlinks)
JAIL_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
JAIL_DEVICES = ("null", "zero", "full", "random", "urandom")
PACKAGES_DIR = "/sandbox-packages"  # the allowed packages (host.PACKAGES_ENV), read-only

libc = ctypes.CDLL(None, use_errno=True)


def check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    check(libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int) -> None:
    check(libc.setns(fd, nstype), "setns")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = (lambda s: None if s is None else s.encode())
    check(libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def prctl(option: int, value: int) -> None:
    check(libc.prctl(option, value, 0, 0, 0), f"prctl {option}")


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _read_only_tree(path: str, mounts: list[str]) -> None:
    """Every mount under ``path`` read-only and nosuid: one mount_setattr (Linux 5.12+), or a
    remount of each mount we made where that system call is missing."""
    attr = _MountAttr(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, 0, 0, 0)
    ret = libc.syscall(SYS_MOUNT_SETATTR, -100, path.encode(), AT_RECURSIVE, ctypes.byref(attr),
                       ctypes.sizeof(attr))
    if ret == 0:
        return
    if ctypes.get_errno() != 38:  # ENOSYS
        check(ret, f"mount_setattr {path}")
    for m in [path] + mounts:
        bind = 0 if m == path else MS_BIND
        mount(None, m, None, MS_REMOUNT | bind | MS_RDONLY | MS_NOSUID)


def _package_dirs(dirs: list[str]) -> list[str]:
    """site-packages and dist-packages directories inside ``dirs``: installed packages (and
    the benchmarks' data files shipped with them) stay out of the jail."""
    found = set()
    for d in dirs:
        for pattern in ("*-packages", "lib*/python3*/*-packages", "local/lib*/python3*/*-packages",
                        "lib/python3/dist-packages"):
            found.update(p for p in glob.glob(os.path.join(d, pattern)) if os.path.isdir(p))
    return sorted(found)


def build_jail(jail: str, stdlib_dirs: list[str], package_dirs: list[str] = ()) -> list[str]:
    """Cover ``jail`` (an existing directory, in this process's private mount namespace) with
    the read-only tree described in the module docstring, plus each of ``package_dirs`` (an
    installed package's directory) under ``PACKAGES_DIR``. Returns the masked directories."""
    tops = [d for d in JAIL_DIRS if os.path.lexists(d)]
    extra = [d for d in stdlib_dirs
             if os.path.isdir(d) and not any((d + "/").startswith(t + "/") for t in tops)]
    extra = [d for d in extra if not any(d != e and (d + "/").startswith(e + "/") for e in extra)]
    # sources opened before the jail's tmpfs covers anything that might hold them
    sources = {d: os.open(d, os.O_PATH) for d in tops + extra if not os.path.islink(d)}
    devices = {n: os.open(f"/dev/{n}", os.O_PATH) for n in JAIL_DEVICES if os.path.exists(f"/dev/{n}")}
    proc = os.open("/proc", os.O_PATH)
    packages = {os.path.basename(d): os.open(d, os.O_PATH) for d in package_dirs}
    masks = _package_dirs([d for d in tops + extra if not os.path.islink(d)])
    made = []
    try:
        mount("tmpfs", jail, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
        for d in tops + extra:
            if d in sources:
                os.makedirs(jail + d, mode=0o755, exist_ok=True)
                mount(f"/proc/self/fd/{sources[d]}", jail + d, None, MS_BIND | MS_REC)
                made.append(jail + d)
            else:  # merged /usr: /bin -> usr/bin
                os.symlink(os.readlink(d), jail + d)
        os.mkdir(jail + "/dev", 0o755)
        for name, fd in devices.items():
            os.close(os.open(f"{jail}/dev/{name}", os.O_CREAT | os.O_WRONLY, 0o644))
            mount(f"/proc/self/fd/{fd}", f"{jail}/dev/{name}", None, MS_BIND)
            made.append(f"{jail}/dev/{name}")
        for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                             ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
            os.symlink(target, f"{jail}/dev/{name}")
        for d in ("/dev/shm", "/proc", "/tmp"):  # mount points (/tmp may exist: Python under /tmp)
            os.makedirs(jail + d, 0o755, exist_ok=True)
        # Without root, the kernel lets a job mount its own /proc only where a fully visible
        # proc is mounted already: ours goes underneath, always covered by the job's (or, if
        # that mount fails anyway, by an empty tmpfs)
        mount(f"/proc/self/fd/{proc}", jail + "/proc", None, MS_BIND | MS_REC)
        made.append(jail + "/proc")
        for m in masks:
            mount("tmpfs", jail + m, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k,mode=755")
            made.append(jail + m)
        for name, fd in packages.items():
            os.makedirs(f"{jail}{PACKAGES_DIR}/{name}", mode=0o755)
            mount(f"/proc/self/fd/{fd}", f"{jail}{PACKAGES_DIR}/{name}", None, MS_BIND | MS_REC)
            made.append(f"{jail}{PACKAGES_DIR}/{name}")
        _read_only_tree(jail, made)
    except BaseException:
        libc.umount2(jail.encode(), 2)  # MNT_DETACH: leave /tmp as it was
        raise
    finally:
        for fd in list(sources.values()) + list(devices.values()) + list(packages.values()) + [proc]:
            os.close(fd)
    return masks


def jail_namespace(jail: str) -> int | None:
    """A mount namespace whose root is the jail and which holds nothing else (the machine's
    own tree is not in it at all, so no chroot can be escaped from it), made once; returns
    an fd to it for :func:`enter_job_filesystem`, or None where pivot_root is unknown."""
    nr = SYS_PIVOT_ROOT.get(platform.machine())
    if nr is None:
        return None
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(ready_r)
            os.close(done_w)
            unshare(CLONE_NEWNS)
            os.chdir(jail)
            check(libc.syscall(nr, b".", b"."), "pivot_root")  # the old root ends up on top of ".":
            check(libc.umount2(b".", 2), "detach the old root")  # MNT_DETACH
            os.write(ready_w, b"1")
            os.read(done_r, 1)  # end of file once the server has opened our namespace
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(done_r)
    try:
        if os.read(ready_r, 1) != b"1":  # it died on the way
            return None
        return os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    finally:
        os.close(done_w)
        os.close(ready_r)
        os.waitpid(pid, 0)


def enter_job_filesystem(tmpfs_mb: int, *, jail_ns: int | None = None, jail: str | None = None) -> list[str]:
    """Enter a fresh mount namespace over the jail (``jail_ns`` from :func:`jail_namespace`,
    or else a chroot into ``jail``) with one tmpfs of ``tmpfs_mb`` MB seen as ``/tmp`` and
    ``/dev/shm``, and a ``/proc`` of the caller's pid namespace; the working directory is
    ``/tmp``. When the job's last process exits, the namespace and its tmpfs go with it:
    nothing to delete, however deep or odd the tree the program left. Also a fresh IPC
    namespace (SysV objects and POSIX queues die with the job). Returns what was done."""
    if jail_ns is not None:
        setns(jail_ns, CLONE_NEWNS)  # our root and cwd are now the jail's root
        root = ""
    else:
        root = jail
    unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWNET)
    done = ["IPC namespace", "network namespace"]
    shm = root + "/dev/shm"
    # one tmpfs, staged at /dev/shm, its two halves bound over /tmp and over itself: one cap
    mount("tmpfs", shm, "tmpfs", MS_NOSUID | MS_NODEV, f"size={tmpfs_mb}m,mode=755")
    for sub in ("t", "s"):
        os.mkdir(f"{shm}/{sub}")
        os.chmod(f"{shm}/{sub}", 0o1777)
    mount(f"{shm}/t", root + "/tmp", None, MS_BIND)
    mount(f"{shm}/s", shm, None, MS_BIND)
    done.append(f"private {tmpfs_mb} MB tmpfs for /tmp and /dev/shm")
    # its own processes only: subset=pid (Linux 5.8+) leaves out the machine-wide files
    # (meminfo, loadavg, stat, sys/fs/dentry-state, ...) whose counters one job could move and
    # a later one read
    for options, what in (("subset=pid", "own /proc (processes only)"), (None, "own /proc")):
        try:
            mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, options)
            done.append(what)
            break
        except OSError:
            continue
    else:  # a user namespace under a masked /proc may refuse: show no /proc at all
        mount("tmpfs", root + "/proc", "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k")
        done.append("no /proc")
    if root:
        os.chroot(root)
    os.chdir("/tmp")
    return done


def enter_user_namespace(flags: int) -> None:
    """Without root: a user namespace (plus ``flags``) where our own uid and gid map to
    themselves, which gives us the capabilities to build namespaces inside it."""
    uid, gid = os.getuid(), os.getgid()
    unshare(CLONE_NEWUSER | flags)
    for path, text in (("/proc/self/setgroups", "deny"), ("/proc/self/uid_map", f"{uid} {uid} 1"),
                       ("/proc/self/gid_map", f"{gid} {gid} 1")):
        with open(path, "w") as f:
            f.write(text)


def reset_process(keep: tuple[int, ...]) -> None:
    """First thing in every forked child: a session and process group of its own (``kill(0)``
    and ``killpg`` reach a whole process group whatever the pid namespace: without root, the
    fork server's group would be in reach of a program), the fork server's signal set-up
    undone, output to /dev/null (a printed "passed" means nothing), every fd but ``keep``
    closed."""
    os.setsid()
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    lo = 3
    for fd in sorted(keep):
        os.closerange(lo, fd)
        lo = fd + 1
    os.closerange(lo, 1 << 20)


def set_limits(*, cpu: int | None, memory_mb: int, fsize_mb: int, nproc: int, nofile: int = 256) -> None:
    """rlimits of the calling process; ``cpu=None``: no CPU-time limit (the wall clock rules)."""
    r = resource
    mem, fsize = memory_mb * 2**20, fsize_mb * 2**20
    limits = [(r.RLIMIT_AS, mem, mem), (r.RLIMIT_FSIZE, fsize, fsize), (r.RLIMIT_CORE, 0, 0),
              (r.RLIMIT_NOFILE, nofile, nofile), (r.RLIMIT_NPROC, nproc, nproc)]
    if cpu is not None:
        limits.append((r.RLIMIT_CPU, cpu, cpu + 1))
    for lim, soft, hard in limits:
        r.setrlimit(lim, (soft, hard))


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


def drop_capabilities() -> None:
    """Empty effective, permitted and inheritable sets (what a user namespace gave us)."""
    data = (ctypes.c_uint32 * 6)()  # two __user_cap_data_struct, all zero
    if libc.capset(ctypes.byref(_CapHeader(0x20080522, 0)), data) != 0:
        err = ctypes.get_errno()
        with open("/proc/self/status") as f:  # refused (a seccomp filter?): fine if none are held
            held = [line.split()[1] for line in f if line.startswith(("CapEff:", "CapPrm:"))]
        if any(int(h, 16) for h in held):
            raise OSError(err, f"capset: {os.strerror(err)}")


def become(uid: int | None) -> None:
    """No way back: as root, to ``uid`` (real, effective, saved; no groups); without root,
    give up what the user namespace granted. Then no new privileges (no setuid binaries)."""
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    else:
        drop_capabilities()
    prctl(PR_SET_NO_NEW_PRIVS, 1)
