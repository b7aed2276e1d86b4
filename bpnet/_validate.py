"""One validation vocabulary: every check and every conversion of user input lives here.

Wrong kind or dtype raises ``TypeError``, wrong shape or value ``ValueError``;
each message names the argument, what was expected and what came.  Checks
that read array *values* (NaN/inf, label values) bring one boolean to the
host; they run where data enter, never per layer.

Two families:

* scalars: :func:`real`, :func:`integer`, :func:`choice`, :func:`flag`;
* arrays: :func:`as_features` and :func:`as_labels` turn what a user passes
  (a list, a DataFrame, int or float16 data, an array of another backend or
  device) into a checked array on a given backend, with the same answer at
  every entry point; the ``check_*`` functions check arrays the caller built.

The course-compatible functions refuse only what the course's code cannot
compute or shapes that do not fit together; input they compute with but
which is probably a mistake (labels outside {0, 1}, say) gets a
:class:`CourseInputWarning` from :func:`warn_course_input`.
"""

from __future__ import annotations

import math
import numbers
import os
import sys
import warnings

import array_api_compat
import numpy as np

from .backends import Backend, describe, dtype_str, float_dtype, namespace_of, to_numpy


class CourseInputWarning(UserWarning):
    """Input the course's functions compute with, but which is probably a mistake.

    The course-compatible functions accept every input for which the course's
    code returns numbers, and return the same numbers; they warn with this
    class where such an input is suspicious (labels outside {0, 1}, ``AL``
    outside [0, 1] for a log-loss, NaN labels).  Silence it with
    ``warnings.simplefilter("ignore", bpnet.CourseInputWarning)``.
    """


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn_course_input(message: str) -> None:
    """Warn with :class:`CourseInputWarning`, pointing at the first caller outside bpnet."""
    frame, level = sys._getframe(1), 2
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, CourseInputWarning, stacklevel=level)


# --------------------------------------------------------------------------- #
# scalars


def _bound(low, high, low_open, high_open) -> str:
    def f(x):
        return str(x) if isinstance(x, int) else f"{x:g}"

    if high is None:
        return f"{'>' if low_open else '>='} {f(low)}"
    if low is None:
        return f"{'<' if high_open else '<='} {f(high)}"
    return f"in {'(' if low_open else '['}{f(low)}, {f(high)}{')' if high_open else ']'}"


def real(value, name: str, *, low=None, high=None, low_open=False, high_open=False) -> float:
    """A finite real number within the bounds, as a Python float."""
    bound = "" if low is None and high is None else " " + _bound(low, high, low_open, high_open)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number{bound}, got {type(value).__name__} {value!r}")
    v = float(value)
    if not math.isfinite(v) or (low is not None and (v < low or (low_open and v == low))) \
            or (high is not None and (v > high or (high_open and v == high))):
        raise ValueError(f"{name}: expected a finite number{bound}, got {value!r}")
    return v


def integer(value, name: str, *, low=None, high=None) -> int:
    """An integer (not a bool) within ``[low, high]``, as a Python int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__} {value!r}")
    v = int(value)
    if (low is not None and v < low) or (high is not None and v > high):
        bound = "> 0" if (low == 1 and high is None) else _bound(low, high, False, False)
        raise ValueError(f"{name}: expected an integer {bound}, got {value!r}")
    return v


def choice(value, name: str, choices, *, what: str | None = None):
    """One of ``choices`` (a sequence or a dict's keys); the message lists them."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}: unknown {what or name} {value!r}; expected one of "
                         f"{', '.join(map(repr, choices))}")
    return value


def flag(value, name: str) -> bool:
    """True or False (numpy's bool too)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def seed(value, name: str = "seed") -> int:
    """A non-negative integer seed."""
    return integer(value, name, low=0)


def layer_dims(value, name: str = "layer_dims") -> list[int]:
    """``[n_x, n_1, ..., n_L]``: at least two positive integers."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise TypeError(f"{name}: expected a list of layer sizes like [n_x, n_1, ..., n_L], got {value!r}")
    dims = list(value)
    if len(dims) < 2:
        raise ValueError(f"{name}: expected at least 2 sizes (input and output), got {dims!r}")
    for i, n in enumerate(dims):
        if isinstance(n, bool) or not isinstance(n, numbers.Integral):
            raise TypeError(f"{name}: expected positive integers, got {n!r} at position {i} of {dims!r}")
        if n <= 0:
            raise ValueError(f"{name}: expected positive integers, got {n!r} at position {i} of {dims!r}")
    return [int(n) for n in dims]


