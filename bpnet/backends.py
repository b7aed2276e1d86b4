"""Backend selector: which array library (and device) bpnet computes on.

bpnet's math is written once against the Python Array API standard and takes
its namespace from its inputs.  This module only decides *where new arrays are
created* (initial weights, data moved from the host) and how they come back.

Backends
--------
``"numpy"``
    CPU, always available.
``"array_api_strict"``
    The reference implementation of the standard (CPU).  It rejects every
    numpy-ism and every forgotten ``device=``, which makes it our stand-in for
    a GPU in tests.  It exposes several logical devices (``"CPU_DEVICE"``,
    ``"device1"``, ...); arrays from two of them cannot be combined.
``"cupy"``
    NVIDIA GPU through CuPy (``pip install 'bpnet[cuda12]'`` or ``[cuda13]``).
``"torch"``
    PyTorch (``pip install 'bpnet[torch]'``) through ``array_api_compat.torch``;
    devices ``"cpu"`` (the default), ``"cuda"``/``"cuda:N"`` and ``"mps"``.
``"jax"``
    JAX (``pip install 'bpnet[jax]'``); its default device (a GPU when jax sees
    one, else ``"cpu:0"``), or ``"cpu"``/``"gpu"``/``"gpu:N"``.  Resolving it
    turns on ``jax_enable_x64`` (``jax.config.update("jax_enable_x64", True)``),
    so that float64 is float64 as on every other backend.  JAX arrays are
    immutable: the training step returns new arrays there (and is compiled
    with ``jax.jit``) instead of writing in place.
``"auto"``
    ``"cupy"`` when cupy imports *and* ``cupy.cuda.is_available()`` is true,
    else ``"numpy"``.

Resolution order of :func:`get`: the explicit ``name`` argument, else the
``BPNET_BACKEND`` environment variable, else ``"auto"``.  A name may carry a
device after a colon, e.g. ``"array_api_strict:device1"`` or ``"cupy:1"``.

Importing :mod:`bpnet` never imports cupy, torch or jax; each is imported the
first time its backend is resolved (or :func:`available` asks).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable

import array_api_compat
import numpy as np

__all__ = [
    "Backend",
    "BackendUnavailableError",
    "ENV_VAR",
    "NAMES",
    "available",
    "get",
    "namespace_of",
    "describe",
    "unavailable_reasons",
    "to_numpy",
    "backend_of",
    "spec",
    "float_dtype",
    "dtype_str",
    "device_str",
    "compiler",
    "numpy_backed",
    "fast",
]

ENV_VAR = "BPNET_BACKEND"
NAMES = ("numpy", "array_api_strict", "cupy", "torch", "jax", "auto")

_CUPY_NOT_INSTALLED = (
    "cupy is not installed (pip install 'bpnet[cuda12]' or 'bpnet[cuda13]', "
    "matching your CUDA driver)"
)
_CUPY_NO_GPU = "cupy is installed but no usable CUDA GPU/driver was found"
_TORCH_NOT_INSTALLED = "torch is not installed (pip install 'bpnet[torch]')"
_JAX_NOT_INSTALLED = "jax is not installed (pip install 'bpnet[jax]')"


class BackendUnavailableError(ValueError):
    """A backend was asked for by name but cannot be used on this machine."""


@dataclass(frozen=True)
class Backend:
    """One array backend on one device.

    Attributes
    ----------
    name : str
        ``"numpy"``, ``"array_api_strict"`` or ``"cupy"`` (never ``"auto"``).
    xp : module
        Its Array API namespace (``array_api_compat.numpy``,
        ``array_api_strict`` or ``array_api_compat.cupy``).
    device : object
        The device new arrays are created on (``"cpu"`` for numpy).
    """

    name: str
    xp: ModuleType
    device: Any
    _to_numpy: Callable[[Any], np.ndarray] = field(repr=False, compare=False)
    _sync: Callable[[], None] = field(repr=False, compare=False)

    def asarray(self, host_array, dtype=None):
        """Move a host (numpy) array, or anything numpy accepts, onto this backend.

        Parameters
        ----------
        host_array : array_like
            Host data, e.g. a ``numpy.ndarray``.
        dtype : str or dtype, optional
            ``"float32"``, ``"float64"``, a numpy dtype or a dtype of this
            backend.  Default: keep the host dtype.
        """
        host = np.asarray(host_array)
        if dtype is not None:
            host = host.astype(np.dtype(_numpy_dtype_name(dtype)), copy=False)
        xp_dtype = getattr(self.xp, host.dtype.name, None)
        if xp_dtype is None:
            raise TypeError(
                f"host_array: dtype {host.dtype} has no equivalent on backend {self.name!r}"
            )
        return self.xp.asarray(host, dtype=xp_dtype, device=self.device)

    def dtype(self, dtype):
        """This backend's dtype object for ``"float32"``/``"float64"``/numpy dtypes."""
        return getattr(self.xp, _numpy_dtype_name(dtype))

    def to_numpy(self, x) -> np.ndarray:
        """Copy a backend array to the host as a ``numpy.ndarray``."""
        return self._to_numpy(x)

    def synchronize(self) -> None:
        """Block until all queued work on this backend's device has finished."""
        self._sync()

    def __str__(self) -> str:
        return f"{self.name} (device: {device_str(self.device)})"


