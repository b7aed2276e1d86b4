"""The in-place training step (bpnet.train.step) against the reference path, and the benchmark's code path."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from conftest import ROOT, assert_on, to_np

import bpnet
from bpnet import dropout_masks
from bpnet.model import MLP
from bpnet.nn._kernels import backward as _backward
from bpnet.nn._kernels import forward as _forward
from bpnet.nn.activations import get_activation
from bpnet.nn.losses import get_loss
from bpnet.optim import get_optimizer
from bpnet.train.step import Net, Snapshot, TrainState, backward_update, forward_train, train_step

# Reference: ``_forward`` -> ``_backward(fused=True)`` -> (L2, clipping) -> ``Optimizer.step``
# (new dicts).  The step computes the same numbers to rounding on every backend,
# updates only the arrays it was given, and ``MLP.fit`` never mutates arrays
# that existed before the call.  No timing assertions here.

NET = Net(get_activation("relu"), get_activation("sigmoid"), get_loss("binary_crossentropy"))
LOSS_OF = {"sigmoid": "binary_crossentropy", "softmax": "categorical_crossentropy", "linear": "mse"}


def _problem(bk, dtype, dims, out, m, seed=0):
    rng = np.random.default_rng(seed)
    X = bk.asarray(rng.normal(size=(dims[0], m)), dtype=dtype)
    if out == "softmax":
        Yh = np.eye(dims[-1])[:, rng.integers(0, dims[-1], size=m)]
    elif out == "sigmoid":
        Yh = rng.integers(0, 2, size=(dims[-1], m)).astype(float)
    else:
        Yh = rng.normal(size=(dims[-1], m))
    Y = bk.asarray(Yh, dtype=dtype)
    params = bpnet.initialize_parameters_deep(dims, init="he", seed=1, dtype=dtype, backend=bk)
    return X, Y, params


def _copy(bk, d):
    return {k: bk.asarray(np.array(to_np(v), copy=True)) for k, v in d.items()}


def _reference(bk, X, Y, params, hidden, out, opt, state, lr, steps, masks=None, l2=0.0, clip_norm=None):
    xp = bk.xp
    h, o, spec = get_activation(hidden), get_activation(out), get_loss(LOSS_OF[out])
    L = len(params) // 2
    for _ in range(steps):
        AL, caches = _forward(xp, X, params, L, h, o, masks)
        grads = _backward(xp, AL, Y, caches, h, o, spec, fused=True, need_dA0=False, masks=masks)
        if l2:
            grads = bpnet.add_l2_gradients(grads, params, l2, X.shape[1])
        if clip_norm is not None:
            grads, _ = bpnet.clip_gradients(grads, clip_norm)
        params, state = opt.step(params, grads, state, lr)
    return params, state


def _regularised_case(bk, dims, out, m, seed, mask_seed, keep_prob, optimizer, lr, steps, l2, clip_norm):
    """A problem with dropout, L2 and clipping and the reference path's result after ``steps`` steps:
    ``(X, Y, params, opt, kw, want_parameters, want_state)``, ``kw`` the step's keyword arguments."""
    X, Y, params = _problem(bk, "float64", dims, out, m=m, seed=seed)
    masks = dropout_masks(dims, m, keep_prob, rng=mask_seed, dtype="float64", backend=bk)
    opt = get_optimizer(optimizer)
    kw = dict(masks=masks, l2=l2, clip_norm=clip_norm)
    want_p, want_s = _reference(bk, X, Y, _copy(bk, params), "relu", out, opt, opt.init(params), lr, steps=steps,
                                **kw)
    return X, Y, params, opt, kw, want_p, want_s


def _assert_close(bk, got, want, dtype):
    rtol, atol = (1e-9, 1e-12) if dtype == "float64" else (2e-4, 1e-6)
    for k in want:
        if k == "t":
            assert got[k] == want[k]
        elif isinstance(want[k], dict):
            _assert_close(bk, got[k], want[k], dtype)
        else:
            assert_on(bk, got[k], dtype, want[k].shape)
            np.testing.assert_allclose(to_np(got[k]), to_np(want[k]), rtol=rtol, atol=atol, err_msg=k)


#: how the step is cut: the default (nothing is, at these sizes); "acts": the
#: hidden activations in blocks of 1/1000 of the working set (one row or
#: column); "W": the gradient-descent update row by row of W (with the
#: activations whole, so every layer's update is blocked); "both"
BLOCKS = [None, "acts", "W", "both"]


