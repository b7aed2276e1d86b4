"""Data-parallel training on Dask (bpnet.train.distributed): same numbers as one process, faults."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

import bpnet  # noqa: E402
from bpnet.train import distributed as bd  # noqa: E402

# One module-scoped LocalCluster (2 worker processes, 1 thread each) serves most
# tests; the tests that close or break a cluster start their own.  Skipped when
# dask/distributed are not installed (pip install 'bpnet[dask]').


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def _data(m=600, n_x=6, n_y=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_x, m))
    y = rng.integers(0, n_y, size=m)
    return X, y, np.eye(n_y)[:, y]


def _maxdiff(a, b):
    return max(float(np.max(np.abs(np.asarray(a[k]) - np.asarray(b[k])))) for k in a)


def test_importing_bpnet_does_not_import_dask():
    code = ("import sys, bpnet, bpnet.distributed; "
            "print(any(m.split('.')[0] in ('dask', 'distributed') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_one_step_gradient_equals_L_model_backward(client):
    """The tree-summed, weighted per-chunk gradients are L_model_backward on all the data (float64)."""
    X, _, Y = _data(m=517)
    model = bpnet.MLP([6, 9, 5, 3], dtype="float64", backend="numpy", seed=2)
    conn = bd.connect(client)
    s = bd.DaskBatches(conn, model, da.from_array(X, chunks=(3, 100)), Y, compute_chunk_sizes=True)
    assert s.sizes == [100] * 5 + [17] and s.m == 517
    res = s.step(s.blocks, [(c, 0, m_c) for c, m_c in enumerate(s.sizes)], model.parameters, "t")
    AL, caches = bpnet.L_model_forward(X, model.parameters, output_activation="softmax")
    ref = bpnet.L_model_backward(AL, Y, caches, output_activation="softmax", loss="categorical_crossentropy",
                                 fused=True)
    for k, g in res["g"].items():
        np.testing.assert_allclose(g, ref[k], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(res["cost"] / 517, float(bpnet.compute_cost(AL, Y, loss="categorical_crossentropy")),
                               rtol=1e-12)


@pytest.mark.parametrize("optimizer", ["gd", "adam"])
def test_full_batch_steps_equal_single_process_fit(client, optimizer):
    """N full-batch steps on 2 workers (float32) equal MLP.fit in one process to float32 summation noise."""
    X, y, _ = _data()
    kw = dict(epochs=4, batch_size=600, optimizer=optimizer, learning_rate=0.05)
    ref = bpnet.MLP([6, 16, 3], backend="numpy", seed=1)
    ref.fit(X, y, shuffle=False, **kw)
    dist = bpnet.MLP([6, 16, 3], backend="numpy", seed=1)
    source = bd.DaskBatches(bd.connect(client), dist, X, y, chunk_size=150)
    dist.fit_source(source, **kw)
    assert source.stats["chunk_sizes"] == [150] * 4
    assert dist.parameters["W1"].dtype == np.float32 and dist.epoch == 4
    for k in ref.parameters:
        np.testing.assert_allclose(dist.parameters[k], ref.parameters[k], rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(dist.history.cost, ref.history.cost, rtol=1e-5)
    np.testing.assert_allclose(dist.history.accuracy, ref.history.accuracy)
    assert dist.optimizer_state["t"] == ref.optimizer_state["t"] == 4


def test_minibatches_match_a_reference_on_the_same_index_sets(client):
    """Mini-batches drawn within chunks: the reference trains on epoch_batches' columns, in one process."""
    X, _, Y = _data(m=500)
    chunks = (120, 130, 100, 150)
    kw = dict(epochs=2, batch_size=64, learning_rate=0.01, seed=7, l2=0.05)
    model = bpnet.MLP([6, 8, 3], dtype="float64", backend="numpy", seed=3)
    model.fit(da.from_array(X, chunks=(6, chunks)), da.from_array(Y, chunks=(3, 250)), client=client,
              optimizer="adam", beta2=0.99, **kw)

    ref = bpnet.MLP([6, 8, 3], dtype="float64", backend="numpy", seed=3).parameters
    opt = bpnet.get_optimizer("adam", beta2=0.99)
    state = opt.init(ref)
    costs = []
    for e in range(2):
        batches = bd.epoch_batches(chunks, e, batch_size=64, seed=7)
        assert len(batches) == 8 and sorted(np.concatenate(batches)) == list(range(500))
        assert all(abs(len(b) - 62.5) <= 4 for b in batches)
        total = 0.0
        for idx in batches:
            AL, caches = bpnet.L_model_forward(X[:, idx], ref, output_activation="softmax")
            total += float(bpnet.compute_cost(AL, Y[:, idx], loss="categorical_crossentropy")) * len(idx)
            g = bpnet.L_model_backward(AL, Y[:, idx], caches, output_activation="softmax",
                                       loss="categorical_crossentropy", fused=True)
            g = bpnet.add_l2_gradients(g, ref, 0.05, len(idx))
            ref, state = opt.step(ref, g, state, 0.01)
        costs.append(total / 500 + float(bpnet.l2_cost(ref, 0.05, 500)))
    assert _maxdiff(model.parameters, ref) < 1e-12
    np.testing.assert_allclose(model.history.cost, costs, rtol=1e-12)