def _numpy_dtype_name(dtype) -> str:
    if isinstance(dtype, str):
        name = dtype
    else:
        try:
            name = np.dtype(dtype).name
        except TypeError:
            # a dtype object of array_api_strict / cupy: its repr names it
            name = str(dtype).rsplit(".", 1)[-1]
    if name not in ("float32", "float64", "int64", "int32", "bool", "uint8"):
        raise TypeError(
            f"dtype: expected 'float32' or 'float64' (or an integer/bool dtype for labels), got {dtype!r}"
        )
    return name


def float_dtype(dtype, argname: str = "dtype") -> str:
    """``"float32"`` or ``"float64"`` for a name, a numpy dtype or a dtype of any backend; else TypeError."""
    try:
        name = _numpy_dtype_name(dtype)
    except TypeError:
        name = None
    if name not in ("float32", "float64"):
        raise TypeError(f"{argname}: expected 'float32' or 'float64', got {dtype!r}")
    return name


def device_str(device) -> str:
    """A device as users name it: ``"cpu"``, ``"device1"`` (array-api-strict), ``"cuda:0"`` (cupy)."""
    s = str(device)
    if s.startswith("array_api_strict.Device("):
        return s[len("array_api_strict.Device(") : -1].strip("'")
    if type(device).__module__.startswith("cupy") and hasattr(device, "id"):
        return f"cuda:{device.id}"  # str() gives '<CUDA Device 0>'
    if type(device).__module__.startswith("jax") and hasattr(device, "platform"):
        return f"{device.platform}:{device.id}"  # str() gives 'TFRT_CPU_0'
    return s


# --------------------------------------------------------------------------- #
# the three concrete backends


def _numpy_backend(device=None) -> Backend:
    if device not in (None, "cpu"):
        raise ValueError(f"device: the numpy backend has only device 'cpu', got {device!r}")
    import array_api_compat.numpy as xp

    return Backend("numpy", xp, "cpu", to_numpy, lambda: None)


def _strict_backend(device=None) -> Backend:
    import array_api_strict as xp

    devices = xp.__array_namespace_info__().devices()
    if device is None:
        dev = xp.__array_namespace_info__().default_device()
    else:
        dev = None
        for d in devices:
            if d == device or device_str(d) == str(device):
                dev = d
        if dev is None:
            names = ", ".join(repr(device_str(d)) for d in devices)
            raise ValueError(
                f"device: array_api_strict has devices {names}, got {device!r}"
            )
    return Backend("array_api_strict", xp, dev, to_numpy, lambda: None)


def _cupy_status() -> tuple[ModuleType | None, str | None]:
    """(cupy module, None) when usable, else (None, reason)."""
    try:
        cupy = importlib.import_module("cupy")
    except ImportError:
        return None, _CUPY_NOT_INSTALLED
    try:
        ok = bool(cupy.cuda.is_available())
    except Exception as exc:  # driver/runtime libraries missing or broken
        return None, f"{_CUPY_NO_GPU} ({type(exc).__name__}: {exc})"
    if not ok:
        return None, _CUPY_NO_GPU
    return cupy, None


def _cupy_backend(device=None) -> Backend:
    cupy, reason = _cupy_status()
    if cupy is None:
        raise BackendUnavailableError(f"backend 'cupy' is not available: {reason}")
    import array_api_compat.cupy as xp

    n = cupy.cuda.runtime.getDeviceCount()
    index = 0 if device is None else device
    if isinstance(index, str) and index.isdigit():
        index = int(index)
    if hasattr(index, "id"):
        index = index.id
    if not isinstance(index, int) or not 0 <= index < n:
        raise ValueError(f"device: cupy sees GPUs 0..{n - 1}, got {device!r}")
    dev = cupy.cuda.Device(index)

    def sync():
        with dev:
            cupy.cuda.get_current_stream().synchronize()

    return Backend("cupy", xp, dev, to_numpy, sync)


