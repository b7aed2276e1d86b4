"""Data-parallel training on a Dask cluster: :class:`DaskBatches`, a gradient source of the one epoch loop.

The data stay on the workers as blocks of examples (columns).  Each worker
holds one :class:`Replica` (a Dask actor): a contiguous run of the chunks
(global columns ``[lo, hi)``), and a copy of the parameters and the optimiser
state.  Every step, each replica runs the training step's own kernels
(:func:`bpnet.train.step.forward_train` and
:func:`~bpnet.train.step.backward_update` collecting the gradients) on its
share of the global batch, with the namespace of the blocks for a numpy model
-- numpy on CPU workers, cupy on dask-cuda workers -- or on the model's own
backend otherwise (torch, jax, ...: each worker moves its blocks there once),
and the replicas add only the
data-parallel reduction, among themselves::

    g_r = (1/|B|) sum over the examples of replica r's share of the global batch B
    g   = sum_r g_r, by recursive doubling between the workers (log2 R exchanges)

after which every replica holds the same bits of ``g`` (floating-point addition
is commutative, and each exchange adds the same two sums) and applies it with
:func:`bpnet.train.step.apply_gradients`, so the replicas stay identical.  Per
step nothing passes through the client or the scheduler; per epoch the client
makes one call on each replica and gets back the metrics and, from replica 0,
the parameters and optimiser state.  A failed epoch (a worker lost) is rerun
from the client's copy of the state at its start.

The global batches are those of :meth:`bpnet.MLP.fit` in one process
(:class:`bpnet.train.loop.LocalBatches`): in epoch e the m columns are
permuted by :func:`bpnet.nn.random.shuffle` of ``(seed, e)`` and cut into
batches of ``batch_size`` (the last one smaller); batch b's dropout masks are
:func:`bpnet.nn.random.dropout` of ``(seed, e, b)``.  Each replica draws the
permutation itself, on its device, and keeps the columns that are its own, in
that order (one ``take`` per epoch); it draws batch b's masks and keeps the
columns of its own examples.  So a fit on Dask trains on the same batches,
with the same masks, as ``MLP.fit`` on the same data: the same numbers up to
the order of the sums.

Dask and distributed are optional (``pip install 'bpnet[dask]'``) and imported
only inside the functions here.  This module never imports :mod:`bpnet.model`:
:func:`fit_distributed` drives a model through its public ``fit_source``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import math
import os
import sys
import threading
import time
import uuid
import warnings
import weakref

import array_api_compat
import numpy as np

from ..backends import spec as backend_spec
from . import _heap
from .loop import columns, example_major, shuffled
from .step import apply_gradients

__all__ = ["fit_distributed", "connect", "rank_chunks", "allreduce_plan", "ClusterGoneError", "DaskConnection",
           "DaskBatches", "Replica", "ReplicaAborted"]

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
    if n_workers is not None:
        from .. import _validate as v

        n_workers = v.integer(n_workers, "n_workers", low=1)
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
        try:
            cluster = distributed.LocalCluster(n_workers=int(count), threads_per_worker=1, processes=True,
                                               dashboard_address=":0")  # a free port: never a clash
        except RuntimeError as exc:  # Dask's "Nanny failed to start."; the workers' own errors went to stderr
            script = getattr(sys.modules.get("__main__"), "__file__", None)
            hint = (f"; the usual cause: a script ({os.path.basename(script)}) that does not start the fit under "
                    "'if __name__ == \"__main__\":' (each worker process imports the script again, and without that "
                    "line runs it again)" if script else "")
            raise ConnectionError(f"client: the local Dask cluster's {count} worker process"
                                  f"{'es' if count != 1 else ''} failed to start ({exc}){hint}") from None
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
# the replicas' plan (pure Python: the client and the tests use it)


def _n_steps(m: int, batch_size: int) -> int:
    """Mini-batches of an epoch of ``m`` examples (:class:`bpnet.train.loop.LocalBatches`'s)."""
    return max(1, -(-m // batch_size))


def rank_chunks(chunk_sizes, n_ranks) -> list[range]:
    """Chunks of each replica: ``n_ranks`` contiguous runs of chunks with nearly equal numbers of examples.

    Parameters
    ----------
    chunk_sizes : sequence of int
        ``m_c`` of each chunk.
    n_ranks : int
        Replicas, at most the number of chunks.

    Returns
    -------
    list of range
        Replica r holds the chunks ``out[r]`` (at least one each, in order).
    """
    sizes = [int(c) for c in chunk_sizes]
    k, n = len(sizes), int(n_ranks)
    if not 1 <= n <= k:
        raise ValueError(f"n_ranks: expected 1 to {k} replicas for {k} chunks, got {n_ranks}")
    cum = np.concatenate([[0], np.cumsum(sizes)])
    cuts = [0]
    for r in range(1, n):
        best = int(np.argmin(np.abs(cum - r * cum[-1] / n)))  # the cut nearest to r/n of the examples
        cuts.append(max(cuts[-1] + 1, min(best, k - (n - r))))
    cuts.append(k)
    return [range(cuts[r], cuts[r + 1]) for r in range(n)]


def allreduce_plan(rank: int, n: int) -> list[tuple[str, int, int]]:
    """The exchanges of ``rank`` in the all-reduce of ``n`` replicas by recursive doubling: ``(kind, peer, round)``.

    ``P`` is the largest power of two <= n.  A rank ``r >= P`` sends its sum to
    ``r - P`` (``"give"``) and receives the total back (``"take"``); a rank
    ``r < n - P`` first adds the sum of ``r + P`` (``"fold"``), then every
    rank below P swaps its sum with ``r XOR d`` for d = 1, 2, 4, ... and adds
    (``"swap"``), and ``r < n - P`` sends the total to ``r + P`` (``"send"``).
    """
    P = 1 << (n.bit_length() - 1)
    if rank >= P:
        return [("give", rank - P, 0), ("take", rank - P, -1)]
    out = [("fold", rank + P, 0)] if rank + P < n else []
    d = 1
    while d < P:
        out.append(("swap", rank ^ d, d))
        d <<= 1
    if rank + P < n:
        out.append(("send", rank + P, -1))
    return out


# --------------------------------------------------------------------------- #
# worker-side functions (module level: pickled by reference; each runs on one block)


def _prepare_block(Xc, Yc, c, cfg):
    """Check and cast one block: ``(X_c (n_x, m_c), Y_c (n_L, m_c))`` in the model's dtype, on the block's device.

    Runs on the worker, through the same checks as ``MLP.fit`` (:mod:`bpnet._validate`);
    a ValueError/TypeError names X or Y and the chunk.
    """
    from .. import _validate as v
    from ..backends import backend_of, get

    bk = backend_of(Xc) if cfg.get("backend") is None else get(cfg["backend"])
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


# --------------------------------------------------------------------------- #
# the replicas: one per worker (a Dask actor), and their messages

#: the replicas of this process by actor key, where the worker handler delivers their messages
_REPLICAS = weakref.WeakValueDictionary()
#: this process's one thread for the replicas' array work (the event loop stays free for the messages)
_THREAD = {}
_THREAD_LOCK = threading.Lock()
#: the name of the worker handler that delivers a replica's message
PUSH_OP = "bpnet_replica_push"
#: array work (multiply-adds) a replica does on the worker's event loop rather than on its thread: up to a few
#: ms of one core; handing work to the thread and back costs ~0.5 ms, a blocked loop only delays messages
INLINE_WORK = 1 << 25


def _executor():
    with _THREAD_LOCK:
        if "pool" not in _THREAD:
            _THREAD["pool"] = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="bpnet-replica")
        return _THREAD["pool"]


def _push(key, tag, data):
    """Worker handler: a partial sum for the replica ``key`` of this process (dropped when it is gone)."""
    replica = _REPLICAS.get(key)
    if replica is not None:
        replica.deliver(tuple(tag), data)


class ReplicaAborted(ConnectionError):
    """The client ended a replica's epoch: another replica was lost."""


class Replica:
    """One worker's share of the data and a copy of the parameters and optimiser state (a Dask actor).

    Created by :class:`DaskBatches` on each worker; its epoch runs, for every
    batch of :meth:`bpnet.MLP.fit`'s, the training step's kernels on its own
    columns of the batch, sums the gradients with the other replicas
    (:func:`allreduce_plan`, worker to worker) and applies them with
    :func:`bpnet.train.step.apply_gradients`.  The worker's event loop passes
    the messages and does the small array work (:data:`INLINE_WORK`); larger
    work runs on a thread of the replicas' own.  A run of several chunks is
    concatenated once (a copy of its examples); a shuffled epoch takes them as
    :class:`~bpnet.train.loop.LocalBatches` does, rows of an example-major copy
    made once (one more copy), the epoch's at once for a small share.

    Parameters
    ----------
    key : str
        Its actor key (the other replicas' messages name it).
    rank : int
    chunks : range
        The indices of its chunks (:func:`rank_chunks`).
    blocks : list of ``(X_c (n_x, m_c), Y_c (n_L, m_c))``
        Those chunks' checked blocks (Dask resolves their futures).
    sizes : list of int
        ``m_c`` of every chunk (m, and the global column of its first example, follow from them).
    cfg : dict
        The model's layer sizes, dtype, activations and loss.
    """

    def __init__(self, key, rank, chunks, blocks, sizes, cfg):
        from distributed import get_worker

        from ..backends import backend_of
        from ..nn import get_activation, get_loss
        from .step import Net

        self.key, self.rank, self.cfg = key, int(rank), cfg
        self.chunks, self.sizes = list(chunks), [int(c) for c in sizes]
        self.bk = backend_of(blocks[0][0])
        xp = self.bk.xp
        # its examples: global columns [lo, lo + X.shape[1]) (one array: a run of several chunks is copied once)
        self.X = blocks[0][0] if len(blocks) == 1 else xp.concat([X for X, _ in blocks], axis=1)
        self.Y = blocks[0][1] if len(blocks) == 1 else xp.concat([Y for _, Y in blocks], axis=1)
        self.lo, self.m = sum(self.sizes[:self.chunks[0]]), sum(self.sizes)
        self.net = Net(get_activation(cfg["hidden"]), get_activation(cfg["output"]), get_loss(cfg["loss"]))
        self.worker = get_worker()
        self.worker.handlers.setdefault(PUSH_OP, _push)
        self.peers, self.ts, self.inbox, self.aborted = [], None, {}, False
        self.rows = self.own = None  # X^T (example-major, made at the first shuffled epoch), the epoch's order
        _REPLICAS[key] = self

    def connect(self, peers, parameters, state, optimizer):
        """Take the ``(address, key)`` of every replica by rank, and the state to start from (host arrays)."""
        from .step import TrainState

        def on(a):
            return self.bk.asarray(a, dtype=self.cfg["dtype"])

        self.peers = [tuple(p) for p in peers]
        slots = optimizer.rule.slots
        self.ts = TrainState({k: on(a) for k, a in parameters.items()}, optimizer,
                             {"t": int(state["t"]), **{s: {k: on(a) for k, a in state[s].items()} for s in slots}},
                             own=True)  # copies (the small parameters packed: one update call per step)
        self.n_params = self.ts.n_params
        self.inbox, self.aborted = {}, False
        return self.worker.address

    async def run_epoch(self, spec):
        """Every step of one epoch; ``spec``: the epoch, its learning rate, the batch size, the steps and the
        fit's options.

        Returns this replica's ``{"cost", "hits"}`` (host floats, None without
        metrics) and, on rank 0, the ``"parameters"`` and optimiser ``"state"`` after the epoch.
        """
        n = self.n_params
        # glibc keeps the step's freed temporaries for the next (Dask's nannies fix its threshold at 128 KiB)
        with _heap.kept(_heap.step_bytes(self.ts, min(spec["batch_size"], self.X.shape[1]))):
            await self._run(math.inf, self._begin, spec)
            for s in range(spec["n_steps"]):
                g = await self._run((self.cuts[s + 1] - self.cuts[s]) * n, self._gradient, s)
                g = await self._allreduce(g, (spec["epoch"], s))
                await self._run(8 * n, self._apply, g, s)
            return await self._run(8 * n, self._finish)

    async def abort(self):
        """End the epoch now: whatever waits for a message raises :class:`ReplicaAborted`."""
        self.aborted = True
        for box in self.inbox.values():
            if not box.done():
                box.set_exception(ReplicaAborted(f"replica {self.rank}: epoch ended by the client"))

    def parameters(self) -> dict:
        """Host copies of this replica's parameters ``W1, b1, ...`` (the tests compare the replicas)."""
        return {k: np.array(self.bk.to_numpy(a), copy=True) for k, a in self.ts.parameters.items()}

    def deliver(self, tag, data):
        """A message ``data`` for ``tag = (epoch, step, round)`` (on the event loop)."""
        box = self._box(tag)
        if not box.done():
            box.set_result(data)

    # -- the exchange (on the event loop) -------------------------------- #
    async def _run(self, work, fn, *args):
        """``fn(*args)``: here on the event loop when ``work`` (multiply-adds) is at most :data:`INLINE_WORK`,
        else on the replicas' thread (a hand-over costs the loop more than a small step)."""
        if work <= INLINE_WORK:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(_executor(), fn, *args)

    def _box(self, tag):
        box = self.inbox.get(tag)
        if box is None:
            box = self.inbox[tag] = asyncio.get_running_loop().create_future()
        return box

    async def _receive(self, tag):
        if self.aborted:
            raise ReplicaAborted(f"replica {self.rank}: epoch ended by the client")
        try:
            return await self._box(tag)
        finally:
            self.inbox.pop(tag, None)

    async def _send(self, rank, tag, data):
        """``data`` to the replica of ``rank``, over a pooled connection of this worker; no reply is awaited
        (a lost peer is noticed by the client, which aborts the epoch)."""
        from distributed.protocol import to_serialize

        address, key = self.peers[rank]
        await getattr(self.worker.rpc(address), PUSH_OP)(key=key, tag=list(tag), data=to_serialize(data), reply=False)

    async def _allreduce(self, g, tag):
        """``g`` summed over all replicas by :func:`allreduce_plan`: the same bits on each."""
        sends = []
        for kind, peer, rnd in allreduce_plan(self.rank, len(self.peers)):
            key = (*tag, rnd)
            if kind != "fold" and kind != "take":  # give, swap, send: g goes out (the total as a copy)
                data = self.bk.to_numpy(g) if kind != "send" else np.array(self.bk.to_numpy(g), copy=True)
                sends.append(asyncio.ensure_future(self._send(peer, key, data)))
            if kind == "take":
                g = await self._run(self.n_params, self._own, await self._receive(key))
            elif kind != "give" and kind != "send":  # fold, swap
                g = await self._run(self.n_params, self._add, g, await self._receive(key))
        for sent in sends:
            await sent
        return g

    # -- the array work (see _run) ---------------------------------------- #
    def _add(self, g, other):
        return g + self.bk.asarray(other)

    def _own(self, total):
        return self.bk.xp.asarray(self.bk.asarray(total), copy=True)

    def _begin(self, spec):
        """This epoch's order of the replica's columns, and where each batch's share of them starts.

        The epoch's permutation ``perm`` of the m global columns is drawn here, on the device; the
        replica keeps the positions ``p`` of its own columns in it (ascending) and takes its columns in
        that order, so batch b's share is the slice ``cuts[b]:cuts[b + 1]`` of them.
        """
        xp, dev, m, size = self.bk.xp, self.bk.device, self.m, spec["batch_size"]
        n, lo, hi = spec["n_steps"], self.lo, self.lo + self.X.shape[1]
        self.spec, self.cost, self.hits = spec, None, None
        self.starts = [min(b * size, m) for b in range(n + 1)]  # batch b: positions [starts[b], starts[b + 1])
        # a single batch without dropout: its order changes only the order of the sums; no copy
        if spec["shuffle"] and (n > 1 or spec["keep_prob"] is not None):
            from ..nn import random

            perm = random.shuffle(xp, m, (spec["seed"], spec["epoch"]), dev)
            self.pos = xp.nonzero((perm >= lo) & (perm < hi))[0]  # positions of its columns in the epoch's order
            own = xp.take(perm, self.pos) - lo
            self.Ye = xp.take(self.Y, own, axis=1)
            # X as LocalBatches takes it: rows of an example-major copy (made once), all at once for a small X,
            # else each batch's (_gradient); immutable arrays (JAX): its columns, XLA lays them out
            if not array_api_compat.is_writeable_array(self.X):
                self.Xe = xp.take(self.X, own, axis=1)
            else:
                if self.rows is None:
                    self.rows = example_major(xp, self.X)
                self.Xe, self.own = shuffled(xp, self.rows, own)
            self.cuts = np.searchsorted(self.bk.to_numpy(self.pos), self.starts).tolist()
        else:
            self.pos, self.own, self.Xe, self.Ye = None, None, self.X, self.Y
            self.cuts = [min(max(start, lo), hi) - lo for start in self.starts]

    def _masks(self, s, k):
        """The dropout masks of this replica's ``k`` columns of batch ``s``: batch s's masks, its columns."""
        from ..nn import random

        xp, spec, ts = self.bk.xp, self.spec, self.ts
        size = self.starts[s + 1] - self.starts[s]
        full = random.dropout(xp, self.cfg["dims"][1:-1], size, spec["keep_prob"], (spec["seed"], spec["epoch"], s),
                              self.bk.device, ts.Ws[0].dtype)
        if self.pos is None:  # unshuffled: a contiguous run of the batch
            first = self.lo + self.cuts[s] - self.starts[s]
            return [M[:, first:first + k] for M in full]
        where = self.pos[self.cuts[s]:self.cuts[s + 1]] - self.starts[s]
        return [xp.take(M, where, axis=1) for M in full]

    def _gradient(self, s):
        """This replica's share of batch ``s``'s gradient, times ``1/|B_s|``, flat: ``dW1, db1, dW2, ...``."""
        from .step import backward_update, batch_metrics, forward_train

        xp, ts, spec = self.bk.xp, self.ts, self.spec
        a, b = self.cuts[s], self.cuts[s + 1]
        if a == b:  # none of its examples in this batch
            return xp.zeros((self.n_params,), dtype=ts.Ws[0].dtype, device=self.bk.device)
        Yb = self.Ye[:, a:b]
        Xb = self.Xe[:, a:b] if self.own is None else columns(xp, self.rows, self.own[a:b])
        masks = None if spec["keep_prob"] is None else self._masks(s, b - a)
        batch = ts.batch(xp, b - a)
        acts, gs, ZL = forward_train(xp, Xb, ts.Ws, ts.bs, self.net, masks, ones_row=batch[1], blocks=batch[2])
        if spec["metrics"]:  # accumulated on the device, read once per epoch (_finish)
            cost, hits = batch_metrics(xp, acts[-1], Yb, self.net, ZL)
            self.cost = cost if self.cost is None else self.cost + cost
            self.hits = hits if self.hits is None or hits is None else self.hits + hits
        size = self.starts[s + 1] - self.starts[s]
        grads = backward_update(xp, acts, Yb, ts, self.net, 0.0, gs=gs, masks=masks, batch=batch, collect=True,
                                scale=1.0 / size)
        return xp.concat([xp.reshape(g, (-1,)) for _, dW, db in sorted(grads, key=lambda t: t[0]) for g in (dW, db)])

    def _apply(self, g, s):
        """The optimiser's update of batch ``s`` from the summed flat gradient ``g`` (overwritten)."""
        xp, ts, spec = self.bk.xp, self.ts, self.spec
        grads, i = [], 0
        for l, (W, b) in enumerate(zip(ts.Ws, ts.bs)):
            nW, nb = math.prod(W.shape), math.prod(b.shape)
            grads.append((l, xp.reshape(g[i:i + nW], W.shape), xp.reshape(g[i + nW:i + nW + nb], b.shape)))
            i += nW + nb
        apply_gradients(xp, ts, grads, spec["lr"], l2=spec["l2"], m=self.starts[s + 1] - self.starts[s],
                        clip_norm=spec["clip_norm"])

    def _finish(self):
        """The epoch's metrics, and on rank 0 host copies of the parameters and optimiser state."""
        def host(a):
            return np.array(self.bk.to_numpy(a), copy=True)

        self.Xe = self.Ye = self.pos = self.own = None  # this epoch's shuffled copies and order
        out = {"cost": None if self.cost is None else float(self.cost),
               "hits": None if self.hits is None else float(self.hits)}
        if self.rank == 0:
            ts = self.ts
            state = ts.optimizer_state  # the live moments (on JAX the step rebinds them; ts.state holds the first)
            out["parameters"] = {k: host(a) for k, a in ts.parameters.items()}
            out["state"] = {"t": int(state["t"]), **{s: {k: host(a) for k, a in state[s].items()}
                                                      for s in ts.rule.slots}}
        return out


# --------------------------------------------------------------------------- #
# the source: the data on the cluster, the replicas and the epoch


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
    errs.append(asyncio.CancelledError)
    return tuple(errs)


#: seconds between the client's checks, while an epoch runs, that the replicas' workers are still there
POLL_S = 0.2


class DaskBatches:
    """The gradient source of a Dask cluster: the data as checked blocks on the workers, and their replicas.

    Parameters
    ----------
    conn : DaskConnection
    model : bpnet.MLP (read: layer_dims, dtype, net, backend)
    X, Y : as :func:`fit_distributed` takes them
    chunk_size, compute_chunk_sizes, retries, worker_timeout : as :func:`fit_distributed`

    Attributes
    ----------
    blocks : list of futures, each ``(X_c (n_x, m_c), Y_c (n_L, m_c))`` on a worker
    sizes : list of int, ``m_c`` of each block (empty blocks dropped)
    m : int, total examples
    replicas : list of Dask actors, the :class:`Replica` of each rank (created by the first epoch)
    addresses : list of str, the worker of each replica
    ranks : list of range, the chunks of each replica (:func:`rank_chunks`)
    starts : int, how many times replicas were created (1, plus one per recovery)

    Close it (:meth:`close`, or use it as a context manager) to release the replicas.
    """

    #: the steps run on the workers, not in this process (:func:`bpnet.train.loop.epochs` tunes no heap here)
    steps_here = False

    def __init__(self, conn: DaskConnection, model, X, Y, *, chunk_size=None, compute_chunk_sizes=True,
                 retries=2, worker_timeout=60.0):
        da, distributed = _import_distributed()
        net = model.net
        self.bk, self.conn, self.client = model.backend, conn, conn.client
        self.retries = int(retries)
        self.worker_timeout = float(worker_timeout)
        self.errors = _cluster_errors(distributed)
        self.run_id = uuid.uuid4().hex[:8]
        self.replicas, self.addresses, self.ranks, self.starts = [], [], [], 0
        self._futures, self._synced = [], None
        self.cfg = {"n_x": model.layer_dims[0], "n_out": model.layer_dims[-1], "target": net.loss.target,
                    "dtype": model.dtype, "loss": net.loss.name, "hidden": net.hidden.name,
                    "output": net.output.name, "dims": list(model.layer_dims),
                    # where the workers compute: the blocks' own backend (numpy, or cupy blocks on dask-cuda
                    # workers) for a numpy model; the model's backend (torch, jax, ...) otherwise
                    "backend": None if model.backend.name == "numpy" else backend_spec(model.backend)}
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
    def run_epoch(self, ts, net, cfg, e, lr, metrics=True):
        """All steps of 0-based epoch ``e`` on the replicas (the loop's gradient-source interface).

        Leaves the epoch's parameters and optimiser state in ``ts``'s arrays;
        returns ``(sum of m_b J_b, hits)`` (host floats; None unless ``metrics``).
        """
        n_steps = _n_steps(self.m, cfg.batch_size)
        spec = {"epoch": e, "lr": float(lr), "batch_size": int(cfg.batch_size), "n_steps": n_steps,
                "seed": cfg.seed, "shuffle": bool(cfg.shuffle), "keep_prob": cfg.keep_prob, "l2": cfg.l2,
                "clip_norm": cfg.clip_norm, "metrics": bool(metrics)}
        outs = self._retried(ts, cfg, spec)
        _assign(ts, outs[0], self.bk)
        self._synced = (ts, e + 1)
        self.steps_per_epoch = n_steps
        if not metrics:
            return None, None
        hits = None if outs[0]["hits"] is None else sum(o["hits"] for o in outs)
        return sum(o["cost"] for o in outs), hits

    def _retried(self, ts, cfg, spec):
        """One epoch on the replicas, rerun from ``ts`` (the state at its start) when workers are lost.

        After a failure, at least one worker must be there or come back within
        ``worker_timeout`` seconds (a nanny restarts killed workers): else
        :class:`ClusterGoneError`.  A failure while workers left or joined is
        retried without counting against ``retries`` (until ``worker_timeout``
        has passed); new replicas start from ``ts``, so the run continues
        exactly where it was.
        """
        e = spec["epoch"]
        failures, deadline = 0, time.monotonic() + self.worker_timeout
        for attempt in itertools.count():
            before = self._workers()
            try:
                try:
                    if self.client.status != "running":
                        raise ClusterGoneError(f"the client is {self.client.status}")
                    return self._epoch(ts, cfg, spec, before)
                except UnboundLocalError as exc:
                    if not _raised_by(exc, "sync", "utils.py"):
                        raise
                    raise ConnectionError("a call to the cluster was cancelled (a worker lost)") from exc
                except RuntimeError as exc:
                    if not _raised_by(exc, "__getattr__", "actor.py"):
                        raise
                    raise ConnectionError(f"a replica's worker was lost ({exc})") from exc
            except self.errors as exc:
                self._drop()
                if isinstance(exc, ClusterGoneError) or not self._await_workers(deadline):
                    raise self._gone(e, cfg.checkpoint, exc) from exc
                if self._workers() == before or time.monotonic() > deadline:
                    failures += 1  # the workers stayed the same: a failure of the epoch itself
                if failures > self.retries:
                    raise ClusterGoneError(
                        f"epoch {e + 1} failed {attempt + 1} times on the Dask cluster at {self.conn.address} "
                        f"({type(exc).__name__}: {exc}); the model holds epoch {e}"
                        + _kept(cfg.checkpoint, " and the last checkpoint ({}) is intact")) from exc
                time.sleep(min(2.0, 0.25 * 2**min(attempt, 3)))  # let the scheduler notice the lost worker first
            except AttributeError as exc:  # a client whose cluster was closed under it
                self._drop()
                if self.client.status == "running":
                    raise
                raise self._gone(e, cfg.checkpoint, exc) from exc
            except BaseException:
                self._drop()
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _epoch(self, ts, cfg, spec, workers):
        """One attempt: replicas for these workers, holding ``ts``'s state, run the epoch; their results by rank."""
        lost = any(f.status not in ("finished", "pending") for f in self._futures)  # an actor's worker died
        if lost or not self.replicas or not set(self.addresses) <= workers or \
                len(self.replicas) != min(len(workers), len(self.blocks)):
            self._drop()
            self._start(sorted(workers))
        if self._synced is None or self._synced[0] is not ts or self._synced[1] != spec["epoch"]:
            to = self.bk.to_numpy
            params = {k: to(a) for k, a in ts.parameters.items()}
            live = ts.optimizer_state  # the live moments (on JAX they are rebound; ts.state holds the first)
            state = {"t": int(live["t"]), **{s: {k: to(a) for k, a in live[s].items()} for s in ts.rule.slots}}
            peers = [(a, f.key) for a, f in zip(self.addresses, self._futures)]
            self._wait([r.connect(peers, params, state, cfg.optimizer) for r in self.replicas])
            self._synced = (ts, spec["epoch"])
        return self._wait([r.run_epoch(spec) for r in self.replicas])

    def _start(self, workers):
        """A :class:`Replica` on each of up to ``len(workers)`` workers, next to its chunks where it can be."""
        if not workers:
            raise ConnectionError("no worker in the cluster")
        self.ranks = rank_chunks(self.sizes, min(len(workers), len(self.blocks)))
        homes = self._homes(self.ranks, workers)
        self.starts += 1
        keys = [f"bpnet-replica-{self.run_id}-{self.starts}-{r}" for r in range(len(self.ranks))]
        self._futures = [self.client.submit(Replica, keys[r], r, chunks, [self.blocks[c] for c in chunks], self.sizes,
                                            self.cfg, key=keys[r], workers=[homes[r]], allow_other_workers=True,
                                            actor=True)
                         for r, chunks in enumerate(self.ranks)]
        self.addresses = homes
        self.replicas = self._wait(self._futures)
        where = self.client.who_has(self._futures)
        self.addresses = [next(iter(where.get(k) or [home])) for k, home in zip(keys, homes)]

    def _homes(self, ranks, workers):
        """The worker of each rank: a different one each, holding most of the rank's examples (ties: by address)."""
        who = self.client.who_has(self.blocks)
        local = [{} for _ in ranks]
        for r, chunks in enumerate(ranks):
            for c in chunks:
                for a in who.get(self.blocks[c].key) or ():
                    local[r][a] = local[r].get(a, 0) + self.sizes[c]
        homes, free = [None] * len(ranks), list(workers)
        for r in sorted(range(len(ranks)), key=lambda r: -sum(self.sizes[c] for c in ranks[r])):
            homes[r] = max(free, key=lambda a: local[r].get(a, 0))
            free.remove(homes[r])
        return homes

    def _wait(self, futures):
        """The results of ``futures`` (of replicas), checking every :data:`POLL_S` that their workers are there."""
        for f in futures:
            while True:
                try:
                    f.result(timeout=POLL_S)
                    break
                except TimeoutError:
                    if f.done():
                        raise  # a TimeoutError of the replica itself
                    for g in futures:
                        if g.done():
                            g.result()  # another replica failed: its error now, not at its turn
                    self._check()
        return [f.result() for f in futures]

    def _check(self):
        """Raise ConnectionError when a replica's worker has left (or ClusterGoneError without a client)."""
        if self.client.status != "running":
            raise ClusterGoneError(f"the client is {self.client.status}")
        workers = self._workers()
        gone = [a for a in self.addresses if a not in workers]
        if gone:
            raise ConnectionError(f"the worker {gone[0]} of a replica left the cluster")

    def _drop(self):
        """End and release the replicas (an epoch they run stops at its next exchange)."""
        replicas, futures, addresses = self.replicas, self._futures, self.addresses
        self.replicas, self._futures, self.addresses, self._synced = [], [], [], None
        if not futures or self.client.status != "running":
            return
        alive, aborts = self._workers(), []
        for r, a in zip(replicas, addresses):
            if a in alive:
                try:
                    aborts.append(r.abort())
                except Exception:  # its worker went in the meantime
                    pass
        for f in aborts:
            try:
                f.result(timeout=5)
            except Exception:
                pass
        try:
            self.client.cancel(futures)
        except Exception:  # pragma: no cover - a client closing under us
            pass

    def close(self) -> None:
        """Release the replicas (the blocks stay until this object is dropped)."""
        self._drop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

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
        """Figures of this source: chunks, their sizes, steps per epoch, m, the chunks of each replica, starts."""
        return {"chunks": len(self.sizes), "chunk_sizes": list(self.sizes),
                "steps_per_epoch": getattr(self, "steps_per_epoch", None), "m": self.m,
                "ranks": [list(r) for r in self.ranks], "starts": self.starts}

    def alive(self) -> bool:
        """The client is connected to a scheduler with at least one worker."""
        client = self.client
        if client.status != "running":
            return False
        try:
            return bool(client.scheduler_info().get("workers"))
        except Exception:
            return False


def _raised_by(exc, function, filename) -> bool:
    """``exc`` was raised by ``function`` of dask.distributed's module ``filename``: the errors by which
    distributed (2026.8) reports a worker lost while bpnet waits on it, rather than errors of bpnet.

    - ``sync`` of ``utils.py`` raises UnboundLocalError when the call it waits for is cancelled (an
      ``asyncio.CancelledError``, which its ``except Exception`` misses);
    - ``Actor.__getattr__`` of ``actor.py`` raises RuntimeError("Worker holding Actor was lost") when a
      replica's worker died before bpnet calls the replica's next method.
    """
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    code = None if tb is None else tb.tb_frame.f_code
    return (code is not None and code.co_name == function
            and os.path.basename(code.co_filename) == filename and "distributed" in code.co_filename)


def _kept(checkpoint, text):
    return text.format(checkpoint) if checkpoint is not None and os.path.exists(checkpoint) else ""


def _assign(ts, out, bk):
    """Copy replica 0's parameters and optimiser state into ``ts``'s own arrays (those the model publishes)."""
    dtype, state = ts.Ws[0].dtype, out["state"]

    def conv(arrays):
        return {k: bk.asarray(a, dtype=dtype) for k, a in arrays.items()}

    ts.assign(conv(out["parameters"]), {"t": state["t"], **{s: conv(state[s]) for s in ts.rule.slots}})


# --------------------------------------------------------------------------- #
# training


def fit_distributed(model, X, Y, *, client=None, chunk_size=None, compute_chunk_sizes=True, retries=2, split_every=None,
                    worker_timeout=60.0, validation_data=None, **options):
    """Train ``model`` (an :class:`bpnet.MLP`) data-parallel on a Dask cluster.

    The same optimisation as :meth:`bpnet.MLP.fit` (the same epoch loop and
    options), with the gradient of each global batch computed by the training
    step's kernels on the workers holding the data.

    Parameters
    ----------
    model : bpnet.MLP
        Each worker updates a copy of its parameters and optimiser state every
        step; the model gets them back after every epoch.
    X : dask array or array, shape (n_x, m)
        A dask array chunked along the examples axis (axis 1; axis 0 is
        rechunked to one chunk), with numpy or cupy blocks; or host data cut
        into chunks of ``chunk_size`` columns.  A model on another backend than
        numpy trains there: each worker moves its blocks to that backend.
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
        Reruns of an epoch that failed while the workers stayed the same
        (failures while workers leave or join are rerun without counting).
    split_every : None
        No longer used (the workers sum the gradients among themselves);
        passing it warns.
    worker_timeout : float >= 0
        Seconds a failed step waits for a worker to come back (all workers
        killed and restarted by their nannies, say) before giving up.
    validation_data, **options
        As :meth:`MLP.fit` (``validation_split`` is not offered), with
        ``MLP.fit``'s batches, shuffle and dropout masks: the same numbers
        as ``MLP.fit`` on the same data, up to the order of the sums.

    Returns
    -------
    History
        ``model.history``, extended by this call.

    Raises
    ------
    ClusterGoneError
        (a ``ConnectionError``) when the scheduler is gone, or no worker is left
        and none comes back within ``worker_timeout``; the model keeps its last
        completed epoch and the last checkpoint is intact.  When a worker dies
        the epoch is rerun from its start on the workers left (or restarted);
        workers that all die and are restarted are waited for.
    TrainingDivergedError, ValueError, TypeError
        As :meth:`MLP.fit`.
    """
    from .. import _validate as v

    if chunk_size is not None:
        v.integer(chunk_size, "chunk_size", low=1)
    retries = v.integer(retries, "retries", low=0)
    if split_every is not None:
        warnings.warn("split_every: no longer used, the workers sum the gradients among themselves by recursive "
                      "doubling; drop the argument", DeprecationWarning, stacklevel=2)
    worker_timeout = v.real(worker_timeout, "worker_timeout", low=0.0)
    conn = connect(client)
    try:
        with DaskBatches(conn, model, X, Y, chunk_size=chunk_size, compute_chunk_sizes=compute_chunk_sizes,
                         retries=retries, worker_timeout=worker_timeout) as source:
            return model.fit_source(source, validation_data=validation_data, **options)
    finally:
        try:
            conn.close()
        except Exception:  # pragma: no cover - closing a cluster that is already gone
            pass
