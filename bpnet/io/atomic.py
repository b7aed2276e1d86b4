"""Atomic file writes: nothing the user saved is ever replaced by a half-written file.

:func:`atomic_write` writes into a temporary file beside the target
(``.<name>.<random>.tmp``), flushes and fsyncs it, renames it over the target
with ``os.replace`` (atomic on POSIX and Windows) and fsyncs the directory.
A crash or an exception at any point leaves the previous file intact; the
temporary file is removed on an exception.  A SIGKILL may leave one behind
(never under the target's name): the writer holds an ``flock`` on its
temporary file while it writes, so the next write to the same target removes
the temporary files whose writer is gone (:func:`remove_stale`, POSIX), and
never the file of a write still in progress.
"""

from __future__ import annotations

import errno
import os
import pathlib
import re
import tempfile
from typing import Callable

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock, no clean-up of stale temporary files
    fcntl = None

__all__ = ["atomic_write", "check_parent", "remove_stale"]

#: tempfile.mkstemp's random part: 8 characters of this alphabet
_RANDOM = "[a-z0-9_]{8}"


def _default_mode() -> int:
    """0o666 minus the process umask: the mode ``open(path, "w")`` gives a new file (mkstemp's is 0o600).

    Read from ``/proc`` where there is one; elsewhere no call reads the umask without setting it, so it is
    set to 0o077 for that instant (a file another thread creates meanwhile is private, never more open).
    """
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return 0o666 & ~mask


def _fsync_dir(directory: pathlib.Path) -> None:
    """Make the rename durable; not possible (nor needed) on every platform."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(directory, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def check_parent(target: pathlib.Path, argname: str = "path") -> None:
    """The target's directory exists and the target is not a directory."""
    parent = target.parent
    if not parent.exists():
        raise FileNotFoundError(
            errno.ENOENT,
            f"{argname}: the directory {str(parent)!r} does not exist (create it first, e.g. os.makedirs)",
            str(target),
        )
    if not parent.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"{argname}: {str(parent)!r} is not a directory", str(target))
    if target.is_dir():
        raise IsADirectoryError(errno.EISDIR, f"{argname}: is a directory; expected a file name", str(target))


def _stale_pattern(target: pathlib.Path):
    return re.compile(rf"^\.{re.escape(target.name)}\.{_RANDOM}\.tmp$")


def remove_stale(target) -> list:
    """Remove the ``.<name>.<random>.tmp`` files beside ``target`` left by killed writes; returns their names.

    A temporary file is stale when no process holds its lock (a writer holds
    it from creation to rename; the system drops it when the writer dies).
    Without ``fcntl`` (Windows) nothing is removed.
    """
    target = pathlib.Path(target)
    if fcntl is None:
        return []
    pattern, removed = _stale_pattern(target), []
    try:
        entries = [e for e in os.scandir(target.parent) if pattern.match(e.name)]
    except OSError:
        return removed
    for entry in entries:
        try:
            fd = os.open(entry.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError: its writer is alive
            if os.stat(entry.path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino:
                os.unlink(entry.path)
                removed.append(entry.name)
        except OSError:
            pass
        finally:
            os.close(fd)  # releases the lock
    return removed


def _locked_temp(target: pathlib.Path):
    """``(fd, name)`` of a new temporary file beside ``target``, locked against :func:`remove_stale`."""
    for _ in range(100):
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        if fcntl is None:
            return fd, tmp
        fcntl.flock(fd, fcntl.LOCK_EX)  # waits while a concurrent clean-up looks at it
        try:
            if os.stat(tmp).st_ino == os.fstat(fd).st_ino:
                return fd, tmp
        except FileNotFoundError:  # removed by a clean-up between mkstemp and flock: take another
            pass
        os.close(fd)
    raise FileExistsError(errno.EEXIST, "could not create a temporary file", str(target.parent))


def atomic_write(path, write: Callable, *, binary: bool = True, argname: str = "path") -> pathlib.Path:
    """Create or replace ``path`` atomically with what ``write(fileobj)`` writes.

    Parameters
    ----------
    path : str or PathLike
    write : callable
        Called with an open file object (binary, or UTF-8 text when ``binary=False``).
    binary : bool
    argname : str
        Names the path in error messages.

    Returns
    -------
    pathlib.Path

    Stale temporary files of earlier, killed writes to ``path`` are removed
    first (:func:`remove_stale`).
    """
    target = pathlib.Path(path)
    check_parent(target, argname)
    try:
        mode = target.stat().st_mode & 0o777
    except OSError:
        mode = _default_mode()
    remove_stale(target)
    fd, tmp = _locked_temp(target)
    try:
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="")) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
            try:
                os.chmod(tmp, mode)
            except OSError:
                pass
            if fcntl is not None:
                os.replace(tmp, target)  # still locked: no clean-up can take the file before the rename
        if fcntl is None:
            os.replace(tmp, target)  # Windows renames only closed files
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(target.parent)
    return target
