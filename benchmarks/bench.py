"""Side-by-side benchmark of a bpnet training step.

One command::

    python benchmarks/bench.py [--quick] [--json PATH] [--threads N] [--nets a,b,c,d]
                               [--dtypes float32,float64] [--backends numpy,array_api_strict,cupy]
    python benchmarks/bench.py --inference [--inference-m 1000000] [--backends numpy]
    python benchmarks/bench.py --fit --threads 1 [--fit-rounds 5]

``--fit`` measures only whole fits (:func:`fit_end_to_end`): ``bpnet.MLP.fit``
on digits (64-128-10, Adam lr 1e-3, batch 200, 136 epochs, float32, with its
per-epoch train cost and accuracy) against a plain numpy loop of the course's
equations, PyTorch eager and scikit-learn's ``MLPClassifier``, interleaved.

``--inference`` measures only inference: ``MLP.predict_proba`` (column batches
from a byte budget, :mod:`bpnet.train.inference`) against one whole-array
forward that keeps every layer's A and Z, on X of 784 x 10^6 float32: the
peak memory allocated beyond the output as a fraction of X's bytes, and the
time ratio.

Reference networks, each a full training step (forward, backward, plain
gradient-descent update of every parameter) on a fixed batch:

    a  784-512-256-10      batch 256   ReLU + softmax / cross-entropy
    b  12288-20-7-5-1      batch 209   ReLU + sigmoid / binary cross-entropy (the course's cat net)
    c  1024-4096-4096-1024 batch 512   ReLU + softmax / cross-entropy
    d  64-32-10            batch 64    ReLU + softmax / cross-entropy

Implementations, measured in one process, interleaved (A B C A B C ...), the
median of many steps after warm-up, all with the same BLAS/torch thread count
(pinned with threadpoolctl and ``torch.set_num_threads``):

* ``bpnet`` on each backend asked for (the kernel ``bpnet.train.step.train_step``
  that ``MLP.fit`` runs);
* ``plain-numpy``: the same equations written directly in numpy in this file,
  in place where sensible (``Z += b``, ``np.maximum(Z, 0, out=Z)``, an
  in-place softmax, ``np.matmul(W.T, dZ, out=A_prev)`` then ``*= A_prev > 0``,
  ``W -= dW``), the same algorithm as bpnet's step (lr/m applied once to
  dZ[L], ``db = dZ @ ones`` as a GEMV, dZ[l-1] over A[l-1], no dA[0]);
* ``torch`` eager (CPU; ``torch-cuda`` too on a GPU), when importable:
  ``nn.Linear``/``nn.ReLU``, ``CrossEntropyLoss``/``BCEWithLogitsLoss``, SGD;
* ``sklearn``: ``MLPClassifier(solver="sgd", momentum=0, alpha=0,
  batch_size=m, shuffle=False).partial_fit`` on the same shapes and weights
  (samples as rows; each call also validates its input and checks its labels);
* ``gemm-bound``: the step's FLOPs over the measured throughput of its exact
  matrix products (each timed alone with ``@``, numpy, or cupy on the GPU;
  medians summed): the time the products alone take.

On a GPU every timed region is bracketed by a device synchronisation.  Memory:
``peak_mem_bytes`` is the peak of the bytes in use over building the
implementation's copy of the parameters and batch and two steps: tracemalloc's
(numpy-based implementations), the peak of cupy's pool ``used_bytes`` (an
allocator hook), or ``torch.cuda.max_memory_allocated`` (which counts cuBLAS's
workspace).  On a GPU ``reserved_mem_bytes`` is what the caching allocator
holds (cupy pool ``total_bytes``, ``torch.cuda.max_memory_reserved``).
``theoretical_mem_bytes`` = parameters + gradients + activations A[0..L] +
labels + optimiser state (none for SGD).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bpnet  # noqa: E402
from bpnet import backends  # noqa: E402
from bpnet.io.atomic import atomic_write  # noqa: E402
from bpnet.nn import get_activation, get_loss  # noqa: E402
from bpnet.optim import get_optimizer  # noqa: E402
from bpnet.train.step import Net, TrainState, train_step  # noqa: E402

NETS = {
    "a": dict(dims=[784, 512, 256, 10], m=256, out="softmax"),
    "b": dict(dims=[12288, 20, 7, 5, 1], m=209, out="sigmoid"),
    "c": dict(dims=[1024, 4096, 4096, 1024], m=512, out="softmax"),
    "d": dict(dims=[64, 32, 10], m=64, out="softmax"),
}
LR = 0.01


# --------------------------------------------------------------------------- #
# problem


def make_problem(dims, m, out, dtype, seed=0):
    """Host arrays: X (n_x, m), Y (n_L, m) one-hot or 0/1, He-initialised parameters."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((dims[0], m)).astype(dtype)
    if out == "softmax":
        labels = rng.integers(0, dims[-1], size=m)
        Y = np.zeros((dims[-1], m), dtype=dtype)
        Y[labels, np.arange(m)] = 1
    else:
        labels = rng.integers(0, 2, size=m)
        Y = labels[np.newaxis, :].astype(dtype)
    params = {}
    for l in range(1, len(dims)):
        params[f"W{l}"] = (rng.standard_normal((dims[l], dims[l - 1])) * np.sqrt(2.0 / dims[l - 1])).astype(dtype)
        params[f"b{l}"] = np.zeros((dims[l], 1), dtype=dtype)
    return X, Y, labels, params


def theoretical_mem(dims, m, dtype):
    """Bytes: parameters + gradients + activations A[0..L] + labels (+ no optimiser state for SGD)."""
    item = np.dtype(dtype).itemsize
    n_params = sum(dims[l] * dims[l - 1] + dims[l] for l in range(1, len(dims)))
    n_acts = sum(dims) * m
    return item * (2 * n_params + n_acts + dims[-1] * m)