def _import_status(module: str, missing: str) -> tuple[ModuleType | None, str | None]:
    """``(the module, None)``, or ``(None, missing)`` when it does not import."""
    try:
        return importlib.import_module(module), None
    except ImportError:
        return None, missing


def _torch_status() -> tuple[ModuleType | None, str | None]:
    return _import_status("torch", _TORCH_NOT_INSTALLED)


def _torch_backend(device=None) -> Backend:
    torch, reason = _torch_status()
    if torch is None:
        raise BackendUnavailableError(f"backend 'torch' is not available: {reason}")
    import array_api_compat.torch as xp

    name = "cpu" if device is None else str(device)
    if name.isdigit():
        name = f"cuda:{name}"
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device: torch devices are cpu, cuda[:N] and mps, got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailableError("backend 'torch:cuda' is not available: torch is installed but no usable "
                                      "CUDA GPU was found")
    if dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"device: torch sees GPUs 0..{torch.cuda.device_count() - 1}, got {device!r}")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise BackendUnavailableError("backend 'torch:mps' is not available: no Apple GPU (MPS) here")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device: torch devices are cpu, cuda[:N] and mps, got {device!r}")

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        elif dev.type == "mps":
            torch.mps.synchronize()

    return Backend("torch", xp, dev, to_numpy, sync)


def _jax_status() -> tuple[ModuleType | None, str | None]:
    return _import_status("jax", _JAX_NOT_INSTALLED)


def _jax_backend(device=None) -> Backend:
    jax, reason = _jax_status()
    if jax is None:
        raise BackendUnavailableError(f"backend 'jax' is not available: {reason}")
    # bpnet's float64 is float64 on every backend: JAX computes in float32 unless x64 is on
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as xp

    devices = jax.devices()  # the default platform's (a GPU's when jax sees one), then the CPU's
    if devices[0].platform != "cpu":
        devices = [*devices, *jax.devices("cpu")]
    if device is None:
        dev = devices[0]
    else:
        want = str(device)
        dev = next((d for d in devices if device_str(d) == want or d.platform == want
                    or (want.isdigit() and d.id == int(want)) or d is device), None)
        if dev is None:
            seen = ", ".join(repr(device_str(d)) for d in devices)
            if want.split(":")[0] in ("gpu", "cuda", "rocm"):
                raise BackendUnavailableError(
                    f"backend 'jax:{want}' is not available: jax is installed but sees no GPU (only {seen}); "
                    "install a GPU build, e.g. pip install 'jax[cuda12]'")
            raise ValueError(f"device: jax sees {seen}, got {device!r}")

    def sync():
        # JAX has no device-wide barrier: wait for the effects and for one computation queued behind the
        # earlier ones (they run in order on a GPU stream; on the CPU, block on the very arrays you time)
        jax.effects_barrier()
        xp.zeros((), device=dev).block_until_ready()

    return Backend("jax", xp, dev, to_numpy, sync)


_FACTORIES = {
    "numpy": _numpy_backend,
    "array_api_strict": _strict_backend,
    "cupy": _cupy_backend,
    "torch": _torch_backend,
    "jax": _jax_backend,
}


def _strict_status() -> tuple[ModuleType | None, str | None]:
    return _import_status("array_api_strict", "array-api-strict is not installed (pip install array-api-strict, "
                          "or 'bpnet[test]')")


def unavailable_reasons() -> dict[str, str]:
    """Backends that cannot be used here, mapped to the reason (imports each library: seconds for torch, jax)."""
    reasons = {}
    for name, status in (("array_api_strict", _strict_status), ("cupy", _cupy_status), ("torch", _torch_status),
                         ("jax", _jax_status)):
        _, reason = status()
        if reason is not None:
            reasons[name] = reason
    return reasons


def available() -> list[str]:
    """Names of the backends usable on this machine, e.g. ``['numpy', 'array_api_strict']``."""
    bad = unavailable_reasons()
    return [n for n in ("numpy", "array_api_strict", "cupy", "torch", "jax") if n not in bad]


