"""Checkpoints: parameters, architecture and optimiser state in one open file.

A checkpoint is a plain, uncompressed numpy ``.npz`` archive (a zip of
``.npy`` files) that any numpy can read with ``allow_pickle=False``:

* ``param/W1``, ``param/b1``, ..., ``param/WL``, ``param/bL`` -- the weights;
* ``opt/<group>/<name>``, e.g. ``opt/v/dW1``, ``opt/s/db2`` -- optimiser arrays;
* ``__bpnet__`` -- the header: UTF-8 JSON stored as a 1-D ``uint8`` array::

    {"format": "bpnet-checkpoint", "format_version": 1,
     "bpnet_version": "0.1.0", "created": "2025-01-01T12:00:00+00:00",
     "layer_dims": [n_x, n_1, ..., n_L], "dtype": "float32",
     "arrays": {"param/W1": {"shape": [n_1, n_x], "dtype": "float32"}, ...},
     "sha256": "<hex digest, see below>",
     "optimizer": null | {"scalars": {"t": 10, ...}, "arrays": {"v": ["dW1", ...], ...}},
     "metadata": {...whatever the caller passed...}}

``sha256`` covers every array except the header, in sorted name order: for
each, the line ``json.dumps([name, dtype_name, shape]) + "\\n"`` followed by
the array's C-order little-endian bytes.  Arrays are float32 or float64 and
always written from the host (:func:`bpnet.backends.to_numpy`), so a
checkpoint written on a GPU loads on any backend with the same bits.

Writes are atomic: the archive goes to a temporary file
``.<name>.<random>.tmp`` in the target's directory, is flushed and
``os.fsync``-ed, then ``os.replace``-d over the target, and the directory is
fsync-ed where the platform allows.  A crash mid-save leaves the previous
checkpoint intact (plus, at worst, a stale ``.<name>.*.tmp`` file, which
:func:`load_checkpoint` never reads: it opens only the path it is given).

Loading never unpickles: members are read with ``allow_pickle=False`` and an
object array, a foreign or truncated file, a newer ``format_version``, arrays
missing or extra versus the header's manifest, shape/dtype mismatches and a
wrong digest are all refused with a :class:`CheckpointError` (a
``ValueError``) naming the file and the problem.
"""

from __future__ import annotations

import copy
import datetime as _dt
import errno
import hashlib
import json
import math
import numbers
import os
import pathlib
import re
import zipfile
from typing import NamedTuple

import numpy as np

from .. import backends as _backends
from .._validate import check_parameters, is_array
from .._validate import layer_dims as check_layer_dims
from .._version import __version__
from .atomic import atomic_write

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "HEADER_KEY",
    "Checkpoint",
    "CheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "read_header",
    "check_architecture",
]

#: value of the header's ``"format"`` field
FORMAT = "bpnet-checkpoint"
#: newest layout this module writes and reads
FORMAT_VERSION = 1
#: archive member holding the JSON header
HEADER_KEY = "__bpnet__"

_PARAM = "param/"
_OPT = "opt/"
_FLOATS = ("float32", "float64")
_GROUP_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_MAGIC = b"\x93NUMPY"
_MISSING = object()


