"""Input validation shared by the public functions.

Every check raises ``TypeError`` (wrong kind or dtype) or ``ValueError``
(wrong shape or value) with a message that names the argument, what was
expected and what came.  Checks that read array *values* (NaN/inf) bring one
boolean to the host; they run on data entering the API, never per layer.
"""

from __future__ import annotations

import math
import numbers

import array_api_compat

from .backends import _dtype_str, describe, namespace_of


def is_array(x) -> bool:
    return array_api_compat.is_array_api_obj(x) and not isinstance(x, (numbers.Number, bool))


def check_float_matrix(x, name: str, *, ndim: int = 2):
    """``x`` must be an array of real floating dtype with ``ndim`` dimensions."""
    if not is_array(x):
        raise TypeError(
            f"{name}: expected a 2-D floating array (numpy, cupy or array_api_strict), "
            f"got {type(x).__module__}.{type(x).__name__}"
        )
    xp = array_api_compat.array_namespace(x)
    if not xp.isdtype(x.dtype, "real floating"):
        raise TypeError(
            f"{name}: expected a real floating dtype (float32 or float64), got "
            f"{_dtype_str(x.dtype)} ({describe(x)}); convert it first, e.g. "
            f"xp.astype({name}, xp.float64)"
        )
    if x.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {tuple(x.shape)}")
    return xp


def check_nonempty(x, name: str, what: str = "m (examples, columns)"):
    if any(d == 0 for d in x.shape):
        raise ValueError(f"{name}: expected a non-empty array, got shape {tuple(x.shape)} ({what} is 0)")


def check_finite(xp, x, name: str) -> None:
    """``x`` holds no NaN or inf (one host sync)."""
    if not bool(xp.all(xp.isfinite(x))):
        n_nan = int(xp.sum(xp.astype(xp.isnan(x), xp.int64)))
        n_inf = int(xp.sum(xp.astype(xp.isinf(x), xp.int64)))
        raise ValueError(
            f"{name}: expected finite values, got {n_nan} NaN and {n_inf} inf "
            f"in an array of shape {tuple(x.shape)}"
        )


def same_dtype(pairs) -> None:
    """All named arrays share one dtype (no silent up-cast)."""
    first = None
    for name, x in pairs:
        if first is None:
            first = (name, x)
        elif x.dtype != first[1].dtype:
            raise TypeError(
                f"{name} has dtype {_dtype_str(x.dtype)} but {first[0]} has "
                f"{_dtype_str(first[1].dtype)}; bpnet does not mix precisions "
                f"(cast one of them with xp.astype)"
            )


def check_parameters(parameters, name: str = "parameters") -> int:
    """``parameters`` holds ``W1, b1, ..., WL, bL`` of consistent shapes; returns L."""
    if not isinstance(parameters, dict):
        raise TypeError(f"{name}: expected a dict with keys W1, b1, ..., WL, bL, got {type(parameters).__name__}")
    L = 0
    while f"W{L + 1}" in parameters:
        L += 1
    if L == 0:
        raise ValueError(f"{name}: expected keys W1, b1, ..., WL, bL, got keys {sorted(parameters)}")
    expected = {f"{p}{l}" for l in range(1, L + 1) for p in "Wb"}
    missing = sorted(expected - parameters.keys(), key=_key_order)
    extra = sorted(k for k in parameters.keys() - expected if k.startswith(("W", "b")))
    if missing:
        raise ValueError(f"{name}: missing keys {missing} (found W1..W{L})")
    if extra:
        raise ValueError(f"{name}: unexpected keys {extra} for an L = {L} layer network")
    arrays = {}
    for l in range(1, L + 1):
        W, b = parameters[f"W{l}"], parameters[f"b{l}"]
        check_float_matrix(W, f"{name}['W{l}']")
        check_float_matrix(b, f"{name}['b{l}']")
        arrays[f"W{l}"], arrays[f"b{l}"] = W, b
        if tuple(b.shape) != (W.shape[0], 1):
            raise ValueError(
                f"{name}['b{l}']: expected shape ({W.shape[0]}, 1) to match W{l} of shape "
                f"{tuple(W.shape)}, got {tuple(b.shape)}"
            )
        if l > 1:
            Wp = parameters[f"W{l - 1}"]
            if W.shape[1] != Wp.shape[0]:
                raise ValueError(
                    f"{name}['W{l}']: expected {Wp.shape[0]} columns (W{l - 1} has shape "
                    f"{tuple(Wp.shape)}), got shape {tuple(W.shape)}"
                )
    namespace_of(**arrays)
    same_dtype(arrays.items())
    return L


