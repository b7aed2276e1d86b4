"""Data-parallel training on Dask (bpnet.train.distributed): same numbers as one process, the replicas' plan,
no task per step, faults."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import assert_on, to_np

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
    """One full-batch gd step with learning rate 1: W_before - W_after is L_model_backward on all the data (float64),
    summed over two replicas of contiguous chunks; the epoch's cost is that of the initial parameters."""
    X, _, Y = _data(m=517)
    model = bpnet.MLP([6, 9, 5, 3], dtype="float64", backend="numpy", seed=2)
    before = {k: np.array(v) for k, v in model.parameters.items()}
    with bd.DaskBatches(bd.connect(client), model, da.from_array(X, chunks=(3, 100)), Y) as s:
        assert s.sizes == [100] * 5 + [17] and s.m == 517
        model.fit_source(s, epochs=1, batch_size=517, optimizer="gd", learning_rate=1.0, shuffle=False)
        assert s.stats["ranks"] == [[0, 1, 2], [3, 4, 5]] and s.stats["starts"] == 1
        assert len(set(s.addresses)) == 2  # one replica per worker
    AL, caches = bpnet.L_model_forward(X, before, output_activation="softmax")
    ref = bpnet.L_model_backward(AL, Y, caches, output_activation="softmax", loss="categorical_crossentropy",
                                 fused=True)
    for k in before:
        np.testing.assert_allclose(before[k] - model.parameters[k], ref["d" + k], rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(model.history.cost[0], float(bpnet.compute_cost(AL, Y, loss="categorical_crossentropy")),
                               rtol=1e-12)


def test_rank_chunks_and_the_allreduce_plan():
    assert bd.rank_chunks([100] * 5 + [17], 2) == [range(0, 3), range(3, 6)]
    assert bd.rank_chunks([10, 10, 10, 1000], 3) == [range(0, 2), range(2, 3), range(3, 4)]
    assert bd.rank_chunks([5], 1) == [range(0, 1)]
    with pytest.raises(ValueError, match="n_ranks: expected 1 to 2 replicas for 2 chunks, got 3"):
        bd.rank_chunks([5, 5], 3)
    for n in range(1, 12):  # every rank ends with the same sum of all n partial sums, up to commutativity
        held, mail, plans = {r: r for r in range(n)}, {}, {r: bd.allreduce_plan(r, n) for r in range(n)}
        pos = dict.fromkeys(range(n), 0)
        for _ in range(4 * n + 8):
            for r in range(n):
                while pos[r] < len(plans[r]):
                    kind, peer, rnd = plans[r][pos[r]]
                    if kind in ("give", "send", "swap") and ("out", r, rnd) not in mail:
                        mail[("out", r, rnd)], mail[(peer, rnd)] = True, held[r]
                    if kind in ("give", "send"):
                        pos[r] += 1
                        continue
                    if (r, rnd) not in mail:
                        break
                    other = mail.pop((r, rnd))
                    held[r] = other if kind == "take" else frozenset({held[r], other})
                    pos[r] += 1
        assert all(pos[r] == len(plans[r]) for r in range(n)), n
        assert len({held[r] for r in range(n)}) == 1, n

        def leaves(t):
            return [t] if isinstance(t, int) else [x for u in t for x in leaves(u)]

        assert sorted(leaves(held[0])) == list(range(n))
    assert [len(bd.allreduce_plan(r, 8)) for r in range(8)] == [3] * 8  # log2 8 exchanges each


@pytest.mark.parametrize("optimizer", ["gd", "adam"])
def test_full_batch_steps_equal_single_process_fit(client, optimizer):
    """N full-batch steps on 2 workers (float32) equal MLP.fit in one process to float32 summation noise."""
    X, y, _ = _data()
    kw = dict(epochs=4, batch_size=600, optimizer=optimizer, learning_rate=0.05)
    ref = bpnet.MLP([6, 16, 3], backend="numpy", seed=1)
    ref.fit(X, y, shuffle=False, **kw)
    dist = bpnet.MLP([6, 16, 3], backend="numpy", seed=1)
    with bd.DaskBatches(bd.connect(client), dist, X, y, chunk_size=150) as source:
        dist.fit_source(source, **kw)
    assert source.stats["chunk_sizes"] == [150] * 4 and source.stats["ranks"] == [[0, 1], [2, 3]]
    assert dist.parameters["W1"].dtype == np.float32 and dist.epoch == 4
    for k in ref.parameters:
        np.testing.assert_allclose(dist.parameters[k], ref.parameters[k], rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(dist.history.cost, ref.history.cost, rtol=1e-5)
    np.testing.assert_allclose(dist.history.accuracy, ref.history.accuracy)
    assert dist.optimizer_state["t"] == ref.optimizer_state["t"] == 4


def test_minibatches_equal_MLP_fit_on_the_same_shuffle(client):
    """Shuffled mini-batches on two replicas of uneven chunks (a dask Y of other chunks) are MLP.fit's batches:
    the same parameters, optimiser state, costs and accuracies as one process, to the order of the sums."""
    X, y, Y = _data(m=500)
    kw = dict(epochs=2, batch_size=64, learning_rate=0.01, seed=7, l2=0.05, optimizer="adam", beta2=0.99)
    model = bpnet.MLP([6, 8, 3], dtype="float64", backend="numpy", seed=3)
    model.fit(da.from_array(X, chunks=(6, (120, 130, 100, 150))), da.from_array(Y, chunks=(3, 250)), client=client,
              **kw)
    ref = bpnet.MLP([6, 8, 3], dtype="float64", backend="numpy", seed=3)
    ref.fit(X, y, **kw)
    assert model.epoch == ref.epoch == 2 and model.optimizer_state["t"] == ref.optimizer_state["t"] == 16
    assert _maxdiff(model.parameters, ref.parameters) < 1e-12
    assert all(_maxdiff(model.optimizer_state[s], ref.optimizer_state[s]) < 1e-12 for s in ("v", "s"))
    np.testing.assert_allclose(model.history.cost, ref.history.cost, rtol=1e-12)
    assert model.history.accuracy == ref.history.accuracy


def test_workers_compute_on_the_models_backend(client, bk):
    """Host (numpy) blocks, a model on torch, jax or array-api-strict: the replicas move their blocks to the
    model's backend and train there, with dropout and Adam, as MLP.fit does on that backend (float64)."""
    if bk.name == "numpy":
        pytest.skip("numpy: the other tests of this module")
    X, y, Y = _data(m=400)
    kw = dict(epochs=2, batch_size=100, optimizer="adam", learning_rate=0.05, dropout=0.2, seed=5)
    ref = bpnet.MLP([6, 8, 3], dtype="float64", backend=bk, seed=1)
    ref.fit(X, y, **kw)
    model = bpnet.MLP([6, 8, 3], dtype="float64", backend=bk, seed=1)
    model.fit(da.from_array(X, chunks=(6, 100)), da.from_array(Y, chunks=(3, 100)), client=client, **kw)
    for k in ref.parameters:
        assert_on(bk, model.parameters[k], "float64")
        np.testing.assert_allclose(to_np(model.parameters[k]), to_np(ref.parameters[k]), rtol=1e-10, atol=1e-12,
                                   err_msg=k)
    np.testing.assert_allclose(model.history.cost, ref.history.cost, rtol=1e-10)


def test_replicas_reconnected_between_epochs_resume_from_the_live_state(client, bk):
    """The replicas restarted between epochs (as after a lost worker) take the client's live parameters and
    optimiser moments (on JAX the moments are new arrays each step): the numbers of an undisturbed MLP.fit."""
    if bk.name == "numpy":
        pytest.skip("numpy: the other tests of this module")
    X, y, _ = _data(m=300)
    kw = dict(epochs=3, batch_size=100, optimizer="adam", learning_rate=0.05, seed=5)
    ref = bpnet.MLP([6, 8, 3], dtype="float64", backend=bk, seed=1)
    ref.fit(X, y, **kw)
    model = bpnet.MLP([6, 8, 3], dtype="float64", backend=bk, seed=1)
    with bd.DaskBatches(bd.connect(client), model, X, y, chunk_size=100) as source:
        model.fit_source(source, callbacks=[lambda m, e, logs: source._drop()], **kw)  # new replicas each epoch
    assert source.starts == 3
    for k in ref.parameters:
        np.testing.assert_allclose(to_np(model.parameters[k]), to_np(ref.parameters[k]), rtol=1e-10, atol=1e-12,
                                   err_msg=k)


def test_no_task_per_step(client):
    """The steps pass no task through the scheduler: a fit of 3 x 14 steps runs the same tasks as one of 1 step,
    the creation of its two replicas (the blocks were made before)."""
    X, y, _ = _data(m=700)
    for epochs, batch in ((1, 700), (3, 50)):
        model = bpnet.MLP([6, 8, 3], backend="numpy", seed=0)
        with bd.DaskBatches(bd.connect(client), model, X, y, chunk_size=100) as source:
            with distributed.get_task_stream(client) as stream:
                model.fit_source(source, epochs=epochs, batch_size=batch)
        assert source.stats["steps_per_epoch"] == 700 // batch and model.epoch == epochs
        assert all(np.isfinite(model.history.cost))
        keys = [str(t["key"]) for t in stream.data]
        # the replicas' creation; a block's task may show up late from its construction, never a step's
        assert sum(k.startswith("bpnet-replica-") for k in keys) == 2, keys
        assert all(k.startswith(("bpnet-replica-", "bpnet-prepare-", "bpnet-size-")) for k in keys), keys


@pytest.mark.parametrize("shuffle", [True, False])
def test_dropout_l2_and_clipping_equal_MLP_fit(client, shuffle):
    """Dropout (each replica keeps its columns of the batch's masks, drawn from (seed, e, b)), a replica of two
    chunks, L2 and global-norm clipping as apply_gradients does them: the numbers of MLP.fit in one process."""
    X, y, _ = _data(m=300)
    chunks, dims = (100, 120, 80), [6, 7, 5, 3]
    kw = dict(epochs=2, batch_size=50, learning_rate=0.05, seed=4, l2=0.1, dropout=0.3, clip_norm=0.5,
              optimizer="momentum", shuffle=shuffle)
    model = bpnet.MLP(dims, dtype="float64", backend="numpy", seed=3)
    with bd.DaskBatches(bd.connect(client), model, da.from_array(X, chunks=(6, chunks)), y) as source:
        model.fit_source(source, **kw)
        assert source.stats["ranks"] == [[0], [1, 2]]
    ref = bpnet.MLP(dims, dtype="float64", backend="numpy", seed=3)
    ref.fit(X, y, **kw)
    assert _maxdiff(model.parameters, ref.parameters) < 1e-12
    np.testing.assert_allclose(model.history.cost, ref.history.cost, rtol=1e-12)
    assert model.history.accuracy == ref.history.accuracy


@pytest.mark.parametrize("copy_bytes", [1 << 20, 0], ids=["one-take-an-epoch", "a-take-a-batch"])
def test_three_replicas_fold_swap_and_stay_identical(copy_bytes, monkeypatch):
    """Three in-process workers: rank 2 folds into rank 0, ranks 0 and 1 swap, rank 0 sends the total back;
    every replica ends with the same bits, and the result is MLP.fit's in one process, whether a replica
    shuffles its share with one take of rows an epoch or one a batch (SHUFFLED_COPY_BYTES)."""
    monkeypatch.setattr(bpnet.train.loop, "SHUFFLED_COPY_BYTES", copy_bytes)
    X, y, _ = _data(m=360)
    kw = dict(epochs=2, batch_size=40, optimizer="adam", learning_rate=0.01, seed=2)
    with distributed.Client(processes=False, n_workers=3, threads_per_worker=1, dashboard_address=":0") as c:
        model = bpnet.MLP([6, 8, 3], dtype="float64", backend="numpy", seed=1)
        with bd.DaskBatches(bd.connect(c), model, da.from_array(X, chunks=(6, 120)), y) as source:
            model.fit_source(source, **kw)
            assert source.stats["ranks"] == [[0], [1], [2]]
            copies = [r.parameters().result() for r in source.replicas]
    assert all(_maxdiff(copies[0], p) == 0.0 for p in copies[1:])
    assert _maxdiff(copies[0], model.parameters) == 0.0
    ref = bpnet.MLP([6, 8, 3], dtype="float64", backend="numpy", seed=1)
    ref.fit(X, y, **kw)
    assert _maxdiff(model.parameters, ref.parameters) < 1e-12


def test_unknown_chunk_sizes_are_read_from_the_blocks_never_nan(client):
    X, y, Y = _data(m=400)
    keep = np.random.default_rng(1).random(400) > 0.3
    Xd = da.from_array(X, chunks=(6, 100))
    mask = da.from_array(keep, chunks=100)
    Xf, yf = Xd[:, mask], da.from_array(y, chunks=100)[mask]
    assert np.isnan(Xf.chunks[1][0])
    dist = bpnet.MLP([6, 8, 3], dtype="float64", backend="numpy", seed=1)
    with bd.DaskBatches(bd.connect(client), dist, Xf, yf) as source:
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
    for bad, err in ((0, ValueError), (-1, ValueError), (2.5, TypeError), ("2", TypeError), (True, TypeError)):
        with pytest.raises(err, match=r"^n_workers: expected an integer"):  # before any cluster starts
            bd.connect("local", n_workers=bad)
    assert model.epoch == 0


def test_a_script_without_the_main_guard_gets_one_clear_error(tmp_path):
    """A local cluster's worker processes import the script again (spawn): without ``if __name__ ==
    "__main__":`` each runs the fit again and fails to start.  The script ends with one clear error naming
    the fix, not Dask's "Nanny failed to start"."""
    script = tmp_path / "train_unguarded.py"
    script.write_text("import numpy as np, bpnet\n"
                      "X, y = np.random.default_rng(0).normal(size=(4, 200)), np.arange(200) % 2\n"
                      "bpnet.MLP([4, 3, 1], backend='numpy').fit(X, y, client='local:1', epochs=1)\n")
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("ConnectionError: client: the local Dask cluster's 1 worker process failed to start "
                           "(Nanny failed to start.); the usual cause: a script (train_unguarded.py) that does not "
                           "start the fit under 'if __name__ == \"__main__\":'"), r.stderr[-2000:]


def test_a_call_cancelled_in_distributed_sync_counts_as_a_lost_worker():
    """distributed's ``sync`` turns a cancelled call (asyncio.CancelledError) into an UnboundLocalError; the
    epoch's retry recognises that one (and only that one) as the error of a lost worker."""
    import asyncio

    from distributed.utils import LoopRunner, sync

    async def cancelled():
        raise asyncio.CancelledError()

    def own_bug():
        value = value + 1  # noqa: F821 - an UnboundLocalError of our own
        return value

    runner = LoopRunner(asynchronous=False)
    runner.start()
    try:
        try:
            sync(runner.loop, cancelled)
        except UnboundLocalError as exc:
            assert bd._raised_by(exc, "sync", "utils.py")
        except asyncio.CancelledError:
            pytest.skip("this distributed's sync raises the CancelledError itself")
    finally:
        runner.stop()
    with pytest.raises(UnboundLocalError) as info:
        own_bug()
    assert not bd._raised_by(info.value, "sync", "utils.py")


def test_an_actor_whose_worker_was_lost_counts_as_a_lost_worker():
    """distributed's Actor raises RuntimeError("Worker holding Actor was lost") on the next method looked up
    after its worker died (seen when both workers are killed between epochs); the epoch's retry recognises
    that one, and not a RuntimeError of bpnet's own."""
    from types import SimpleNamespace

    from distributed.actor import Actor

    actor = Actor(bd.Replica, "tcp://127.0.0.1:1", "bpnet-replica-test")
    actor._future = SimpleNamespace(status="error")  # what the client's future says once the worker is gone
    with pytest.raises(RuntimeError, match="lost") as info:
        actor.run_epoch  # noqa: B018 - the attribute lookup is what raises
    assert bd._raised_by(info.value, "__getattr__", "actor.py")
    with pytest.raises(RuntimeError) as info:
        raise RuntimeError("Worker holding Actor was lost")  # the same words, raised by bpnet
    assert not bd._raised_by(info.value, "__getattr__", "actor.py")


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
        with bd.DaskBatches(bd.connect(c), dist, Xd, Yd) as source:
            dist.fit_source(source, **kw)
    assert source.stats["chunk_sizes"] == [150] * 4 and dist.epoch == 4
    for k in ref.parameters:
        np.testing.assert_allclose(dist.parameters[k], ref.parameters[k], rtol=1e-10, atol=1e-12, err_msg=k)
    np.testing.assert_allclose(dist.history.cost, ref.history.cost, rtol=1e-10)


@pytest.mark.parametrize("noticed", [False, True], ids=["next-step-meets-no-worker", "scheduler-noticed-first"])
def test_both_workers_killed_mid_fit_wait_for_the_restart_and_give_the_same_parameters(noticed):
    """Both worker processes SIGKILLed between epochs: fit waits (bounded) for the nannies to restart them and
    continues from the last completed epoch; the parameters are those of an undisturbed run.  Either the next
    step meets no worker, or the scheduler has already restarted both (the replicas' actors then say
    "Worker holding Actor was lost" when their next method is looked up)."""
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
                deadline = time.monotonic() + 60
                while noticed and not all(_restarted(c, pid) for pid in pids):
                    if time.monotonic() > deadline:
                        pytest.fail("the nannies did not restart both workers within 60 s")
                    time.sleep(0.1)

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