class CheckpointError(ValueError):
    """A file is not a valid bpnet checkpoint (foreign, corrupt, truncated, newer)."""


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
        The full parsed header (format, versions, layer_dims, dtype, manifest,
        digest, optimizer description, metadata).
    """

    parameters: dict
    optimizer_state: dict | None
    metadata: dict
    header: dict


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


def _to_json(value, where: str):
    """A JSON-native copy of ``value``; TypeError/ValueError naming ``where``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        v = float(value)
        if not math.isfinite(v):
            raise ValueError(f"{where}: {value!r} cannot be stored (JSON has no NaN or inf)")
        return v
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(
                    f"{where}: keys must be str to survive JSON, got key {k!r} ({type(k).__name__})"
                )
            out[k] = _to_json(v, f"{where}[{k!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [_to_json(v, f"{where}[{i}]") for i, v in enumerate(value)]
    hint = " (arrays belong in parameters or optimizer_state)" if is_array(value) else ""
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


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = arrays[name]
        h.update(json.dumps([name, a.dtype.name, [int(d) for d in a.shape]]).encode("utf-8") + b"\n")
        le = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
        h.update(le.reshape(-1).view(np.uint8))
    return h.hexdigest()


def _layer_dims(host_params: dict[str, np.ndarray], L: int) -> list[int]:
    dims = [int(host_params["W1"].shape[1])]
    dims += [int(host_params[f"W{l}"].shape[0]) for l in range(1, L + 1)]
    return dims


def _grad_shapes(host_params, L) -> dict[str, tuple]:
    return {f"d{p}{l}": tuple(host_params[f"{p}{l}"].shape) for l in range(1, L + 1) for p in "Wb"}


def _grad_order(name: str):
    return (int(name[2:]), name[1]) if name[2:].isdigit() else (0, name)


# --------------------------------------------------------------------------- #
# save


def save_checkpoint(path, parameters, *, optimizer_state=None, metadata=None) -> pathlib.Path:
    """Write parameters, optimiser state and metadata to ``path``, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write, used exactly as given (no suffix is added; ``.npz``
        is the conventional one).  Its directory must exist.  An existing file
        is replaced only once the new one is completely on disk.
    parameters : dict
        ``W1, b1, ..., WL, bL`` of any backend (float32 or float64).
    optimizer_state : dict, optional
        E.g. ``{"t": 10, "v": {"dW1": ..., "db1": ...}, "s": {...}}``.  A dict
        value is a group of arrays keyed ``dW1, db1, ..., dWL, dbL`` (all of
        them), of the parameters' shapes and dtype; any other value must be a
        JSON scalar (int, float, str, bool, None).  ``"t"``, when present, must
        be an integer >= 0.
    metadata : dict, optional
        JSON-serialisable description chosen by the caller (layer_dims,
        hidden_activation, output_activation, loss, dtype, epoch, history,
        seeds, ...).  Tuples come back as lists.  If it has ``"layer_dims"``
        or ``"dtype"`` they must agree with the parameters.

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
    L = check_parameters(parameters)
    expected = {f"{p}{l}" for l in range(1, L + 1) for p in "Wb"}
    others = sorted(map(str, parameters.keys() - expected))
    if others:
        raise ValueError(
            f"parameters: unexpected keys {others}; a checkpoint stores W1..W{L} and b1..b{L} "
            "(put other values in metadata)"
        )
    host = {k: np.asarray(_backends.to_numpy(parameters[k])) for k in sorted(expected, key=_grad_order_p)}
    for k, a in host.items():
        _check_finite(a, f"parameters[{k!r}]")
    dtype = host["W1"].dtype.name
    dims = _layer_dims(host, L)

    opt_header, opt_arrays = _prepare_optimizer(optimizer_state, host, L, dtype)

    if metadata is None:
        meta = {}
    elif not isinstance(metadata, dict):
        raise TypeError(f"metadata: expected a dict, got {type(metadata).__name__}")
    else:
        meta = _to_json(metadata, "metadata")
    if "layer_dims" in meta and meta["layer_dims"] != dims:
        raise ValueError(
            f"metadata['layer_dims']: {meta['layer_dims']!r} does not match the parameter shapes, "
            f"which give {dims}"
        )
    if "dtype" in meta and meta["dtype"] != dtype:
        raise ValueError(f"metadata['dtype']: {meta['dtype']!r} does not match the parameters' dtype {dtype!r}")

    arrays = {_PARAM + k: v for k, v in host.items()}
    arrays.update(opt_arrays)
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "bpnet_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "layer_dims": dims,
        "dtype": dtype,
        "arrays": {
            name: {"shape": [int(d) for d in a.shape], "dtype": a.dtype.name} for name, a in arrays.items()
        },
        "sha256": _digest(arrays),
        "optimizer": opt_header,
        "metadata": meta,
    }
    blob = json.dumps(header, allow_nan=False, ensure_ascii=False).encode("utf-8")
    members = {HEADER_KEY: np.frombuffer(blob, dtype=np.uint8)}
    members.update(arrays)
    _atomic_write(target, members)
    return target


def _grad_order_p(name: str):
    return (int(name[1:]), name[0] != "W")


def _prepare_optimizer(state, host, L, dtype):
    if state is None:
        return None, {}
    if not isinstance(state, dict):
        raise TypeError(f"optimizer_state: expected a dict or None, got {type(state).__name__}")
    shapes = _grad_shapes(host, L)
    scalars, groups, arrays = {}, {}, {}
    for key, value in state.items():
        where = f"optimizer_state[{key!r}]"
        if not isinstance(key, str) or not _GROUP_RE.match(key):
            raise ValueError(f"optimizer_state: keys must be identifiers like 't', 'v', 's', got {key!r}")
        if isinstance(value, dict):
            missing = sorted(shapes.keys() - value.keys(), key=_grad_order)
            extra = sorted(map(str, value.keys() - shapes.keys()))
            if missing or extra:
                raise ValueError(
                    f"{where}: expected keys dW1, db1, ..., dW{L}, db{L} matching the parameters"
                    + (f"; missing {missing}" if missing else "")
                    + (f"; unexpected {extra}" if extra else "")
                )
            names = sorted(value, key=_grad_order)
            for name in names:
                a = value[name]
                if not is_array(a):
                    raise TypeError(f"{where}[{name!r}]: expected an array, got {type(a).__name__}")
                h = np.asarray(_backends.to_numpy(a))
                if tuple(h.shape) != shapes[name]:
                    raise ValueError(
                        f"{where}[{name!r}]: expected shape {shapes[name]} like {name[1:]}, got {tuple(h.shape)}"
                    )
                if h.dtype.name != dtype:
                    raise TypeError(
                        f"{where}[{name!r}]: expected dtype {dtype} like the parameters, got {h.dtype.name}"
                    )
                _check_finite(h, f"{where}[{name!r}]")
                arrays[f"{_OPT}{key}/{name}"] = h
            groups[key] = names
        elif is_array(value):
            raise TypeError(
                f"{where}: a bare array cannot be stored; arrays go in groups such as "
                "optimizer_state['v'] = {'dW1': ..., ...}"
            )
        else:
            if isinstance(value, (list, tuple)):
                raise TypeError(f"{where}: expected a JSON scalar (int, float, str, bool, None), "
                                f"got a {type(value).__name__}")
            scalars[key] = _to_json(value, where)
    if "t" in scalars:
        t = scalars["t"]
        if isinstance(t, bool) or not isinstance(t, int) or t < 0:
            raise ValueError(f"optimizer_state['t']: expected an integer >= 0 (the step count), got {state['t']!r}")
    return {"scalars": scalars, "arrays": groups}, arrays


def _atomic_write(target: pathlib.Path, members: dict[str, np.ndarray]) -> None:
    # a file object, not a name: np.savez would append ".npz" to a name
    atomic_write(target, lambda f: np.savez(f, **members))


# --------------------------------------------------------------------------- #
# load


def _open_archive(path: pathlib.Path):
    """(file, ZipFile); raises FileNotFoundError / CheckpointError."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, "checkpoint file not found", str(path)) from None
    try:
        magic = f.read(6)
        if magic[:4] not in _ZIP_MAGIC:
            if magic == _NPY_MAGIC:
                what = "a single .npy array, not a checkpoint archive"
            elif not magic:
                what = "the file is empty"
            else:
                what = f"not an .npz archive (it starts with {magic[:4]!r}, expected b'PK\\x03\\x04')"
            raise _bad(path, f"not a bpnet checkpoint: {what}")
        f.seek(0)
        try:
            zf = zipfile.ZipFile(f)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            raise _bad(path, f"unreadable archive, truncated or corrupt ({exc})") from None
    except BaseException:
        f.close()
        raise
    return f, zf


def _member_names(path, zf: zipfile.ZipFile) -> list[str]:
    raw = zf.namelist()
    names, seen = [], set()
    for m in raw:
        if not m.endswith(".npy"):
            raise _bad(path, f"unexpected archive member {m!r} (a checkpoint holds only .npy arrays)")
        n = m[: -len(".npy")]
        if n in seen:
            raise _bad(path, f"archive member {m!r} appears twice")
        seen.add(n)
        names.append(n)
    return names


def _peek_npy(fp):
    """(shape, dtype) from a .npy header, without reading the data."""
    version = np.lib.format.read_magic(fp)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(fp)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(fp)
    else:
        raise ValueError(f".npy format version {version} is not supported")
    return tuple(shape), dtype


def _read_member(path, zf: zipfile.ZipFile, name: str, spec: dict | None = None) -> np.ndarray:
    """Member ``name`` as an array; its .npy header is checked before any data is read.

    ``spec`` is the manifest entry (``{"shape": [...], "dtype": "float64"}``);
    ``None`` means the header member (1-D uint8).  An object dtype is refused
    from the .npy header alone, so no pickle is ever reached.
    """
    member = name + ".npy"
    try:
        with zf.open(member) as fp:
            shape, dtype = _peek_npy(fp)
        if dtype.hasobject:
            raise _bad(
                path, f"array {name!r} holds Python objects (pickled data); refused, checkpoints are never unpickled"
            )
        if spec is None:
            if dtype != np.uint8 or len(shape) != 1:
                raise _bad(path, f"header {name!r}: expected a 1-D uint8 array, got dtype {dtype} shape {shape}")
        else:
            if dtype.name != spec["dtype"]:
                raise _bad(path, f"array {name!r} has dtype {dtype.name}, the header says {spec['dtype']}")
            if list(shape) != spec["shape"]:
                raise _bad(path, f"array {name!r} has shape {shape}, the header says {tuple(spec['shape'])}")
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes > zf.getinfo(member).file_size:
            raise _bad(path, f"array {name!r} is truncated: shape {shape} needs {nbytes} bytes")
        with zf.open(member) as fp:
            return np.lib.format.read_array(fp, allow_pickle=False)
    except CheckpointError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc) or "object" in str(exc).lower():
            raise _bad(
                path, f"array {name!r} holds Python objects (pickled data); refused, checkpoints are never unpickled"
            ) from None
        raise _bad(path, f"array {name!r} is unreadable ({exc})") from None
    except MemoryError:
        raise
    except Exception as exc:  # BadZipFile (CRC), EOFError, zlib.error, OSError, ...
        raise _bad(path, f"array {name!r} is unreadable, truncated or corrupt ({type(exc).__name__}: {exc})") from None