def _cut_step(bk, ts, how, m, monkeypatch):
    """Set ``ts``'s block sizes for ``how`` (see BLOCKS) and check that they take effect."""
    if not ts.mutable:  # JAX: no in-place blocks, every array is processed whole
        assert ts.blocks(m) is None and ts.w_rows == [None] * len(ts.Ws)
        if how is not None:
            pytest.skip("immutable arrays (JAX) are never cut into blocks")
        return
    if how is not None and bk.name == "torch":
        pytest.skip("the blocked code is the same for every mutable namespace: numpy, array-api-strict, cupy run it")
    if how is None:
        assert ts.blocks(m) is None and ts.w_rows == [None] * len(ts.Ws)
        return
    if how in ("acts", "both"):
        monkeypatch.setattr(bpnet.train.step, "BLOCK_FRACTION", 1000)  # blocks of 1/1000 of the working set
        ts.block_bytes = 1
        assert all(len(b.rows) > 1 and len(b.cols) > 1 for b in ts.blocks(m))
    if how in ("W", "both"):
        ts.w_block_bytes = 1
        assert all(len(rows) == W.shape[0] for rows, W in zip(ts.w_rows, ts.Ws))


@pytest.mark.parametrize("cut", BLOCKS)
@pytest.mark.parametrize("optimizer", ["gd", "momentum", "rmsprop", "adam"])
@pytest.mark.parametrize("hidden,out,dims", [
    ("relu", "softmax", [5, 7, 4, 3]),
    ("tanh", "sigmoid", [4, 6, 1]),
    ("leaky_relu", "linear", [3, 9, 2]),
    ("sigmoid", "sigmoid", [6, 3, 5, 2]),
])
def test_step_matches_reference_path(bk, dtype, optimizer, hidden, out, dims, cut, monkeypatch):
    # m = 8 < n_prev for some layers and > for others: both placements of 1/m run
    X, Y, params = _problem(bk, dtype, dims, out, m=8)
    opt = get_optimizer(optimizer)
    want_p, want_s = _reference(bk, X, Y, _copy(bk, params), hidden, out, opt, opt.init(params), 0.05, steps=3)
    mine = _copy(bk, params)
    state = opt.init(mine)
    ts = TrainState(mine, opt, state)
    _cut_step(bk, ts, cut, 8, monkeypatch)
    for _ in range(3):
        train_step(bk.xp, X, Y, ts, Net(get_activation(hidden), get_activation(out), get_loss(LOSS_OF[out])), 0.05)
    # the live arrays (on JAX the step returns new ones; elsewhere these are ``mine`` and ``state``)
    _assert_close(bk, ts.parameters, want_p, dtype)
    _assert_close(bk, ts.optimizer_state, want_s, dtype)
    if ts.mutable:  # updated in place: the dicts handed over hold the result
        _assert_close(bk, mine, want_p, dtype)
        _assert_close(bk, state, want_s, dtype)
    # only the arrays handed to the step changed: the original parameters did not
    fresh = bpnet.initialize_parameters_deep(dims, init="he", seed=1, dtype=dtype, backend=bk)
    for k in params:
        np.testing.assert_array_equal(to_np(params[k]), to_np(fresh[k]))


@pytest.mark.every_backend
@pytest.mark.parametrize("optimizer", ["gd", "momentum", "rmsprop", "adam", "sgd"])
def test_every_optimizer_steps_as_the_reference_on_every_backend(bk, optimizer):
    # the one step, in place (numpy, cupy, torch, array-api-strict) or compiled and pure (JAX), with dropout,
    # L2 and clipping, against the reference path's new dicts
    dtype = "float64"
    X, Y, params, opt, kw, want_p, want_s = _regularised_case(bk, [5, 7, 4, 3], "softmax", 9, 4, 1, 0.8, optimizer,
                                                              0.05, 3, 0.2, 0.5)
    mine = _copy(bk, params)
    ts = TrainState(mine, opt, opt.init(mine))
    net = Net(get_activation("relu"), get_activation("softmax"), get_loss("categorical_crossentropy"))
    for _ in range(3):
        cost, hits = train_step(bk.xp, X, Y, ts, net, 0.05, metrics=True, **kw)
        assert_on(bk, cost, dtype, ())
    _assert_close(bk, ts.parameters, want_p, dtype)
    _assert_close(bk, ts.optimizer_state, want_s, dtype)
    assert ts.mutable == (bk.name != "jax")