def test_numpy_input_chunk_size_tasks_per_step_and_dropout(client):
    """About two tasks per chunk per step (a gradient task and a share of the reduction tree)."""
    X, y, _ = _data(m=700)
    model = bpnet.MLP([6, 8, 3], backend="numpy", seed=0)
    source = bd.DaskBatches(bd.connect(client), model, X, y, chunk_size=100)
    with distributed.get_task_stream(client) as ts:
        model.fit_source(source, epochs=2, batch_size=175, dropout=0.2)
    st = source.stats
    assert st["chunk_sizes"] == [100] * 7 and st["steps_per_epoch"] == 4
    keys = [str(t["key"]) for t in ts.data]
    grad = sum("bpnet-grad-" in k for k in keys)
    summ = sum("bpnet-sum-" in k for k in keys)
    steps = 2 * 4
    assert grad == 7 * steps  # one gradient task per chunk per step
    assert summ == bd.tree_tasks(7, 4) * steps == 3 * steps
    assert (grad + summ) / (7 * steps) <= 2.0
    assert all(np.isfinite(model.history.cost)) and model.epoch == 2


def test_unknown_chunk_sizes_are_read_from_the_blocks_never_nan(client):
    X, y, Y = _data(m=400)
    keep = np.random.default_rng(1).random(400) > 0.3
    Xd = da.from_array(X, chunks=(6, 100))
    mask = da.from_array(keep, chunks=100)
    Xf, yf = Xd[:, mask], da.from_array(y, chunks=100)[mask]
    assert np.isnan(Xf.chunks[1][0])
    dist = bpnet.MLP([6, 8, 3], dtype="float64", backend="numpy", seed=1)
    source = bd.DaskBatches(bd.connect(client), dist, Xf, yf)
    dist.fit_source(source, epochs=2, batch_size=1000, optimizer="gd", learning_rate=0.1)
    ref = bpnet.MLP([6, 8, 3], dtype="float64", backend="numpy", seed=1)
    ref.fit(X[:, keep], y[keep], epochs=2, batch_size=1000, optimizer="gd", learning_rate=0.1, shuffle=False)
    assert source.stats["m"] == int(keep.sum())
    assert _maxdiff(dist.parameters, ref.parameters) < 1e-12
    assert all(np.isfinite(dist.history.cost))
    # refused with a clear error when computing them is not allowed
    with pytest.raises(ValueError, match=r"X: unknown chunk sizes.*compute_chunk_sizes"):
        bd.fit_distributed(bpnet.MLP([6, 8, 3], backend="numpy"), Xf, Y[:, keep], client=client, epochs=1,
                           compute_chunk_sizes=False)
    # Y rechunked to X's chunks; 1-D labels of another chunking
    m2 = bpnet.MLP([6, 8, 3], dtype="float64", backend="numpy", seed=1)
    m2.fit(Xd, da.from_array(y, chunks=170), client=client, epochs=1, batch_size=400, optimizer="gd",
           learning_rate=0.1)
    r2 = bpnet.MLP([6, 8, 3], dtype="float64", backend="numpy", seed=1)
    r2.fit(X, y, epochs=1, batch_size=400, optimizer="gd", learning_rate=0.1)
    assert _maxdiff(m2.parameters, r2.parameters) < 1e-12


