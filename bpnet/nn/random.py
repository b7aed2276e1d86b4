"""Counter-based random numbers on the device: the same bits on every backend.

A draw is a hash of ``(key, index)``: the key folds integers such as
``(seed, epoch, batch, layer)`` on the host (splitmix64), and every element's
32 random bits are a hash of its index and the key computed on the device with
the Array API's integer operations only: in uint32 arithmetic (which wraps
mod 2^32), or on torch (whose uint32 lacks shifts and comparisons) on the same
bit patterns in int32; both give the same integers, so numpy, cupy, torch, jax
and array-api-strict draw the same bits, and nothing crosses the bus.  The mixer is Chris Wellons' "lowbias32", applied
twice.

Comparisons are made on the integers (``bits < keep_prob * 2^32``), never on
rounded floats, so masks and permutations are bit-identical across backends.

bpnet's streams, each keyed by its own tag: :func:`shuffle` (the permutation
of an epoch, ``counters = (seed, epoch)``) and :func:`dropout` (the masks of
a mini-batch, ``counters = (seed, epoch, batch)``, layer l's from
``fold(DROPOUT, *counters, l)``).
"""

from __future__ import annotations

import math

import array_api_compat

__all__ = ["fold", "bits", "keep_mask", "permutation", "shuffle", "shuffles", "dropout", "SHUFFLE", "DROPOUT"]

#: the first word of each stream's key: the shuffles' and the dropout masks' draws never coincide
SHUFFLE, DROPOUT = 1, 2

_M32 = 0xFFFFFFFF
_M64 = (1 << 64) - 1


def fold(*ints) -> tuple[int, int]:
    """Two 32-bit words from integers (splitmix64 on the host), the key of a stream of draws."""
    z = 0x9E3779B97F4A7C15
    for n in ints:
        z = (z ^ (int(n) & _M64)) & _M64
        z = (z + 0x9E3779B97F4A7C15) & _M64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
        z ^= z >> 31
    return z & _M32, z >> 32


def _signed(c: int) -> int:
    """The int32 with the bits of the uint32 ``c``."""
    return c - 2**32 if c >= 2**31 else c


class _U32:
    """uint32 arithmetic mod 2^32 (numpy, cupy, jax, array-api-strict)."""

    @staticmethod
    def shr(x, k):
        return x >> k

    @staticmethod
    def mul(x, c):
        x *= c
        return x

    @staticmethod
    def const(c):
        return c


class _I32:
    """The same bits in int32 (torch, whose uint32 has no shift or comparison): products wrap alike, and a
    right shift clears the copies of the sign bit an arithmetic shift brings in."""

    @staticmethod
    def shr(x, k):
        return (x >> k) & ((1 << (32 - k)) - 1)

    @staticmethod
    def mul(x, c):
        x *= _signed(c)
        return x

    const = staticmethod(_signed)


def _mix(x, ops):
    # lowbias32: x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15; x *= 0x846ca68b; x ^= x >> 16 (mod 2^32)
    x ^= ops.shr(x, 16)
    x = ops.mul(x, 0x7FEB352D)
    x ^= ops.shr(x, 15)
    x = ops.mul(x, 0x846CA68B)
    x ^= ops.shr(x, 16)
    return x


#: elements hashed at a time on a CPU: cache-sized pieces run ~10x faster than one pass over a large array
CHUNK = 1 << 18


def _hash(xp, start, stop, key, device):
    """The 32 random bits of flat indices ``[start, stop)`` (< 2^32): uint32, or their int32 pattern on torch.

    ``key`` is one ``(k1, k2)``, or a list of them: then row r of the ``(len(key), stop - start)`` result
    holds the bits of ``key[r]`` (the same numbers, in one pass).
    """
    ops = _I32 if array_api_compat.is_torch_namespace(xp) else _U32
    dtype = xp.int32 if ops is _I32 else xp.uint32
    h = xp.astype(xp.arange(start, stop, dtype=xp.int64, device=device), dtype)
    if isinstance(key, list):  # a column of first words, one of second words: broadcast over the indices
        k1, k2 = (xp.asarray([[ops.const(k[i])] for k in key], dtype=dtype, device=device) for i in (0, 1))
        h = h ^ k1
    else:
        k1, k2 = (ops.const(k) for k in key)
        h ^= k1
    h = _mix(h, ops)
    h ^= k2
    return _mix(h, ops)


def _unsigned(xp, h):
    """Bits from :func:`_hash` as non-negative integers: uint32 as they are, torch's int32 widened to int64."""
    return h if h.dtype != xp.int32 else xp.astype(h, xp.int64) & _M32