@pytest.mark.parametrize("clip_norm", [None, 0.5])
@pytest.mark.parametrize("pack_bytes", [1 << 20, 100, 0], ids=["all-packed", "some-packed", "none-packed"])
@pytest.mark.parametrize("optimizer", ["gd", "momentum", "rmsprop", "adam", "sgd"])
def test_an_owning_state_packs_small_parameters_and_steps_as_the_reference(bk, optimizer, pack_bytes, clip_norm,
                                                                           monkeypatch):
    """TrainState(own=True): copies (the caller's dicts never change), the parameters of at most PACK_BYTES in
    one flat buffer with their moments, updated by one call of the rule: the reference path's numbers;
    snapshot() copies the live state, buffers holds every parameter."""
    monkeypatch.setattr(bpnet.train.step, "PACK_BYTES", pack_bytes)
    dtype = "float64"  # [5, 7, 4, 3]: W1 280 bytes, W2 224, W3 96, biases 56, 32, 24
    X, Y, params, opt, kw, want_p, want_s = _regularised_case(bk, [5, 7, 4, 3], "softmax", 9, 4, 1, 0.8, optimizer,
                                                              0.05, 3, 0.2, clip_norm)
    mine, state = _copy(bk, params), opt.init(params)
    before = {k: to_np(a).copy() for k, a in mine.items()}
    ts = TrainState(mine, opt, state, own=True)
    net = Net(get_activation("relu"), get_activation("softmax"), get_loss("categorical_crossentropy"))
    packed = set() if ts.pack is None else {f"{p}{l + 1}" for p, l in ts.pack.at}
    if bk.name == "jax":  # immutable arrays: nothing to copy or pack
        assert ts.pack is None
    else:
        assert packed == {k for k, a in params.items() if np.asarray(to_np(a)).nbytes <= pack_bytes}
    snaps = []
    for _ in range(3):
        train_step(bk.xp, X, Y, ts, net, 0.05, **kw)
        snaps.append(ts.snapshot())
    _assert_close(bk, ts.parameters, want_p, dtype)
    _assert_close(bk, ts.optimizer_state, want_s, dtype)
    for k in mine:  # the caller's arrays and dicts: only read
        np.testing.assert_array_equal(to_np(mine[k]), before[k])
    assert state["t"] == 0
    # the last snapshot is the live state; the earlier ones were not changed by the later steps
    _assert_close(bk, snaps[-1][0], want_p, dtype)
    _assert_close(bk, snaps[-1][1], want_s, dtype)
    assert any(not np.array_equal(to_np(snaps[0][0][k]), to_np(want_p[k])) for k in want_p)
    assert snaps[0][1]["t"] == 1 and snaps[-1][1]["t"] == 3
    held = {k: to_np(a).copy() for k, a in snaps[-1][0].items()}
    lazy = Snapshot(ts)  # copied now, laid out as dicts after the next step
    train_step(bk.xp, X, Y, ts, net, 0.05, **kw)
    for k in held:
        np.testing.assert_array_equal(to_np(snaps[-1][0][k]), held[k])
        np.testing.assert_array_equal(to_np(lazy.tree()[0][k]), held[k])
    assert lazy.tree()[1]["t"] == 3 and lazy.tree() is lazy.tree()
    n = sum(int(np.prod(to_np(a).shape)) for a in ts.buffers)
    assert n == sum(int(np.prod(to_np(a).shape)) for a in params.values())


