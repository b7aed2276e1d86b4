"""Data-parallel training on a Dask cluster: :class:`DaskBatches`, a gradient source of the one epoch loop.

The data stay on the workers as blocks of examples (columns); every step runs,
on each block, the training step's own kernels (:func:`bpnet.train.step.forward_train`
and :func:`~bpnet.train.step.backward_update` collecting the gradients) with
the namespace of the block itself -- numpy on CPU workers, cupy on dask-cuda
workers -- and adds only the data-parallel reduction::

    g_c = (1/|B|) sum over the examples B_c of chunk c in the global batch B   (on c's worker)
    g   = sum_c g_c, tree-summed on the workers = the gradient of the mean cost over B

then the client applies the optimiser in place (:func:`bpnet.train.step.apply_gradients`)
and broadcasts the parameters for the next step.  Per step: one gradient task
per chunk and about one summation task per chunk (fan-in ``split_every``); no
activation leaves its worker.

Mini-batches are drawn **within** chunks: in epoch e the columns of chunk c
are permuted by ``numpy.random.default_rng([seed, e, c])`` and cut into
``ceil(m / batch_size)`` nearly equal pieces; step s uses piece s of every
chunk (:func:`epoch_batches` lists them as global column indices).

Dask and distributed are optional (``pip install 'bpnet[dask]'``) and imported
only inside the functions here.  This module never imports :mod:`bpnet.model`:
:func:`fit_distributed` drives a model through its public ``fit_source``.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import math
import os
import time
import uuid
import warnings

import numpy as np

from .step import apply_gradients

__all__ = ["fit_distributed", "connect", "epoch_batches", "ClusterGoneError", "DaskConnection", "DaskBatches"]

_INSTALL = "pip install 'bpnet[dask]'"


class ClusterGoneError(ConnectionError):
    """The Dask cluster (its scheduler, or all of its workers) went away during training."""


def _import_distributed():
    """``(dask.array, distributed)``, or an ImportError saying how to install them."""
    try:
        import dask.array as da
        import distributed
    except ImportError as exc:
        raise ImportError(f"data-parallel training needs dask and distributed: {_INSTALL} ({exc})") from None
    return da, distributed


# --------------------------------------------------------------------------- #
# connecting


class DaskConnection:
    """A :class:`distributed.Client` and, when bpnet started it, its cluster.

    Attributes
    ----------
    client : distributed.Client
    cluster : distributed.LocalCluster or None
        The cluster bpnet created (closed by :meth:`close`), else None.
    address : str
        The scheduler's address, for messages.
    """

    def __init__(self, client, cluster=None, owned=False):
        self.client = client
        self.cluster = cluster
        self.owned = owned
        try:
            self.address = str(client.scheduler.address)
        except Exception:  # pragma: no cover - a client without a scheduler comm
            self.address = "?"

    @property
    def n_workers(self) -> int:
        try:
            return max(1, len(self.client.scheduler_info(n_workers=-1)["workers"]))
        except TypeError:  # older distributed: no n_workers argument
            return max(1, len(self.client.scheduler_info()["workers"]))

    def close(self) -> None:
        """Close the client and cluster bpnet created (a no-op for a client you passed)."""
        if not self.owned:
            return
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def connect(client=None, *, n_workers=None) -> DaskConnection:
    """Resolve ``client`` to a live :class:`DaskConnection`.

    Parameters
    ----------
    client : distributed.Client, str or None
        * a ``distributed.Client``: used as is (never closed by bpnet);
        * ``"local"`` or ``"local:N"``: a new ``LocalCluster`` of N worker
          processes (default: one per CPU core), one thread each, no dashboard;
        * a scheduler address such as ``"tcp://10.0.0.5:8786"`` (any
          ``scheme://``), as printed by ``dask scheduler``;
        * ``None``: the current default client if there is one, else a new
          local cluster as ``"local"``.
    n_workers : int, optional
        Workers of a new local cluster (overrides ``N`` of ``"local:N"``).

    Returns
    -------
    DaskConnection
        Close it (or use it as a context manager) to shut down what bpnet started.
    """
    _, distributed = _import_distributed()
    if isinstance(client, distributed.Client):
        if client.status != "running":
            raise ValueError(f"client: the distributed.Client is {client.status!r}, not running")
        return DaskConnection(client)
    if client is None:
        try:
            return DaskConnection(distributed.default_client())
        except ValueError:
            client = "local"
    if not isinstance(client, str):
        raise TypeError(f"client: expected a distributed.Client, 'local', 'local:N' or a scheduler address "
                        f"like 'tcp://host:8786', got {type(client).__name__} {client!r}")
    spec = client.strip()
    if spec == "local" or spec.startswith("local:"):
        count = n_workers
        if count is None and spec != "local":
            try:
                count = int(spec.split(":", 1)[1])
            except ValueError:
                count = -1
            if count <= 0:
                raise ValueError(f"client: expected 'local:N' with N a positive number of workers, got {client!r}")
        if count is None:
            count = max(1, os.cpu_count() or 1)
        cluster = distributed.LocalCluster(n_workers=int(count), threads_per_worker=1, processes=True,
                                           dashboard_address=":0")  # a free port: never a clash
        try:
            c = distributed.Client(cluster)
        except BaseException:
            cluster.close()
            raise
        return DaskConnection(c, cluster, owned=True)
    if "://" not in spec:
        raise ValueError(f"client: expected 'local', 'local:N' or a scheduler address with its protocol, like "
                         f"'tcp://host:8786', got {client!r}")
    try:
        c = distributed.Client(spec)
    except (OSError, TimeoutError) as exc:
        raise ClusterGoneError(f"client: cannot reach the Dask scheduler at {spec} ({exc}); start one with "
                               f"'dask scheduler' and workers with 'dask worker {spec}'") from None
    return DaskConnection(c, owned=True)


# --------------------------------------------------------------------------- #
# the batch plan (pure Python: the client and the tests use it)


def _chunk_perm(seed: int, epoch: int, chunk: int, m_c: int) -> np.ndarray:
    """The permutation of chunk ``chunk``'s ``m_c`` columns in epoch ``epoch``."""
    return np.random.default_rng([seed, epoch, chunk]).permutation(m_c)


def _n_steps(m: int, batch_size: int) -> int:
    return max(1, -(-m // batch_size))


def _bounds(m_c: int, n_steps: int) -> list[int]:
    """Piece ``s`` of a chunk of ``m_c`` columns is ``[bounds[s], bounds[s + 1])``."""
    return [(s * m_c) // n_steps for s in range(n_steps + 1)]


def epoch_batches(chunk_sizes, epoch, *, batch_size, seed=0, shuffle=True) -> list[np.ndarray]:
    """The global batches of one epoch of :func:`fit_distributed`, as column indices.

    Parameters
    ----------
    chunk_sizes : sequence of int
        ``m_c`` of each chunk along the examples axis (``X.chunks[1]``).
    epoch : int
        0-based epoch index.
    batch_size, seed, shuffle : as given to :func:`fit_distributed`.

    Returns
    -------
    list of int64 arrays
        Step ``s`` trains on the columns ``batches[s]`` of ``X`` (chunk 0's
        first, then chunk 1's, ...); about ``batch_size`` each, every column
        exactly once per epoch.
    """
    sizes = [int(c) for c in chunk_sizes]
    n = _n_steps(sum(sizes), batch_size)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    out = [[] for _ in range(n)]
    for c, m_c in enumerate(sizes):
        order = _chunk_perm(seed, epoch, c, m_c) if (shuffle and n > 1) else np.arange(m_c)
        b = _bounds(m_c, n)
        for s in range(n):
            out[s].append(offsets[c] + order[b[s]:b[s + 1]])
    return [np.concatenate(parts).astype(np.int64) for parts in out]


# --------------------------------------------------------------------------- #
# worker-side functions (module level: pickled by reference; each runs on one block)


def _prepare_block(Xc, Yc, c, cfg):
    """Check and cast one block: ``(X_c (n_x, m_c), Y_c (n_L, m_c))`` in the model's dtype, on the block's device.

    Runs on the worker, through the same checks as ``MLP.fit`` (:mod:`bpnet._validate`);
    a ValueError/TypeError names X or Y and the chunk.
    """
    from .. import _validate as v
    from ..backends import backend_of

    bk = backend_of(Xc)
    m_c = Xc.shape[1] if getattr(Xc, "ndim", 0) == 2 else -1
    try:
        if m_c == 0:  # an empty block (e.g. after filtering): dropped by the client
            return v.to_backend(Xc, "X", bk, cfg["dtype"]), None
        X = v.as_features(Xc, "X", bk, cfg["dtype"], cfg["n_x"], f"for blocks of layer_dims[0] = {cfg['n_x']}")
        Y = v.as_labels(Yc, "Y", bk, cfg["dtype"], cfg["n_out"], m_c, cfg["target"],
                        "= (layer_dims[-1], m_c of X's block); Y must have X's chunks along the examples axis")
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{exc} (in chunk {c} along the examples axis)") from None
    return X, Y


def _block_size(block) -> int:
    return int(block[0].shape[1])


def _shuffle_block(block, seed, epoch, c):
    """The block's columns in this epoch's order (one ``take`` on the worker's device)."""
    import array_api_compat

    X, Y = block
    xp = array_api_compat.array_namespace(X)
    perm = xp.asarray(_chunk_perm(seed, epoch, c, X.shape[1]), device=array_api_compat.device(X))
    return xp.take(X, perm, axis=1), xp.take(Y, perm, axis=1)


def chunk_gradients(block, params_host, lo, hi, scale, mask_seed, keep_prob, cfg):
    """The gradients of columns ``[lo, hi)`` of one block, times ``scale`` (``1/|B|``), on its worker.

    Runs the training step's kernels; returns ``{"g": {dW1, db1, ...: host numpy},
    "cost": sum of the per-example costs, "hits": correct predictions or None}``.
    """
    import array_api_compat

    from ..backends import backend_of, to_numpy
    from ..nn import draw_masks, get_activation, get_loss
    from ..optim import get_optimizer
    from .step import Net, TrainState, backward_update, batch_metrics, forward_train

    X, Y = block
    bk = backend_of(X)
    xp = bk.xp
    params = params_host if array_api_compat.is_numpy_namespace(xp) else \
        {k: bk.asarray(a) for k, a in params_host.items()}  # e.g. cupy blocks: to the block's device
    ts = TrainState(params, get_optimizer("gd"), {"t": 0})
    net = Net(get_activation(cfg["hidden"]), get_activation(cfg["output"]), get_loss(cfg["loss"]))
    Xb, Yb, n = X[:, lo:hi], Y[:, lo:hi], hi - lo
    masks = None
    if keep_prob is not None:
        drawn = draw_masks(np.random.default_rng(mask_seed), cfg["dims"][1:-1], n, keep_prob)
        masks = [bk.asarray(D / keep_prob, dtype=cfg["dtype"]) for D in drawn]
    acts, gs, ZL = forward_train(xp, Xb, ts.Ws, ts.bs, net, masks)
    cost, hits = batch_metrics(xp, acts[-1], Yb, net, ZL)
    grads = backward_update(xp, acts, Yb, ts, net, 0.0, gs=gs, masks=masks, collect=True, scale=scale)
    g = {f"d{p}{l + 1}": to_numpy(a) for l, dW, db in grads for p, a in (("W", dW), ("b", db))}
    return {"g": g, "cost": float(cost), "hits": None if hits is None else float(hits)}


def _sum_parts(*parts):
    """Sum of partial results of :func:`chunk_gradients` (host numpy; a node of the reduction tree)."""
    g = dict(parts[0]["g"])
    for p in parts[1:]:
        for k, v in p["g"].items():
            g[k] = g[k] + v
    hits = None if parts[0]["hits"] is None else sum(p["hits"] for p in parts)
    return {"g": g, "cost": sum(p["cost"] for p in parts), "hits": hits}


# --------------------------------------------------------------------------- #
# the session: data on the cluster and the step


def _is_dask_array(x) -> bool:
    return type(x).__module__.startswith("dask.") and hasattr(x, "chunks") and hasattr(x, "to_delayed")


def _has_unknown(chunks) -> bool:
    return any(isinstance(c, float) and math.isnan(c) for c in chunks)


_CLUSTER_ERRORS = (concurrent.futures.CancelledError, OSError, TimeoutError)


def _cluster_errors(distributed):
    errs = list(_CLUSTER_ERRORS)
    for mod, name in (("distributed", "KilledWorker"), ("distributed.comm.core", "CommClosedError"),
                      ("distributed.client", "FutureCancelledError"), ("distributed.scheduler", "KilledWorker")):
        try:
            errs.append(getattr(__import__(mod, fromlist=[name]), name))
        except (ImportError, AttributeError):
            pass
    import asyncio

    errs.append(asyncio.CancelledError)
    return tuple(errs)


class DaskBatches:
    """The gradient source of a Dask cluster: the data as checked blocks on the workers, and the step.

    Parameters
    ----------
    conn : DaskConnection
    model : bpnet.MLP (read: layer_dims, dtype, net, backend)
    X, Y : as :func:`fit_distributed` takes them
    chunk_size, compute_chunk_sizes, retries, split_every, worker_timeout : as :func:`fit_distributed`

    Attributes
    ----------
    blocks : list of futures, each ``(X_c (n_x, m_c), Y_c (n_L, m_c))`` on a worker
    sizes : list of int, ``m_c`` of each block (empty blocks dropped)
    m : int, total examples
    tasks_submitted : int, gradient and summation tasks submitted so far (the
        scatter of the parameters is not a task)
    """

    def __init__(self, conn: DaskConnection, model, X, Y, *, chunk_size=None, compute_chunk_sizes=True,
                 retries=2, split_every=4, worker_timeout=60.0):
        da, distributed = _import_distributed()
        net = model.net
        self.bk, self.conn, self.client = model.backend, conn, conn.client
        self.retries = int(retries)
        self.worker_timeout = float(worker_timeout)
        self.split_every = max(2, int(split_every))
        self.errors = _cluster_errors(distributed)
        self.run_id = uuid.uuid4().hex[:8]
        self.tasks_submitted = 0
        self.cfg = {"n_x": model.layer_dims[0], "n_out": model.layer_dims[-1], "target": net.loss.target,
                    "dtype": model.dtype, "loss": net.loss.name, "hidden": net.hidden.name,
                    "output": net.output.name, "dims": list(model.layer_dims)}
        Xd, Yd = self._as_dask(da, model, X, Y, chunk_size, compute_chunk_sizes)
        xs = list(Xd.to_delayed().ravel())
        ys = list(Yd.to_delayed().ravel())
        import dask

        prepared = [dask.delayed(_prepare_block, pure=True)(x, y, c, self.cfg,
                                                            dask_key_name=f"bpnet-prepare-{self.run_id}-{c}")
                    for c, (x, y) in enumerate(zip(xs, ys))]
        with warnings.catch_warnings():
            # numpy input lives in the graph on purpose: a block lost with its worker is rebuilt from it
            warnings.filterwarnings("ignore", message=".*[Ll]arge graph.*")
            warnings.filterwarnings("ignore", message=".*large object.*")
            futures = self.client.compute(prepared)
        sizes = self.client.gather(self.client.map(_block_size, futures, key=[
            f"bpnet-size-{self.run_id}-{c}" for c in range(len(futures))]))
        keep = [i for i, s in enumerate(sizes) if s > 0]
        self.blocks = [futures[i] for i in keep]
        self.sizes = [int(sizes[i]) for i in keep]
        self.m = sum(self.sizes)
        if self.m == 0:
            raise ValueError("X: expected at least one example (column), got none in any chunk")

    # -- input --------------------------------------------------------- #
    def _as_dask(self, da, model, X, Y, chunk_size, compute_chunk_sizes):
        """X and Y as dask arrays ``(n_x, m)`` and ``(n_L, m)``/``(m,)`` with the same chunks along m."""
        from .. import _validate as v
        from ..backends import get

        n_x = model.layer_dims[0]
        host = get("numpy")
        if not _is_dask_array(X):
            Xh = v.to_backend(X, "X", host)
            if Xh.ndim != 2:
                raise ValueError(f"X: expected a 2-D array (n_x, m), got shape {tuple(Xh.shape)}")
            if chunk_size is None:
                chunk_size = -(-Xh.shape[1] // (2 * self.conn.n_workers)) or 1
            X = da.from_array(Xh, chunks=(Xh.shape[0], chunk_size), name=f"bpnet-X-{self.run_id}")
        else:
            if X.ndim != 2:
                raise ValueError(f"X: expected a 2-D dask array (n_x, m), got shape {tuple(X.shape)}")
            if X.dtype.kind not in "fiu":
                raise TypeError(f"X: expected real numbers (float32 or float64), got dtype {X.dtype}")
        if _has_unknown(X.chunks[0]) or X.shape[0] != n_x:
            hint = "; it looks transposed: examples are columns, pass X.T" if X.shape[1] == n_x else ""
            raise ValueError(f"X: expected shape ({n_x}, m) for layer_dims[0] = {n_x}, got {tuple(X.shape)}{hint}")
        if len(X.chunks[0]) > 1:
            X = X.rechunk({0: -1})  # chunked along the examples axis only
        if not _is_dask_array(Y):
            Yh = v.to_backend(Y, "Y", host, labels=True)
            if Yh.ndim not in (1, 2):
                raise ValueError(f"Y: expected shape ({model.layer_dims[-1]}, m) or (m,), got {tuple(Yh.shape)}")
            if _has_unknown(X.chunks[1]):
                X = self._known(X, "X", compute_chunk_sizes, "Y is not a dask array")
            if Yh.shape[-1] != X.shape[1]:
                raise ValueError(f"Y: expected {X.shape[1]} examples like the columns of X, "
                                 f"got shape {tuple(Yh.shape)}")
            Y = da.from_array(Yh, chunks=((Yh.shape[0],) if Yh.ndim == 2 else ()) + (X.chunks[1],),
                              name=f"bpnet-Y-{self.run_id}")
        else:
            if Y.ndim not in (1, 2):
                raise ValueError(f"Y: expected shape ({model.layer_dims[-1]}, m) or (m,), got {tuple(Y.shape)}")
            if Y.ndim == 2 and len(Y.chunks[0]) > 1:
                Y = Y.rechunk({0: -1})
        if chunk_size is not None and _is_dask_array(X) and X.chunks[1] != (chunk_size,) * len(X.chunks[1]):
            chunk_size = int(chunk_size)
            if chunk_size <= 0:
                raise ValueError(f"chunk_size: expected a positive number of examples per chunk, got {chunk_size}")
            X = self._known(X, "X", compute_chunk_sizes, "chunk_size was given")
            X = X.rechunk({1: chunk_size})
        cx, cy = X.chunks[1], Y.chunks[-1]
        if cx != cy:
            unknown = _has_unknown(cx) or _has_unknown(cy)
            if unknown and len(cx) == len(cy):
                pass  # paired block by block; each pair's sizes are checked on its worker
            else:
                X = self._known(X, "X", compute_chunk_sizes, "Y has other chunks")
                Y = self._known(Y, "Y", compute_chunk_sizes, "X has other chunks")
                if X.shape[1] != Y.shape[-1]:
                    raise ValueError(f"Y: expected {X.shape[1]} examples like the columns of X, got shape "
                                     f"{tuple(Y.shape)}")
                Y = Y.rechunk({Y.ndim - 1: X.chunks[1]})
        elif not _has_unknown(cx) and X.shape[1] != Y.shape[-1]:  # pragma: no cover - equal chunks, equal m
            raise ValueError(f"Y: expected {X.shape[1]} examples, got shape {tuple(Y.shape)}")
        return X, Y

    @staticmethod
    def _known(A, name, allowed, why):
        """``A`` with its chunk sizes along the examples axis known (computed when allowed)."""
        if not _has_unknown(A.chunks[-1]):
            return A
        if not allowed:
            raise ValueError(f"{name}: unknown chunk sizes along the examples axis (nan in {name}.chunks, e.g. "
                             f"after boolean indexing) and {why}; call {name} = {name}.compute_chunk_sizes() "
                             "first, or pass compute_chunk_sizes=True")
        return A.compute_chunk_sizes()

    # -- per epoch ------------------------------------------------------ #
    def epoch_blocks(self, seed, epoch, shuffle, n_steps):
        """The blocks in epoch ``epoch``'s order (one take per chunk on its worker), or as they are."""
        if not shuffle or n_steps == 1:
            return list(self.blocks)
        self.tasks_submitted += len(self.blocks)
        return [self.client.submit(_shuffle_block, b, seed, epoch, c, retries=self.retries,
                                   key=f"bpnet-shuffle-{self.run_id}-{epoch}-{c}")
                for c, b in enumerate(self.blocks)]

    # -- per step ------------------------------------------------------- #
    def step(self, blocks, pieces, params_host, tag, mask_seeds=None, keep_prob=None, fn=chunk_gradients):
        """Sum over ``pieces = [(c, lo, hi), ...]`` of the gradients over all pieces, back on the client.

        One ``fn`` task per piece (on the worker holding block c) and a tree of
        :func:`_sum_parts` tasks; returns the reduced dict of :func:`chunk_gradients`.
        """
        client = self.client
        total = sum(hi - lo for _, lo, hi in pieces)
        pf = client.scatter([params_host], broadcast=True, hash=False)[0]
        level = []
        for c, lo, hi in pieces:
            seed = None if mask_seeds is None else mask_seeds(c)
            level.append(client.submit(fn, blocks[c], pf, lo, hi, 1.0 / total, seed, keep_prob, self.cfg,
                                       key=f"bpnet-grad-{self.run_id}-{tag}-{c}", retries=self.retries))
        depth = 0
        while len(level) > 1:
            nxt = []
            for i in range(0, len(level), self.split_every):
                group = level[i:i + self.split_every]
                nxt.append(group[0] if len(group) == 1 else client.submit(
                    _sum_parts, *group, key=f"bpnet-sum-{self.run_id}-{tag}-{depth}-{i}", retries=self.retries))
            level, depth = nxt, depth + 1
        self.tasks_submitted += len(pieces) + tree_tasks(len(pieces), self.split_every)
        return level[0].result()

    def run_epoch(self, ts, net, cfg, e, lr, metrics=True):
        """All steps of 0-based epoch ``e`` (the loop's gradient-source interface); ``(sum of m_b J_b, hits)``."""
        n_steps = _n_steps(self.m, cfg.batch_size)
        bounds = [_bounds(m_c, n_steps) for m_c in self.sizes]
        xp, L = self.bk.xp, len(ts.Ws)
        cost_sum, hits = 0.0, (None if net.loss.task == "regression" else 0.0)
        blocks = None
        for s in range(n_steps):
            pieces = [(c, b[s], b[s + 1]) for c, b in enumerate(bounds) if b[s + 1] > b[s]]
            params_host = {k: self.bk.to_numpy(a) for k, a in ts.parameters.items()}
            seeds = (lambda c, s=s: [cfg.seed, e, c, s, 1]) if cfg.keep_prob is not None else None
            res, blocks = self._retried(blocks, pieces, params_host, e, s, seeds, cfg)
            cost_sum += res["cost"]
            if hits is not None:
                hits += res["hits"]
            g = {k: self.bk.asarray(a, dtype=ts.Ws[0].dtype) for k, a in res["g"].items()}
            grads = [(l, g[f"dW{l + 1}"], g[f"db{l + 1}"]) for l in range(L)]
            apply_gradients(xp, ts, grads, lr, l2=cfg.l2, m=sum(hi - lo for _, lo, hi in pieces),
                            clip_norm=cfg.clip_norm)
        self.steps_per_epoch = n_steps
        return cost_sum, hits

    def _retried(self, blocks, pieces, params_host, e, s, seeds, cfg):
        """One step, retried when workers are lost; ``(result, this epoch's blocks)``.

        After a failure, at least one worker must be there or come back within
        ``worker_timeout`` seconds (a nanny restarts killed workers): else
        :class:`ClusterGoneError`.  A failure while workers left or joined is
        retried without counting against ``retries`` (until ``worker_timeout``
        has passed); the step is recomputed from the same parameters, so the
        run continues exactly where it was.
        """
        failures, deadline = 0, time.monotonic() + self.worker_timeout
        for attempt in itertools.count():
            before = self._workers()
            try:
                if self.client.status != "running":
                    raise ClusterGoneError(f"the client is {self.client.status}")
                if blocks is None:
                    blocks = self.epoch_blocks(cfg.seed, e, cfg.shuffle, _n_steps(self.m, cfg.batch_size))
                return self.step(blocks, pieces, params_host, f"{e}-{s}-{attempt}", seeds, cfg.keep_prob), blocks
            except self.errors as exc:
                if isinstance(exc, ClusterGoneError) or not self._await_workers(deadline):
                    raise self._gone(e, cfg.checkpoint, exc) from exc
                if self._workers() == before or time.monotonic() > deadline:
                    failures += 1  # the workers stayed the same: a failure of the step itself
                if failures > self.retries:
                    raise ClusterGoneError(
                        f"step {s + 1} of epoch {e + 1} failed {attempt + 1} times on the Dask cluster at "
                        f"{self.conn.address} ({type(exc).__name__}: {exc}); the model holds epoch {e}"
                        + _kept(cfg.checkpoint, " and the last checkpoint ({}) is intact")) from exc
                blocks = None  # rebuild this epoch's blocks: some may have been lost with a worker
                time.sleep(min(2.0, 0.25 * 2**min(attempt, 3)))  # let the scheduler notice the lost worker first
            except AttributeError as exc:  # a client whose cluster was closed under it
                if self.client.status == "running":
                    raise
                raise self._gone(e, cfg.checkpoint, exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _workers(self) -> frozenset:
        """The addresses of the scheduler's workers now (empty when it cannot be asked)."""
        try:
            try:
                info = self.client.scheduler_info(n_workers=-1)
            except TypeError:  # older distributed: no n_workers argument
                info = self.client.scheduler_info()
            return frozenset(info.get("workers", {}))
        except Exception:
            return frozenset()

    def _await_workers(self, deadline: float) -> bool:
        """At least one worker is there, or arrives before ``deadline`` (``time.monotonic()``)."""
        if self.client.status != "running":
            return False
        if self._workers():
            return True
        try:
            self.client.wait_for_workers(1, timeout=max(0.1, deadline - time.monotonic()))
        except (*self.errors, TimeoutError):
            return bool(self._workers())
        return True

    def _gone(self, e, checkpoint, exc):
        kept = _kept(checkpoint, "; the last checkpoint ({}) is intact") or "; no checkpoint was written"
        waited = f"; no worker came back within worker_timeout={self.worker_timeout:g} s" \
            if self.client.status == "running" else ""
        return ClusterGoneError(f"the Dask cluster at {self.conn.address} is gone after epoch {e} "
                                f"({type(exc).__name__}: {exc}){waited}{kept}; the model holds epoch {e}")

    @property
    def stats(self) -> dict:
        """Figures of this source: tasks submitted, chunks, their sizes, steps per epoch, m."""
        return {"tasks_submitted": self.tasks_submitted, "chunks": len(self.sizes), "chunk_sizes": list(self.sizes),
                "steps_per_epoch": getattr(self, "steps_per_epoch", None), "m": self.m}

    def alive(self) -> bool:
        """The client is connected to a scheduler with at least one worker."""
        client = self.client
        if client.status != "running":
            return False
        try:
            return bool(client.scheduler_info().get("workers"))
        except Exception:
            return False


def _kept(checkpoint, text):
    return text.format(checkpoint) if checkpoint is not None and os.path.exists(checkpoint) else ""


def tree_tasks(n: int, k: int) -> int:
    """Summation tasks of a reduction tree of fan-in k over n leaves."""
    total = 0
    while n > 1:
        groups = -(-n // k)
        total += sum(1 for i in range(groups) if min(k, n - i * k) > 1)
        n = groups
    return total


# --------------------------------------------------------------------------- #
# training


def fit_distributed(model, X, Y, *, client=None, chunk_size=None, compute_chunk_sizes=True, retries=2, split_every=4,
                    worker_timeout=60.0, validation_data=None, **options):
    """Train ``model`` (an :class:`bpnet.MLP`) data-parallel on a Dask cluster.

    The same optimisation as :meth:`bpnet.MLP.fit` (the same epoch loop and
    options), with the gradient of each global batch computed by the training
    step's kernels on the workers holding the data.

    Parameters
    ----------
    model : bpnet.MLP
        Its parameters and optimiser state live on the client, on the model's
        backend, and are updated there once per step.
    X : dask array or array, shape (n_x, m)
        A dask array chunked along the examples axis (axis 1; axis 0 is
        rechunked to one chunk), with numpy or cupy blocks; or host data cut
        into chunks of ``chunk_size`` columns.
    Y : dask array or array, shape (n_L, m), or (m,)
        Labels as :meth:`MLP.fit` takes them; a dask Y is rechunked to X's
        chunks (when both are known) or paired with X block by block.
    client : distributed.Client, str or None
        See :func:`connect`: a client, ``"local[:N]"``, a scheduler address,
        or None (the default client, else a new local cluster, closed at the end).
    chunk_size : int, optional
        Examples per chunk: rechunks a dask X; for host X the default is
        ``ceil(m / (2 * workers))``.
    compute_chunk_sizes : bool
        Unknown chunk sizes (``nan`` in ``X.chunks``, e.g. after boolean
        indexing) are read from the blocks (True) or refused (False), never divided by.
    retries : int
        Dask retries of each task that fails.
    split_every : int >= 2
        Fan-in of the reduction tree of the partial gradients.
    worker_timeout : float >= 0
        Seconds a failed step waits for a worker to come back (all workers
        killed and restarted by their nannies, say) before giving up.
    validation_data, **options
        As :meth:`MLP.fit` (``validation_split`` is not offered); a global
        batch is about ``batch_size`` examples drawn from every chunk
        (:func:`epoch_batches`); shuffling permutes the columns within each chunk.

    Returns
    -------
    History
        ``model.history``, extended by this call.

    Raises
    ------
    ClusterGoneError
        (a ``ConnectionError``) when the scheduler is gone, or no worker is left
        and none comes back within ``worker_timeout``; the model keeps its last
        completed epoch and the last checkpoint is intact.  A worker that dies
        is handled by Dask and the step is retried (from the same parameters);
        workers that all die and are restarted are waited for.
    TrainingDivergedError, ValueError, TypeError
        As :meth:`MLP.fit`.
    """
    from .. import _validate as v

    if chunk_size is not None:
        v.integer(chunk_size, "chunk_size", low=1)
    retries = v.integer(retries, "retries", low=0)
    split_every = v.integer(split_every, "split_every", low=2)
    worker_timeout = v.real(worker_timeout, "worker_timeout", low=0.0)
    conn = connect(client)
    try:
        source = DaskBatches(conn, model, X, Y, chunk_size=chunk_size, compute_chunk_sizes=compute_chunk_sizes,
                             retries=retries, split_every=split_every, worker_timeout=worker_timeout)
        return model.fit_source(source, validation_data=validation_data, **options)
    finally:
        try:
            conn.close()
        except Exception:  # pragma: no cover - closing a cluster that is already gone
            pass