def n_parameters(dims) -> int:
    """Parameters of a ``layer_dims`` network: ``W[l]`` ``(n_l, n_{l-1})`` and ``b[l]`` ``(n_l, 1)`` of every layer."""
    return sum(dims[l] * (dims[l - 1] + 1) for l in range(1, len(dims)))


def host_memory() -> int | None:
    """Bytes of this machine's physical memory and swap, or None where the system does not say."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows), or no such name
        return None
    try:
        with open("/proc/meminfo") as f:
            total += next((int(line.split()[1]) * 1024 for line in f if line.startswith("SwapTotal:")), 0)
    except (OSError, ValueError, IndexError):
        pass
    return total if total > 0 else None


def human_bytes(n: int) -> str:
    """``1536 -> "1.5 KiB"`` (binary units)."""
    k = min(4, int(math.log(n, 1024))) if n >= 1024 else 0
    return f"{n} B" if k == 0 else f"{n / 1024**k:.1f} {('KiB', 'MiB', 'GiB', 'TiB')[k - 1]}"


def fits_memory(dims: list[int], item: int, name: str = "layer_dims") -> None:
    """Refuse (``MemoryError`` naming ``name``) a network whose parameters, with the float64 draw of its largest
    layer, exceed :func:`host_memory`: it could only end killed by the system, without a message."""
    n = n_parameters(dims)
    draw = max(dims[l] * dims[l - 1] for l in range(1, len(dims))) * 8
    have = host_memory()
    if have is not None and n * item + draw > have:
        raise MemoryError(f"{name}: the {'-'.join(map(str, dims))} network has {n:,} parameters, "
                          f"{human_bytes(n * item)} as float{8 * item} (and {human_bytes(draw)} more to draw its "
                          f"largest layer), more than this machine's {human_bytes(have)} of memory and swap: "
                          "use fewer or smaller layers")


# --------------------------------------------------------------------------- #
# arrays the caller built


def is_array(x) -> bool:
    return array_api_compat.is_array_api_obj(x) and not isinstance(x, (numbers.Number, bool))


def _kind(x) -> str:
    t = type(x)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__name__}"


def check_float_matrix(x, name: str, *, ndim: int = 2):
    """``x`` is an array of real floating dtype with ``ndim`` dimensions; returns its namespace."""
    if not is_array(x):
        raise TypeError(f"{name}: expected a 2-D floating array (numpy, cupy or array_api_strict), "
                        f"got {type(x).__module__}.{type(x).__name__}")
    xp = array_api_compat.array_namespace(x)
    if not xp.isdtype(x.dtype, "real floating"):
        raise TypeError(f"{name}: expected a real floating dtype (float32 or float64), got "
                        f"{dtype_str(x.dtype)} ({describe(x)}); convert it first, e.g. xp.astype({name}, xp.float64)")
    if x.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {tuple(x.shape)}")
    return xp


def check_nonempty(x, name: str, what: str = "m (examples, columns)") -> None:
    if any(d == 0 for d in x.shape):
        raise ValueError(f"{name}: expected a non-empty array, got shape {tuple(x.shape)} ({what} is 0)")


#: elements of a 2-D array checked for NaN/inf at a time: no boolean temporary as large as the data
FINITE_BLOCK = 1 << 22


def check_finite(xp, x, name: str) -> None:
    """``x`` holds no NaN or inf (one host sync), checked a block of columns at a time."""
    step = max(1, FINITE_BLOCK // max(1, x.shape[0])) if x.ndim == 2 else None
    blocks = [x] if step is None or x.shape[1] <= step else [x[:, i:i + step] for i in range(0, x.shape[1], step)]
    if not all_finite(xp, blocks):
        n_nan = int(xp.sum(xp.astype(xp.isnan(x), xp.int64)))
        n_inf = int(xp.sum(xp.astype(xp.isinf(x), xp.int64)))
        raise ValueError(f"{name}: expected finite values, got {n_nan} NaN and {n_inf} inf "
                         f"in an array of shape {tuple(x.shape)}")


def all_finite(xp, arrays) -> bool:
    """No NaN or inf in any of ``arrays`` (one host sync)."""
    ok = None
    for a in arrays:
        f = xp.all(xp.isfinite(a))
        ok = f if ok is None else xp.logical_and(ok, f)
    return ok is None or bool(ok)


def same_dtype(pairs) -> None:
    """All named arrays share one dtype (no silent up-cast)."""
    first = None
    for name, x in pairs:
        if first is None:
            first = (name, x)
        elif x.dtype != first[1].dtype:
            raise TypeError(f"{name} has dtype {dtype_str(x.dtype)} but {first[0]} has {dtype_str(first[1].dtype)}; "
                            "bpnet does not mix precisions (cast one of them with xp.astype)")


def n_layers(parameters) -> int:
    """L, counting W1, W2, ... (no validation)."""
    L = 0
    while f"W{L + 1}" in parameters:
        L += 1
    return L


def param_keys(L: int, prefix: str = "") -> list[str]:
    """``W1, b1, ..., WL, bL`` (``prefix="d"``: ``dW1, db1, ...``), in the course's order."""
    return [f"{prefix}{p}{l}" for l in range(1, L + 1) for p in "Wb"]


