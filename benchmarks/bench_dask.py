"""Data-parallel step on Dask (bpnet.distributed) versus one process.

One command::

    python benchmarks/bench_dask.py [--quick] [--max-m M] [--workers N] [--steps K] [--json PATH]

Network 784-256-128-10 (ReLU, softmax / cross-entropy, float32), one
full-batch gradient-descent step over m examples, m = 1e4, 1e5, 1e6
(``--quick``: 2e3, 1e4; ``--max-m`` caps the list: m = 1e6 is 3.1 GB of float32
features).  Measured, median of ``--steps`` steps after one warm-up:

* ``dask``: a LocalCluster of ``--workers`` processes with one thread each
  (Dask pins BLAS to one thread per worker); the data are generated
  **on the workers**, chunk by chunk, with a seeded generator
  (``dask.array.random.default_rng``) -- never on the client -- one chunk
  per worker; the step is what :func:`bpnet.distributed.fit_distributed`
  runs: broadcast the parameters, one gradient task per chunk (bpnet's
  ``_forward``/``_backward`` on the block), the reduction tree, the gather
  and the optimiser update on the client;
* ``overhead``: the same step with the same task graph whose gradient tasks
  return zero gradients without touching the data: broadcast, scheduling,
  the reduction of full-size gradients, the gather and the update -- what
  Dask costs per step whatever m is;
* ``single-2t`` / ``single-1t``: :func:`bpnet.train.step.train_step` (the kernel
  :meth:`bpnet.MLP.fit` runs) in this process on the same shapes, BLAS pinned
  to 2 threads / 1 thread with threadpoolctl (when installed).
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
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bpnet  # noqa: E402
from bpnet.io.atomic import atomic_write  # noqa: E402
from bpnet.train import distributed as bd  # noqa: E402

DIMS = [784, 256, 128, 10]


def _empty_grad(block, params_host, lo, hi, scale, mask_seed, keep_prob, cfg):
    """A gradient task that does no work: zero gradients of the parameters' shapes."""
    return {"g": {"d" + k: np.zeros_like(v) for k, v in params_host.items()}, "cost": 0.0, "hits": 0.0}


def _median(f, steps):
    f()  # warm-up
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_dask(conn, m, workers, steps, seed=0):
    import dask.array as da

    chunk = -(-m // workers)
    X = da.random.default_rng(seed).standard_normal((DIMS[0], m), chunks=(DIMS[0], chunk), dtype=np.float32)
    y = da.random.default_rng(seed + 1).integers(0, DIMS[-1], size=m, chunks=chunk)
    model = bpnet.MLP(DIMS, dtype="float32", backend="numpy", seed=0)
    t = time.perf_counter()
    session = bd.DaskBatches(conn, model, X, y)
    t_load = time.perf_counter() - t
    opt = bpnet.get_optimizer("gd")
    box = {"p": dict(model.parameters), "s": opt.init(model.parameters), "i": 0}
    pieces = [(c, 0, m_c) for c, m_c in enumerate(session.sizes)]

    def step(fn):
        box["i"] += 1
        res = session.step(session.blocks, pieces, box["p"], f"bench-{box['i']}", fn=fn)
        box["p"], box["s"] = opt.step(box["p"], res["g"], box["s"], 0.01)

    n0 = session.tasks_submitted
    t_step = _median(lambda: step(bd.chunk_gradients), steps)
    tasks_per_step = (session.tasks_submitted - n0) / (steps + 1)
    t_empty = _median(lambda: step(_empty_grad), max(steps, 10))
    return {"load_s": t_load, "step_s": t_step, "overhead_s": t_empty, "chunks": len(pieces),
            "tasks_per_step": tasks_per_step}


def bench_single(m, steps, threads, seed=0):
    from bpnet.nn import get_activation, get_loss
    from bpnet.train.step import Net, TrainState, train_step

    try:
        from threadpoolctl import threadpool_limits
        limiter = threadpool_limits(limits=threads)
    except ImportError:  # pragma: no cover
        limiter = None
        if threads != os.cpu_count():
            return None
    try:
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((DIMS[0], m), dtype=np.float32)
        Y = np.eye(DIMS[-1], dtype=np.float32)[:, rng.integers(0, DIMS[-1], size=m)]
        model = bpnet.MLP(DIMS, dtype="float32", backend="numpy", seed=0)
        opt = bpnet.get_optimizer("gd")
        params = {k: v.copy() for k, v in model.parameters.items()}
        ts = TrainState(params, opt, opt.init(params))
        xp = model.backend.xp
        net = Net(get_activation("relu"), get_activation("softmax"), get_loss("categorical_crossentropy"))
        return _median(lambda: train_step(xp, X, Y, ts, net, 0.01), steps)
    finally:
        if limiter is not None:
            limiter.unregister() if hasattr(limiter, "unregister") else limiter.restore_original_limits()
        gc.collect()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="m = 2e3, 1e4 (a smoke run)")
    p.add_argument("--max-m", type=float, default=None, help="skip sizes above this m")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--steps", type=int, default=3, help="timed steps per measurement (after one warm-up)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)
    sizes = [2_000, 10_000] if args.quick else [10_000, 100_000, 1_000_000]
    if args.max_m is not None:
        sizes = [m for m in sizes if m <= args.max_m]
    print(f"# bpnet {bpnet.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}, numpy {np.__version__}")
    print(f"# network {'-'.join(map(str, DIMS))}, float32, one full-batch gd step; LocalCluster of "
          f"{args.workers} worker processes x 1 thread, one chunk per worker, data generated on the workers")
    rows = []
    with bd.connect(f"local:{args.workers}") as conn:
        for m in sizes:
            r = {"m": m, **bench_dask(conn, m, args.workers, args.steps)}
            conn.client.run(gc.collect)
            rows.append(r)
    for r in rows:
        r["single_2t_s"] = bench_single(r["m"], args.steps, threads=2)
        r["single_1t_s"] = bench_single(r["m"], args.steps, threads=1)
    head = (f"{'m':>9} {'chunks':>6} {'tasks/step':>10} {'dask step':>10} {'overhead':>9} {'single 2t':>10} "
            f"{'single 1t':>10} {'vs 2t':>6} {'vs 1t':>6}")
    print(head)
    for r in rows:
        s2, s1 = r["single_2t_s"], r["single_1t_s"]
        print(f"{r['m']:>9.0e} {r['chunks']:>6} {r['tasks_per_step']:>10.1f} {r['step_s'] * 1e3:>8.1f}ms "
              f"{r['overhead_s'] * 1e3:>7.1f}ms {s2 * 1e3:>8.1f}ms {s1 * 1e3:>8.1f}ms "
              f"{s2 / r['step_s']:>5.2f}x {s1 / r['step_s']:>5.2f}x")
    print("# vs 2t / vs 1t: single-process step time / dask step time (> 1: dask is faster)")
    if args.json:
        text = json.dumps({"rows": rows, "workers": args.workers, "dims": DIMS}, indent=1)
        atomic_write(args.json, lambda f: f.write(text), binary=False, argname="--json")
    return rows


if __name__ == "__main__":
    main()