def step_flops(dims, m):
    """Forward W A, backward dZ A^T and W^T dZ (no dA[0])."""
    f = 0
    for l in range(1, len(dims)):
        k = 2 * m * dims[l] * dims[l - 1]
        f += 3 * k if l > 1 else 2 * k
    return f


# --------------------------------------------------------------------------- #
# implementations: .step() runs one training step, .sync() waits for the device


class Bpnet:
    def __init__(self, backend, X, Y, params, out, **_):
        self.bk = bk = backends.get(backend)
        self.name, self.backend, self.gpu = "bpnet", bk.name, bk.name == "cupy"
        self.xp = bk.xp
        self.X, self.Y = bk.asarray(X.copy()), bk.asarray(Y.copy())  # moved to the device once
        p = {k: bk.asarray(np.array(v, copy=True)) for k, v in params.items()}  # owned: updated in place
        opt = get_optimizer("gd")
        self.ts = TrainState(p, opt, opt.init(p))
        loss = {"softmax": "categorical_crossentropy", "sigmoid": "binary_crossentropy"}[out]
        self.net = Net(get_activation("relu"), get_activation(out), get_loss(loss))

    def step(self):
        train_step(self.xp, self.X, self.Y, self.ts, self.net, LR)

    def sync(self):
        self.bk.synchronize()


class PlainNumpy:
    """The same equations, hand-written in numpy (no Array API layer)."""

    name, backend, gpu = "plain-numpy", "numpy", False

    def __init__(self, X, Y, params, out, **_):
        self.X, self.Y, self.out = X.copy(), Y.copy(), out
        L = len(params) // 2
        self.Ws = [params[f"W{l}"].copy() for l in range(1, L + 1)]
        self.bs = [params[f"b{l}"].copy() for l in range(1, L + 1)]
        self.ones = {}

    def step(self):
        Ws, bs, Y = self.Ws, self.bs, self.Y
        L, m = len(Ws), Y.shape[1]
        acts = [self.X]
        A = self.X
        for l in range(L):
            Z = Ws[l] @ A
            Z += bs[l]
            if l < L - 1:
                np.maximum(Z, 0, out=Z)
            elif self.out == "softmax":
                Z -= Z.max(axis=0, keepdims=True)
                np.exp(Z, out=Z)
                Z /= Z.sum(axis=0, keepdims=True)
            else:  # stable sigmoid
                e = np.exp(-np.abs(Z))
                Z = np.where(Z >= 0, 1 / (1 + e), e / (1 + e))
            acts.append(Z)
            A = Z
        ones = self.ones.get(m)
        if ones is None:
            ones = self.ones[m] = np.ones((m, 1), dtype=Y.dtype)
        dZ = acts[L]
        dZ -= Y  # dZ = A - Y
        dZ *= LR / m  # once: dW, db and every dZ[l-1] are linear in dZ[L]
        for l in range(L - 1, -1, -1):
            W, A_prev = Ws[l], acts[l]
            dW = dZ @ A_prev.T
            db = dZ @ ones  # GEMV: faster than .sum(axis=1)
            if l > 0:  # dZ[l-1] = (W^T dZ) * 1[A > 0], written over A[l-1] with the old W
                mask = A_prev > 0
                np.matmul(W.T, dZ, out=A_prev)
                A_prev *= mask
                dZ = A_prev
            W -= dW
            bs[l] -= db

    def sync(self):
        pass


class Torch:
    def __init__(self, X, Y, labels, params, out, device="cpu", **_):
        import torch

        self.torch, self.device = torch, device
        self.name = "torch" if device == "cpu" else "torch-cuda"
        self.backend, self.gpu = ("cpu", False) if device == "cpu" else ("cuda", True)
        L = len(params) // 2
        layers = []
        for l in range(1, L + 1):
            W = params[f"W{l}"]
            lin = torch.nn.Linear(W.shape[1], W.shape[0], dtype=torch.from_numpy(W).dtype, device=device)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(W))
                lin.bias.copy_(torch.from_numpy(params[f"b{l}"][:, 0]))
            layers.append(lin)
            if l < L:
                layers.append(torch.nn.ReLU())
        self.model = torch.nn.Sequential(*layers)
        self.x = torch.from_numpy(np.ascontiguousarray(X.T)).to(device)
        if out == "softmax":
            self.y = torch.from_numpy(labels.astype(np.int64)).to(device)
            self.loss = torch.nn.CrossEntropyLoss()
        else:
            self.y = torch.from_numpy(np.ascontiguousarray(Y.T)).to(device)
            self.loss = torch.nn.BCEWithLogitsLoss()
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR)

    def step(self):
        self.opt.zero_grad(set_to_none=True)
        self.loss(self.model(self.x), self.y).backward()
        self.opt.step()

    def sync(self):
        if self.device != "cpu":
            self.torch.cuda.synchronize()