def check_parameters(parameters, name: str = "parameters", *, chain: bool = True) -> int:
    """``parameters`` holds ``W1, b1, ..., WL, bL`` on one backend, in one dtype; returns L.

    Each ``b{l}`` is ``(n_l, 1)`` like the rows of ``W{l}``; with ``chain`` (a
    forward pass needs it) each ``W{l}`` also has as many columns as ``W{l-1}``
    has rows.  The update and initialisation functions pass ``chain=False``:
    they work array by array, as the course's tests call them.
    """
    if not isinstance(parameters, dict):
        raise TypeError(f"{name}: expected a dict with keys W1, b1, ..., WL, bL, got {type(parameters).__name__}")
    L = n_layers(parameters)
    if L == 0:
        raise ValueError(f"{name}: expected keys W1, b1, ..., WL, bL, got keys {sorted(map(str, parameters))}")
    expected = set(param_keys(L))
    missing = [k for k in param_keys(L) if k not in parameters]
    extra = sorted(k for k in map(str, parameters.keys() - expected) if k.startswith(("W", "b")))
    if missing:
        raise ValueError(f"{name}: missing keys {missing} (found W1..W{L})")
    if extra:
        raise ValueError(f"{name}: unexpected keys {extra} for an L = {L} layer network")
    for l in range(1, L + 1):
        W, b = parameters[f"W{l}"], parameters[f"b{l}"]
        check_float_matrix(W, f"{name}['W{l}']")
        check_float_matrix(b, f"{name}['b{l}']")
        if tuple(b.shape) != (W.shape[0], 1):
            raise ValueError(f"{name}['b{l}']: expected shape ({W.shape[0]}, 1) to match W{l} of shape "
                             f"{tuple(W.shape)}, got {tuple(b.shape)}")
        if chain and l > 1 and W.shape[1] != parameters[f"W{l - 1}"].shape[0]:
            Wp = parameters[f"W{l - 1}"]
            raise ValueError(f"{name}['W{l}']: expected {Wp.shape[0]} columns (W{l - 1} has shape "
                             f"{tuple(Wp.shape)}), got shape {tuple(W.shape)}")
    arrays = {f"{name}['{k}']": parameters[k] for k in param_keys(L)}
    namespace_of(**arrays)
    same_dtype(arrays.items())
    return L


def check_slots(d, name: str, parameters, L: int, hint: str = "") -> None:
    """``d`` holds ``dW1, db1, ..., dWL, dbL`` shaped, typed and placed like the parameters."""
    if not isinstance(d, dict):
        raise TypeError(f"{name}: expected a dict with keys dW1, db1, ..., dW{L}, db{L}{hint}, got {type(d).__name__}")
    for key in param_keys(L, "d"):
        if key not in d:
            raise ValueError(f"{name}: missing key {key!r} (parameters has L = {L} layers){hint}")
        g, theta = d[key], parameters[key[1:]]
        if not is_array(g):
            raise TypeError(f"{name}[{key!r}]: expected an array, got {_kind(g)}")
        # the parameter first, so the messages lead with the argument at fault
        namespace_of(**{f"parameters['{key[1:]}']": theta, f"{name}[{key!r}]": g})
        if tuple(g.shape) != tuple(theta.shape):
            raise ValueError(f"{name}[{key!r}]: expected shape {tuple(theta.shape)} like parameters['{key[1:]}'], "
                             f"got {tuple(g.shape)}")
        same_dtype([(f"parameters['{key[1:]}']", theta), (f"{name}[{key!r}]", g)])


def check_rows(X, n_x: int, name: str, context: str) -> None:
    """X is ``(n_x, m)``; ``context`` says where ``n_x`` comes from; a hint when X looks transposed."""
    if X.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array, got shape {tuple(X.shape)}")
    if X.shape[0] != n_x:
        hint = ""
        if X.shape[1] == n_x:
            hint = "; it looks transposed: bpnet takes examples as columns, pass " + f"{name}.T"
        raise ValueError(f"{name}: expected shape ({n_x}, m) {context}, got {tuple(X.shape)}{hint}")


