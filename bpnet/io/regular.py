"""Reading only regular files: a FIFO, a device, a socket or a directory is refused before it is read.

Reading a FIFO (a named pipe) blocks until some other process writes into it,
so ``--model fifo`` or ``--data fifo.csv`` would hang forever.  :func:`open_regular`
opens the path without blocking (``O_NONBLOCK``; links are followed) and checks
the *open* descriptor with ``fstat``, so nothing can be swapped in between the
check and the read; :func:`check_regular` is the same check on the path, for
errors that should come before any other work.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Callable

__all__ = ["check_regular", "open_regular", "kind_of"]

_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def kind_of(mode: int) -> str:
    """What a file of ``st_mode`` is, in words (``"a regular file"``, ``"a FIFO (named pipe)"``, ...)."""
    for test, what in ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return what
    return "not a regular file"


def _refuse(path, mode, error) -> Exception:
    if error is None:
        return ValueError(f"{str(path)!r}: expected a regular file, got {kind_of(mode)}")
    return error(kind_of(mode))


def check_regular(path, error: Callable[[str], Exception] | None = None, missing: str = "no such file") -> None:
    """``path`` (links followed) is a regular file; else ``error(what it is, in words)`` is raised.

    ``error`` makes the exception (default: a ``ValueError`` naming the path);
    nothing at ``path`` raises ``FileNotFoundError`` with ``missing`` as its message.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, missing, str(path)) from None
    if not stat.S_ISREG(mode):
        raise _refuse(path, mode, error)


def open_regular(path, *, text: bool = False, encoding: str | None = None, newline: str | None = None,
                 error: Callable[[str], Exception] | None = None, missing: str = "no such file"):
    """``path`` open for reading (binary, or text with ``encoding``), once its descriptor is a regular file.

    Raises ``FileNotFoundError`` (with ``missing`` as its message) when there
    is nothing at ``path``, and what ``error`` makes of what it is instead (a
    FIFO, a device, a socket, a directory), as :func:`check_regular`.
    """
    try:
        fd = os.open(path, _FLAGS)
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, missing, str(path)) from None
    except IsADirectoryError:  # some platforms refuse to open a directory at all
        raise _refuse(path, stat.S_IFDIR, error) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _refuse(path, mode, error)
        if _FLAGS & getattr(os, "O_NONBLOCK", 0) and hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)  # no effect on a regular file; as a plain open() would leave it
        if text:
            return open(fd, "r", encoding=encoding, newline=newline)
        return open(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
