"""How the fork server process starts: the shared namespaces, the jail, the preloaded
modules, then :class:`.server.Server`'s loop. :mod:`.host` runs :func:`main` in a fresh
``python -I -S`` (see ``host.BOOTSTRAP``). Standard library only."""

from __future__ import annotations

import gc
import os
import signal
import socket
import sys

from . import jail, roles
from .server import Server

# imported once here, inherited by every job (HumanEval's prompts and tests use these)
PRELOAD = ("typing", "math", "random", "re", "string", "collections", "itertools", "functools",
           "hashlib", "copy", "heapq", "bisect")


def _start_namespaces(sock: socket.socket, notes: list[str], wanted: bool) -> bool:
    """Enter the shared namespaces and fork the real server as pid 1 of the new pid
    namespace; this process stays behind only to wait for it. False: no namespaces here."""
    flags = jail.CLONE_NEWPID | jail.CLONE_NEWNET | jail.CLONE_NEWNS
    if not wanted:
        notes.append("no namespaces (switched off): no private filesystem, network or pid space")
        return False
    try:
        if os.geteuid() == 0:
            jail.unshare(flags)
        else:
            jail.enter_user_namespace(flags)
    except OSError as e:
        notes.append(f"no namespaces ({e.strerror}): no private filesystem, network or pid space")
        return False
    pid = os.fork()
    if pid:
        sock.close()
        while True:
            try:
                _, status = os.waitpid(pid, 0)
                os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
            except InterruptedError:
                continue
    jail.prctl(jail.PR_SET_PDEATHSIG, signal.SIGKILL)  # the caller kills the outer process: we go too
    notes.append("network namespace" + ("" if os.geteuid() == 0 else " (in a user namespace)"))
    return True


def main(sock_fd: int, stdlib_dirs: list[str], namespaces: bool, jobs_dir: str,
         packages: dict[str, list[str]] | None = None) -> None:
    """Entry point of the fork server process (see :mod:`.host` for how it is started).
    ``stdlib_dirs``: ``sys.path`` of ``python -I -S`` before the package was put on it;
    ``namespaces=False``: behave as on a machine without them; ``jobs_dir``: the caller's
    directory for the jobs' files where there is no jail; ``packages``: the allowed packages'
    directories (``host.allowed_package_dirs``)."""
    packages = packages or {}
    sock = socket.socket(fileno=sock_fd)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    # the jail will cover /tmp in our mount namespace: keep a way to the jobs' directory
    parent = os.open(os.path.dirname(jobs_dir) or "/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    jobs_dir_handle = f"/proc/self/fd/{parent}/{os.path.basename(jobs_dir)}"
    notes: list[str] = []
    namespaced = _start_namespaces(sock, notes, namespaces)
    jail_root, jail_ns, proc_ok = None, None, True
    if namespaced:
        jail.mount(None, "/", None, jail.MS_REC | jail.MS_PRIVATE)
        try:  # our own /proc: the pids in it are the ones we fork (for the memory fallback)
            jail.mount("proc", "/proc", "proc", jail.MS_NOSUID | jail.MS_NODEV | jail.MS_NOEXEC)
        except OSError as e:
            proc_ok = False
            notes.append(f"host /proc ({e.strerror}): no polling fallback for the job memory cap")
        try:
            package_dirs = [d for dirs in packages.values() for d in dirs]
            masked = jail.build_jail("/tmp", [p for p in stdlib_dirs if os.path.isdir(p)], package_dirs)
            jail_root = "/tmp"
            jail_ns = jail.jail_namespace(jail_root)
            notes.append("read-only jail (/usr, /etc, /lib*, the standard library; "
                         f"{len(masked)} package directories hidden" +
                         ("" if jail_ns is not None else "; chroot, no pivot_root") + ")")
        except OSError as e:
            notes.append(f"no jail ({e.strerror}): jobs work in a directory of the real /tmp")
    # where the allowed packages are imported from: inside the jail (seen from here under the
    # jail's root, from a job at its top), else where they are installed
    if jail_root is not None:
        paths = (jail_root + jail.PACKAGES_DIR, jail.PACKAGES_DIR)
    else:
        parents = sorted({os.path.dirname(dirs[0]) for dirs in packages.values()})
        paths = (os.pathsep.join(parents), os.pathsep.join(parents))
    if packages:
        sys.path.extend(paths[0].split(os.pathsep))
        roles.ALLOWED_PACKAGES = tuple(packages)
        notes.append("importable besides the standard library: " + ", ".join(packages))
    jail.prctl(jail.PR_SET_CHILD_SUBREAPER, 1)  # without a pid namespace, orphans come to us
    jail.prctl(jail.PR_SET_DUMPABLE, 0)
    for name in PRELOAD:
        try:
            __import__(name)
        except ImportError:
            pass
    gc.freeze()  # children's collections skip these objects: fewer copy-on-write page faults
    Server(sock, namespaced, jail_root, jail_ns, proc_ok, notes, jobs_dir, jobs_dir_handle,
           packages_path=paths if packages else None).run()