def prepare_labels(Y, AL, name: str = "Y", alname: str = "AL"):
    """Labels in the dtype and shape ``(n_L, m)`` of ``AL`` (shapes only; no value check).

    Integer and boolean labels are cast to ``AL``'s dtype; a 1-D ``Y`` of length
    m is accepted for a single output unit.
    """
    if not is_array(Y):
        raise TypeError(f"{name}: expected an array of labels, got {type(Y).__module__}.{type(Y).__name__}")
    xp = namespace_of(**{alname: AL, name: Y})
    if Y.ndim == 1 and AL.shape[0] == 1:
        Y = xp.reshape(Y, (1, Y.shape[0]))
    if Y.ndim != 2:
        raise ValueError(f"{name}: expected shape {tuple(AL.shape)}, got {tuple(Y.shape)}")
    _label_dtype(xp, Y, name)
    if Y.dtype != AL.dtype:
        Y = xp.astype(Y, AL.dtype)
    if tuple(Y.shape) != tuple(AL.shape):
        if Y.shape[1] != AL.shape[1]:
            raise ValueError(f"{name}: expected {AL.shape[1]} examples (columns) like {alname} of shape "
                             f"{tuple(AL.shape)}, got shape {tuple(Y.shape)}")
        rows = "rows" if AL.shape[0] != 1 else "row"
        hint = " (categorical losses need one-hot Y of shape (n_classes, m))" if AL.shape[0] > 1 else ""
        raise ValueError(f"{name}: expected {AL.shape[0]} {rows} (output units) like {alname} of shape "
                         f"{tuple(AL.shape)}, got shape {tuple(Y.shape)}{hint}")
    return Y


def _label_dtype(xp, Y, name):
    if xp.isdtype(Y.dtype, "complex floating"):
        raise TypeError(f"{name}: expected real labels, got dtype {dtype_str(Y.dtype)}")
    if not xp.isdtype(Y.dtype, ("real floating", "integral", "bool")):
        # e.g. a numpy object or string array: a cast could run arbitrary __float__ or fail half-way
        raise TypeError(f"{name}: expected real labels (floating, integer or bool dtype), got dtype "
                        f"{dtype_str(Y.dtype)}")


# --------------------------------------------------------------------------- #
# user input -> checked arrays on a backend (the same answer at every entry point)


def to_backend(x, name: str, bk: Backend, dtype=None, *, labels: bool = False):
    """``x`` on backend ``bk`` (no copy when already there in ``dtype``).

    Takes arrays of any backend or device and anything ``numpy.asarray`` takes
    (lists, DataFrames); features must be real numbers (integers and float16
    are cast to ``dtype``), labels may also be booleans.  Complex, object and
    text data are refused before a cast could drop or invent anything.
    """
    want = "real numbers or booleans" if labels else "real numbers (a floating or integer dtype)"
    kinds = ("real floating", "integral", "bool") if labels else ("real floating", "integral")
    if array_api_compat.is_array_api_obj(x) and not array_api_compat.is_numpy_array(x):
        xp = array_api_compat.array_namespace(x)
        if not xp.isdtype(x.dtype, kinds):
            raise TypeError(f"{name}: expected {want}, got {dtype_str(x.dtype)}")
        if xp is bk.xp and array_api_compat.device(x) == bk.device:
            if dtype is None or dtype_str(x.dtype) == float_dtype(dtype):
                return x
            _check_fits(xp, x, name, dtype)
            return xp.astype(x, bk.dtype(dtype))
        x = to_numpy(x)
    try:
        host = np.asarray(x)
    except (ValueError, TypeError) as exc:  # e.g. a ragged nested list
        raise TypeError(f"{name}: expected an array of real numbers, got a {type(x).__name__} that is not one "
                        f"({exc})") from None
    if host.dtype.kind not in ("f", "i", "u") + (("b",) if labels else ()):
        raise TypeError(f"{name}: expected {want}, got {host.dtype} ({type(x).__name__})")
    if dtype is not None:
        _check_fits(np, host, name, dtype)
    return bk.asarray(host, dtype=dtype)


def _check_fits(xp, x, name, dtype):
    """A cast to float32 must not overflow to inf (one host sync, only for that cast)."""
    if float_dtype(dtype) != "float32" or dtype_str(x.dtype) not in ("float64", "int64", "uint64") \
            or 0 in tuple(x.shape):
        return
    biggest = float(xp.max(xp.abs(x)))  # NaN/inf: left to the finiteness check that follows the cast
    limit = float(np.finfo(np.float32).max)
    if math.isfinite(biggest) and biggest > limit:
        raise ValueError(f"{name}: expected values that fit in float32 (|x| <= {limit:.4g}), got values up to "
                         f"{biggest:.4g}; rescale the data (e.g. standardise it) or use dtype='float64'")