def test_bad_inputs_are_named(client):
    X, y, Y = _data(m=100)
    model = bpnet.MLP([6, 4, 3], backend="numpy")
    with pytest.raises(ValueError, match=r"X: expected shape \(6, m\).*transposed"):
        model.fit(X.T, y, client=client, epochs=1)
    bad = Y.copy()
    bad[0, 5] = 0.5
    with pytest.raises(ValueError, match=r"Y: expected labels 0 or 1 .*chunk 0 along the examples axis"):
        model.fit(X, bad, client=client, epochs=1, chunk_size=50)
    Xn = X.copy()
    Xn[2, 70] = np.nan
    with pytest.raises(ValueError, match=r"X: expected finite values.*chunk 1"):
        model.fit(Xn, y, client=client, epochs=1, chunk_size=50)
    with pytest.raises(ValueError, match="chunk_size: only used with client"):
        model.fit(X, y, chunk_size=10, epochs=1)
    with pytest.raises(ValueError, match="validation_split: not supported"):
        model.fit(X, y, client=client, validation_split=0.2, epochs=1)
    with pytest.raises(ValueError, match="client: expected 'local'"):
        bd.connect("localhost:8786")
    with pytest.raises(TypeError, match="client: expected a distributed.Client"):
        bd.connect(3)
    assert model.epoch == 0


def _restarted(client, pid) -> bool:
    """Two workers are up again and none of them is process ``pid``."""
    try:
        pids = client.run(os.getpid, on_error="raise")
    except Exception:  # the scheduler has not noticed yet: a broadcast to the dead worker fails
        return False
    return len(pids) == 2 and pid not in pids.values()


def test_killed_worker_mid_fit_still_gives_the_same_parameters(client):
    """A worker process SIGKILLed between epochs: Dask reruns its tasks and rebuilds its blocks."""
    X, y, _ = _data(m=400)
    kw = dict(client=client, chunk_size=50, epochs=3, batch_size=100, optimizer="adam", learning_rate=0.01)
    clean = bpnet.MLP([6, 8, 3], dtype="float64", backend="numpy", seed=5)
    clean.fit(X, y, **kw)

    def kill(model, epoch, logs):
        if epoch == 1:  # between epochs 1 and 2: once the nanny has restarted it, its blocks are gone
            pid = next(iter(client.run(os.getpid).values()))
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 60
            while not _restarted(client, pid):
                assert time.monotonic() < deadline, "the nanny did not restart the killed worker"
                time.sleep(0.1)

    before = set(client.run(os.getpid).values())
    hit = bpnet.MLP([6, 8, 3], dtype="float64", backend="numpy", seed=5)
    hit.fit(X, y, callbacks=[kill], **kw)
    assert hit.epoch == 3
    assert _maxdiff(hit.parameters, clean.parameters) < 1e-12
    client.wait_for_workers(2, timeout=60)
    assert set(client.run(os.getpid).values()) != before  # the nanny restarted the killed worker


def test_cluster_gone_gives_a_clear_error_and_the_checkpoint_is_intact(tmp_path):
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0")
    c = distributed.Client(cluster)
    X, y, _ = _data(m=200)
    ckpt = tmp_path / "model.npz"
    saved = {}

    def close_cluster(model, epoch, logs):
        if epoch == 2:
            saved.update({k: np.array(v) for k, v in model.parameters.items()})
            c.close()
            cluster.close()

    model = bpnet.MLP([6, 8, 3], backend="numpy", seed=0)
    try:
        with pytest.raises(bd.ClusterGoneError, match=r"Dask cluster at .* is gone after epoch 2.*checkpoint .* "
                                                      r"is intact"):
            model.fit(X, y, client=c, chunk_size=100, epochs=5, batch_size=200, callbacks=[close_cluster],
                      checkpoint=ckpt)
    finally:
        c.close()
        cluster.close()
    assert model.epoch == 2
    back = bpnet.MLP.load(ckpt, backend="numpy")
    assert back.epoch == 2 and _maxdiff(back.parameters, saved) == 0.0