def _resolve_name(name: str | None) -> tuple[str, str | None]:
    if name is None:
        name = os.environ.get(ENV_VAR) or "auto"
        source = f"the {ENV_VAR} environment variable"
    else:
        source = "backend"
    if not isinstance(name, str):
        raise TypeError(f"backend: expected a name (str) or a Backend, got {type(name).__name__}")
    base, _, device = name.strip().partition(":")
    base = base.lower().replace("-", "_")
    if base == "auto":
        if device:
            raise ValueError(f"{source}: 'auto' takes no device, got {name!r}")
        cupy, _ = _cupy_status()
        return ("cupy" if cupy is not None else "numpy"), None
    if base not in _FACTORIES:
        raise ValueError(
            f"{source}: unknown backend {name!r}; expected one of {', '.join(map(repr, NAMES))} "
            f"(available here: {', '.join(available())})"
        )
    return base, (device or None)


def get(name: str | Backend | None = None, *, device=None) -> Backend:
    """Return the :class:`Backend` for ``name`` (see module doc for the resolution order).

    Parameters
    ----------
    name : str, Backend or None
        ``"numpy"``, ``"array_api_strict"``, ``"cupy"``, ``"torch"``, ``"jax"``,
        ``"auto"``, optionally with ``":device"`` (``"torch:cuda:0"``); a
        :class:`Backend` is returned unchanged.  ``None``
        reads ``BPNET_BACKEND``, else ``"auto"``.
    device : optional
        Device to use; overrides a device given in ``name``.

    Raises
    ------
    ValueError
        Unknown name (the message lists what is available) or unknown device.
    BackendUnavailableError
        (a ``ValueError``) the backend exists but cannot be used here; the
        message says whether the library is missing or the device is.
    """
    if isinstance(name, Backend):
        return name if device is None else _FACTORIES[name.name](device)
    base, dev = _resolve_name(name)
    if device is not None:
        dev = device
    if base == "array_api_strict":
        _, reason = _strict_status()  # only this library: the others' imports cost seconds
        if reason:
            raise BackendUnavailableError(f"backend 'array_api_strict' is not available: {reason}")
    return _FACTORIES[base](dev)


# --------------------------------------------------------------------------- #
# what backend an array lives on


def compiler(xp) -> Callable[[Callable], Callable]:
    """How a pure function of arrays of namespace ``xp`` is compiled: ``jax.jit`` for JAX (whose eager
    operations are slow), else the function as it is."""
    if array_api_compat.is_jax_namespace(xp):
        import jax

        return jax.jit
    return lambda fn: fn


def numpy_backed(xp) -> bool:
    """Whether ``xp``'s arrays are numpy arrays underneath (numpy, array_api_strict): host memory from
    numpy's allocator (glibc's malloc), products by numpy's BLAS."""
    return array_api_compat.is_numpy_namespace(xp) or array_api_compat.is_array_api_strict_namespace(xp)


#: namespace -> :func:`fast`'s namespace for it (itself where nothing is faster)
_FAST: dict = {}


def fast(xp):
    """The namespace a hot loop computes with: ``xp`` itself, or for numpy an equal namespace whose
    ``max``, ``min`` and ``astype`` skip numpy's Python-level dispatch.

    ``array_api_compat.numpy.max`` is ``numpy.max``, which reaches the ``maximum.reduce`` ufunc method through
    ``numpy._core.fromnumeric`` (1.1-1.3 us a call, as long as a small network's whole softmax);
    ``astype`` checks its ``device`` in Python.  The returned module calls ``maximum.reduce`` /
    ``minimum.reduce`` and ``ndarray.astype`` directly: the same results, dtypes and errors; every
    other name is ``xp``'s own object, and its ``__name__`` is ``xp``'s, so array_api_compat's
    ``is_numpy_namespace`` and bpnet's :func:`numpy_backed` say the same of both.  Arrays still name
    ``xp`` as their namespace (``array_namespace``): only the caller that asked computes with it.
    """
    f = _FAST.get(xp)
    if f is None:
        f = _FAST[xp] = _fast_namespace(xp)
        _FAST[f] = f
    return f