def as_features(X, name: str, bk: Backend, dtype, n_x: int, context: str):
    """Features ``(n_x, m)`` on ``bk`` in ``dtype``: converted, shape-checked, non-empty, finite."""
    X = to_backend(X, name, bk, dtype)
    check_rows(X, n_x, name, context)
    check_nonempty(X, name)
    check_finite(bk.xp, X, name)
    return X


#: what each kind of target allows, for :func:`check_label_values`
TARGETS = ("binary", "onehot", "real")


def as_labels(Y, name: str, bk: Backend, dtype, n_out: int, m: int, target: str, context: str, *,
              strict: bool = True):
    """Labels ``(n_out, m)`` on ``bk`` in ``dtype``, checked for ``target`` (one of :data:`TARGETS`).

    A 1-D ``Y`` of length m is a row for one output unit, or class indices
    (integers in ``[0, n_out)``) for a one-hot target.  ``strict=False`` (the
    course-compatible functions, which compute with any real labels) warns
    with :class:`CourseInputWarning` where ``strict`` would refuse the values.
    """
    xp = bk.xp
    Y = to_backend(Y, name, bk, labels=True)
    if Y.ndim == 1:
        Y = _from_1d(xp, bk, Y, name, n_out, m, target)
    if Y.ndim != 2 or tuple(Y.shape) != (n_out, m):
        hint = " (one-hot of shape (n_classes, m), or 1-D class indices of length m)" if target == "onehot" else ""
        raise ValueError(f"{name}: expected shape ({n_out}, {m}) {context}{hint}, got {tuple(Y.shape)}")
    Y = xp.astype(Y, bk.dtype(dtype))
    check_finite(xp, Y, name)
    check_label_values(xp, Y, target, name, warn=not strict)
    return Y


def _from_1d(xp, bk, Y, name, n_out, m, target):
    if Y.shape[0] != m:
        raise ValueError(f"{name}: expected {m} labels like the columns of X, got shape {tuple(Y.shape)}")
    if target != "onehot":
        return xp.reshape(Y, (1, m))
    if not xp.isdtype(Y.dtype, "integral"):
        raise TypeError(f"{name}: 1-D labels for softmax must be class indices (integers), got {dtype_str(Y.dtype)}")
    if xp.isdtype(Y.dtype, "unsigned integer") and Y.dtype != xp.uint8:
        # torch implements few operations on uint16/32/64; indices >= 2**63 wrap below 0 and are refused
        Y = xp.astype(Y, xp.int64)
    lo, hi = int(xp.min(Y)), int(xp.max(Y))
    if lo < 0 or hi >= n_out:
        raise ValueError(f"{name}: class indices must be in [0, {n_out - 1}] for {n_out} output units, "
                         f"got values from {lo} to {hi}")
    classes = xp.arange(n_out, dtype=Y.dtype, device=bk.device)  # Y's integer dtype: no promotion
    return xp.reshape(classes, (n_out, 1)) == xp.reshape(Y, (1, m))


def check_label_values(xp, Y, target: str, name: str = "Y", *, warn: bool = False) -> None:
    """0/1 labels for a ``"binary"`` target, one-hot columns for ``"onehot"`` (one host sync each).

    ``warn``: a :class:`CourseInputWarning` instead of the ``ValueError``, and the labels are kept.
    """
    if target == "real":
        return
    message = None
    if not bool(xp.all((Y == 0.0) | (Y == 1.0))):
        host = to_numpy(Y)
        bad = np.unique(host[(host != 0.0) & (host != 1.0)])
        message = (f"{name}: expected labels 0 or 1{' (one-hot)' if target == 'onehot' else ''}, got "
                   f"{bad.size} other value{'s' if bad.size != 1 else ''} such as "
                   f"{', '.join(f'{v:g}' for v in bad[:3])}")
    elif target == "onehot" and not bool(xp.all(xp.sum(Y, axis=0) == 1.0)):
        col = int(np.flatnonzero(to_numpy(Y).sum(axis=0) != 1.0)[0])
        message = (f"{name}: expected one-hot columns (exactly one 1 per example), got "
                   f"{int(to_numpy(Y)[:, col].sum())} ones in column {col}")
    if message is None:
        return
    if not warn:
        raise ValueError(message)
    warn_course_input(message + "; computing with them as the course's code does")