def _read_header(path, zf, names) -> dict:
    if HEADER_KEY not in names:
        shown = ", ".join(repr(n) for n in names[:8]) + (", ..." if len(names) > 8 else "")
        raise _bad(
            path,
            f"not a bpnet checkpoint: no {HEADER_KEY!r} header "
            f"(a foreign .npz holding {shown or 'nothing'})",
        )
    raw = _read_member(path, zf, HEADER_KEY)
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _bad(path, f"header is not valid UTF-8 JSON ({exc})") from None
    if not isinstance(header, dict):
        raise _bad(path, f"header: expected a JSON object, got {type(header).__name__}")
    fmt = header.get("format")
    if fmt != FORMAT:
        raise _bad(path, f"not a bpnet checkpoint: header format is {fmt!r}, expected {FORMAT!r}")
    version = header.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _bad(path, f"header format_version: expected an integer >= 1, got {version!r}")
    if version > FORMAT_VERSION:
        raise _bad(
            path,
            f"written in format_version {version} by bpnet {header.get('bpnet_version', '?')}; "
            f"this bpnet reads format_version <= {FORMAT_VERSION}: upgrade bpnet",
        )
    for key, kind in (("arrays", dict), ("layer_dims", list), ("dtype", str), ("sha256", str)):
        if not isinstance(header.get(key), kind):
            raise _bad(path, f"header {key!r}: expected a {kind.__name__}, got {header.get(key)!r:.80}")
    header.setdefault("optimizer", None)
    header.setdefault("metadata", {})
    if not isinstance(header["metadata"], dict):
        raise _bad(path, f"header 'metadata': expected an object, got {header['metadata']!r:.80}")
    return header