@pytest.mark.parametrize("own", [False, True])
@pytest.mark.parametrize("clip_norm", [None, 0.5])
@pytest.mark.parametrize("optimizer", ["gd", "adam"])
def test_a_narrow_float32_layer_s_transposed_weight_gradient_steps_as_the_reference(bk, optimizer, clip_norm, own):
    """numpy's BLAS: a float32 dW of few units over many inputs computed as (A dZ^T)^T (TrainState.dW_T) in a
    batch of enough examples, an array laid out column-major, in place, packed or clipped: the reference path's
    numbers."""
    dtype, dims = "float32", [130, 12, 3]  # W1: 12 units from 130 inputs (transposed on numpy's BLAS); W2 not
    X, Y, params = _problem(bk, dtype, dims, "softmax", m=64, seed=5)
    opt = get_optimizer(optimizer)
    want_p, want_s = _reference(bk, X, Y, _copy(bk, params), "relu", "softmax", opt, opt.init(params), 0.05, steps=3,
                                clip_norm=clip_norm)
    mine = _copy(bk, params)
    ts = TrainState(mine, opt, opt.init(mine), own=own)
    blas = bk.name.startswith(("numpy", "array_api_strict"))
    assert ts.dW_T == [blas, False]
    assert ts.batch(bk.xp, 64)[3] == [blas, False] and ts.batch(bk.xp, 63)[3] == [False, False]
    net = Net(get_activation("relu"), get_activation("softmax"), get_loss("categorical_crossentropy"))
    for _ in range(3):
        train_step(bk.xp, X, Y, ts, net, 0.05, clip_norm=clip_norm)
    _assert_close(bk, ts.parameters, want_p, dtype)
    _assert_close(bk, ts.optimizer_state, want_s, dtype)


@pytest.mark.parametrize("cut", BLOCKS)
@pytest.mark.parametrize("clip_norm", [0.05, None])
@pytest.mark.parametrize("optimizer", ["gd", "adam"])
def test_step_with_l2_clipping_and_dropout_matches_reference(bk, optimizer, clip_norm, cut, monkeypatch):
    dtype = "float64"
    X, Y, params, opt, kw, want_p, want_s = _regularised_case(bk, [6, 8, 5, 1], "sigmoid", 10, 3, 2, 0.7, optimizer,
                                                              0.1, 2, 0.3, clip_norm)
    masks = kw["masks"]
    mine = _copy(bk, params)
    state = opt.init(mine)
    ts = TrainState(mine, opt, state)
    _cut_step(bk, ts, cut, 10, monkeypatch)
    for _ in range(2):
        acts, gs, _ = forward_train(bk.xp, X, ts.Ws, ts.bs, NET, masks,
                                 blocks=ts.blocks(10))
        backward_update(bk.xp, acts, Y, ts, NET, 0.1, gs=gs, **kw)
    _assert_close(bk, ts.parameters, want_p, dtype)
    _assert_close(bk, ts.optimizer_state, want_s, dtype)


def test_fit_never_mutates_arrays_held_from_before(bk):
    rng = np.random.default_rng(0)
    Xh = rng.normal(size=(4, 40))
    yh = (Xh[0] > 0).astype(float)[np.newaxis, :]
    X, Y = bk.asarray(Xh), bk.asarray(yh)
    model = MLP([4, 6, 1], dtype="float64", backend=bk)
    user = _copy(bk, model.parameters)
    model.parameters = user
    before = {k: to_np(v).copy() for k, v in user.items()}
    model.fit(X, Y, epochs=2, batch_size=16, optimizer="adam", learning_rate=0.05)
    first_params, first_state = model.parameters, model.optimizer_state
    snap_p = {k: to_np(v).copy() for k, v in first_params.items()}
    snap_v = {k: to_np(v).copy() for k, v in first_state["v"].items()}
    model.fit(X, Y, epochs=2, batch_size=16, optimizer="adam", learning_rate=0.05)
    for k in user:  # the user's dict: untouched, and no longer the model's
        np.testing.assert_array_equal(to_np(user[k]), before[k])
        assert model.parameters[k] is not user[k]
    for k in snap_p:  # the previous fit's parameters and moments: untouched by the next fit
        np.testing.assert_array_equal(to_np(first_params[k]), snap_p[k])
    for k in snap_v:
        np.testing.assert_array_equal(to_np(first_state["v"][k]), snap_v[k])
    assert model.optimizer_state["t"] == first_state["t"] * 2
    np.testing.assert_array_equal(to_np(X), Xh)  # the data are only read
    np.testing.assert_array_equal(to_np(Y), yh)
    assert any(not np.array_equal(to_np(model.parameters[k]), snap_p[k]) for k in snap_p)