@pytest.mark.gpu
@pytest.mark.skipif("cupy" in bpnet.backends.unavailable_reasons(),
                    reason=f"needs a usable cupy GPU: {bpnet.backends.unavailable_reasons().get('cupy')}")
# numpy 2.5 deprecates the 'generic' timedelta unit; the cupy-block path of dask/distributed (not
# bpnet, which uses no timedelta) triggered it on the GPU machine (dask 2026.8, cupy 14.2)
@pytest.mark.filterwarnings("ignore:The 'generic' unit for NumPy timedelta:DeprecationWarning")
@pytest.mark.parametrize("optimizer", ["gd", "adam"])
def test_cupy_blocks_train_on_the_gpu_like_one_process(optimizer):
    """A dask array of cupy blocks (one GPU, an in-process worker): each chunk's gradients are computed
    with cupy on the GPU, and 4 full-batch steps equal MLP.fit in one process to rounding (float64)."""
    import cupy

    X, y, Y = _data()
    kw = dict(epochs=4, batch_size=600, optimizer=optimizer, learning_rate=0.05)
    ref = bpnet.MLP([6, 16, 3], dtype="float64", backend="numpy", seed=1)
    ref.fit(X, y, shuffle=False, **kw)
    Xd = da.from_array(X, chunks=(6, 150)).map_blocks(cupy.asarray)
    Yd = da.from_array(Y, chunks=(3, 150)).map_blocks(cupy.asarray)
    assert isinstance(Xd.blocks[0].compute(), cupy.ndarray)
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=":0") as c:
        dist = bpnet.MLP([6, 16, 3], dtype="float64", backend="numpy", seed=1)
        source = bd.DaskBatches(bd.connect(c), dist, Xd, Yd)
        dist.fit_source(source, **kw)
    assert source.stats["chunk_sizes"] == [150] * 4 and dist.epoch == 4
    for k in ref.parameters:
        np.testing.assert_allclose(dist.parameters[k], ref.parameters[k], rtol=1e-10, atol=1e-12, err_msg=k)
    np.testing.assert_allclose(dist.history.cost, ref.history.cost, rtol=1e-10)


def test_both_workers_killed_mid_fit_wait_for_the_restart_and_give_the_same_parameters():
    """Both worker processes SIGKILLed between epochs: fit waits (bounded) for the nannies to restart them and
    continues from the last completed epoch; the parameters are those of an undisturbed run."""
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    c = distributed.Client(cluster)
    try:
        X, y, _ = _data(m=400)
        kw = dict(client=c, chunk_size=50, epochs=3, batch_size=100, optimizer="adam", learning_rate=0.01)
        clean = bpnet.MLP([6, 8, 3], dtype="float64", backend="numpy", seed=5)
        clean.fit(X, y, **kw)
        killed = []

        def kill_both(model, epoch, logs):
            if epoch == 1:  # between epochs 1 and 2, without waiting: the next step meets no worker
                pids = list(c.run(os.getpid).values())
                for pid in pids:
                    os.kill(pid, signal.SIGKILL)
                killed.extend(pids)

        hit = bpnet.MLP([6, 8, 3], dtype="float64", backend="numpy", seed=5)
        hit.fit(X, y, callbacks=[kill_both], **kw)
        assert len(killed) == 2 and hit.epoch == 3
        assert _maxdiff(hit.parameters, clean.parameters) < 1e-12
        c.wait_for_workers(2, timeout=60)
        assert not set(killed) & set(c.run(os.getpid).values())  # both were restarted
        again = bpnet.MLP([6, 8, 3], dtype="float64", backend="numpy", seed=5)  # and the client still works
        again.fit(X, y, **kw)
        assert _maxdiff(again.parameters, clean.parameters) < 1e-12
    finally:
        c.close()
        cluster.close()