def read_header(path) -> dict:
    """The parsed JSON header of a checkpoint, without reading its arrays.

    Checks that the file is a bpnet checkpoint of a readable ``format_version``;
    the arrays and their digest are checked only by :func:`load_checkpoint`.
    """
    p = _as_path(path)
    f, zf = _open_archive(p)
    with f, zf:
        return _read_header(p, zf, _member_names(p, zf))


def load_checkpoint(path, *, backend=None, dtype=None) -> Checkpoint:
    """Read and validate a checkpoint written by :func:`save_checkpoint`.

    Parameters
    ----------
    path : str or os.PathLike
    backend : str or Backend, optional
        Where the arrays go (:func:`bpnet.backends.get`: explicit, else
        ``BPNET_BACKEND``, else auto).  Any backend reads any checkpoint.
    dtype : {"float32", "float64"}, optional
        Cast parameters and optimiser arrays; default: as saved.

    Returns
    -------
    Checkpoint
        ``(parameters, optimizer_state, metadata, header)``.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    CheckpointError
        (a ``ValueError``) the file is not a bpnet checkpoint, is truncated or
        corrupt (digest mismatch), was written by a newer format, holds pickled
        objects, or its arrays disagree with its header.  The message names the
        file and the problem.
    """
    p = _as_path(path)
    bk = _backends.get(backend)
    cast = None if dtype is None else _backends.float_dtype(dtype)
    f, zf = _open_archive(p)
    with f, zf:
        names = _member_names(p, zf)
        header = _read_header(p, zf, names)
        manifest = header["arrays"]
        present = set(names) - {HEADER_KEY}
        missing = sorted(set(manifest) - present)
        extra = sorted(present - set(manifest))
        if missing:
            raise _bad(p, f"arrays listed in the header are missing from the archive: {missing}")
        if extra:
            raise _bad(p, f"archive holds arrays the header does not list: {extra}")
        for name in sorted(manifest):
            spec = manifest[name]
            if (
                not isinstance(spec, dict)
                or spec.get("dtype") not in _FLOATS
                or not isinstance(spec.get("shape"), list)
                or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in spec["shape"])
            ):
                raise _bad(p, f"header entry for {name!r}: expected a float32/float64 dtype and a shape, "
                              f"got {spec!r:.120}")
        host = {}
        for name in sorted(manifest):
            host[name] = _read_member(p, zf, name, manifest[name])
    if _digest(host) != header["sha256"]:
        raise _bad(p, "corrupt: the sha256 of the arrays does not match the header")
    host = {k: (v if v.dtype.isnative else v.astype(v.dtype.newbyteorder("="))) for k, v in host.items()}

    params_h = {k[len(_PARAM):]: v for k, v in host.items() if k.startswith(_PARAM)}
    unknown = sorted(k for k in host if not k.startswith((_PARAM, _OPT)))
    if unknown:
        raise _bad(p, f"arrays outside 'param/' and 'opt/': {unknown}")
    try:
        L = check_parameters(params_h, "parameters")
    except (TypeError, ValueError) as exc:
        raise _bad(p, f"inconsistent parameters: {exc}") from None
    expected = {f"{q}{l}" for l in range(1, L + 1) for q in "Wb"}
    if set(params_h) != expected:
        raise _bad(p, f"unexpected parameter arrays {sorted(set(params_h) - expected)} for L = {L} layers")
    dims = _layer_dims(params_h, L)
    if header["layer_dims"] != dims:
        raise _bad(p, f"header layer_dims {header['layer_dims']} do not match the parameter shapes, which give {dims}")
    if header["dtype"] != params_h["W1"].dtype.name:
        raise _bad(p, f"header dtype {header['dtype']!r} does not match the parameters' {params_h['W1'].dtype.name}")

    opt_state = _load_optimizer(p, header, host, params_h, L)

    def move(a):
        return bk.asarray(a, dtype=cast)

    parameters = {k: move(params_h[k]) for k in sorted(expected, key=_grad_order_p)}
    if opt_state is not None:
        opt_state = {
            k: ({n: move(a) for n, a in v.items()} if isinstance(v, dict) else v) for k, v in opt_state.items()
        }
    return Checkpoint(parameters, opt_state, copy.deepcopy(header["metadata"]), header)


