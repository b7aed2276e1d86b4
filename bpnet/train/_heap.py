"""glibc's malloc thresholds while training steps allocate and free large host arrays, step after step.

glibc serves an allocation above its *mmap threshold* with a fresh mapping, whose
pages fault in (zeroed) one by one, and unmaps it when it is freed.  The
threshold starts at 128 KiB and rises with the process's frees up to
:data:`MMAP_THRESHOLD` (32 MiB); set once (``mallopt``, or a ``MALLOC_*_``
variable, as Dask's nannies do with ``MALLOC_TRIM_THRESHOLD_=65536``) it stays
where it is set.  So every array of a step above it -- a batch's examples and
activations, over tens of thousands of examples, or in a Dask worker every
array over 128 KiB -- is mapped and faulted in afresh at every step.  Measured
(784-256-128-10, float32, one thread, shuffled batches of 65,536 of 131,072
examples, processes side by side): 884-906 ms a step with the thresholds above
the step's arrays, 1,300-1,400 ms without; in a Dask worker, small steps ran
8-18x slower at 128 KiB.

:func:`kept` raises the mmap threshold above a step's largest array and the trim
threshold above all of them while a fit (or a replica's epoch) runs, so the
freed temporaries stay in the heap for the next step, and sets them back when
its last user leaves, returning the free memory (``malloc_trim``). glibc has no
way back to its dynamic thresholds: they are set back to the environment's
values where it sets them, else to glibc's own upper limits
(:data:`MMAP_THRESHOLD`, :data:`TRIM_THRESHOLD`), what a process that has freed
a 32 MiB array runs with. It does nothing without glibc, and nothing for a step
whose arrays glibc's own limits already serve from the heap.
"""

from __future__ import annotations

import contextlib
import os
import threading

import array_api_compat

from ..backends import numpy_backed

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "kept", "step_bytes", "thresholds", "libc"]

#: glibc's upper limits of its dynamic thresholds (64-bit): arrays up to 32 MiB come from the heap, and up to
#: 64 MiB of free heap is kept
MMAP_THRESHOLD, TRIM_THRESHOLD = 32 << 20, 64 << 20
#: glibc's fixed defaults, where the environment sets one threshold but not the other
_GLIBC_MMAP, _GLIBC_TRIM = 128 << 10, 128 << 10
_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
#: mallopt takes a C int (ctypes would pass a larger value's low 32 bits): a larger threshold is set at this,
#: and arrays above it are mapped, as before
INT_MAX = (1 << 31) - 1
_LOCK = threading.Lock()
#: users inside :func:`kept`, and the (mmap, trim) thresholds they set (None: glibc's as they were)
_STATE: dict = {"users": 0, "set": None}


def libc():
    """glibc (for ``mallopt`` and ``malloc_trim``), or None elsewhere."""
    if "libc" not in _STATE:
        try:
            import ctypes
            import ctypes.util

            lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _STATE["libc"] = lib if hasattr(lib, "mallopt") and hasattr(lib, "malloc_trim") else None
        except (OSError, AttributeError, ValueError):
            _STATE["libc"] = None
    return _STATE["libc"]


def step_bytes(ts, m: int) -> tuple[int, int]:
    """``(largest, total)`` bytes of the host arrays a training step of ``ts`` allocates and frees on a batch
    of ``m``: its largest (an activation ``(n_l, m)``, ``n_0`` the inputs, or a ``W``-sized gradient), and
    about all of them (the batch, each layer's ``Z``, ``A``, ``dZ`` and ``g'``, the gradients); ``(0, 0)`` for
    arrays that are not numpy's (a GPU's memory, or another library's allocator)."""
    if not numpy_backed(array_api_compat.array_namespace(ts.Ws[0])):
        return 0, 0
    item, widths = ts.itemsize, ts.layer_dims
    largest = max(m * max(widths), max(A.shape[0] * A.shape[1] for A in ts.Ws))
    return largest * item, (m * (widths[0] + 4 * sum(widths[1:])) + ts.n_params) * item


def thresholds(largest: int, total: int = 0):
    """``(mmap, trim)`` thresholds for steps whose largest array has ``largest`` bytes and whose arrays ``total``
    bytes, or None: glibc's own serve them (no fixed threshold in the environment, and ``largest`` within
    :data:`MMAP_THRESHOLD`).  The mmap threshold is above the largest array, the trim threshold above all of
    them (a step's frees then keep what the next step allocates)."""
    if largest <= MMAP_THRESHOLD and not any(k in os.environ for k in _ENV):
        return None
    mib = 1 << 20
    mmap = max(MMAP_THRESHOLD, -(-(largest + 1) // mib) * mib)  # above the largest, in whole MiB
    return min(mmap, INT_MAX), min(max(TRIM_THRESHOLD, 2 * mmap, -(-total // mib) * mib), INT_MAX)


def _restored():
    """The thresholds to set back: the environment's where it sets them, else glibc's upper limits."""
    env = os.environ
    if not any(k in env for k in _ENV):
        return MMAP_THRESHOLD, TRIM_THRESHOLD
    out = []
    for k, default in zip(_ENV, (_GLIBC_MMAP, _GLIBC_TRIM)):
        try:
            out.append(int(env.get(k, default)))
        except ValueError:  # glibc ignores a value it cannot read
            out.append(default)
    return tuple(out)


@contextlib.contextmanager
def kept(sizes=(0, 0)):
    """Inside: glibc's thresholds for steps of ``sizes`` = ``(largest, total)`` bytes (:func:`step_bytes`,
    :func:`thresholds`), the highest any user inside asked for; set back, and the free memory returned, when
    the last user leaves.  Thread-safe; a no-op without glibc."""
    want = thresholds(*sizes) if libc() is not None else None
    with _LOCK:
        _STATE["users"] += 1
        have = _STATE["set"]
        if want is not None and (have is None or want[0] > have[0] or want[1] > have[1]):
            want = want if have is None else (max(want[0], have[0]), max(want[1], have[1]))
            libc().mallopt(-3, want[0])  # M_MMAP_THRESHOLD
            libc().mallopt(-1, want[1])  # M_TRIM_THRESHOLD
            _STATE["set"] = want
    try:
        yield
    finally:
        with _LOCK:
            _STATE["users"] -= 1
            if _STATE["users"] == 0 and _STATE["set"] is not None:
                mmap, trim = _restored()
                libc().mallopt(-1, trim)
                libc().mallopt(-3, mmap)
                libc().malloc_trim(0)
                _STATE["set"] = None
