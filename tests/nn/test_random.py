"""The counter-based generator (bpnet.nn.random): the hash it documents, the same bits on every backend and
device, chunked and whole draws alike, masks and permutations with the right statistics."""

from __future__ import annotations

import numpy as np
import pytest
from array_api_compat import numpy as npx
from conftest import assert_on, to_np

from bpnet.nn import random

pytestmark = pytest.mark.every_backend  # torch and jax run every case here (tests/conftest.py)

M32 = 0xFFFFFFFF


def _lowbias32(x):
    x ^= x >> 16
    x = (x * 0x7FEB352D) & M32
    x ^= x >> 15
    x = (x * 0x846CA68B) & M32
    x ^= x >> 16
    return x


def _reference_bits(n, key):
    """The documented hash, in plain Python integers: lowbias32(lowbias32(i ^ k1) ^ k2)."""
    k1, k2 = key
    return np.array([_lowbias32(_lowbias32(i ^ k1) ^ k2) for i in range(n)], dtype=np.int64)


def test_fold_is_splitmix64_and_separates_streams():
    assert random.fold(1, 2) != random.fold(2, 1)
    assert random.fold(random.SHUFFLE, 0, 0) != random.fold(random.DROPOUT, 0, 0)
    k1, k2 = random.fold(7)
    assert 0 <= k1 <= M32 and 0 <= k2 <= M32
    assert random.fold(-1) == random.fold(2**64 - 1)  # integers are taken mod 2^64


def test_bits_are_the_documented_hash_on_every_backend(bk):
    key = random.fold(3, 1, 4)
    got = to_np(random.bits(bk.xp, (5, 7), key, bk.device)).astype(np.int64)
    np.testing.assert_array_equal(got.ravel(), _reference_bits(35, key))


def test_chunked_and_whole_draws_are_identical(bk, monkeypatch):
    key, shape = random.fold(9), (3, 50)
    whole = to_np(random.keep_mask(bk.xp, shape, 0.7, key, bk.device, bk.dtype("float64")))
    whole_bits = to_np(random.bits(bk.xp, shape, key, bk.device))
    monkeypatch.setattr(random, "CHUNK", 16)  # cache-sized pieces on the CPU backends
    np.testing.assert_array_equal(to_np(random.keep_mask(bk.xp, shape, 0.7, key, bk.device, bk.dtype("float64"))),
                                  whole)
    np.testing.assert_array_equal(to_np(random.bits(bk.xp, shape, key, bk.device)), whole_bits)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("keep_prob", [0.5, 0.8, 1.0])
def test_dropout_masks_same_bits_everywhere_and_right_rate(bk, dtype, keep_prob):
    masks = random.dropout(bk.xp, [40, 25], 300, keep_prob, (11, 2, 5), bk.device, bk.dtype(dtype))
    ref = random.dropout(npx, [40, 25], 300, keep_prob, (11, 2, 5), None, np.dtype(dtype))
    for M, R, n in zip(masks, ref, (40, 25)):
        assert_on(bk, M, dtype, (n, 300))
        np.testing.assert_array_equal(to_np(M), R)  # the same mask as numpy's, bit for bit
        assert set(np.unique(to_np(M))) <= {0.0, np.dtype(dtype).type(1 / keep_prob)}
        kept = (to_np(M) > 0).mean()
        assert abs(kept - keep_prob) < 4 * np.sqrt(keep_prob * (1 - keep_prob) / to_np(M).size) + 1e-12
    assert not np.array_equal(to_np(masks[0])[:25], to_np(masks[1])) or keep_prob == 1.0  # layers differ


def test_shuffle_is_a_permutation_the_same_everywhere(bk):
    perm = random.shuffle(bk.xp, 1000, (4, 2), bk.device)
    assert_on(bk, perm, shape=(1000,))
    p = to_np(perm)
    np.testing.assert_array_equal(np.sort(p), np.arange(1000))
    np.testing.assert_array_equal(p, to_np(random.shuffle(npx, 1000, (4, 2), None)))
    assert not np.array_equal(p, to_np(random.shuffle(npx, 1000, (4, 3), None)))  # another epoch, another order
    # positions are uniform: each of 10 blocks of the permutation holds ~100 of the first 500 indices
    counts = [(p[i:i + 100] < 500).sum() for i in range(0, 1000, 100)]
    assert all(30 <= c <= 70 for c in counts)


def test_shuffles_drawn_together_are_each_epochs_shuffle(bk):
    """random.shuffles: row i is shuffle of (seed, epochs[i]), on every backend (torch's int32 bit patterns
    included); LocalBatches draws a small m's epochs so."""
    got = random.shuffles(bk.xp, 37, 9, range(3, 8), bk.device)
    assert_on(bk, got, shape=(5, 37))
    for i, e in enumerate(range(3, 8)):
        np.testing.assert_array_equal(to_np(got)[i], to_np(random.shuffle(npx, 37, (9, e), None)))
    assert len({tuple(r) for r in to_np(got).tolist()}) == 5


def test_too_many_draws_at_once_are_refused():
    with pytest.raises(ValueError, match="shape: at most 2"):
        random.bits(npx, (2**16, 2**16), (1, 2), None)