@pytest.mark.parametrize("block_bytes", [None, 1])
def test_fit_matches_the_course_loop(bk, block_bytes, monkeypatch):
    # full batch, gd: MLP.fit (in-place step) == _forward/_backward/update_parameters;
    # with 1-byte blocks every (n, m) activation is processed in row blocks
    if block_bytes is not None:
        for name in ("BLOCK_BYTES", "GPU_BLOCK_BYTES", "W_BLOCK_BYTES", "GPU_W_BLOCK_BYTES"):
            monkeypatch.setattr(bpnet.train.step, name, block_bytes)
    rng = np.random.default_rng(1)
    Xh = rng.normal(size=(5, 30))
    yh = (Xh[0] - Xh[1] > 0).astype(float)[np.newaxis, :]
    model = MLP([5, 7, 1], dtype="float64", backend=bk, seed=2)
    p = _copy(bk, model.parameters)
    model.fit(Xh, yh, epochs=4, batch_size=30, optimizer="gd", learning_rate=0.1, shuffle=False)
    X, Y = bk.asarray(Xh), bk.asarray(yh)
    for _ in range(4):
        AL, caches = bpnet.L_model_forward(X, p)
        grads = bpnet.L_model_backward(AL, Y, caches, fused=True)
        p = bpnet.update_parameters(p, grads, 0.1)
    _assert_close(bk, model.parameters, p, "float64")


@pytest.mark.parametrize("n,m,budget,k", [(7, 8, 8 * 8, 7), (7, 8, 3 * 8 * 8, 3), (7, 8, 7 * 8 * 8, None),
                                          (7, 8, 4 * 8 * 8, None), (5, 3, 8, 5), (1, 1000, 10, None),
                                          (300, 2, 8, 300)])
def test_blocks_cover_the_array_in_nearly_equal_pieces(n, m, budget, k):
    from bpnet.train.step import cut as _cut

    blocks = _cut(n, m, 8, budget)
    if k is None:
        assert blocks is None  # within two blocks (or a single row): processed whole
        return
    for slices, size, per in ((blocks.rows, n, m), (blocks.cols, m, n)):
        assert len(slices) == min(k, size)
        sizes = [s.stop - s.start for s in slices]
        assert slices[0].start == 0 and slices[-1].stop == size
        assert all(a.stop == b.start for a, b in zip(slices, slices[1:]))
        assert max(sizes) - min(sizes) <= 1
        assert min(sizes) * per * 8 <= max(budget, per * 8)  # about the budget, or one row/column