def _load_optimizer(p, header, host, params_h, L):
    opt = header["optimizer"]
    opt_names = {k for k in host if k.startswith(_OPT)}
    if opt is None:
        if opt_names:
            raise _bad(p, f"optimizer arrays {sorted(opt_names)} but the header records no optimizer state")
        return None
    if not (isinstance(opt, dict) and isinstance(opt.get("scalars", {}), dict)
            and isinstance(opt.get("arrays", {}), dict)):
        raise _bad(p, f"header 'optimizer': expected {{'scalars': {{...}}, 'arrays': {{...}}}}, got {opt!r:.120}")
    shapes = _grad_shapes(params_h, L)
    state = dict(opt.get("scalars", {}))
    listed = set()
    for group, names in opt.get("arrays", {}).items():
        if not isinstance(group, str) or not _GROUP_RE.match(group) or not isinstance(names, list):
            raise _bad(p, f"header 'optimizer': bad array group {group!r}")
        if set(names) != set(shapes):
            raise _bad(p, f"optimizer group {group!r} holds {sorted(map(str, names))}, expected dW1..dW{L}, db1..db{L}")
        state[group] = {}
        for n in sorted(names, key=_grad_order):
            key = f"{_OPT}{group}/{n}"
            if key not in host:
                raise _bad(p, f"optimizer array {key!r} is missing")
            a = host[key]
            if tuple(a.shape) != shapes[n] or a.dtype != params_h["W1"].dtype:
                raise _bad(
                    p,
                    f"optimizer array {key!r} has shape {tuple(a.shape)} dtype {a.dtype}, expected "
                    f"{shapes[n]} {params_h['W1'].dtype} like the parameters",
                )
            state[group][n] = a
            listed.add(key)
    if opt_names - listed:
        raise _bad(p, f"optimizer arrays not described in the header: {sorted(opt_names - listed)}")
    return state


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
        Compared with the layer sizes derived from the saved parameter shapes.
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
        raise TypeError(
            "checkpoint_or_header: expected a Checkpoint or its header dict, got "
            f"{type(checkpoint_or_header).__name__}"
        )
    if header.get("format") != FORMAT or "layer_dims" not in header:
        raise ValueError(
            f"checkpoint_or_header: expected a bpnet checkpoint header (format {FORMAT!r} with layer_dims), "
            f"got a dict with keys {sorted(map(str, header))[:10]}"
        )
    dims = check_layer_dims(layer_dims)
    problems = []
    saved = header["layer_dims"]
    if saved != dims:
        problems.append(f"saved for layer_dims {saved}, expected {dims}")
    meta = header.get("metadata") or {}
    nested = meta.get("model") if isinstance(meta.get("model"), dict) else {}
    for key, want in (
        ("hidden_activation", hidden_activation),
        ("output_activation", output_activation),
        ("loss", loss),
    ):
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