def _key_order(k: str):
    return (int(k[1:]) if k[1:].isdigit() else 0, k[0])


def check_X_matches(X, W1, xname: str = "X", wname: str = "W1") -> None:
    """X (n_x, m) has the n_x rows that W1 (n_1, n_x) expects."""
    n_x = W1.shape[1]
    if X.shape[0] != n_x:
        hint = ""
        if X.shape[1] == n_x:
            hint = (
                f"; it looks transposed: bpnet's functional API takes examples as "
                f"columns, pass {xname}.T"
            )
        raise ValueError(
            f"{xname}: expected shape ({n_x}, m) to match {wname} of shape "
            f"{tuple(W1.shape)}, got {tuple(X.shape)}{hint}"
        )


def prepare_labels(Y, AL, name: str = "Y", alname: str = "AL"):
    """Bring labels to the dtype and shape ``(n_L, m)`` of ``AL``.

    Integer and boolean labels are cast to ``AL``'s dtype; a 1-D ``Y`` of length
    m is accepted for a single output unit.  ``alname`` names ``AL`` in error
    messages (e.g. "the network output for X").
    """
    if not is_array(Y):
        raise TypeError(
            f"{name}: expected an array of labels, got {type(Y).__module__}.{type(Y).__name__}"
        )
    xp = namespace_of(**{alname: AL, name: Y})
    if Y.ndim == 1 and AL.shape[0] == 1:
        Y = xp.reshape(Y, (1, Y.shape[0]))
    if Y.ndim != 2:
        raise ValueError(f"{name}: expected shape {tuple(AL.shape)}, got {tuple(Y.shape)}")
    if xp.isdtype(Y.dtype, "complex floating"):
        raise TypeError(f"{name}: expected real labels, got dtype {_dtype_str(Y.dtype)}")
    if not xp.isdtype(Y.dtype, ("real floating", "integral", "bool")):
        # e.g. a numpy object or string array: a cast could run arbitrary __float__ or fail half-way
        raise TypeError(f"{name}: expected real labels (floating, integer or bool dtype), got dtype "
                        f"{_dtype_str(Y.dtype)}")
    if Y.dtype != AL.dtype:
        Y = xp.astype(Y, AL.dtype)
    if tuple(Y.shape) != tuple(AL.shape):
        if Y.shape[1] != AL.shape[1]:
            raise ValueError(
                f"{name}: expected {AL.shape[1]} examples (columns) like {alname} of shape "
                f"{tuple(AL.shape)}, got shape {tuple(Y.shape)}"
            )
        raise ValueError(
            f"{name}: expected {AL.shape[0]} row{'s' if AL.shape[0] != 1 else ''} (output units) like {alname} of shape "
            f"{tuple(AL.shape)}, got shape {tuple(Y.shape)}"
            + (" (categorical losses need one-hot Y of shape (n_classes, m))" if AL.shape[0] > 1 else "")
        )
    return Y


def check_positive_real(value, name: str, *, allow_zero: bool = False) -> float:
    """A finite real number > 0 (or >= 0); returns it as float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__} {value!r}")
    v = float(value)
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}: expected a finite number {bound}, got {value!r}")
    return v


def check_positive_int(value, name: str, *, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__} {value!r}")
    v = int(value)
    if v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"{name}: expected an integer {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return v


def check_slots(d, name: str, parameters, L: int, hint: str = "") -> None:
    """``d`` holds ``dW1, db1, ..., dWL, dbL`` shaped, typed and placed like the parameters."""
    if not isinstance(d, dict):
        raise TypeError(f"{name}: expected a dict with keys dW1, db1, ..., dW{L}, db{L}{hint}, got {type(d).__name__}")
    for l in range(1, L + 1):
        for p in "Wb":
            key = f"d{p}{l}"
            if key not in d:
                raise ValueError(f"{name}: missing key {key!r} (parameters has L = {L} layers){hint}")
            g, theta = d[key], parameters[f"{p}{l}"]
            if not is_array(g):
                kind = type(g).__name__ if type(g).__module__ == "builtins" else f"{type(g).__module__}.{type(g).__name__}"
                raise TypeError(f"{name}[{key!r}]: expected an array, got {kind}")
            # the parameter first, so the messages lead with the argument at fault
            namespace_of(**{f"parameters['{p}{l}']": theta, f"{name}[{key!r}]": g})
            if tuple(g.shape) != tuple(theta.shape):
                raise ValueError(
                    f"{name}[{key!r}]: expected shape {tuple(theta.shape)} like parameters['{p}{l}'], "
                    f"got {tuple(g.shape)}"
                )
            same_dtype([(f"parameters['{p}{l}']", theta), (f"{name}[{key!r}]", g)])
