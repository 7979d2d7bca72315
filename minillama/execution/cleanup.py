"""Deleting a directory tree that a hostile program left, for the one case where the job's files
are on a real disk: a machine without mount namespaces (otherwise they live on a tmpfs that
disappears with the job's mount namespace, and there is nothing to delete).

Called only after every process of the job is dead, so the tree no longer changes.
"""

from __future__ import annotations

import errno
import os
import stat

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _open_dir(name: str, dir_fd: int | None) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except PermissionError:  # a directory the program made unreadable: it is ours, fix it
        os.chmod(name, 0o700, dir_fd=dir_fd, follow_symlinks=False)
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)


def _unlink(name: str, dir_fd: int, rmdir: bool = False) -> None:
    """unlink (or rmdir) ``name``; once more after making the directory writable if refused."""
    op = os.rmdir if rmdir else os.unlink
    try:
        op(name, dir_fd=dir_fd)
    except PermissionError as e:
        if e.errno != errno.EACCES:
            raise
        os.fchmod(dir_fd, 0o700)
        op(name, dir_fd=dir_fd)


def remove_tree(path: str) -> bool:
    """Delete ``path`` and everything below it; never raises. Walks with one open directory
    at a time (no recursion, so no depth limit; no path strings, so no length limit; never
    follows a symlink) and gives itself the permissions it needs on the way. True if it is
    all gone."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode):
        try:
            os.unlink(path)
            return True
        except OSError:
            return False
    try:
        fd = _open_dir(path, None)
    except OSError:
        return False
    names: list[str] = []  # the path from ``path`` down to where ``fd`` is
    try:
        while True:
            try:
                entries = os.listdir(fd)
            except PermissionError:  # unreadable: it is ours, so we may fix that
                os.fchmod(fd, 0o700)
                entries = os.listdir(fd)
            child = None
            for entry in entries:
                try:
                    _unlink(entry, fd)
                except OSError as e:
                    if e.errno in (errno.EISDIR, errno.EPERM):  # Linux's answers for a directory
                        child = entry
                        break
            if child is not None:
                new = _open_dir(child, fd)
                os.close(fd)
                fd = new
                names.append(child)
                continue
            if not names:
                break
            parent = os.open("..", _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = parent
            _unlink(names.pop(), fd, rmdir=True)  # fails if something inside would not go
    except OSError:
        pass
    return _finish(fd, path)


def _finish(fd: int, path: str) -> bool:
    os.close(fd)
    try:
        os.rmdir(path)
        return True
    except FileNotFoundError:
        return True
    except OSError:
        return False