def _load_bench():
    path = ROOT / "benchmarks" / "bench.py"
    spec = importlib.util.spec_from_file_location("bpnet_bench", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_benchmark_quick_code_path_runs_end_to_end(tmp_path, monkeypatch):
    bench = _load_bench()
    monkeypatch.setitem(bench.NETS, "t", dict(dims=[6, 5, 3], m=8, out="softmax"))
    monkeypatch.setitem(bench.NETS, "u", dict(dims=[7, 4, 1], m=9, out="sigmoid"))
    out = tmp_path / "bench.json"
    result = bench.main(["--quick", "--nets", "t,u", "--no-scaling", "--no-torch", "--budget", "0.01",
                         "--min-rounds", "1", "--max-rounds", "2", "--backends", "numpy,array_api_strict",
                         "--threads", "1", "--json", str(out)])
    records = json.loads(out.read_text())["records"]
    assert records == json.loads(json.dumps(result["records"]))
    impls = {(r["net"], r["implementation"], r["backend"], r["dtype"]) for r in records}
    for net in "tu":
        for dtype in ("float32", "float64"):
            for im in (("bpnet", "numpy"), ("bpnet", "array_api_strict"), ("plain-numpy", "numpy"),
                       ("gemm-bound", "numpy")):
                assert (net, *im, dtype) in impls
    for r in records:
        for key in ("step_ms_median", "samples_per_s", "ratio_vs_plain_numpy", "ratio_vs_torch",
                    "gemm_bound_fraction", "peak_mem_bytes", "theoretical_mem_bytes"):
            assert key in r
        assert r["step_ms_median"] > 0 and r["theoretical_mem_bytes"] > 0
    # the plain-numpy reference computes what bpnet computes
    X, Y, labels, params = bench.make_problem([6, 5, 3], 8, "softmax", "float64")
    kw = dict(X=X, Y=Y, labels=labels, params=params, out="softmax", dims=[6, 5, 3])
    a, b = bench.Bpnet("numpy", **kw), bench.PlainNumpy(**kw)
    for _ in range(3):
        a.step()
        b.step()
    for l in range(2):
        np.testing.assert_allclose(a.ts.Ws[l], b.Ws[l], rtol=1e-12)
        np.testing.assert_allclose(a.ts.bs[l], b.bs[l], rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(params["W1"], bench.make_problem([6, 5, 3], 8, "softmax", "float64")[3]["W1"])


@pytest.mark.parametrize("hidden,out,dims", [("relu", "softmax", [5, 6, 3]), ("tanh", "sigmoid", [5, 4, 1]),
                                             ("relu", "linear", [5, 4, 2])])
def test_epoch_metrics_from_the_steps_outputs_equal_the_sum_of_each_batchs(bk, hidden, out, dims, monkeypatch):
    """LocalBatches keeps each step's A[L] and Z[L] (train_step(outputs=): a copy of A[L], which the backward
    pass overwrites, and Z[L] itself) and computes the epoch's metrics once (a multiclass epoch's labels taken
    once): the numbers of summing batch_metrics over the batches, and the same parameters."""
    import bpnet.train.loop as loop
    from bpnet.train import FitConfig, LocalBatches

    X, Y, params = _problem(bk, "float64", dims, out, 23)
    net = Net(get_activation(hidden), get_activation(out), get_loss(LOSS_OF[out]))
    cfg = FitConfig.from_options(batch_size=5, optimizer="adam", learning_rate=0.01, seed=3, dropout=0.2)
    got = []
    for limit in (loop.EPOCH_OUTPUTS, 0):  # kept outputs, then per-batch metrics
        monkeypatch.setattr(loop, "EPOCH_OUTPUTS", limit)
        p = _copy(bk, params)
        ts = TrainState(p, cfg.optimizer, cfg.optimizer.init(p))
        cost, hits = LocalBatches(X, Y, bk).run_epoch(ts, net, cfg, 1, 0.01, True)
        got.append((float(cost), None if hits is None else float(hits), ts.parameters))
    assert got[0][0] == pytest.approx(got[1][0], rel=1e-12)
    assert got[0][1] == got[1][1] and (got[0][1] is None) == (out == "linear")
    _assert_close(bk, got[0][2], got[1][2], "float64")


def test_benchmark_fit_code_path_runs(tmp_path, monkeypatch):
    """bench.py --fit: whole fits of bpnet and the plain numpy loop (2 epochs here), a JSON record of each."""
    bench = _load_bench()
    monkeypatch.setitem(bench.FIT, "epochs", 2)
    out = tmp_path / "fit.json"
    result = bench.main(["--fit", "--fit-rounds", "1", "--no-torch", "--no-sklearn", "--threads", "1",
                         "--json", str(out)])
    fit = json.loads(out.read_text())["fit"]
    assert fit == json.loads(json.dumps(result["fit"])) and fit["epochs"] == 2 and fit["m"] == 1437
    rows = {r["implementation"]: r for r in fit["rows"]}
    assert set(rows) == {"bpnet", "plain-numpy"} and rows["plain-numpy"]["ratio_vs_plain_numpy"] == 1.0
    assert all(r["fit_s"] > 0 and 0.2 < r["train_accuracy"] <= 1.0 for r in rows.values())  # 10 classes


def _load_bench_backends():
    _load_bench()  # bench_backends imports bench by name
    spec = importlib.util.spec_from_file_location("bench_backends", ROOT / "benchmarks" / "bench_backends.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("out", ["softmax", "sigmoid"])
def test_backend_benchmark_references_compute_what_bpnet_computes(out, monkeypatch):
    # the native torch / jax steps of benchmarks/bench_backends.py are the same training step as bpnet's
    pytest.importorskip("torch")
    pytest.importorskip("jax")
    bb = _load_bench_backends()
    monkeypatch.setitem(bb.bench.NETS, "t", dict(dims=[6, 5, 4, 3 if out == "softmax" else 1], m=8, out=out))
    impls = {name: bb.make(name, "t", "float64") for name in bb.IMPLS}
    for _ in range(3):
        for im in impls.values():
            im.step()
    want = [to_np(W) for W in impls["bpnet-torch"].ts.Ws]
    got = {"bpnet-jax": [to_np(W) for W in impls["bpnet-jax"].ts.Ws],
           "torch-manual": [W.numpy() for W in impls["torch-manual"].Ws],
           "torch-autograd": [layer.weight.detach().numpy() for layer in impls["torch-autograd"].model[::2]],
           "jax-jit": [np.asarray(W) for W, _ in impls["jax-jit"].params]}
    for name, Ws in got.items():
        for l, (a, b) in enumerate(zip(Ws, want)):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=f"{name} W{l + 1}")
