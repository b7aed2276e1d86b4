"""Data-parallel training on a Dask cluster: bpnet's own kernels on every worker's block.

The data stay on the workers as blocks of examples (columns); every training
step runs, on each block, the same forward and fused backward kernels
(:func:`bpnet.core._forward` / :func:`bpnet.core._backward`, the code behind
:func:`bpnet.L_model_forward` / :func:`bpnet.L_model_backward`) with the array
namespace taken from the block itself -- numpy on CPU workers, cupy on
dask-cuda workers -- and adds only the data-parallel reduction::

    global batch B = union over chunks c of B_c        (|B_c| examples of chunk c)
    g_c  = grads of the examples B_c                   (on the worker holding chunk c)
    g    = sum_c (|B_c| / |B|) g_c                     (tree-summed on the workers)
         = the exact gradient of the mean cost over B   (up to summation order)

then the optimiser of :mod:`bpnet.optim` updates the (small) parameters once,
on the client, and they are broadcast to the workers for the next step.  Per
step that is one gradient task per chunk plus about one summation task per
chunk (a tree of fan-in ``split_every``): no activation ever leaves its worker.

Shapes (examples are columns, as everywhere in bpnet)::

    X : (n_x, m)   chunked along axis 1 only   -> blocks (n_x, m_c)
    Y : (n_L, m)   or (m,) labels              -> blocks (n_L, m_c), same chunks as X
    W[l] : (n_l, n_{l-1}),  b[l] : (n_l, 1)    host numpy on the wire, the model's backend on the client

Mini-batches are drawn **within** chunks: in epoch ``e`` the columns of chunk
``c`` are permuted by ``numpy.random.default_rng([seed, e, c])`` (on the
worker, once per epoch) and cut into ``n_steps = ceil(m / batch_size)``
nearly equal consecutive pieces; step ``s`` uses piece ``s`` of every chunk,
so each global batch holds about ``batch_size`` examples drawn from all chunks
(:func:`epoch_batches` lists them as global column indices).

Dask, distributed (and, for GPUs, dask-cuda) are optional: ``pip install
'bpnet[dask]'``.  Importing :mod:`bpnet` never imports them; this module
imports them only inside its functions.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import math
import numbers
import os
import time
import uuid
import warnings

import numpy as np

__all__ = ["fit_distributed", "connect", "epoch_batches", "ClusterGoneError", "DaskConnection"]

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


def _label_error(name, c, msg):
    return ValueError(f"{name}: {msg} (in chunk {c} along the examples axis)")


def _prepare_block(Xc, Yc, c, cfg):
    """Validate and cast one block: ``(X_c (n_x, m_c), Y_c (n_L, m_c))`` in the model's dtype.

    Runs on the worker; the namespace is the block's (numpy or cupy).  Raises
    ValueError/TypeError naming X or Y and the chunk.
    """
    import array_api_compat

    from .backends import _dtype_str

    n_x, n_out, task, dtype_name = cfg["n_x"], cfg["n_out"], cfg["task"], cfg["dtype"]
    xp = array_api_compat.array_namespace(Xc)
    dev = array_api_compat.device(Xc)
    dt = getattr(xp, dtype_name)
    if not xp.isdtype(Xc.dtype, ("real floating", "integral")):
        raise TypeError(f"X: expected real numbers, got {_dtype_str(Xc.dtype)} (in chunk {c})")
    if Xc.ndim != 2 or Xc.shape[0] != n_x:
        raise ValueError(f"X: expected blocks of shape ({n_x}, m_c), got {tuple(Xc.shape)} in chunk {c}")
    m_c = Xc.shape[1]
    X = xp.astype(Xc, dt)
    if not bool(xp.all(xp.isfinite(X))):
        raise ValueError(f"X: expected finite values (within {dtype_name}'s range), got NaN or inf in chunk {c}")
    Y = xp.asarray(Yc, device=dev) if not array_api_compat.is_array_api_obj(Yc) else Yc
    if array_api_compat.array_namespace(Y) is not xp:
        Y = xp.asarray(np.asarray(Y), device=dev)
    if Y.ndim == 1:
        if Y.shape[0] != m_c:
            raise _label_error("Y", c, f"{Y.shape[0]} labels for {m_c} columns of X: Y must have X's chunks")
        if task == "multiclass":
            if not xp.isdtype(Y.dtype, "integral"):
                raise TypeError(f"Y: 1-D labels for softmax must be class indices (integers), got "
                                f"{_dtype_str(Y.dtype)} (in chunk {c})")
            if m_c and (int(xp.min(Y)) < 0 or int(xp.max(Y)) >= n_out):
                raise _label_error("Y", c, f"class indices must be in [0, {n_out - 1}]")
            classes = xp.reshape(xp.arange(n_out, device=dev), (n_out, 1))
            Y = xp.astype(classes == xp.reshape(Y, (1, m_c)), dt)
        else:
            Y = xp.reshape(Y, (1, m_c))
    if Y.ndim != 2 or tuple(Y.shape) != (n_out, m_c):
        raise _label_error("Y", c, f"expected a block of shape ({n_out}, {m_c}) = (layer_dims[-1], m_c of X), "
                                   f"got {tuple(Y.shape)}; Y must have X's chunks along the examples axis")
    if not xp.isdtype(Y.dtype, ("real floating", "integral", "bool")):
        raise TypeError(f"Y: expected real numbers or booleans, got {_dtype_str(Y.dtype)} (in chunk {c})")
    Y = xp.astype(Y, dt)
    if not bool(xp.all(xp.isfinite(Y))):
        raise _label_error("Y", c, "expected finite values, got NaN or inf")
    if task != "regression" and m_c:
        if not bool(xp.all((Y == 0.0) | (Y == 1.0))):
            raise _label_error("Y", c, f"labels for {cfg['loss']} must be 0 or 1")
        if task == "multiclass" and not bool(xp.all(xp.sum(Y, axis=0) == 1.0)):
            raise _label_error("Y", c, "one-hot labels must have exactly one 1 per column")
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


def _chunk_grad(block, params_host, lo, hi, weight, mask_seed, cfg):
    """Weighted gradients of columns ``[lo, hi)`` of one block (runs on the worker).

    Returns ``{"g": {dW1, db1, ...: host numpy, times weight}, "cost": sum of the
    per-example costs, "hits": correct predictions or None}``.
    """
    import array_api_compat

    from .activations import get_activation
    from .backends import to_numpy
    from .core import _backward, _forward
    from .losses import get_loss
    from .model import _hits

    X, Y = block
    xp = array_api_compat.array_namespace(X)
    dev = array_api_compat.device(X)
    L = cfg["L"]
    if array_api_compat.is_numpy_namespace(xp):
        params = params_host
    else:  # e.g. cupy blocks: the parameters go to the block's device once per step
        params = {k: xp.asarray(v, device=dev) for k, v in params_host.items()}
    Xb, Yb = X[:, lo:hi], Y[:, lo:hi]
    n = hi - lo
    hidden, output = get_activation(cfg["hidden"]), get_activation(cfg["output"])
    spec = get_loss(cfg["loss"])
    masks = None
    if cfg["keep_prob"] is not None:
        rng = np.random.default_rng(mask_seed)
        kp = cfg["keep_prob"]
        masks = [xp.asarray((rng.random((d, n)) < kp) / kp, dtype=X.dtype, device=dev) for d in cfg["dims"][1:-1]]
    AL, caches = _forward(xp, Xb, params, L, hidden, output, masks)
    cost = float(spec.cost(xp, AL, Yb)) * n
    hits = float(_hits(xp, AL, Yb, cfg["task"])) if cfg["task"] != "regression" else None
    grads = _backward(xp, AL, Yb, caches, hidden, output, spec, fused=cfg["fused"], need_dA0=False, masks=masks)
    g = {f"d{p}{l}": to_numpy(grads[f"d{p}{l}"] * weight) for l in range(1, L + 1) for p in "Wb"}
    return {"g": g, "cost": cost, "hits": hits}


def _sum_parts(*parts):
    """Sum of partial results of :func:`_chunk_grad` (host numpy; a node of the reduction tree)."""
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


class _Session:
    """The training data as prepared blocks on the workers, and the data-parallel step.

    Attributes
    ----------
    blocks : list of futures, each ``(X_c (n_x, m_c), Y_c (n_L, m_c))`` on a worker
    sizes : list of int, ``m_c`` of each block (empty blocks dropped)
    m : int, total examples
    tasks_submitted : int, gradient and summation tasks submitted so far (the
        scatter of the parameters is not a task)
    """

    def __init__(self, conn: DaskConnection, model, X, Y, *, chunk_size=None, compute_chunk_sizes=True,
                 retries=2, split_every=4, keep_prob=None):
        da, distributed = _import_distributed()
        from .losses import FUSED_PAIRS

        self.conn, self.client = conn, conn.client
        self.retries = int(retries)
        self.split_every = max(2, int(split_every))
        self.errors = _cluster_errors(distributed)
        self.run_id = uuid.uuid4().hex[:8]
        self.tasks_submitted = 0
        self.cfg = {"n_x": model.layer_dims[0], "n_out": model.layer_dims[-1], "task": model.task,
                    "dtype": model.dtype, "loss": model.loss, "L": model.L, "hidden": model.hidden_activation,
                    "output": model.output_activation, "dims": list(model.layer_dims),
                    "fused": (model.output_activation, model.loss) in FUSED_PAIRS, "keep_prob": keep_prob}
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
        from . import backends as _backends
        from .train import _to_backend

        n_x = model.layer_dims[0]
        host = _backends.get("numpy")
        if not _is_dask_array(X):
            Xh = _to_backend(host, X, "X")
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
            Yh = _to_backend(host, Y, "Y", labels=True)
            if Yh.ndim not in (1, 2):
                raise ValueError(f"Y: expected shape ({model.layer_dims[-1]}, m) or (m,), got {tuple(Yh.shape)}")
            if _has_unknown(X.chunks[1]):
                X = self._known(X, "X", compute_chunk_sizes, "Y is not a dask array")
            if Yh.shape[-1] != X.shape[1]:
                raise ValueError(f"Y: expected {X.shape[1]} examples like the columns of X, got shape {tuple(Yh.shape)}")
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
    def step(self, blocks, pieces, params_host, tag, mask_seeds=None, fn=_chunk_grad):
        """Sum over ``pieces = [(c, lo, hi), ...]`` of the weighted gradients, back on the client.

        One ``fn`` task per piece (on the worker holding block c) and a tree of
        :func:`_sum_parts` tasks; returns the reduced dict of :func:`_chunk_grad`.
        """
        client = self.client
        total = sum(hi - lo for _, lo, hi in pieces)
        pf = client.scatter([params_host], broadcast=True, hash=False)[0]
        level = []
        for c, lo, hi in pieces:
            seed = None if mask_seeds is None else mask_seeds(c)
            level.append(client.submit(fn, blocks[c], pf, lo, hi, (hi - lo) / total, seed, self.cfg,
                                       key=f"bpnet-grad-{self.run_id}-{tag}-{c}", retries=self.retries))
        depth = 0
        while len(level) > 1:
            nxt = []
            for i in range(0, len(level), self.split_every):
                group = level[i:i + self.split_every]
                nxt.append(group[0] if len(group) == 1 else client.submit(
                    _sum_parts, *group, key=f"bpnet-sum-{self.run_id}-{tag}-{depth}-{i}", retries=self.retries))
            level, depth = nxt, depth + 1
        self.tasks_submitted += len(pieces) + _tree_tasks(len(pieces), self.split_every)
        return level[0].result()

    def alive(self) -> bool:
        """The client is connected to a scheduler with at least one worker."""
        client = self.client
        if client.status != "running":
            return False
        try:
            return bool(client.scheduler_info().get("workers"))
        except Exception:
            return False


def _tree_tasks(n: int, k: int) -> int:
    """Summation tasks of a reduction tree of fan-in k over n leaves."""
    total = 0
    while n > 1:
        groups = -(-n // k)
        total += sum(1 for i in range(groups) if min(k, n - i * k) > 1)
        n = groups
    return total


# --------------------------------------------------------------------------- #
# training


def fit_distributed(model, X, Y, *, client=None, chunk_size=None, epochs=100, batch_size=64, optimizer="adam",
                    learning_rate=None, lr_decay=0.0, decay_interval=1, l2=0.0, dropout=0.0, clip_norm=None,
                    validation_data=None, early_stopping=None, restore_best=True, shuffle=True, seed=None,
                    callbacks=(), checkpoint=None, checkpoint_every=1, compute_chunk_sizes=True, retries=2,
                    split_every=4, **optimizer_options):
    """Train ``model`` (an :class:`bpnet.MLP`) data-parallel on a Dask cluster.

    Same optimisation as :meth:`bpnet.MLP.fit` -- any optimiser of
    :mod:`bpnet.optim`, learning-rate decay, L2, dropout, clipping, early
    stopping, callbacks, checkpoints -- with the gradient of each global batch
    computed by bpnet's kernels on the workers holding the data.

    Parameters
    ----------
    model : bpnet.MLP
        Its parameters and optimiser state live on the client, on the model's
        backend; they are updated there, once per step.
    X : dask array or array, shape (n_x, m)
        A dask array chunked along the examples axis (axis 1; axis 0 is
        rechunked to one chunk), with numpy or cupy blocks; or host data,
        cut into chunks of ``chunk_size`` columns.
    Y : dask array or array, shape (n_L, m), or (m,)
        Labels as :meth:`MLP.fit` takes them; a dask Y is rechunked to X's
        chunks (when both are known) or paired with X block by block.
    client : distributed.Client, str or None
        See :func:`connect`: a client, ``"local[:N]"``, a scheduler address,
        or None (the default client, else a new local cluster, closed at the end).
    chunk_size : int, optional
        Examples per chunk: rechunks a dask X; for host X the default is
        ``ceil(m / (2 * workers))``.
    epochs, batch_size, optimizer, learning_rate, lr_decay, decay_interval, l2, dropout, clip_norm,
    validation_data, early_stopping, restore_best, shuffle, seed, callbacks, checkpoint,
    checkpoint_every, **optimizer_options
        As in :meth:`MLP.fit` (``validation_data`` is evaluated on the client;
        ``validation_split`` is not offered: pass ``validation_data``).  A global
        batch is about ``batch_size`` examples drawn from every chunk (see
        :func:`epoch_batches`); shuffling permutes the columns within each chunk.
    compute_chunk_sizes : bool
        Unknown chunk sizes (``nan`` in ``X.chunks``, e.g. after boolean
        indexing) are read from the blocks themselves (True) or refused with a
        ValueError (False) -- never divided by.
    retries : int
        Dask retries of each task that fails.
    split_every : int
        Fan-in of the reduction tree of the partial gradients.

    Returns
    -------
    History
        ``model.history``, extended by this call.  The run's figures are left in
        ``model.distributed_stats``: ``{"tasks_submitted", "chunks", "chunk_sizes",
        "steps_per_epoch", "m"}``.

    Raises
    ------
    ClusterGoneError
        (a ``ConnectionError``) when the scheduler or all workers are gone; the
        model keeps its last completed epoch and the last checkpoint is intact.
        A worker that dies is handled by Dask (its tasks rerun elsewhere, its
        blocks rebuilt from their graph) and the step is retried.
    TrainingDivergedError, ValueError, TypeError
        As :meth:`MLP.fit`.
    """
    from ._checks import check_positive_int
    from .model import _FitOptions

    o = _FitOptions(model, epochs=epochs, batch_size=batch_size, optimizer=optimizer, learning_rate=learning_rate,
                    lr_decay=lr_decay, decay_interval=decay_interval, l2=l2, dropout=dropout, clip_norm=clip_norm,
                    early_stopping=early_stopping, restore_best=restore_best, seed=seed, callbacks=callbacks,
                    checkpoint=checkpoint, checkpoint_every=checkpoint_every, optimizer_options=optimizer_options)
    if o.early_stopping is not None and validation_data is None:
        raise ValueError("early_stopping: needs validation_data with client=")
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, numbers.Integral)
                                   or chunk_size <= 0):
        raise ValueError(f"chunk_size: expected a positive number of examples per chunk, got {chunk_size!r}")
    retries = check_positive_int(retries, "retries", allow_zero=True)
    split_every = check_positive_int(split_every, "split_every")
    if split_every < 2:
        raise ValueError(f"split_every: expected a fan-in >= 2, got {split_every}")
    X_val, Y_val = model._prepare_validation(validation_data) if validation_data is not None else (None, None)

    conn = connect(client)
    try:
        return _train(conn, model, X, Y, o, X_val=X_val, Y_val=Y_val, shuffle=shuffle, chunk_size=chunk_size,
                      compute_chunk_sizes=compute_chunk_sizes, retries=retries, split_every=split_every)
    finally:
        try:
            conn.close()
        except Exception:  # pragma: no cover - closing a cluster that is already gone
            pass


def _gone(conn, model, checkpoint, exc):
    kept = (f"; the last checkpoint ({checkpoint}) is intact" if checkpoint is not None
            and os.path.exists(checkpoint) else "; no checkpoint was written")
    return ClusterGoneError(f"the Dask cluster at {conn.address} is gone after epoch {model.epoch} "
                            f"({type(exc).__name__}: {exc}){kept}; the model holds epoch {model.epoch}")


def _train(conn, model, X, Y, o, *, X_val, Y_val, shuffle, chunk_size, compute_chunk_sizes, retries,
           split_every):
    """The epochs of :func:`fit_distributed`; ``o`` holds the validated options (``bpnet.model._FitOptions``)."""
    from .optim import _add_l2_gradients, _clip

    bk, xp = model.backend, model.backend.xp
    checkpoint, seed, keep_prob = o.checkpoint, o.seed, o.keep_prob
    session = _Session(conn, model, X, Y, chunk_size=chunk_size, compute_chunk_sizes=compute_chunk_sizes,
                       retries=retries, split_every=split_every, keep_prob=keep_prob)
    m, L = session.m, model.L
    n_steps = _n_steps(m, o.batch_size)
    bounds = [_bounds(m_c, n_steps) for m_c in session.sizes]
    grad_keys = [f"d{p}{l}" for l in range(1, L + 1) for p in "Wb"]

    model._init_optimizer(o.opt)
    params, state = dict(model.parameters), model.optimizer_state  # opt.step returns new dicts
    o.t0 = time.perf_counter()
    for _ in range(o.epochs):
        e = model.epoch
        lr = o.learning_rate(e)
        cost_sum, hits = 0.0, (None if model.task == "regression" else 0.0)
        blocks = None
        for s in range(n_steps):
            pieces = [(c, b[s], b[s + 1]) for c, b in enumerate(bounds) if b[s + 1] > b[s]]
            total = sum(hi - lo for _, lo, hi in pieces)
            params_host = {k: bk.to_numpy(v) for k, v in params.items()}
            mask_seeds = (lambda c, e=e, s=s: [seed, e, c, s, 1]) if keep_prob is not None else None
            for attempt in itertools.count():
                try:
                    if session.client.status != "running":
                        raise ClusterGoneError(f"the client is {session.client.status}")
                    if blocks is None:
                        blocks = session.epoch_blocks(seed, e, shuffle, n_steps)
                    res = session.step(blocks, pieces, params_host, f"{e}-{s}-{attempt}", mask_seeds)
                    break
                except session.errors as exc:
                    if isinstance(exc, ClusterGoneError) or not session.alive():
                        raise _gone(conn, model, checkpoint, exc) from exc
                    if attempt >= retries:
                        raise ClusterGoneError(
                            f"step {s + 1} of epoch {e + 1} failed {attempt + 1} times on the Dask cluster at "
                            f"{conn.address} ({type(exc).__name__}: {exc}); the model holds epoch {model.epoch}"
                            + (f" and the last checkpoint ({checkpoint}) is intact"
                               if checkpoint is not None and os.path.exists(checkpoint) else "")) from exc
                    blocks = None  # rebuild this epoch's blocks: some may have been lost with a worker
                except AttributeError as exc:  # a client whose cluster was closed under it
                    if session.client.status == "running":
                        raise
                    raise _gone(conn, model, checkpoint, exc) from exc
            cost_sum += res["cost"]
            if hits is not None:
                hits += res["hits"]
            grads = {k: bk.asarray(v, dtype=model.dtype) for k, v in res["g"].items()}
            if o.l2:
                grads = _add_l2_gradients(grads, params, L, o.l2, total)  # dW += (lambda / m_batch) W
            if o.clip_norm is not None:
                grads, _ = _clip(xp, grads, grad_keys, o.clip_norm)
            params, state = o.opt.step(params, grads, state, lr)
        del blocks
        if model._end_epoch(o, e, lr, cost_sum, hits, m, params, state, X_val, Y_val, copy=False):
            break
    model._end_fit(o)
    # figures of this run, kept on the model (no module state):
    model.distributed_stats = {"tasks_submitted": session.tasks_submitted, "chunks": len(session.sizes),
                               "chunk_sizes": list(session.sizes), "steps_per_epoch": n_steps, "m": m}
    return model.history
