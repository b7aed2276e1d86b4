"""Checkpoints: parameters, optimiser state and a JSON header in one safetensors file.

A checkpoint is a `safetensors <https://huggingface.co/docs/safetensors>`_ file
(``safetensors.numpy.load_file`` and ``safetensors.torch.load_file`` open it):

* tensors ``W1``, ``b1``, ..., ``WL``, ``bL`` -- the weights, float32 or float64 (one dtype);
* tensors ``opt.<group>.<name>``, e.g. ``opt.v.dW1``, ``opt.s.db2`` -- optimiser arrays
  shaped like the parameters (group ``s`` holds second moments, never negative);
* the metadata entry ``"bpnet"`` -- one JSON string::

    {"format": "bpnet-checkpoint", "format_version": 2, "bpnet_version": "0.1.0",
      "created": "2025-01-01T12:00:00+00:00", "dtype": "float32", "sha256": "<hex digest>",
     "optimizer": null | {"scalars": {"t": 10, ...}},
     "metadata": {...whatever the caller passed...}}

``sha256`` covers the tensors in sorted name order: for each, the line
``json.dumps([name, dtype, shape]) + "\n"`` then its little-endian bytes
(safetensors itself has no checksum; a flipped bit is refused).

The architecture has one source, the tensors' shapes: the layer sizes are
never stored, :func:`read_header` derives them (``header["layer_dims"]``).
Tensors are written from the host (:func:`bpnet.backends.to_numpy`), so a
checkpoint written on a GPU loads on any backend with the same bits.

Writes are atomic (:func:`bpnet.io.atomic.atomic_write`): a temporary file
``.<name>.<random>.tmp`` beside the target, fsync-ed, renamed over it; the
temporary files of killed saves are removed by the next save to that target.

Loading refuses, with a :class:`CheckpointError` (a ``ValueError``) naming the
file and the field or tensor, before any tensor data is read: anything but a
regular file (a FIFO would block), a foreign, truncated or corrupt file, a
newer ``format_version``, a header that breaks its schema (types, ranges,
known names, JSON nested deeper than :data:`MAX_DEPTH`), tensors of another
dtype or of shapes that do not chain, metadata ``layer_dims``/``dtype``
disagreeing with them; and, once read: NaN or inf, negative second moments,
values a cast to float32 would overflow.  Format 1 (the ``.npz`` archives of
earlier versions, :mod:`bpnet.io.checkpoint_v1`) loads through the same checks.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as _dt
import json
import math
import numbers
import os
import pathlib
import re
from typing import NamedTuple

import numpy as np
import safetensors
import safetensors.numpy

from .. import _validate as v
from .. import backends as _backends
from .._version import __version__
from . import checkpoint_v1
from .atomic import atomic_write
from .regular import open_regular

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "HEADER_KEY",
    "MAX_DEPTH",
    "Checkpoint",
    "CheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "read_header",
    "check_architecture",
]

#: value of the header's ``"format"`` field
FORMAT = "bpnet-checkpoint"
#: newest layout this module writes and reads (1: the ``.npz`` archives of earlier versions)
FORMAT_VERSION = 2
#: the safetensors metadata entry holding the JSON header
HEADER_KEY = "bpnet"
#: deepest nesting of JSON a header may hold (a deeper one is refused, never recursed into)
MAX_DEPTH = 32

_FLOATS = ("float32", "float64")
_ST_DTYPES = {"F32": "float32", "F64": "float64"}
_HEADER_FIELDS = ("format", "format_version", "bpnet_version", "created", "dtype", "sha256", "optimizer",
                  "metadata", "layer_dims")
_GROUP_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PARAM_RE = re.compile(r"^[Wb][1-9][0-9]*$")
_OPT_RE = re.compile(r"^opt\.([A-Za-z_][A-Za-z0-9_]*)\.(d[Wb][1-9][0-9]*)$")
_NPY_MAGIC = b"\x93NUMPY"
_MAX_ST_HEADER = 100_000_000  # safetensors' own limit
_MISSING = object()


class CheckpointError(ValueError):
    """A file is not a valid bpnet checkpoint (foreign, corrupt, truncated, newer, inconsistent)."""


class Checkpoint(NamedTuple):
    """What :func:`load_checkpoint` returns.

    Attributes
    ----------
    parameters : dict
        ``W1, b1, ..., WL, bL`` on the requested backend.
    optimizer_state : dict or None
        ``{"t": int, "v": {"dW1": array, ...}, "s": {...}, ...}`` as saved
        (arrays on the requested backend), or ``None`` when none was saved.
    metadata : dict
        The caller's metadata, as JSON gives it back (tuples become lists).
    header : dict
        The validated header: format, versions, creation time, dtype, the
        optimiser's scalars and groups, the metadata, and what the tensors
        give: ``layer_dims`` and ``tensors`` (each one's shape and dtype).
    """

    parameters: dict
    optimizer_state: dict | None
    metadata: dict
    header: dict


class _Source(NamedTuple):
    """An open checkpoint, before any check: its raw header, tensor shapes and dtypes, a reader."""

    raw: dict
    tensors: dict  # name -> (shape tuple, dtype name)
    read: object  # name -> host ndarray; None for an archive that is not format 1
    finish: object  # host arrays -> None, raises (format 1: the digest); or None


# --------------------------------------------------------------------------- #
# helpers


def _as_path(path, argname: str = "path") -> pathlib.Path:
    try:
        p = os.fspath(path)
    except TypeError:
        raise TypeError(f"{argname}: expected a str or os.PathLike, got {type(path).__name__}") from None
    if not isinstance(p, str):
        raise TypeError(f"{argname}: expected a str or os.PathLike, got bytes {p!r}")
    return pathlib.Path(p)


def _bad(path, what: str) -> CheckpointError:
    return CheckpointError(f"checkpoint {str(path)!r}: {what}")


def _to_json(value, where: str, depth: int = 0):
    """A JSON-native copy of ``value``; TypeError/ValueError naming ``where``."""
    if depth > MAX_DEPTH:
        raise ValueError(f"{where}: nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        f = float(value)
        if not math.isfinite(f):
            raise ValueError(f"{where}: {value!r} cannot be stored (JSON has no NaN or inf)")
        return f
    if isinstance(value, dict):
        out = {}
        for k, item in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where}: keys must be str to survive JSON, got key {k!r} ({type(k).__name__})")
            out[k] = _to_json(item, f"{where}[{k!r}]", depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [_to_json(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
    hint = " (arrays belong in parameters or optimizer_state)" if v.is_array(value) else ""
    raise TypeError(
        f"{where}: not JSON-serialisable: {type(value).__module__}.{type(value).__name__}{hint}; "
        "use None, bool, int, float, str, lists and dicts with str keys"
    )


def _check_finite(a: np.ndarray, where: str) -> None:
    """Refuse NaN/inf: a checkpoint is what a run resumes from, and a diverged one is useless."""
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise ValueError(
            f"{where}: expected finite values, got {int(np.isnan(a).sum())} NaN and {int(np.isinf(a).sum())} inf "
            "(training diverged? try a smaller learning rate); nothing was written, an existing checkpoint "
            "is left as it was"
        )


def _grad_order(name: str):
    return (int(name[2:]), name[1]) if name[2:].isdigit() else (0, name)


def _param_order(name: str):
    return (int(name[1:]), name[0] != "W")


# --------------------------------------------------------------------------- #
# save


def save_checkpoint(path, parameters, *, optimizer_state=None, metadata=None) -> pathlib.Path:
    """Write parameters, optimiser state and metadata to ``path``, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write, used exactly as given (no suffix is added).  Its
        directory must exist.  An existing file is replaced only once the new
        one is completely on disk.
    parameters : dict
        ``W1, b1, ..., WL, bL`` of any backend (float32 or float64).
    optimizer_state : dict, optional
        E.g. ``{"t": 10, "v": {"dW1": ..., "db1": ...}, "s": {...}}``.  A dict
        value is a group of arrays keyed ``dW1, db1, ..., dWL, dbL`` (all of
        them), of the parameters' shapes and dtype; any other value must be a
        JSON scalar (int, float, str, bool, None).  ``"t"``, when present, must
        be an integer >= 0.
    metadata : dict, optional
        JSON-serialisable description chosen by the caller (epoch, history,
        seeds, ...), nested at most :data:`MAX_DEPTH` deep.  Tuples come back
        as lists.  If it has ``"layer_dims"`` or ``"dtype"`` they must agree
        with the parameters.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    TypeError, ValueError
        Invalid parameters (the :func:`bpnet._validate.check_parameters` error),
        NaN or inf in the parameters or optimiser arrays (a diverged model is
        never written over a good checkpoint), invalid optimiser state,
        metadata that JSON cannot hold (the message names the key).
    FileNotFoundError, NotADirectoryError, IsADirectoryError
        The directory of ``path`` is missing, or ``path`` is a directory.
    """
    target = _as_path(path)
    L = v.check_parameters(parameters)
    expected = set(v.param_keys(L))
    others = sorted(map(str, parameters.keys() - expected))
    if others:
        raise ValueError(f"parameters: unexpected keys {others}; a checkpoint stores W1..W{L} and b1..b{L} "
                         "(put other values in metadata)")
    host = {k: np.ascontiguousarray(_backends.to_numpy(parameters[k])) for k in v.param_keys(L)}
    for k, a in host.items():
        _check_finite(a, f"parameters[{k!r}]")
    dtype = host["W1"].dtype.name
    dims = [int(host["W1"].shape[1])] + [int(host[f"W{l}"].shape[0]) for l in range(1, L + 1)]
    scalars, tensors = _prepare_optimizer(optimizer_state, host, dtype)
    if metadata is None:
        meta = {}
    elif not isinstance(metadata, dict):
        raise TypeError(f"metadata: expected a dict, got {type(metadata).__name__}")
    else:
        meta = _to_json(metadata, "metadata")
    if "layer_dims" in meta and meta["layer_dims"] != dims:
        raise ValueError(f"metadata['layer_dims']: {meta['layer_dims']!r} does not match the parameter shapes, "
                         f"which give {dims}")
    if "dtype" in meta and meta["dtype"] != dtype:
        raise ValueError(f"metadata['dtype']: {meta['dtype']!r} does not match the parameters' dtype {dtype!r}")
    tensors = {**host, **tensors}
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, "bpnet_version": __version__,
              "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "dtype": dtype,
              "sha256": checkpoint_v1.digest(tensors),
              "optimizer": None if scalars is None else {"scalars": scalars}, "metadata": meta}
    text = json.dumps(header, allow_nan=False, ensure_ascii=False)
    blob = safetensors.numpy.save(tensors, metadata={HEADER_KEY: text})
    atomic_write(target, lambda f: f.write(blob))
    return target


def _prepare_optimizer(state, host, dtype):
    """``(scalars or None, {"opt.<group>.<name>": host array})``, checked like the parameters."""
    if state is None:
        return None, {}
    if not isinstance(state, dict):
        raise TypeError(f"optimizer_state: expected a dict or None, got {type(state).__name__}")
    shapes = {f"d{k}": tuple(a.shape) for k, a in host.items()}
    scalars, tensors = {}, {}
    for key, value in state.items():
        where = f"optimizer_state[{key!r}]"
        if not isinstance(key, str) or not _GROUP_RE.match(key):
            raise ValueError(f"optimizer_state: keys must be identifiers like 't', 'v', 's', got {key!r}")
        if isinstance(value, dict):
            missing = sorted(shapes.keys() - value.keys(), key=_grad_order)
            extra = sorted(map(str, value.keys() - shapes.keys()))
            if missing or extra:
                L = len(shapes) // 2
                raise ValueError(f"{where}: expected keys dW1, db1, ..., dW{L}, db{L} matching the parameters"
                                 + (f"; missing {missing}" if missing else "")
                                 + (f"; unexpected {extra}" if extra else ""))
            for name in sorted(value, key=_grad_order):
                a = value[name]
                if not v.is_array(a):
                    raise TypeError(f"{where}[{name!r}]: expected an array, got {type(a).__name__}")
                h = np.ascontiguousarray(_backends.to_numpy(a))
                if tuple(h.shape) != shapes[name]:
                    raise ValueError(f"{where}[{name!r}]: expected shape {shapes[name]} like {name[1:]}, "
                                     f"got {tuple(h.shape)}")
                if h.dtype.name != dtype:
                    raise TypeError(f"{where}[{name!r}]: expected dtype {dtype} like the parameters, "
                                    f"got {h.dtype.name}")
                _check_finite(h, f"{where}[{name!r}]")
                tensors[f"opt.{key}.{name}"] = h
        elif v.is_array(value):
            raise TypeError(f"{where}: a bare array cannot be stored; arrays go in groups such as "
                            "optimizer_state['v'] = {'dW1': ..., ...}")
        elif isinstance(value, (list, tuple, dict)):
            raise TypeError(f"{where}: expected a JSON scalar (int, float, str, bool, None), got a "
                            f"{type(value).__name__}")
        else:
            scalars[key] = _to_json(value, where)
    t = scalars.get("t", 0)
    if isinstance(t, bool) or not isinstance(t, int) or t < 0:
        raise ValueError(f"optimizer_state['t']: expected an integer >= 0 (the step count), got {state['t']!r}")
    return scalars, tensors


# --------------------------------------------------------------------------- #
# opening: a regular file, then safetensors or a format-1 archive


def _parse(p, text: bytes | str) -> dict:
    """The JSON header: an object, or a CheckpointError (never a RecursionError)."""
    try:
        header = json.loads(text)
    except RecursionError:
        raise _bad(p, "header: JSON nested too deeply to be a bpnet header") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise _bad(p, f"header is not valid UTF-8 JSON ({exc})") from None
    if not isinstance(header, dict):
        raise _bad(p, f"header: expected a JSON object, got {type(header).__name__}")
    return header


def _sniff(p, f) -> str:
    """``"safetensors"`` or ``"npz"`` from the first bytes of ``f``; CheckpointError for anything else."""
    start = f.read(9)
    size = os.fstat(f.fileno()).st_size
    f.seek(0)
    if start[:4] in checkpoint_v1.ZIP_MAGIC:
        return "npz"
    n = int.from_bytes(start[:8], "little") if len(start) == 9 else -1
    if 2 <= n <= _MAX_ST_HEADER and start[8:9] == b"{":
        if n + 8 > size:
            raise _bad(p, f"truncated: its safetensors header alone needs {n + 8} bytes, the file has {size}")
        return "safetensors"
    if not start:
        what = "the file is empty"
    elif start[:6] == _NPY_MAGIC:
        what = "a single .npy array, not a checkpoint"
    else:
        what = f"neither a safetensors file nor an .npz archive (it starts with {start[:4]!r})"
    raise _bad(p, f"not a bpnet checkpoint: {what}")


@contextlib.contextmanager
def _opened(p: pathlib.Path):
    """The checkpoint at ``p`` as a :class:`_Source`, open for the ``with`` block."""
    with open_regular(p, error=lambda kind: _bad(p, f"expected a regular file, got {kind}"),
                      missing="checkpoint file not found") as f:
        if _sniff(p, f) == "npz":
            raw, tensors, read, finish = checkpoint_v1.open_npz(f, lambda msg: _bad(p, msg), lambda t: _parse(p, t))
            yield _Source(raw, tensors, read, finish)
            return
        # the open descriptor, not the name: what was checked is what is read
        name = f"/proc/self/fd/{f.fileno()}" if os.path.isdir("/proc/self/fd") else str(p)
        try:
            handle = safetensors.safe_open(name, framework="numpy")
        except (safetensors.SafetensorError, OSError, ValueError) as exc:
            raise _bad(p, f"not a readable safetensors file, truncated or corrupt ({exc})") from None
        with handle:
            text = (handle.metadata() or {}).get(HEADER_KEY)
            keys = list(handle.keys())
            if text is None:
                shown = ", ".join(map(repr, keys[:8])) + (", ..." if len(keys) > 8 else "")
                raise _bad(p, f"not a bpnet checkpoint: a safetensors file without the {HEADER_KEY!r} metadata "
                              f"entry (tensors {shown or 'none'})")
            tensors = {}
            for k in keys:
                s = handle.get_slice(k)
                tensors[k] = (tuple(int(d) for d in s.get_shape()), _ST_DTYPES.get(s.get_dtype(), s.get_dtype()))
            yield _Source(_parse(p, text), tensors, handle.get_tensor, None)


# --------------------------------------------------------------------------- #
# the header's schema and the tensors' structure (no data read)


def _json_values(p, value, where: str, depth: int = 0) -> None:
    """Finite numbers only, nested at most :data:`MAX_DEPTH` deep (walks without deep recursion)."""
    stack = [(value, depth, None)]
    while stack:
        item, d, key = stack.pop()
        if d > MAX_DEPTH:
            raise _bad(p, f"{where}: JSON nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, float) and not math.isfinite(item):
            raise _bad(p, f"{where}{key or ''}: expected a finite number, got {item!r}")
        if isinstance(item, dict):
            stack.extend((x, d + 1, f"{key or ''}[{k!r}]") for k, x in item.items())
        elif isinstance(item, list):
            stack.extend((x, d + 1, f"{key or ''}[{i}]") for i, x in enumerate(item))


def _structure(p, tensors):
    """``(layer_dims, dtype, groups)`` from the tensors' names, shapes and dtypes (no data read)."""
    params, groups = {}, {}
    for name, (shape, dt) in tensors.items():
        if dt not in _FLOATS:
            raise _bad(p, f"tensor {name!r}: expected dtype float32 or float64, got {dt}")
        fake = np.broadcast_to(np.zeros((), dtype=dt), shape)  # the shape, with no memory behind it
        m = _OPT_RE.match(name)
        if _PARAM_RE.match(name):
            params[name] = fake
        elif m:
            groups.setdefault(m.group(1), {})[m.group(2)] = fake
        else:
            raise _bad(p, f"unexpected tensor {name!r}; a checkpoint holds W1, b1, ..., WL, bL and optimiser "
                          "tensors opt.<group>.dW1, ...")
    try:
        L = v.check_parameters(params, "parameters")
        extra = sorted(set(params) - set(v.param_keys(L)))
        if extra:
            raise ValueError(f"parameters: unexpected tensors {extra} for an L = {L} layer network")
        dims = v.layer_dims([params["W1"].shape[1]] + [params[f"W{l}"].shape[0] for l in range(1, L + 1)])
        for g, d in sorted(groups.items()):
            v.check_slots(d, f"optimizer group {g!r}", params, L)
            extra = sorted(set(d) - set(v.param_keys(L, "d")))
            if extra:
                raise ValueError(f"optimizer group {g!r}: unexpected tensors {extra} for L = {L} layers")
    except (TypeError, ValueError) as exc:
        raise _bad(p, f"inconsistent tensors: {exc}") from None
    return dims, params["W1"].dtype.name, sorted(groups)


def _scalars(p, opt, groups):
    """The optimiser's scalars (``t`` an integer >= 0, others JSON scalars), or None without optimiser state."""
    if opt is None:
        if groups:
            raise _bad(p, f"optimizer tensors of groups {groups} but the header records no optimizer state")
        return None
    if not isinstance(opt, dict) or set(opt) - {"scalars"} or not isinstance(opt.get("scalars", {}), dict):
        raise _bad(p, f"header 'optimizer': expected null or {{'scalars': {{...}}}}, got {opt!r:.120}")
    scalars = dict(opt.get("scalars", {}))
    for key, value in scalars.items():
        where = f"optimizer_state[{key!r}]"
        if not _GROUP_RE.match(key) or key in groups:
            raise _bad(p, f"optimizer_state: scalar names are identifiers other than the groups {groups}, got {key!r}")
        if value is not None and not isinstance(value, (bool, str, int, float)):
            raise _bad(p, f"{where}: expected a JSON scalar (int, float, str, bool, None), got {type(value).__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise _bad(p, f"{where}: expected a finite number, got {value!r}")
    if "t" in scalars:
        try:
            v.integer(scalars["t"], "optimizer_state['t']", low=0)
        except (TypeError, ValueError) as exc:
            raise _bad(p, f"{exc} (the optimiser's step count)") from None
    return scalars


def _checked_header(p, src: _Source) -> dict:
    """The validated header of ``src`` (schema, tensor structure, agreement): no tensor data read."""
    raw = src.raw
    if raw.get("format") != FORMAT:
        raise _bad(p, f"not a bpnet checkpoint: header format is {raw.get('format')!r:.80}, expected {FORMAT!r}")
    version = raw.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _bad(p, f"header 'format_version': expected an integer >= 1, got {version!r:.80}")
    if version > FORMAT_VERSION:
        raise _bad(p, f"written in format_version {version} by bpnet {str(raw.get('bpnet_version', '?')):.40}; "
                      f"this bpnet reads format_version <= {FORMAT_VERSION}: upgrade bpnet")
    if src.read is None:
        raise _bad(p, f"an .npz archive of format_version {version}; expected 1 (later formats are safetensors)")
    unknown = sorted(map(str, set(raw) - set(_HEADER_FIELDS)))
    if unknown:
        raise _bad(p, f"header: unknown field(s) {unknown[:8]}; expected {list(_HEADER_FIELDS)}")
    for key in ("bpnet_version", "created", "dtype") + (("sha256",) if src.finish is None else ()):
        if not isinstance(raw.get(key), str):
            raise _bad(p, f"header {key!r}: expected a str, got {type(raw.get(key)).__name__} {raw.get(key)!r:.80}")
    meta = raw.get("metadata", {})
    if not isinstance(meta, dict):
        raise _bad(p, f"metadata: expected an object (dict), got {type(meta).__name__}")
    _json_values(p, meta, "metadata")
    dims, dtype, groups = _structure(p, src.tensors)
    for where, key, got, want in (("header", "dtype", raw["dtype"], dtype),
                                  ("header", "layer_dims", raw.get("layer_dims", dims), dims),
                                  ("metadata", "layer_dims", meta.get("layer_dims", dims), dims),
                                  ("metadata", "dtype", meta.get("dtype", dtype), dtype)):
        if got != want:
            raise _bad(p, f"{where}[{key!r}]: {got!r:.80} does not match the tensors, which give {want!r}")
    scalars = _scalars(p, raw.get("optimizer"), groups)
    return {"format": FORMAT, "format_version": version, "bpnet_version": raw["bpnet_version"],
            "created": raw["created"], "dtype": dtype, "sha256": raw.get("sha256"), "layer_dims": dims,
            "tensors": {k: {"shape": list(s), "dtype": d} for k, (s, d) in sorted(src.tensors.items())},
            "optimizer": None if scalars is None else {"scalars": scalars, "groups": groups}, "metadata": meta}


# --------------------------------------------------------------------------- #
# load


def read_header(path) -> dict:
    """The validated header of a checkpoint (see :class:`Checkpoint`), without reading any tensor data."""
    p = _as_path(path)
    with _opened(p) as src:
        return _checked_header(p, src)


def load_checkpoint(path, *, backend=None, dtype=None, validate=None) -> Checkpoint:
    """Read and validate a checkpoint written by :func:`save_checkpoint` (or by an earlier bpnet).

    Parameters
    ----------
    path : str or os.PathLike
    backend : str or Backend, optional
        Where the arrays go (:func:`bpnet.backends.get`: explicit, else
        ``BPNET_BACKEND``, else auto).  Any backend reads any checkpoint.
    dtype : {"float32", "float64"}, optional
        Cast parameters and optimiser arrays; default: as saved.  A value a
        cast to float32 would overflow is refused.
    validate : callable, optional
        ``validate(header)`` runs once the header is validated and before any
        tensor data is read (e.g. :meth:`bpnet.MLP.load` checks its entries
        there); a ``ValueError``/``TypeError`` it raises becomes a
        :class:`CheckpointError` naming the file.

    Returns
    -------
    Checkpoint
        ``(parameters, optimizer_state, metadata, header)``.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    CheckpointError
        (a ``ValueError``) see the module docstring; the message names the
        file and the field or tensor.
    """
    p = _as_path(path)
    bk = _backends.get(backend)
    cast = None if dtype is None else _backends.float_dtype(dtype)
    with _opened(p) as src:
        header = _checked_header(p, src)
        if validate is not None:
            try:
                validate(header)
            except CheckpointError:
                raise
            except (TypeError, ValueError) as exc:
                raise _bad(p, str(exc)) from None
        host = {name: _read(p, src, name) for name in header["tensors"]}
        if src.finish is not None:
            src.finish(host)  # format 1: its own digest
        elif checkpoint_v1.digest(host) != header["sha256"]:
            raise _bad(p, "corrupt: the sha256 of the tensors does not match the header")
    for name, a in host.items():
        _check_values(p, name, a)
    return _moved(p, header, host, bk, cast)


def _read(p, src, name) -> np.ndarray:
    try:
        return src.read(name)
    except CheckpointError:
        raise
    except Exception as exc:  # safetensors reads what its header promised; a file cut under us
        raise _bad(p, f"tensor {name!r} is unreadable ({type(exc).__name__}: {exc})") from None


def _check_values(p, name, a) -> None:
    """Tensor ``name`` is finite; second moments (``opt.s.*``) are >= 0."""
    try:
        v.check_finite(np, a, f"tensor {name!r}")
    except ValueError as exc:
        raise _bad(p, str(exc)) from None
    if name.startswith("opt.s.") and a.size and float(a.min()) < 0.0:
        raise _bad(p, f"tensor {name!r}: expected second moments >= 0, got {int((a < 0).sum())} negative values "
                      f"(down to {float(a.min()):.4g})")


def _moved(p, header, host, bk, cast) -> Checkpoint:
    """The checked host arrays on ``bk`` in ``cast`` (a cast that overflows is refused, naming the tensor)."""
    moved = {}
    for name, a in host.items():
        try:
            moved[name] = v.to_backend(a, f"tensor {name!r}", bk, cast)
        except (TypeError, ValueError) as exc:
            raise _bad(p, str(exc)) from None
    L = len(header["layer_dims"]) - 1
    parameters = {k: moved[k] for k in v.param_keys(L)}
    state = None
    if header["optimizer"] is not None:
        state = copy.deepcopy(header["optimizer"]["scalars"])
        for g in header["optimizer"]["groups"]:
            state[g] = {n: moved[f"opt.{g}.{n}"] for n in v.param_keys(L, "d")}
    return Checkpoint(parameters, state, copy.deepcopy(header["metadata"]), header)


# --------------------------------------------------------------------------- #
# architecture check


def check_architecture(
    checkpoint_or_header, layer_dims, *, hidden_activation=None, output_activation=None, loss=None
) -> None:
    """Raise ``ValueError`` unless the checkpoint was saved for this architecture.

    Parameters
    ----------
    checkpoint_or_header : Checkpoint or dict
        A :class:`Checkpoint` or its ``header`` (e.g. from :func:`read_header`).
    layer_dims : sequence of int
        Compared with the layer sizes of the saved tensors.
    hidden_activation, output_activation, loss : str, optional
        When given, compared with the same keys of the saved metadata (at its
        top level, else in its ``"model"`` entry, where :class:`bpnet.Model`
        puts its configuration); a checkpoint whose metadata does not record a
        requested key fails too.

    Every mismatch is listed in one message, e.g. ``checkpoint: saved for
    layer_dims [30, 20, 1], expected [30, 10, 1]``.
    """
    if isinstance(checkpoint_or_header, Checkpoint):
        header = checkpoint_or_header.header
    elif isinstance(checkpoint_or_header, dict):
        header = checkpoint_or_header
    else:
        raise TypeError("checkpoint_or_header: expected a Checkpoint or its header dict, got "
                        f"{type(checkpoint_or_header).__name__}")
    if header.get("format") != FORMAT or "layer_dims" not in header:
        raise ValueError(f"checkpoint_or_header: expected a bpnet checkpoint header (format {FORMAT!r} with "
                         f"layer_dims), got a dict with keys {sorted(map(str, header))[:10]}")
    dims = v.layer_dims(layer_dims)
    problems = []
    saved = header["layer_dims"]
    if saved != dims:
        problems.append(f"saved for layer_dims {saved}, expected {dims}")
    meta = header.get("metadata") or {}
    nested = meta.get("model") if isinstance(meta.get("model"), dict) else {}
    for key, want in (("hidden_activation", hidden_activation), ("output_activation", output_activation),
                      ("loss", loss)):
        if want is None:
            continue
        want = getattr(want, "name", want)
        saved_value = meta[key] if key in meta else nested.get(key, _MISSING)
        if saved_value is _MISSING:
            problems.append(f"does not record {key} (expected {want!r})")
        elif saved_value != want:
            problems.append(f"saved with {key} {saved_value!r}, expected {want!r}")
    if problems:
        raise ValueError("checkpoint: " + "; ".join(problems))
