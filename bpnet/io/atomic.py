"""Atomic file writes: nothing the user saved is ever replaced by a half-written file.

:func:`atomic_write` writes into a temporary file beside the target
(``.<name>.<random>.tmp``), flushes and fsyncs it, renames it over the target
with ``os.replace`` (atomic on POSIX and Windows) and fsyncs the directory.
A crash or an exception at any point leaves the previous file intact; the
temporary file is removed on an exception (a SIGKILL may leave one behind,
never under the target's name).
"""

from __future__ import annotations

import errno
import os
import pathlib
import tempfile
from typing import Callable

__all__ = ["atomic_write", "check_parent"]


def _default_mode() -> int:
    """0o666 minus the process umask, read without changing it where possible."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o644


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
    """
    target = pathlib.Path(path)
    check_parent(target, argname)
    try:
        mode = target.stat().st_mode & 0o777
    except OSError:
        mode = _default_mode()
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="")) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.chmod(tmp, mode)
        except OSError:
            pass
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(target.parent)
    return target
