"""glibc's malloc thresholds around training steps with large host arrays (bpnet.train._heap)."""

from __future__ import annotations

import numpy as np
import pytest

import bpnet
from bpnet.train import _heap
from bpnet.train.loop import LocalBatches, heap_for

MiB = 1 << 20
ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


class FakeLibc:
    """Records ``mallopt`` and ``malloc_trim`` instead of calling glibc."""

    def __init__(self):
        self.calls = []

    def mallopt(self, param, value):
        self.calls.append(("mallopt", param, value))
        return 1

    def malloc_trim(self, pad):
        self.calls.append(("malloc_trim", pad))
        return 1


@pytest.fixture
def libc(monkeypatch):
    for k in ENV:
        monkeypatch.delenv(k, raising=False)
    fake = FakeLibc()
    monkeypatch.setitem(_heap._STATE, "libc", fake)
    assert _heap._STATE["users"] == 0 and _heap._STATE["set"] is None
    yield fake
    assert _heap._STATE["users"] == 0 and _heap._STATE["set"] is None  # every user left, everything set back


def test_thresholds_rise_above_the_largest_array_and_cover_all_of_them(monkeypatch):
    for k in ENV:
        monkeypatch.delenv(k, raising=False)
    assert _heap.thresholds(32 * MiB, 500 * MiB) is None  # glibc's own limits serve arrays up to 32 MiB
    assert _heap.thresholds(205 * MiB + 5, 619 * MiB) == (206 * MiB, 619 * MiB)
    assert _heap.thresholds(40 * MiB, 0) == (41 * MiB, 82 * MiB)
    assert _heap.thresholds(1500 * MiB, 9 << 30) == (1501 * MiB, _heap.INT_MAX)  # mallopt takes a C int
    assert _heap.thresholds(3 << 30, 9 << 30) == (_heap.INT_MAX, _heap.INT_MAX)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")  # a Dask worker's: even small steps need the heap
    assert _heap.thresholds(1, 1) == (_heap.MMAP_THRESHOLD, _heap.TRIM_THRESHOLD)


def test_kept_sets_the_highest_asked_for_and_sets_back_once_when_the_last_user_leaves(libc):
    with _heap.kept((100 * MiB, 300 * MiB)):
        assert libc.calls == [("mallopt", -3, 101 * MiB), ("mallopt", -1, 300 * MiB)]
        with _heap.kept((10 * MiB, 10 * MiB)):  # served already: nothing set
            pass
        with _heap.kept((200 * MiB, 250 * MiB)):  # more: raised, the trim threshold kept at the higher one
            pass
        assert libc.calls[2:] == [("mallopt", -3, 201 * MiB), ("mallopt", -1, 402 * MiB)]
    # glibc's upper limits of its dynamic thresholds, then the free memory returned
    assert libc.calls[4:] == [("mallopt", -1, _heap.TRIM_THRESHOLD), ("mallopt", -3, _heap.MMAP_THRESHOLD),
                              ("malloc_trim", 0)]


def test_kept_sets_back_the_environment_s_thresholds(libc, monkeypatch):
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")  # as Dask's nannies start workers
    with _heap.kept((0, 0)):
        assert libc.calls == [("mallopt", -3, _heap.MMAP_THRESHOLD), ("mallopt", -1, _heap.TRIM_THRESHOLD)]
    assert libc.calls[2:] == [("mallopt", -1, 65536), ("mallopt", -3, 128 << 10), ("malloc_trim", 0)]


def test_kept_does_nothing_for_small_steps_or_without_glibc(libc, monkeypatch):
    with _heap.kept(_heap.step_bytes(_state([8, 16, 3]), 64)):
        pass
    monkeypatch.setitem(_heap._STATE, "libc", None)
    with _heap.kept((1 << 40, 1 << 40)):
        pass
    assert libc.calls == []


def _state(dims, dtype="float64", backend="numpy"):
    model = bpnet.MLP(dims, dtype=dtype, backend=backend, seed=0)
    opt = bpnet.optim.get_optimizer("gd")
    return bpnet.train.TrainState(model.parameters, opt, opt.init(model.parameters))


@pytest.mark.parametrize("backend", ["numpy", "array_api_strict", "torch"])
def test_step_bytes_is_the_largest_array_and_about_all_of_a_step_s(backend):
    if backend not in bpnet.backends.available():
        pytest.skip(f"{backend} not installed")
    ts = _state([784, 256, 10], "float32", backend)
    want = ((4096 * 784) * 4, (4096 * (784 + 4 * (256 + 10)) + 256 * 785 + 10 * 257) * 4)
    assert _heap.step_bytes(ts, 4096) == (want if backend != "torch" else (0, 0))  # torch: its own allocator


def test_a_fit_with_large_batches_keeps_the_heap_until_it_ends(libc):
    """MLP.fit's epoch loop holds the thresholds over all its epochs (not one epoch: the next would fault its
    arrays in again), for a source whose steps run here, and sets them back when the fit ends."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(8, 4096)), rng.integers(0, 2, 4096)
    model = bpnet.MLP([8, 2048, 1], dtype="float64", backend="numpy", seed=0)  # A1: 2048 x 4096 x 8 B = 64 MiB
    seen = []
    model.fit(X, y, epochs=3, batch_size=4096, callbacks=[lambda *a: seen.append(list(libc.calls))])
    assert all(c == seen[0] for c in seen) and [c[:2] for c in seen[0]] == [("mallopt", -3), ("mallopt", -1)]
    assert seen[0][0][2] > 64 * MiB
    assert libc.calls[2:] == [("mallopt", -1, _heap.TRIM_THRESHOLD), ("mallopt", -3, _heap.MMAP_THRESHOLD),
                              ("malloc_trim", 0)]


def test_a_source_whose_steps_run_elsewhere_keeps_no_heap(libc):
    class Elsewhere(LocalBatches):
        steps_here = False

    rng = np.random.default_rng(0)
    bk = bpnet.backends.get("numpy")
    source = Elsewhere(bk.asarray(rng.normal(size=(8, 4096))), bk.asarray(rng.normal(size=(1, 4096))), bk)
    cfg = bpnet.train.FitConfig.from_options(batch_size=4096)
    with heap_for(source, _state([8, 2048, 1]), cfg):
        pass
    with heap_for(LocalBatches(source.X, source.Y, bk), _state([8, 2048, 1]), cfg):
        assert len(libc.calls) == 2
    assert len(libc.calls) == 5


@pytest.mark.parametrize("sizes", [(64 * MiB, 256 * MiB), (64 << 30, 256 << 30)])
def test_glibc_itself_takes_the_thresholds(sizes):
    """On glibc the real calls go through (a threshold beyond a C int is capped: ctypes would pass its low 32
    bits, 0 for 8 GiB, and every array would be mapped), and the arrays allocated meanwhile are ordinary."""
    if _heap.libc() is None:
        pytest.skip("not glibc")
    with _heap.kept(sizes):
        a = np.ones((128 * MiB) // 8)
        assert a.sum() == a.size
        del a
    assert _heap._STATE["users"] == 0 and _heap._STATE["set"] is None