class Sklearn:
    name, backend, gpu = "sklearn", "numpy", False

    def __init__(self, X, Y, labels, params, out, dims, **_):
        import warnings

        from sklearn.neural_network import MLPClassifier

        self.Xr = np.ascontiguousarray(X.T)
        self.y = labels
        m = X.shape[1]
        self.clf = MLPClassifier(hidden_layer_sizes=tuple(dims[1:-1]), activation="relu", solver="sgd",
                                 alpha=0.0, batch_size=m, learning_rate_init=LR, momentum=0.0,
                                 nesterovs_momentum=False, shuffle=False, random_state=0)
        classes = np.arange(dims[-1] if out == "softmax" else 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.clf.partial_fit(self.Xr, self.y, classes=classes)
        L = len(params) // 2
        self.clf.coefs_ = [np.ascontiguousarray(params[f"W{l}"].T) for l in range(1, L + 1)]
        self.clf.intercepts_ = [params[f"b{l}"][:, 0].copy() for l in range(1, L + 1)]

    def step(self):
        self.clf.partial_fit(self.Xr, self.y)

    def sync(self):
        pass


# --------------------------------------------------------------------------- #
# measurement


def interleaved(impls, budget_s, min_rounds, max_rounds, warmup=2, block_s=0.02, seed=0):
    """Median step time (s) of each implementation, timed in interleaved blocks.

    Each round runs every implementation once, in a shuffled order (so none
    always follows the same neighbour), as a block of ``k`` steps (k such that
    a block lasts about ``block_s``, at least 2): the first step of a block,
    which pays for the previous implementation's still-spinning BLAS/OpenMP
    threads and cold caches, is discarded; the others are kept.  The result is
    the median over all kept steps of all rounds.
    """
    est = []
    for im in impls:
        for _ in range(warmup):
            im.step()
        im.sync()
        t = time.perf_counter()
        im.step()
        im.sync()
        est.append(time.perf_counter() - t)
    ks = [max(2, min(50, int(block_s / max(e, 1e-9)))) for e in est]
    per_round = sum(k * e for k, e in zip(ks, est))
    rounds = int(min(max_rounds, max(min_rounds, budget_s / max(per_round, 1e-9))))
    samples = [[] for _ in impls]
    order = list(range(len(impls)))
    rng = np.random.default_rng(seed)
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            rng.shuffle(order)
            for i in order:
                im = impls[i]
                im.sync()
                for j in range(ks[i]):
                    t = time.perf_counter()
                    im.step()
                    im.sync()
                    if j:
                        samples[i].append(time.perf_counter() - t)
    finally:
        if gc_was:
            gc.enable()
    return [statistics.median(s) for s in samples], rounds


def gemm_time(dims, m, dtype, gpu=False, reps=7):
    """Seconds the step's matrix products alone take (median per product, summed)."""
    if gpu:
        import cupy as xp

        sync = xp.cuda.get_current_stream().synchronize
    else:
        xp, sync = np, (lambda: None)
    rng = np.random.default_rng(1)

    def arr(*shape):
        return xp.asarray(rng.standard_normal(shape).astype(dtype))

    total = 0.0
    for l in range(1, len(dims)):
        n, p = dims[l], dims[l - 1]
        W, A, dZ = arr(n, p), arr(p, m), arr(n, m)
        shapes = [(W, A), (dZ, A.T)]
        if l > 1:
            shapes.append((W.T, dZ))
        for a, b in shapes:
            a @ b
            ts = []
            for _ in range(reps):
                sync()
                t = time.perf_counter()
                a @ b
                sync()
                ts.append(time.perf_counter() - t)
            total += statistics.median(ts)
    return total


def peak_memory(make, steps=2):
    """(peak bytes, reserved bytes or None) of building an implementation and running ``steps`` steps.

    On the host the peak is tracemalloc's (numpy-based implementations; None for torch CPU,
    whose allocator it does not see); on a GPU see :func:`_gpu_peak`.
    """
    gc.collect()
    tracemalloc.start()
    try:
        im = make()
        if im.gpu:
            tracemalloc.stop()
            del im  # not counted in the GPU figures
            return _gpu_peak(make, steps)
        for _ in range(steps):
            im.step()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        if tracemalloc.is_tracing():
            tracemalloc.stop()
    if im.name == "torch":
        return None, None  # torch's CPU allocator is not traced by tracemalloc
    return peak, None


class _PeakTracker:
    """A cupy allocator over the default pool that records the peak of the bytes in use.

    The live peak, like tracemalloc's and ``torch.cuda.max_memory_allocated``; the pool's
    ``total_bytes`` (what it holds, freed blocks included) is the reserved figure.
    """

    def __init__(self, pool):
        self.pool, self.base = pool, pool.used_bytes()
        self.peak = self.base

    def malloc(self, nbytes):
        mem = self.pool.malloc(nbytes)
        self.peak = max(self.peak, self.pool.used_bytes())
        return mem


def _gpu_peak(make, steps=2):
    """(peak bytes in use, bytes reserved) on the GPU over building ``make()`` and ``steps`` steps."""
    gc.collect()
    try:
        import cupy

        pool = cupy.get_default_memory_pool()
        pool.free_all_blocks()
    except ImportError:
        cupy = pool = None
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
    except ImportError:
        torch = None
    tracker = _PeakTracker(pool) if pool is not None else None
    if tracker is not None:
        cupy.cuda.set_allocator(tracker.malloc)
    try:
        im = make()
        for _ in range(steps):
            im.step()
        im.sync()
    finally:
        if tracker is not None:
            cupy.cuda.set_allocator(pool.malloc)
    if im.name.startswith("torch"):
        return int(torch.cuda.max_memory_allocated()), int(torch.cuda.max_memory_reserved())
    if tracker is None:
        return None, None
    return tracker.peak - tracker.base, int(pool.total_bytes())


def build_makers(net, dtype, bpnet_backends, include_torch, include_sklearn):
    spec = NETS[net] if isinstance(net, str) else net
    dims, m, out = spec["dims"], spec["m"], spec["out"]
    X, Y, labels, params = make_problem(dims, m, out, dtype)
    kw = dict(X=X, Y=Y, labels=labels, params=params, out=out, dims=dims)
    makers = []
    for b in bpnet_backends:
        makers.append(lambda b=b: Bpnet(b, **kw))
    makers.append(lambda: PlainNumpy(**kw))
    if include_torch:
        import torch

        makers.append(lambda: Torch(**kw))
        if torch.cuda.is_available():
            makers.append(lambda: Torch(device="cuda", **kw))
    if include_sklearn:
        makers.append(lambda: Sklearn(**kw))
    return makers


def run_net(net, dtype, args, bpnet_backends, include_torch, include_sklearn):
    spec = NETS[net]
    dims, m = spec["dims"], spec["m"]
    makers = build_makers(net, dtype, bpnet_backends, include_torch, include_sklearn)
    impls = [mk() for mk in makers]
    times, rounds = interleaved(impls, args.budget, args.min_rounds, args.max_rounds)
    impls_meta = [(im.name, im.backend, im.gpu) for im in impls]
    t_gemm_cpu = gemm_time(dims, m, dtype)
    t_gemm_gpu = gemm_time(dims, m, dtype, gpu=True) if "cupy" in bpnet_backends else None
    del impls
    gc.collect()
    mems = [peak_memory(mk) for mk in makers] if not args.no_memory else [(None, None)] * len(makers)
    by = {(n, b): t for (n, b, _), t in zip(impls_meta, times)}
    t_plain = by.get(("plain-numpy", "numpy"))
    t_torch_cpu = by.get(("torch", "cpu"))
    t_torch_gpu = by.get(("torch-cuda", "cuda"))
    flops = step_flops(dims, m)
    theo = theoretical_mem(dims, m, dtype)
    records = []
    for (name, backend, gpu), t, (mem, reserved) in zip(impls_meta, times, mems):
        t_torch = t_torch_gpu if gpu else t_torch_cpu
        t_gemm = t_gemm_gpu if gpu else t_gemm_cpu
        records.append(dict(
            net=net, layers="-".join(map(str, dims)), batch=m, implementation=name, backend=backend, dtype=dtype,
            step_ms_median=t * 1e3, samples_per_s=m / t,
            ratio_vs_plain_numpy=(t / t_plain) if t_plain else None,
            ratio_vs_torch=(t / t_torch) if t_torch else None,
            gemm_bound_fraction=(t_gemm / t) if t_gemm else None,
            peak_mem_bytes=mem, reserved_mem_bytes=reserved, theoretical_mem_bytes=theo,
            peak_over_theoretical=(mem / theo) if mem else None, rounds=rounds))
    for gpu, t_gemm in ((False, t_gemm_cpu), (True, t_gemm_gpu)):
        if t_gemm is None:
            continue
        t_plain_ref = t_plain if not gpu else None
        t_torch = t_torch_gpu if gpu else t_torch_cpu
        records.append(dict(
            net=net, layers="-".join(map(str, dims)), batch=m, implementation="gemm-bound",
            backend="cupy" if gpu else "numpy", dtype=dtype, step_ms_median=t_gemm * 1e3, samples_per_s=m / t_gemm,
            ratio_vs_plain_numpy=(t_gemm / t_plain_ref) if t_plain_ref else None,
            ratio_vs_torch=(t_gemm / t_torch) if t_torch else None, gemm_bound_fraction=1.0,
            gflops=flops / t_gemm / 1e9, peak_mem_bytes=None, theoretical_mem_bytes=theo,
            peak_over_theoretical=None, rounds=5))
    return records


def _scaling_reference(backend, include_torch):
    """The implementation bpnet on ``backend`` is compared with: torch CUDA on cupy, else plain numpy."""
    if backend == "cupy" and include_torch:
        import torch

        if torch.cuda.is_available():
            return "torch-cuda", lambda **kw: Torch(device="cuda", **kw)
    return "plain-numpy", PlainNumpy


def batch_scaling(args, backend, include_torch=False, dtype="float32", net="a"):
    """Step time and peak memory of bpnet on ``backend`` vs its reference on net (a), batch 64 .. 8192.

    The reference is plain numpy on a CPU backend and torch CUDA eager on cupy (plain numpy
    when torch has no GPU).
    """
    sizes = [64, 256, 1024, 8192] if args.quick else [64, 128, 256, 512, 1024, 2048, 4096, 8192]
    ref_name, ref = _scaling_reference(backend, include_torch)
    rows = []
    for m in sizes:
        spec = dict(NETS[net], m=m)
        X, Y, labels, params = make_problem(spec["dims"], m, spec["out"], dtype)
        kw = dict(X=X, Y=Y, labels=labels, params=params, out=spec["out"], dims=spec["dims"])
        makers = [lambda: Bpnet(backend, **kw), lambda: ref(**kw)]
        impls = [mk() for mk in makers]
        times, _ = interleaved(impls, args.budget / 2, 3, args.max_rounds)
        del impls
        mems = [peak_memory(mk)[0] for mk in makers] if not args.no_memory else [None, None]
        rows.append(dict(net=net, batch=m, dtype=dtype, backend=backend, reference=ref_name,
                         bpnet_ms=times[0] * 1e3, reference_ms=times[1] * 1e3, ratio=times[0] / times[1],
                         bpnet_peak_mem_bytes=mems[0], reference_peak_mem_bytes=mems[1],
                         theoretical_mem_bytes=theoretical_mem(spec["dims"], m, dtype)))
    return rows


def end_to_end(args, backend, target=0.95):
    """digits (embedded): MLP 64-64-10, Adam, batch 64, until test accuracy >= target; then epoch time vs size."""
    from bpnet.io.datasets import load_dataset

    ds = load_dataset("digits")
    out = {}
    model = bpnet.MLP([ds.n_x, 64, 10], backend=backend, seed=0)
    reached = {}

    def cb(mdl, epoch, logs):
        if "epoch" not in reached and mdl.evaluate(ds.X_test, ds.y_test)["accuracy"] >= target:
            reached["epoch"] = epoch
            reached["time_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    for _ in range(100):
        model.fit(ds.X_train, ds.y_train, epochs=1, batch_size=64, learning_rate=0.003, callbacks=[cb])
        if "epoch" in reached:
            break
    out["digits_to_accuracy"] = dict(backend=backend, layers="64-64-10", optimizer="adam", lr=0.003, batch_size=64,
                                     target_test_accuracy=target, epochs=reached.get("epoch"),
                                     time_s=reached.get("time_s"))
    rows = []
    for k in ([1, 4] if args.quick else [1, 2, 4, 8, 16]):
        Xk = np.tile(ds.X_train, (1, k))
        yk = np.tile(ds.y_train, k)
        mdl = bpnet.MLP([ds.n_x, 64, 10], backend=backend, seed=0)
        mdl.fit(Xk, yk, epochs=1, batch_size=64)  # warm-up
        ts = []
        for _ in range(3):
            t = time.perf_counter()
            mdl.fit(Xk, yk, epochs=1, batch_size=64)
            ts.append(time.perf_counter() - t)
        rows.append(dict(m=int(Xk.shape[1]), epoch_s=statistics.median(ts),
                         us_per_sample=statistics.median(ts) / Xk.shape[1] * 1e6))
    out["epoch_time_vs_size"] = rows
    return out


def _inference_peak(run, gpu):
    """(peak bytes allocated while ``run()`` runs, its result): tracemalloc on the host, cupy's pool on a GPU."""
    gc.collect()
    if gpu:
        import cupy

        pool = cupy.get_default_memory_pool()
        tracker = _PeakTracker(pool)
        cupy.cuda.set_allocator(tracker.malloc)
        try:
            out = run()
            cupy.cuda.Device().synchronize()
        finally:
            cupy.cuda.set_allocator(pool.malloc)
        return tracker.peak - tracker.base, out
    tracemalloc.start()
    try:
        out = run()
        return tracemalloc.get_traced_memory()[1], out
    finally:
        tracemalloc.stop()


def inference(args, backend):
    """``MLP.predict_proba`` over column batches vs one whole-array forward (the course kernel, every A and Z kept).

    X is ``(784, m)`` float32 already on the backend (no conversion copy), net 784-256-128-10 (softmax).
    Reports the peak memory allocated beyond the output, as a fraction of X's bytes, and the median time
    of ``--inference-reps`` runs of each (interleaved).
    """
    from bpnet.nn._kernels import forward
    from bpnet.train.inference import batch_columns

    bk = backends.get(backend)
    gpu = bk.name == "cupy"
    dims, m = [int(d) for d in args.inference_dims.split(",")], args.inference_m
    X = bk.asarray(np.random.default_rng(0).standard_normal((dims[0], m), dtype=np.float32))
    model = bpnet.MLP(dims, output_activation="softmax", dtype="float32", backend=bk, seed=0)
    net, L, params = model.net, len(dims) - 1, model.parameters
    runs = {"batched": lambda: model.predict_proba(X),
            "whole": lambda: forward(bk.xp, X, params, L, net.hidden, net.output)[0]}
    model.predict_proba(X[:, :1000])  # warm-up (BLAS threads, kernels)
    times = {k: [] for k in runs}
    for _ in range(args.inference_reps):
        for name, run in runs.items():
            bk.synchronize()
            t = time.perf_counter()
            out = run()
            bk.synchronize()
            times[name].append(time.perf_counter() - t)
            del out
    x_bytes = int(X.shape[0]) * m * 4
    row = dict(backend=backend, dims=dims, m=m, dtype="float32", x_bytes=x_bytes,
               batch_columns=batch_columns(bk.xp, X, params))
    for name, run in runs.items():
        peak, out = _inference_peak(run, gpu)
        out_bytes = int(out.shape[0]) * int(out.shape[1]) * 4
        del out
        row[f"{name}_s"] = statistics.median(times[name])
        row[f"{name}_extra_bytes"] = peak - out_bytes
        row[f"{name}_extra_over_x"] = (peak - out_bytes) / x_bytes
    row["time_ratio"] = row["batched_s"] / row["whole_s"]
    return row


# --------------------------------------------------------------------------- #
# end to end: a whole fit (--fit)

#: the end-to-end run of ``--fit``: digits, 64-128-10 (ReLU, softmax / cross-entropy), Adam, float32
FIT = dict(hidden=128, epochs=136, batch_size=200, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8)


class FitBpnet:
    """``bpnet.MLP.fit``: shuffled mini-batches, the step, the per-epoch train cost and accuracy (History)."""

    name = "bpnet"

    def __init__(self, X, y, params):
        self.X, self.y, self.params = X, y, params

    def run(self):
        model = bpnet.MLP([self.X.shape[0], FIT["hidden"], 10], dtype="float32", backend="numpy", seed=0)  # = params
        model.fit(self.X, self.y, epochs=FIT["epochs"], batch_size=FIT["batch_size"], optimizer="adam",
                  learning_rate=FIT["lr"], seed=0)
        assert len(model.history.cost) == FIT["epochs"] and model.history.accuracy[-1] is not None
        return model.evaluate(self.X, self.y)["accuracy"]  # after the fit, as the others


class FitPlainNumpy:
    """The course's equations in a plain numpy loop: shuffle (one take), forward, fused backward, Adam; no
    bookkeeping.  In place where natural, as :class:`PlainNumpy`'s step."""

    name = "plain-numpy"

    def __init__(self, X, y, params):
        self.X, self.y = X, y
        self.Y = np.eye(10, dtype=X.dtype)[:, y]
        self.params = params

    def run(self):
        X, Y, m, size = self.X, self.Y, self.X.shape[1], FIT["batch_size"]
        lr, b1, b2, eps = FIT["lr"], FIT["beta1"], FIT["beta2"], FIT["eps"]
        P = [self.params[k].copy() for k in ("W1", "b1", "W2", "b2")]
        V = [np.zeros_like(p) for p in P]
        S = [np.zeros_like(p) for p in P]
        rng = np.random.default_rng(0)
        t = 0
        for _ in range(FIT["epochs"]):
            perm = rng.permutation(m)
            Xs, Ys = X[:, perm], Y[:, perm]
            for start in range(0, m, size):
                Xb, Yb = Xs[:, start:start + size], Ys[:, start:start + size]
                W1, b1_, W2, b2_ = P
                A1 = W1 @ Xb
                A1 += b1_
                np.maximum(A1, 0, out=A1)  # A1 = relu(Z1)
                A2 = W2 @ A1
                A2 += b2_
                A2 -= A2.max(axis=0, keepdims=True)
                np.exp(A2, out=A2)
                A2 /= A2.sum(axis=0, keepdims=True)  # A2 = softmax(Z2)
                dZ2 = A2
                dZ2 -= Yb
                dZ2 *= 1.0 / Xb.shape[1]  # dZ2 = (A2 - Y) / m
                dW2 = dZ2 @ A1.T
                db2 = dZ2.sum(axis=1, keepdims=True)
                dZ1 = W2.T @ dZ2
                dZ1 *= A1 > 0  # dZ1 = W2^T dZ2 * relu'(Z1)
                dW1 = dZ1 @ Xb.T
                db1 = dZ1.sum(axis=1, keepdims=True)
                t += 1
                c1, c2 = lr / (1 - b1**t), 1.0 / (1 - b2**t)
                for p, g, v, s in zip(P, (dW1, db1, dW2, db2), V, S):
                    v *= b1
                    v += (1 - b1) * g  # v = beta1 v + (1 - beta1) g
                    g *= g
                    g *= 1 - b2
                    s *= b2
                    s += g  # s = beta2 s + (1 - beta2) g^2
                    D = np.sqrt(s * c2)
                    D += eps
                    U = v * c1
                    U /= D
                    p -= U  # theta -= lr v_hat / (sqrt(s_hat) + eps)
        A1 = np.maximum(P[0] @ X + P[1], 0)
        return float(np.mean(np.argmax(P[2] @ A1 + P[3], axis=0) == self.y))


class FitTorch:
    """PyTorch eager: ``nn.Sequential`` of Linear/ReLU/Linear, ``CrossEntropyLoss``, ``optim.Adam``, a
    ``randperm`` shuffle each epoch; samples as rows."""

    name = "torch"

    def __init__(self, X, y, params):
        import torch

        self.torch = torch
        self.x = torch.from_numpy(np.ascontiguousarray(X.T))
        self.t = torch.from_numpy(y.astype(np.int64))
        self.params = params

    def run(self):
        torch = self.torch
        torch.manual_seed(0)
        lin1, lin2 = torch.nn.Linear(self.x.shape[1], FIT["hidden"]), torch.nn.Linear(FIT["hidden"], 10)
        with torch.no_grad():
            for lin, l in ((lin1, 1), (lin2, 2)):
                lin.weight.copy_(torch.from_numpy(self.params[f"W{l}"]))
                lin.bias.copy_(torch.from_numpy(self.params[f"b{l}"][:, 0]))
        model = torch.nn.Sequential(lin1, torch.nn.ReLU(), lin2)
        loss = torch.nn.CrossEntropyLoss()
        opt = torch.optim.Adam(model.parameters(), lr=FIT["lr"], eps=FIT["eps"])
        m, size = self.x.shape[0], FIT["batch_size"]
        for _ in range(FIT["epochs"]):
            perm = torch.randperm(m)
            xs, ts = self.x[perm], self.t[perm]
            for start in range(0, m, size):
                opt.zero_grad(set_to_none=True)
                loss(model(xs[start:start + size]), ts[start:start + size]).backward()
                opt.step()
        with torch.no_grad():
            return float((model(self.x).argmax(dim=1) == self.t).float().mean())


class FitSklearn:
    """scikit-learn's ``MLPClassifier(solver="adam", alpha=0, batch_size=200, max_iter=136)`` (never
    stopping early), samples as rows; its own initialisation."""

    name = "sklearn"

    def __init__(self, X, y, params):
        self.Xr, self.y = np.ascontiguousarray(X.T), y

    def run(self):
        import warnings

        from sklearn.neural_network import MLPClassifier

        clf = MLPClassifier(hidden_layer_sizes=(FIT["hidden"],), activation="relu", solver="adam", alpha=0.0,
                            batch_size=FIT["batch_size"], learning_rate_init=FIT["lr"], max_iter=FIT["epochs"],
                            n_iter_no_change=FIT["epochs"] + 1, shuffle=True, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter reached, as asked
            clf.fit(self.Xr, self.y)
        assert clf.n_iter_ == FIT["epochs"]
        return float(clf.score(self.Xr, self.y))


def fit_end_to_end(args, include_torch, include_sklearn):
    """Whole fits on digits (``--fit``): bpnet's ``MLP.fit`` vs a plain numpy loop, PyTorch eager and scikit-learn.

    digits' 1437 training examples, 64-128-10 (ReLU, softmax / cross-entropy), Adam lr 1e-3, batch 200,
    136 epochs, float32, the same initial parameters (scikit-learn: its own); each implementation fits
    once per round, in a shuffled order, ``--fit-rounds`` rounds after one warm-up fit each; the median.
    """
    from bpnet.io.datasets import load_dataset

    ds = load_dataset("digits")
    X = np.ascontiguousarray(ds.X_train, dtype=np.float32)
    y = np.asarray(ds.y_train, dtype=np.int64)
    params = {k: np.array(v, dtype=np.float32) for k, v in
              bpnet.MLP([X.shape[0], FIT["hidden"], 10], dtype="float32", backend="numpy", seed=0).parameters.items()}
    kinds = [FitPlainNumpy, FitBpnet] + ([FitTorch] if include_torch else []) + ([FitSklearn] if include_sklearn
                                                                                 else [])
    impls = [k(X, y, params) for k in kinds]
    accuracy = {im.name: im.run() for im in impls}  # warm-up
    times = {im.name: [] for im in impls}
    order = list(range(len(impls)))
    rng = np.random.default_rng(0)
    for _ in range(args.fit_rounds):
        rng.shuffle(order)
        for i in order:
            gc.collect()
            t = time.perf_counter()
            impls[i].run()
            times[impls[i].name].append(time.perf_counter() - t)
    plain = statistics.median(times["plain-numpy"])
    rows = [dict(implementation=name, fit_s=statistics.median(ts), fit_s_all=ts, ratio_vs_plain_numpy=
                 statistics.median(ts) / plain, train_accuracy=accuracy[name]) for name, ts in times.items()]
    return dict(data="digits", m=int(X.shape[1]), layers=f"{X.shape[0]}-{FIT['hidden']}-10", dtype="float32",
                optimizer="adam", lr=FIT["lr"], batch_size=FIT["batch_size"], epochs=FIT["epochs"],
                rounds=args.fit_rounds, threads=args.threads, rows=rows)


# --------------------------------------------------------------------------- #
# report


def print_fit(fit, out=sys.stdout):
    print(f"# end to end: {fit['data']} (m = {fit['m']}), {fit['layers']}, {fit['dtype']}, {fit['optimizer']} lr "
          f"{fit['lr']:g}, batch {fit['batch_size']}, {fit['epochs']} epochs, {fit['threads']} threads; median of "
          f"{fit['rounds']} interleaved rounds", file=out)
    for r in fit["rows"]:
        print(f"  {r['implementation']:>12}  {r['fit_s'] * 1e3:8.1f} ms  {r['ratio_vs_plain_numpy']:6.3f}x plain  "
              f"train accuracy {r['train_accuracy']:.3f}", file=out)


def fmt_mem(b):
    return "-" if b is None else f"{b / 2**20:.1f}"


def fmt(x, spec):
    return "-" if x is None else format(x, spec)


def print_table(records, out=sys.stdout):
    head = (f"{'net':<4}{'dtype':<9}{'implementation':<16}{'backend':<18}{'ms/step':>10}{'samples/s':>12}"
            f"{'/plain':>8}{'/torch':>8}{'gemm%':>7}{'peakMiB':>9}{'theoMiB':>9}")
    print(head, file=out)
    print("-" * len(head), file=out)
    for r in records:
        print(f"{r['net']:<4}{r['dtype']:<9}{r['implementation']:<16}{r['backend']:<18}"
              f"{r['step_ms_median']:>10.3f}{r['samples_per_s']:>12.0f}"
              f"{fmt(r['ratio_vs_plain_numpy'], '.3f'):>8}{fmt(r['ratio_vs_torch'], '.3f'):>8}"
              f"{fmt(None if r['gemm_bound_fraction'] is None else 100 * r['gemm_bound_fraction'], '.1f'):>7}"
              f"{fmt_mem(r['peak_mem_bytes']):>9}{fmt_mem(r['theoretical_mem_bytes']):>9}", file=out)


def environment(threads):
    env = dict(python=platform.python_version(), numpy=np.__version__, bpnet=bpnet.__version__,
               machine=platform.machine(), processor=platform.processor(), cpus=os.cpu_count(), threads=threads,
               OPENBLAS_CORETYPE=os.environ.get("OPENBLAS_CORETYPE"))
    try:
        from threadpoolctl import threadpool_info

        env["blas"] = [dict(prefix=i.get("prefix"), version=i.get("version"), architecture=i.get("architecture"),
                            num_threads=i.get("num_threads")) for i in threadpool_info() if i["user_api"] == "blas"]
    except ImportError:
        env["blas"] = None
    try:
        import torch

        env["torch"] = torch.__version__
        env["torch_threads"] = torch.get_num_threads()
        env["torch_cuda"] = torch.cuda.is_available()
    except ImportError:
        env["torch"] = None
    try:
        import sklearn

        env["sklearn"] = sklearn.__version__
    except ImportError:
        env["sklearn"] = None
    return env


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run, under a minute (nets a,b,d; few steps)")
    p.add_argument("--json", type=Path, help="write the records to this JSON file")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                   else os.cpu_count(), help="BLAS / torch threads (default: the CPUs available)")
    p.add_argument("--nets", default=None, help="comma-separated subset of a,b,c,d (default all; --quick: a,b,d)")
    p.add_argument("--dtypes", default="float32,float64")
    p.add_argument("--backends", default=None,
                   help="bpnet backends (default: numpy, array_api_strict and cupy where usable)")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--no-sklearn", action="store_true")
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--no-scaling", action="store_true", help="skip the batch-size and data-size runs")
    p.add_argument("--budget", type=float, default=None, help="seconds of timed steps per (net, dtype)")
    p.add_argument("--min-rounds", type=int, default=None)
    p.add_argument("--max-rounds", type=int, default=None)
    p.add_argument("--inference", action="store_true",
                   help="only the inference run: MLP.predict_proba over column batches vs one whole-array forward "
                   "(peak extra memory / X bytes, time ratio) on the first backend")
    p.add_argument("--inference-m", type=int, default=1_000_000, help="examples (columns) of X for --inference")
    p.add_argument("--inference-dims", default="784,256,128,10", help="layer sizes for --inference")
    p.add_argument("--inference-reps", type=int, default=3, help="timed runs of each for --inference")
    p.add_argument("--fit", action="store_true",
                   help="only the end-to-end run: whole fits on digits (64-128-10, Adam, batch 200, 136 epochs, "
                   "float32) of bpnet.MLP.fit vs a plain numpy loop, PyTorch eager and scikit-learn")
    p.add_argument("--fit-rounds", type=int, default=5, help="timed rounds of --fit (median)")
    args = p.parse_args(argv)
    args.budget = args.budget if args.budget is not None else (0.6 if args.quick else 10.0)
    args.min_rounds = args.min_rounds if args.min_rounds is not None else (3 if args.quick else 7)
    args.max_rounds = args.max_rounds if args.max_rounds is not None else (40 if args.quick else 500)
    return args


def main(argv=None):
    args = parse_args(argv)
    nets = (args.nets or ("a,b,d" if args.quick else "a,b,c,d")).split(",")
    dtypes = args.dtypes.split(",")
    avail = backends.available()
    wanted = args.backends.split(",") if args.backends else [b for b in ("numpy", "array_api_strict", "cupy")
                                                              if b in avail]
    for b in wanted:
        backends.get(b)  # a clear error when asked for a backend that is not usable
    try:
        import torch

        torch.set_num_threads(args.threads)
        include_torch = not args.no_torch
    except ImportError:
        include_torch = False
    try:
        import sklearn  # noqa: F401

        include_sklearn = not args.no_sklearn
    except ImportError:
        include_sklearn = False
    try:
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(limits=args.threads)
    except ImportError:
        limiter = None
        print("threadpoolctl is not installed (pip install -e '.[bench]'): BLAS threads not pinned", file=sys.stderr)
    env = environment(args.threads)
    print(f"# bpnet benchmark: {env['threads']} threads, BLAS {env['blas']}, torch {env.get('torch')}, "
          f"sklearn {env.get('sklearn')}, bpnet backends {wanted}")
    if args.fit:
        result = dict(environment=env, args={k: str(v) for k, v in vars(args).items()},
                      fit=fit_end_to_end(args, include_torch, include_sklearn))
        print_fit(result["fit"])
        if args.json:
            atomic_write(args.json, lambda f: f.write(json.dumps(result, indent=1)), binary=False, argname="--json")
        if limiter is not None:
            limiter.restore_original_limits()
        return result
    if args.inference:
        row = inference(args, wanted[0])
        print(f"# inference on {row['backend']}: X {row['dims'][0]} x {row['m']} float32 ({fmt_mem(row['x_bytes'])} "
              f"MiB), net {'-'.join(map(str, row['dims']))}, batches of {row['batch_columns']} columns")
        for name in ("batched", "whole"):
            print(f"  {name:>7}: {row[name + '_s']:8.3f} s  extra memory beyond the output "
                  f"{fmt_mem(row[name + '_extra_bytes'])} MiB = {row[name + '_extra_over_x']:.3f} x X")
        print(f"  time batched / whole: {row['time_ratio']:.3f}")
        result = dict(environment=env, args={k: str(v) for k, v in vars(args).items()}, inference=row)
        if args.json:
            atomic_write(args.json, lambda f: f.write(json.dumps(result, indent=1)), binary=False, argname="--json")
        if limiter is not None:
            limiter.restore_original_limits()
        return result
    records = []
    for net in nets:
        for dtype in dtypes:
            recs = run_net(net, dtype, args, wanted, include_torch, include_sklearn)
            print_table(recs)
            print()
            records.extend(recs)
    result = dict(environment=env, args={k: str(v) for k, v in vars(args).items()}, records=records)
    if not args.no_scaling:
        # the performance backends (numpy, cupy) asked for, else the first one
        scaled = [b for b in wanted if b.split(":")[0] in ("numpy", "cupy")] or wanted[:1]
        result["batch_scaling"] = []
        for b in scaled:
            rows = batch_scaling(args, b, include_torch)
            result["batch_scaling"].extend(rows)
            print(f"# batch scaling, net a, float32: bpnet on {b} vs {rows[0]['reference']}")
            for r in rows:
                print(f"  m={r['batch']:>5}  bpnet {r['bpnet_ms']:9.3f} ms  "
                      f"{r['reference']} {r['reference_ms']:9.3f} ms"
                      f"  ratio {r['ratio']:.3f}  peak MiB {fmt_mem(r['bpnet_peak_mem_bytes'])} / "
                      f"{fmt_mem(r['reference_peak_mem_bytes'])}  theoretical {fmt_mem(r['theoretical_mem_bytes'])}")
        result["end_to_end"] = end_to_end(args, wanted[0])
        e2e = result["end_to_end"]
        print("# end to end:", json.dumps(e2e["digits_to_accuracy"]))
        for r in e2e["epoch_time_vs_size"]:
            print(f"  m={r['m']:>6}  epoch {r['epoch_s'] * 1e3:8.1f} ms  {r['us_per_sample']:.2f} us/sample")
    print("\nSummary:\n")
    print_table(records)
    if args.json:
        atomic_write(args.json, lambda f: f.write(json.dumps(result, indent=1)), binary=False, argname="--json")
        print(f"\nwrote {args.json}")
    if limiter is not None:
        limiter.restore_original_limits()
    return result


if __name__ == "__main__":
    main()