def _pieces(xp, n, device) -> bool:
    # on a CPU, in cache-sized pieces (written with __setitem__); a GPU or JAX (immutable, fused by XLA): whole
    on_cpu = array_api_compat.is_numpy_namespace(xp) or array_api_compat.is_array_api_strict_namespace(xp) or (
        array_api_compat.is_torch_namespace(xp) and getattr(device, "type", "cpu") == "cpu")
    return on_cpu and n > CHUNK


def _fill(xp, n, dtype, device, piece):
    """``piece(start, stop)`` over ``[0, n)``, whole or in :data:`CHUNK`-sized pieces, as one 1-D array."""
    if not _pieces(xp, n, device):
        return piece(0, n)
    out = xp.empty((n,), dtype=dtype, device=device)
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        out[start:stop] = piece(start, stop)
    return out


def bits(xp, shape, key, device):
    """Random 32-bit integers of ``shape`` (uint32, or int64 in ``[0, 2^32)`` on torch) for ``key``."""
    n = math.prod(shape)
    if n >= 2**32:
        raise ValueError(f"shape: at most 2^32 - 1 draws at once, got {shape}")
    dtype = xp.int64 if array_api_compat.is_torch_namespace(xp) else xp.uint32
    return xp.reshape(_fill(xp, n, dtype, device, lambda a, b: _unsigned(xp, _hash(xp, a, b, key, device))),
                      tuple(shape))


def keep_mask(xp, shape, keep_prob, key, device, dtype):
    """Inverted-dropout mask of ``shape``: ``1/keep_prob`` with probability ``keep_prob``, else 0, in ``dtype``."""
    threshold = min(int(keep_prob * 2.0**32), 2**32 - 1)
    scale = 1.0 / keep_prob
    torch = array_api_compat.is_torch_namespace(xp)

    def piece(a, b):
        h = _hash(xp, a, b, key, device)
        # u < T for uint32 u is, on the int32 pattern of u, (u ^ 2^31) < (T ^ 2^31) as signed numbers
        below = (h ^ _signed(2**31)) < _signed(threshold ^ 2**31) if torch else h < threshold
        kept = xp.astype(below, dtype)
        kept *= scale
        return kept

    return xp.reshape(_fill(xp, math.prod(shape), dtype, device, piece), tuple(shape))


def _order(xp, h, device):
    """The stable argsort (int64) of random integers ``h`` in ``[0, 2^32)`` along the last axis (< 2^32 long).

    One sort of the distinct int64 keys ``(h - 2^31) 2^32 + i`` (i the position; the shift keeps them in
    int64's range): distinct keys order as ``(h, i)`` whatever the algorithm, so the unstable sort, faster
    than a stable argsort, gives the same permutation (numpy: 136 permutations of 1,437 drawn in 4.1 ms
    instead of 10.7, one of 10^6 in 82 ms instead of 118); its low 32 bits are the positions.
    """
    keys = xp.astype(h, xp.int64)
    keys -= 2**31
    keys *= 2**32
    keys += xp.arange(h.shape[-1], dtype=xp.int64, device=device)
    keys = xp.sort(keys, axis=-1, stable=False)
    keys &= 2**32 - 1
    return keys


def permutation(xp, m, key, device):
    """A random permutation of ``range(m)`` (int64): the stable argsort of ``m`` random integers."""
    return _order(xp, bits(xp, (m,), key, device), device)


def shuffle(xp, m, counters, device):
    """The permutation of ``range(m)`` (int64) of ``counters`` (``(seed, epoch)``, ...)."""
    return permutation(xp, m, fold(SHUFFLE, *counters), device)


def shuffles(xp, m, seed, epochs, device):
    """The permutations of ``epochs`` (a range), drawn together: row i of the ``(len(epochs), m)`` int64
    result is ``shuffle(xp, m, (seed, epochs[i]), device)``.  For small m, where one draw is a few dozen
    small calls: keep ``len(epochs) * m`` within :data:`CHUNK` (a cache-sized pass)."""
    keys = [fold(SHUFFLE, seed, e) for e in epochs]
    return _order(xp, _unsigned(xp, _hash(xp, 0, m, keys, device)), device)


def dropout(xp, sizes, m, keep_prob, counters, device, dtype):
    """Inverted-dropout masks ``(n, m)`` for each n of ``sizes`` (``1/keep_prob`` or 0, in ``dtype``);
    layer l's (0-based) from the key ``fold(DROPOUT, *counters, l)``."""
    return [keep_mask(xp, (n, m), keep_prob, fold(DROPOUT, *counters, l), device, dtype) for l, n in enumerate(sizes)]
