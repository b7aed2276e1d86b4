r"""Data-parallel training on Dask (bpnet.distributed) versus one process.

One command::

    python benchmarks/bench_dask.py [--quick] [--workers 1,2] [--m M] [--batches 256,1024,...]
                                    [--full-batch 1e4,1e5] [--repeats K] [--baseline MODULE] [--json PATH]

Network 784-256-128-10 (ReLU, softmax / cross-entropy, float32), plain
gradient descent.  Every number is one epoch of a gradient source -- the
``run_epoch`` the epoch loop of :meth:`bpnet.MLP.fit` calls -- divided by its
steps: median of ``--repeats`` epochs after a warm-up epoch (which creates the
replicas), the sources of a row measured in turn, epoch after epoch, so that
the load of a shared machine falls on all of them alike.

* ``dask-Nw``: :class:`bpnet.train.distributed.DaskBatches` on a LocalCluster
  of N worker processes with one thread each; the data are generated **on the
  workers** (``dask.array.random.default_rng``), one chunk per worker;
* ``single-1t`` / ``single-2t``: :class:`bpnet.train.loop.LocalBatches` (what
  ``MLP.fit`` runs in one process) on host data of the same shape, BLAS pinned
  to 1 / 2 threads with threadpoolctl (when installed);
* ``base-Nw`` (``--baseline MODULE``): ``MODULE.DaskBatches``, another version
  of ``bpnet/train/distributed.py`` saved as an importable module with absolute
  imports, on the same clusters, e.g. the last commit's::

      mkdir -p /tmp/base; git show HEAD:bpnet/train/distributed.py | sed -E \
          -e 's/^( *)from \.\. import/\1from bpnet import/' -e 's/^( *)from \.\.([a-z])/\1from bpnet.\2/' \
          -e 's/^( *)from \.([a-z])/\1from bpnet.train.\2/' > /tmp/base/base_distributed.py
      PYTHONPATH=/tmp/base python benchmarks/bench_dask.py --baseline base_distributed

Tables: the **overhead** per step (one example per worker per step, m = 100 x
workers: what Dask costs per step whatever the batch); **mini-batches** over
``--m`` examples, shuffled every epoch, batch sizes ``--batches``, with the
speed-up ``single-1t / dask`` (the median of the rounds' ratios) and the excess
of each Dask step over the ideal ``single-1t / N``; **full batch**, one
unshuffled step per epoch over each m of ``--full-batch``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
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
from bpnet.train import FitConfig, LocalBatches, TrainState  # noqa: E402
from bpnet.train import distributed as bd  # noqa: E402
from bpnet.train.loop import heap_for  # noqa: E402

DIMS = [784, 256, 128, 10]


def _threads(n):
    """BLAS pinned to ``n`` threads in this process (a no-op without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(limits=n)


class Runner:
    """One gradient source with its own model state; :meth:`epoch` times one epoch of it (seconds per step)."""

    def __init__(self, name, source, threads=None):
        self.name, self.source, self.threads, self.e = name, source, threads, 0
        self.model = bpnet.MLP(DIMS, dtype="float32", backend="numpy", seed=0)
        self.ts = self.heap = None

    def start(self, cfg):
        opt = cfg.optimizer
        params = {k: np.array(v) for k, v in self.model.parameters.items()}
        self.ts, self.cfg = TrainState(params, opt, opt.init(params)), cfg
        self.stop()
        self.heap = heap_for(self.source, self.ts, cfg)  # as MLP.fit's epoch loop holds it over its epochs
        self.heap.__enter__()

    def stop(self):
        if self.heap is not None:
            self.heap.__exit__(None, None, None)
            self.heap = None

    def epoch(self):
        with _threads(self.threads) if self.threads else contextlib.nullcontext():
            t = time.perf_counter()
            self.source.run_epoch(self.ts, self.model.net, self.cfg, self.e, self.cfg.lr(self.e), True)
            dt = time.perf_counter() - t
        self.e += 1
        return dt / -(-self.source.m // self.cfg.batch_size)  # the epoch's steps


def measure(runners, cfg, repeats):
    """``{name: median seconds per step}``: a warm-up epoch each, then ``repeats`` rounds of one epoch each;
    with a ``single-1t`` runner also ``{"x " + name: median over the rounds of single-1t / name}`` (each round's
    ratio of epochs run side by side: a shared machine's drifts between rounds cancel)."""
    for r in runners:
        r.start(cfg)
        r.epoch()
    times = {r.name: [] for r in runners}
    for _ in range(repeats):
        for r in runners:
            times[r.name].append(r.epoch())
    out = {k: statistics.median(v) for k, v in times.items()}
    base = times.get("single-1t")
    if base is not None:
        out.update({f"x {k}": statistics.median(b / t for b, t in zip(base, v)) for k, v in times.items()})
    return out


def dask_data(m, workers, seed=0):
    import dask.array as da

    chunk = -(-m // workers)
    X = da.random.default_rng(seed).standard_normal((DIMS[0], m), chunks=(DIMS[0], chunk), dtype=np.float32)
    y = da.random.default_rng(seed + 1).integers(0, DIMS[-1], size=m, chunks=chunk)
    return X, y


def host_data(m, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((DIMS[0], m), dtype=np.float32)
    Y = np.eye(DIMS[-1], dtype=np.float32)[:, rng.integers(0, DIMS[-1], size=m)]
    return X, Y


def runners_for(m, conns, modules, single_threads):
    """The runners of one data size: single-process ones, then each module's on each cluster."""
    out = []
    if single_threads:
        X, Y = host_data(m)
        out += [Runner(f"single-{t}t", LocalBatches(X, Y, bpnet.backends.get("numpy")), threads=t)
                for t in single_threads]
    for tag, mod in modules:
        for w, conn in conns.items():
            X, y = dask_data(m, w)
            model = bpnet.MLP(DIMS, dtype="float32", backend="numpy", seed=0)
            out.append(Runner(f"{tag}-{w}w", mod.DaskBatches(conn, model, X, y)))
    return out


def close(runners):
    for r in runners:
        r.stop()
        if hasattr(r.source, "close"):
            r.source.close()
    gc.collect()


def _cfg(batch, shuffle=True):
    return FitConfig.from_options(batch_size=batch, optimizer="gd", learning_rate=1e-3, shuffle=shuffle, seed=0)


def _sizes(text):
    """A comma-separated list of positive counts (``1e5`` allowed; '' for none), for argparse."""
    try:
        out = [int(float(x)) for x in text.split(",") if x.strip()]
    except ValueError:
        out = None
    if out is None or any(v < 1 for v in out):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive counts such as 256,1024 or 1e5, "
                                         f"got {text!r}")
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="m = 16384, batches 256, 4096; full batch 1e4 (a smoke run)")
    p.add_argument("--workers", type=_sizes, default="1,2", help="worker counts of the LocalClusters (default 1,2)")
    p.add_argument("--m", type=int, default=131072, help="examples of the mini-batch table")
    p.add_argument("--batches", type=_sizes, default="256,1024,4096,16384,65536",
                   help="batch sizes of the mini-batch table ('' for none)")
    p.add_argument("--full-batch", type=_sizes, default="1e4,1e5", help="m of the full-batch table ('' for none)")
    p.add_argument("--repeats", type=int, default=3, help="timed epochs per source (after one warm-up)")
    p.add_argument("--baseline", default=None, help="an importable module with another DaskBatches to compare")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)
    workers, m, batches, full = args.workers, args.m, args.batches, args.full_batch
    if not workers:
        p.error("--workers: expected at least one worker count, got ''")
    if args.quick:
        m, batches, full = 16384, [256, 4096], [10_000]
    modules = [("dask", bd)] + ([("base", importlib.import_module(args.baseline))] if args.baseline else [])
    print(f"# bpnet {bpnet.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}, numpy {np.__version__}")
    print(f"# network {'-'.join(map(str, DIMS))}, float32, gd; LocalClusters of {workers} worker processes x 1 "
          f"thread, one chunk per worker; ms per step, median of {args.repeats} epochs"
          + (f"; base = {args.baseline}" if args.baseline else ""))
    results = {"overhead": [], "minibatch": [], "full": []}
    conns = {w: bd.connect(f"local:{w}") for w in workers}
    try:
        for w, conn in conns.items():  # one example per worker per step
            rs = runners_for(100 * w, {w: conn}, modules, [])
            results["overhead"].append({"workers": w, **measure(rs, _cfg(w), args.repeats)})
            close(rs)
        if batches:
            rs = runners_for(m, conns, modules, [1])
            for b in batches:
                results["minibatch"].append({"m": m, "batch": b, **measure(rs, _cfg(b), args.repeats)})
            close(rs)
        for mf in full:
            rs = runners_for(mf, conns, modules, [1, 2])
            results["full"].append({"m": mf, **measure(rs, _cfg(mf, shuffle=False), args.repeats)})
            close(rs)
    finally:
        for conn in conns.values():
            conn.close()
    report(results, workers, [t for t, _ in modules])
    if args.json:
        text = json.dumps({"results": results, "workers": workers, "dims": DIMS, "baseline": args.baseline}, indent=1)
        atomic_write(args.json, lambda f: f.write(text), binary=False, argname="--json")
    return results


def report(results, workers, tags):
    names = [f"{t}-{w}w" for t in tags for w in workers]
    print("\n## overhead per step (one example per worker per step)")
    print(f"{'workers':>7} " + " ".join(f"{t:>10}" for t in tags))
    for r in results["overhead"]:
        w = r["workers"]
        print(f"{w:>7} " + " ".join(f"{r[f'{t}-{w}w'] * 1e3:>8.2f}ms" for t in tags))
    for key, title in (("minibatch", "mini-batches, shuffled"), ("full", "full batch, one step per epoch")):
        rows = results[key]
        if not rows:
            continue
        single = [k for k in rows[0] if k.startswith("single")]
        print(f"\n## {title}: ms per step; (x: single-1t / it, the median of the rounds' ratios; "
              "+: ms over single-1t / workers)")
        head = f"{'m':>8} {'batch':>6} " + " ".join(f"{k:>10}" for k in single) + " " + \
            " ".join(f"{n:>24}" for n in names)
        print(head)
        for r in rows:
            s1 = r["single-1t"]
            cells = [f"{r[k] * 1e3:>8.1f}ms" for k in single]
            for n in names:
                w = int(n.rsplit("-", 1)[1][:-1])
                x = r.get(f"x {n}", s1 / r[n])
                cells.append(f"{r[n] * 1e3:>8.1f}ms {x:>5.2f}x +{(r[n] - s1 / w) * 1e3:>6.1f}ms")
            print(f"{r['m']:>8} {r.get('batch', r['m']):>6} " + " ".join(cells))


if __name__ == "__main__":
    main()