def _fast_namespace(xp):
    if not array_api_compat.is_numpy_namespace(xp):
        return xp
    ns = ModuleType(xp.__name__, xp.__doc__)
    ns.__dict__.update({k: v for k, v in vars(xp).items() if k not in ("__name__", "__doc__")})
    max_, min_, check = np.maximum.reduce, np.minimum.reduce, getattr(xp, "astype", None)

    def max(x, /, *, axis=None, keepdims=False):  # noqa: A001 (the standard's name)
        return max_(x, axis=axis, keepdims=keepdims)

    def min(x, /, *, axis=None, keepdims=False):  # noqa: A001
        return min_(x, axis=axis, keepdims=keepdims)

    def astype(x, dtype, /, *, copy=True, device=None):
        if device is not None:  # the compat function checks it (numpy has one device)
            return check(x, dtype, copy=copy, device=device)
        return x.astype(dtype, copy=copy)

    ns.max, ns.min = max, min
    if check is not None:  # (numpy itself before 2.0 has none)
        ns.astype = astype
    return ns


def name_of_namespace(xp) -> str:
    if array_api_compat.is_numpy_namespace(xp):
        return "numpy"
    if array_api_compat.is_cupy_namespace(xp):
        return "cupy"
    if array_api_compat.is_array_api_strict_namespace(xp):
        return "array_api_strict"
    if array_api_compat.is_torch_namespace(xp):
        return "torch"
    if array_api_compat.is_jax_namespace(xp):
        return "jax"
    return getattr(xp, "__name__", repr(xp))


def _a(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def describe(x) -> str:
    """``"array_api_strict array on device 'device1', shape (3, 4), dtype float64"``."""
    try:
        xp = array_api_compat.array_namespace(x)
    except TypeError:
        return f"{type(x).__module__}.{type(x).__name__}"
    dev = device_str(array_api_compat.device(x))
    return (
        f"{name_of_namespace(xp)} array on device {dev!r}, shape {tuple(x.shape)}, "
        f"dtype {dtype_str(x.dtype)}"
    )


def dtype_str(dtype) -> str:
    """A dtype of any backend as its plain name, e.g. ``"float32"``."""
    return str(dtype).rsplit(".", 1)[-1]


def backend_of(x) -> Backend:
    """The :class:`Backend` (and device) an array lives on."""
    return get(name_of_namespace(array_api_compat.array_namespace(x)), device=array_api_compat.device(x))


def spec(bk: Backend) -> str:
    """A name :func:`get` resolves back to ``bk``, e.g. ``"array_api_strict:device1"``, ``"cupy:0"``."""
    if bk.name == "numpy":
        return "numpy"
    if bk.name == "cupy":
        return f"cupy:{getattr(bk.device, 'id', 0)}"
    return f"{bk.name}:{device_str(bk.device)}"


def namespace_of(**arrays):
    """Array API namespace shared by keyword-named arrays; clear error when they differ.

    ``namespace_of(X=X, W1=W1)`` returns the namespace, or raises ``TypeError``
    naming both arrays when they come from two backends and ``ValueError``
    when they are on two devices of one backend.
    """
    first_name = first_xp = first_dev = None
    for arg, x in arrays.items():
        if x is None:
            continue
        try:
            xp = array_api_compat.array_namespace(x)
        except TypeError:
            raise TypeError(
                f"{arg}: expected an array (numpy, cupy or array_api_strict), "
                f"got {type(x).__module__}.{type(x).__name__}"
            ) from None
        dev = array_api_compat.device(x)
        if first_xp is None:
            first_name, first_xp, first_dev = arg, xp, dev
            continue
        if xp is not first_xp:
            raise TypeError(
                f"{arg} and {first_name} come from two backends: {arg} is {_a(name_of_namespace(xp))} "
                f"array, {first_name} is {_a(name_of_namespace(first_xp))} array; move both to one backend "
                "(bpnet.backends.get(name).asarray)"
            )
        if dev != first_dev:
            raise ValueError(
                f"{arg} and {first_name} are on two devices of {name_of_namespace(xp)}: "
                f"{arg} on {device_str(dev)!r}, {first_name} on {device_str(first_dev)!r}"
            )
    if first_xp is None:
        raise TypeError("expected at least one array")
    return first_xp


def to_numpy(x) -> np.ndarray:
    """Copy an array of any bpnet backend to the host as a ``numpy.ndarray``.

    This is an edge operation (printing, saving, tests); on a GPU it waits for
    the device.
    """
    if array_api_compat.is_numpy_array(x):
        return np.asarray(x)
    if array_api_compat.is_cupy_array(x):
        return x.get()
    xp = array_api_compat.array_namespace(x)
    if array_api_compat.is_array_api_strict_namespace(xp):
        return np.asarray(x.to_device(xp.__array_namespace_info__().default_device()))
    if array_api_compat.is_torch_array(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)  # jax, and anything with __array__
