"""The backend selector (bpnet.backends): names, resolution order, cupy errors, records."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import types

import array_api_compat
import numpy as np
import pytest
from conftest import assert_on, to_np

import bpnet
from bpnet import backends

pytestmark = pytest.mark.every_backend  # torch and jax run every case here (tests/conftest.py)

# cupy is never really imported here: its two failure modes (not installed; installed
# without a usable GPU/driver) are simulated by putting ``None`` or a fake module into
# ``sys.modules["cupy"]`` with ``monkeypatch``, which undoes it after each test.

NOT_INSTALLED = "cupy is not installed"
PIP_HINT = "pip install 'bpnet[cuda12]'"
NO_GPU = "cupy is installed but no usable CUDA GPU/driver was found"


# --------------------------------------------------------------------------- #
# helpers: simulated cupy


def _cupy_not_installed(monkeypatch):
    # a None entry in sys.modules makes `import cupy` raise ImportError
    monkeypatch.setitem(sys.modules, "cupy", None)


def _fake_cupy(monkeypatch, is_available):
    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(is_available=is_available)
    monkeypatch.setitem(sys.modules, "cupy", fake)
    return fake


def _raise_runtime_error():
    raise RuntimeError("CUDA driver version is insufficient for CUDA runtime version")


@pytest.fixture
def no_env(monkeypatch):
    """No BPNET_BACKEND in the environment."""
    monkeypatch.delenv(backends.ENV_VAR, raising=False)


@pytest.fixture
def no_cupy(monkeypatch):
    """cupy is not importable (whatever the machine has)."""
    _cupy_not_installed(monkeypatch)


# --------------------------------------------------------------------------- #
# available(), names


def test_env_var_name():
    assert backends.ENV_VAR == "BPNET_BACKEND"


def test_available_lists_cpu_backends():
    names = backends.available()
    assert "numpy" in names
    assert "array_api_strict" in names
    assert names.index("numpy") < names.index("array_api_strict")
    assert "auto" not in names


def test_available_has_no_cupy_here():
    # this machine has no GPU and no cupy: the reason is reported, cupy is not listed
    if "cupy" not in backends.unavailable_reasons():
        pytest.skip("cupy is usable on this machine")
    assert "cupy" not in backends.available()


def test_available_without_cupy(no_cupy):
    assert backends.available()[:2] == ["numpy", "array_api_strict"]
    assert "cupy" not in backends.available()


# --------------------------------------------------------------------------- #
# get(): resolution order


def test_get_explicit_numpy(no_env):
    bk = backends.get("numpy")
    assert bk.name == "numpy"
    assert bk.device == "cpu"
    assert array_api_compat.is_numpy_namespace(bk.xp)


def test_get_explicit_strict(no_env):
    import array_api_strict

    bk = backends.get("array_api_strict")
    assert bk.name == "array_api_strict"
    assert bk.xp is array_api_strict
    assert bk.device == array_api_strict.__array_namespace_info__().default_device()


def test_get_accepts_dash_and_case(no_env):
    assert backends.get("Array-API-Strict").name == "array_api_strict"
    assert backends.get(" NumPy ").name == "numpy"


def test_get_none_reads_env_var(monkeypatch):
    monkeypatch.setenv(backends.ENV_VAR, "array_api_strict")
    assert backends.get().name == "array_api_strict"
    assert backends.get(None).name == "array_api_strict"


def test_env_var_with_device(monkeypatch):
    monkeypatch.setenv(backends.ENV_VAR, "array_api_strict:device1")
    bk = backends.get()
    assert bk.name == "array_api_strict"
    assert str(bk.device) == str(bk.xp.Device("device1"))


def test_explicit_argument_beats_env_var(monkeypatch):
    monkeypatch.setenv(backends.ENV_VAR, "array_api_strict")
    assert backends.get("numpy").name == "numpy"


def test_explicit_argument_beats_garbage_env_var(monkeypatch):
    monkeypatch.setenv(backends.ENV_VAR, "no-such-backend")
    assert backends.get("numpy").name == "numpy"


def test_no_env_means_auto(no_env, no_cupy):
    assert backends.get().name == "numpy"


def test_empty_env_var_means_auto(monkeypatch, no_cupy):
    monkeypatch.setenv(backends.ENV_VAR, "")
    assert backends.get().name == "numpy"


def test_auto_is_numpy_without_cupy(no_env, no_cupy):
    bk = backends.get("auto")
    assert bk.name == "numpy"
    assert backends._resolve_name("auto") == ("numpy", None)


def test_auto_is_numpy_when_cupy_has_no_gpu(no_env, monkeypatch):
    _fake_cupy(monkeypatch, lambda: False)
    assert backends.get("auto").name == "numpy"


def test_auto_is_numpy_when_cupy_driver_broken(no_env, monkeypatch):
    _fake_cupy(monkeypatch, _raise_runtime_error)
    assert backends.get("auto").name == "numpy"


def test_env_auto(monkeypatch, no_cupy):
    monkeypatch.setenv(backends.ENV_VAR, "auto")
    assert backends.get().name == "numpy"


def test_auto_resolves_to_cupy_when_gpu_usable(no_env, monkeypatch):
    _fake_cupy(monkeypatch, lambda: True)
    # not get(): that would import the real array_api_compat.cupy
    assert backends._resolve_name("auto") == ("cupy", None)
    assert backends._resolve_name(None) == ("cupy", None)
    assert "cupy" not in backends.unavailable_reasons()
    assert "cupy" in backends.available()


def test_auto_takes_no_device(no_env):
    with pytest.raises(ValueError, match=r"'auto' takes no device, got 'auto:device1'"):
        backends.get("auto:device1")


def test_get_backend_instance_returned_unchanged(no_env):
    bk = backends.get("array_api_strict")
    assert backends.get(bk) is bk


def test_get_backend_instance_with_device(no_env):
    bk = backends.get("array_api_strict")
    bk1 = backends.get(bk, device="device1")
    assert bk1.name == "array_api_strict"
    assert str(bk1.device) == str(bk.xp.Device("device1"))


# --------------------------------------------------------------------------- #
# devices


def test_strict_device_in_name(no_env):
    import array_api_strict

    bk = backends.get("array_api_strict:device1")
    assert bk.device == array_api_strict.Device("device1")


def test_strict_device_argument(no_env):
    import array_api_strict

    bk = backends.get("array_api_strict", device="device1")
    assert bk.device == array_api_strict.Device("device1")
    # a Device object is accepted as well
    assert backends.get("array_api_strict", device=array_api_strict.Device("device1")).device == bk.device


def test_device_argument_overrides_name(no_env):
    import array_api_strict

    bk = backends.get("array_api_strict:device1", device="CPU_DEVICE")
    assert bk.device == array_api_strict.Device("CPU_DEVICE")


def test_numpy_cpu_device(no_env):
    assert backends.get("numpy:cpu").device == "cpu"
    assert backends.get("numpy", device="cpu").device == "cpu"


def test_unknown_strict_device(no_env):
    with pytest.raises(ValueError, match=r"device: array_api_strict has devices .*'device1'.*got 'device9'"):
        backends.get("array_api_strict:device9")
    with pytest.raises(ValueError, match=r"device: .*got 'device9'"):
        backends.get("array_api_strict", device="device9")


def test_unknown_numpy_device(no_env):
    with pytest.raises(ValueError, match=r"device: the numpy backend has only device 'cpu', got 'gpu'"):
        backends.get("numpy:gpu")
    with pytest.raises(ValueError, match=r"device: .*'cpu', got 1"):
        backends.get("numpy", device=1)


# --------------------------------------------------------------------------- #
# unknown names


def test_unknown_name_lists_available(no_env):
    with pytest.raises(ValueError, match=r"unknown backend 'tensorflow'") as info:
        backends.get("tensorflow")
    msg = str(info.value)
    assert msg.startswith("backend:")
    for name in ("numpy", "array_api_strict", "cupy", "auto"):
        assert name in msg
    assert "available here: numpy, array_api_strict" in msg
    assert not isinstance(info.value, backends.BackendUnavailableError)


def test_unknown_name_with_device(no_env):
    with pytest.raises(ValueError, match=r"unknown backend 'mxnet:0'"):
        backends.get("mxnet:0")


def test_non_string_name(no_env):
    with pytest.raises(TypeError, match=r"backend: expected a name \(str\) or a Backend, got int"):
        backends.get(3)


def test_garbage_env_var(monkeypatch):
    monkeypatch.setenv(backends.ENV_VAR, "garbage")
    with pytest.raises(ValueError, match=r"BPNET_BACKEND environment variable: unknown backend 'garbage'") as info:
        backends.get()
    assert "numpy" in str(info.value) and "array_api_strict" in str(info.value)


def test_env_var_unknown_device(monkeypatch):
    monkeypatch.setenv(backends.ENV_VAR, "array_api_strict:nowhere")
    with pytest.raises(ValueError, match=r"got 'nowhere'"):
        backends.get()


# --------------------------------------------------------------------------- #
# the two cupy errors


def test_cupy_not_installed(no_env, monkeypatch):
    _cupy_not_installed(monkeypatch)
    with pytest.raises(backends.BackendUnavailableError) as info:
        backends.get("cupy")
    assert isinstance(info.value, ValueError)
    msg = str(info.value)
    assert "backend 'cupy' is not available" in msg
    assert NOT_INSTALLED in msg
    assert PIP_HINT in msg
    assert NO_GPU not in msg


def test_cupy_not_installed_with_device(no_env, monkeypatch):
    _cupy_not_installed(monkeypatch)
    with pytest.raises(backends.BackendUnavailableError, match=NOT_INSTALLED):
        backends.get("cupy:0")


def test_cupy_not_installed_from_env(monkeypatch):
    _cupy_not_installed(monkeypatch)
    monkeypatch.setenv(backends.ENV_VAR, "cupy")
    with pytest.raises(backends.BackendUnavailableError, match=NOT_INSTALLED):
        backends.get()


def test_cupy_not_installed_reason(monkeypatch):
    _cupy_not_installed(monkeypatch)
    reasons = backends.unavailable_reasons()
    assert set(reasons) == {"cupy"}
    assert NOT_INSTALLED in reasons["cupy"]
    assert PIP_HINT in reasons["cupy"]


def test_cupy_without_gpu(no_env, monkeypatch):
    _fake_cupy(monkeypatch, lambda: False)
    with pytest.raises(backends.BackendUnavailableError) as info:
        backends.get("cupy")
    assert isinstance(info.value, ValueError)
    msg = str(info.value)
    assert "backend 'cupy' is not available" in msg
    assert NO_GPU in msg
    assert NOT_INSTALLED not in msg
    assert "cupy" not in backends.available()


def test_cupy_without_gpu_reason(monkeypatch):
    _fake_cupy(monkeypatch, lambda: False)
    reasons = backends.unavailable_reasons()
    assert set(reasons) == {"cupy"}
    assert NO_GPU in reasons["cupy"]


def test_cupy_driver_error(no_env, monkeypatch):
    _fake_cupy(monkeypatch, _raise_runtime_error)
    with pytest.raises(backends.BackendUnavailableError) as info:
        backends.get("cupy")
    msg = str(info.value)
    assert NO_GPU in msg
    # the underlying error is passed on
    assert "RuntimeError" in msg and "driver version is insufficient" in msg


def test_cupy_driver_error_reason(monkeypatch):
    _fake_cupy(monkeypatch, _raise_runtime_error)
    reasons = backends.unavailable_reasons()
    assert set(reasons) == {"cupy"}
    assert NO_GPU in reasons["cupy"]
    assert "RuntimeError" in reasons["cupy"]


def test_cupy_usable_reason(monkeypatch):
    _fake_cupy(monkeypatch, lambda: True)
    assert backends.unavailable_reasons() == {}
    assert backends.available()[:3] == ["numpy", "array_api_strict", "cupy"]


def test_backend_unavailable_error_is_value_error():
    assert issubclass(backends.BackendUnavailableError, ValueError)


def test_import_bpnet_does_not_import_cupy():
    code = ("import bpnet, bpnet.model, bpnet.cli, sys\n"
            "for lib in ('cupy', 'torch', 'jax'):\n"
            "    assert lib not in sys.modules, f'bpnet imported {lib}'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------------- #
# the Backend record


def test_record_fields(bk):
    assert bk.name in ("numpy", "array_api_strict", "cupy", "torch", "jax")
    assert bk.name != "auto"
    assert array_api_compat.array_namespace(bk.xp.zeros(1, device=bk.device)) is bk.xp
    z = bk.xp.zeros((2, 3), dtype=bk.dtype("float64"), device=bk.device)
    assert_on(bk, z, "float64", (2, 3))


def test_asarray_keeps_values(bk, dtype):
    host = np.arange(12, dtype=np.float64).reshape(3, 4) / 8.0 - 0.5  # exact in float32
    x = bk.asarray(host, dtype=dtype)
    assert_on(bk, x, dtype, (3, 4))
    back = to_np(x)
    assert isinstance(back, np.ndarray)
    assert back.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back, host.astype(dtype))


def test_asarray_keeps_host_dtype(bk):
    x = bk.asarray(np.ones((2, 2), dtype=np.float32))
    assert_on(bk, x, "float32", (2, 2))
    y = bk.asarray([[1.0, 2.0]])
    assert_on(bk, y, "float64", (1, 2))


def test_asarray_dtype_objects(bk):
    host = np.ones((2, 1))
    assert_on(bk, bk.asarray(host, dtype=np.float32), "float32")
    assert_on(bk, bk.asarray(host, dtype=bk.dtype("float32")), "float32")


def test_asarray_bad_dtype(bk):
    with pytest.raises(TypeError, match=r"dtype: expected 'float32' or 'float64'.*got 'float16'"):
        bk.asarray(np.ones(2), dtype="float16")


def test_to_numpy_round_trip(bk, dtype):
    rng = np.random.default_rng(0)
    host = rng.standard_normal((4, 5)).astype(dtype)
    x = bk.asarray(host)
    for back in (bk.to_numpy(x), backends.to_numpy(x)):
        assert isinstance(back, np.ndarray)
        assert back.dtype == host.dtype
        assert back.shape == host.shape
        np.testing.assert_array_equal(back, host)


def test_to_numpy_integer(bk):
    host = np.array([[0, 1, 1, 0]], dtype=np.int64)
    back = backends.to_numpy(bk.asarray(host))
    assert back.dtype == np.int64
    np.testing.assert_array_equal(back, host)


def test_synchronize_returns_none(bk):
    bk.asarray(np.ones((2, 2)))
    assert bk.synchronize() is None


def test_str_names_backend_and_device(bk):
    s = str(bk)
    assert s.startswith(bk.name)
    assert "device" in s
    if bk.name == "numpy":
        assert s == "numpy (device: cpu)"
    elif bk.name == "array_api_strict":
        dev = str(bk.device).split("'")[1]  # array_api_strict.Device('device1')
        assert s == f"array_api_strict (device: {dev})"


def test_str_strict_devices():
    assert str(backends.get("array_api_strict:device1")) == "array_api_strict (device: device1)"
    assert str(backends.get("array_api_strict")) == "array_api_strict (device: CPU_DEVICE)"


def test_dtype(bk):
    assert bk.dtype("float32") == bk.xp.float32
    assert bk.dtype("float64") == bk.xp.float64
    assert bk.dtype(np.float32) == bk.xp.float32
    assert bk.dtype(np.dtype("float64")) == bk.xp.float64


def test_dtype_rejects_unknown(bk):
    with pytest.raises(TypeError, match=r"dtype: expected 'float32' or 'float64'"):
        bk.dtype("complex128")


def test_records_compare_by_name_and_device():
    assert backends.get("array_api_strict") == backends.get("array_api_strict")
    assert backends.get("array_api_strict") != backends.get("array_api_strict:device1")


# --------------------------------------------------------------------------- #
# namespace_of


def test_namespace_of_same_backend(bk):
    a = bk.asarray(np.ones((2, 3)))
    b = bk.asarray(np.zeros((4, 2)))
    assert backends.namespace_of(X=a, W1=b) is bk.xp


def test_namespace_of_skips_none(bk):
    a = bk.asarray(np.ones((2, 3)))
    assert backends.namespace_of(X=a, W1=None) is bk.xp


def test_namespace_of_two_backends():
    a = backends.get("numpy").asarray(np.ones((2, 3)))
    b = backends.get("array_api_strict").asarray(np.ones((4, 2)))
    with pytest.raises(TypeError, match="two backends") as info:
        backends.namespace_of(X=a, W1=b)
    msg = str(info.value)
    for word in ("X", "W1", "numpy", "array_api_strict"):
        assert word in msg
    assert "W1 is a array_api_strict array" in msg or "W1 is an array_api_strict array" in msg
    assert "X is a numpy array" in msg


def test_namespace_of_two_devices():
    a = backends.get("array_api_strict").asarray(np.ones((2, 3)))
    b = backends.get("array_api_strict:device1").asarray(np.ones((4, 2)))
    with pytest.raises(ValueError, match="two devices") as info:
        backends.namespace_of(X=a, W1=b)
    msg = str(info.value)
    assert "W1 on 'device1'" in msg
    assert "X on 'CPU_DEVICE'" in msg
    assert "array_api_strict" in msg


@pytest.mark.parametrize("bad", [[[1.0, 2.0]], 3.0, "X"], ids=["list", "float", "str"])
def test_namespace_of_non_array(bk, bad):
    a = bk.asarray(np.ones((2, 3)))
    with pytest.raises(TypeError, match=r"X: expected an array \(numpy, cupy or array_api_strict\), got builtins\."):
        backends.namespace_of(X=bad, W1=a)
    with pytest.raises(TypeError, match=r"W1: expected an array"):
        backends.namespace_of(X=a, W1=bad)


def test_namespace_of_nothing():
    with pytest.raises(TypeError, match="at least one array"):
        backends.namespace_of()
    with pytest.raises(TypeError, match="at least one array"):
        backends.namespace_of(X=None)


# --------------------------------------------------------------------------- #
# module-level to_numpy and describe


def test_module_to_numpy(bk):
    host = np.array([[1.5, -2.0], [0.25, 3.0]])
    back = backends.to_numpy(bk.asarray(host))
    assert type(back) is np.ndarray
    np.testing.assert_array_equal(back, host)


def test_module_to_numpy_numpy_passthrough():
    host = np.ones((2, 2))
    assert backends.to_numpy(host) is host or np.shares_memory(backends.to_numpy(host), host)


def test_describe(bk):
    x = bk.asarray(np.ones((3, 4)), dtype="float32")
    d = backends.describe(x)
    dev = {"numpy": "cpu", "cupy": f"cuda:{getattr(bk.device, 'id', 0)}", "torch": str(bk.device),
           "jax": f"{getattr(bk.device, 'platform', '')}:{getattr(bk.device, 'id', '')}"}.get(bk.name)
    dev = dev or str(bk.device).split("'")[1]
    assert d == f"{bk.name} array on device {dev!r}, shape (3, 4), dtype float32"
    assert backends.get(backends.spec(bk)) == bk


def test_describe_strict_device1():
    x = backends.get("array_api_strict:device1").asarray(np.zeros((3, 4)))
    assert backends.describe(x) == "array_api_strict array on device 'device1', shape (3, 4), dtype float64"


def test_describe_non_array():
    assert backends.describe([1, 2]) == "builtins.list"
    assert backends.describe("x") == "builtins.str"


def test_bpnet_exports_backends():
    assert bpnet.backends is backends
    for name in backends.__all__:
        assert hasattr(backends, name), name


# --------------------------------------------------------------------------- #
# torch and jax: names, devices, the honest messages


def _not_installed(monkeypatch, lib):
    monkeypatch.setitem(sys.modules, lib, None)


@pytest.mark.parametrize("lib", ["torch", "jax"])
def test_not_installed_message(no_env, monkeypatch, lib):
    _not_installed(monkeypatch, lib)
    with pytest.raises(backends.BackendUnavailableError,
                       match=rf"backend '{lib}' is not available: {lib} is not installed \(pip install 'bpnet\[{lib}\]'\)"):
        backends.get(lib)
    assert lib not in backends.available()
    assert backends.unavailable_reasons()[lib].startswith(f"{lib} is not installed")


def test_names_list_every_backend():
    assert set(backends.NAMES) == {"numpy", "array_api_strict", "cupy", "torch", "jax", "auto"}


def test_torch_devices(no_env):
    pytest.importorskip("torch")
    import torch

    assert backends.get("torch").device == torch.device("cpu")
    assert backends.get("torch:cpu").device == torch.device("cpu")
    assert str(backends.get("torch")) == "torch (device: cpu)"
    with pytest.raises(ValueError, match=r"device: torch devices are cpu, cuda\[:N\] and mps, got 'tpu'"):
        backends.get("torch:tpu")
    if not torch.cuda.is_available():
        with pytest.raises(backends.BackendUnavailableError,
                           match=r"'torch:cuda' is not available: torch is installed but no usable CUDA GPU"):
            backends.get("torch:cuda:0")
    if not torch.backends.mps.is_available():
        with pytest.raises(backends.BackendUnavailableError, match=r"'torch:mps' is not available"):
            backends.get("torch", device="mps")


def test_torch_from_env(monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setenv(backends.ENV_VAR, "torch:cpu")
    assert backends.get().name == "torch"


def test_jax_devices_and_x64(no_env):
    pytest.importorskip("jax")
    bk = backends.get("jax")
    assert bk.name == "jax"
    assert backends.get("jax:cpu").device.platform == "cpu"
    assert backends.get("jax:cpu:0") == backends.get("jax:cpu")
    # x64 is on: float64 stays float64
    assert bk.asarray(np.ones(2), dtype="float64").dtype == bk.xp.float64
    with pytest.raises(ValueError, match=r"device: jax sees .*'cpu:0'.*, got 'tpu:7'"):
        backends.get("jax:tpu:7")


def test_available_lists_installed_libraries():
    for lib in ("torch", "jax"):
        installed = importlib.util.find_spec(lib) is not None
        assert (lib in backends.available()) == installed, lib


# --------------------------------------------------------------------------- #
# fast: the namespace the training step computes with


def test_fast_is_the_namespace_itself_except_on_numpy(bk):
    f = backends.fast(bk.xp)
    assert backends.fast(f) is f  # asking again changes nothing
    assert f.__name__ == bk.xp.__name__
    assert backends.numpy_backed(f) == backends.numpy_backed(bk.xp)
    assert array_api_compat.is_numpy_namespace(f) == array_api_compat.is_numpy_namespace(bk.xp)
    if bk.name != "numpy":
        assert f is bk.xp
        return
    assert f is not bk.xp
    changed = {k for k in dir(bk.xp) if getattr(f, k) is not getattr(bk.xp, k)}
    assert changed == {"max", "min", "astype"}


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "bool"])
def test_fast_numpy_reductions_and_astype_match_numpys(dtype):
    xp = array_api_compat.array_namespace(np.zeros(1))
    f = backends.fast(xp)
    rng = np.random.default_rng(0)
    for x in (rng.standard_normal((3, 4, 5)).astype(dtype), np.asarray(2.5).astype(dtype),
              np.array([[np.nan, 1.0], [0.0, -np.inf]]).astype(dtype) if dtype.startswith("float") else np.ones((2, 2), dtype)):
        for name in ("max", "min"):
            for axis in (None, 0, -1, (0, x.ndim - 1)) if x.ndim else (None,):
                for keepdims in (False, True):
                    want = getattr(xp, name)(x, axis=axis, keepdims=keepdims)
                    got = getattr(f, name)(x, axis=axis, keepdims=keepdims)
                    assert type(got) is type(want) and got.dtype == want.dtype
                    np.testing.assert_array_equal(got, want)
        for to in (xp.float32, xp.float64, xp.int32, xp.bool):
            if to == xp.int32 and not np.all(np.isfinite(x)):
                continue  # NaN and inf have no integer (numpy warns)
            for copy in (True, False):
                want, got = xp.astype(x, to, copy=copy), f.astype(x, to, copy=copy)
                assert got.dtype == want.dtype and (got is x) == (want is x)
                np.testing.assert_array_equal(got, want)
        assert f.astype(x, xp.float32, device="cpu").dtype == xp.float32
    for name in ("max", "min"):  # the same error for an empty reduction
        with pytest.raises(ValueError, match="zero-size array"):
            getattr(xp, name)(np.zeros((0, 3)), axis=0)
        with pytest.raises(ValueError, match="zero-size array"):
            getattr(f, name)(np.zeros((0, 3)), axis=0)
    with pytest.raises(ValueError) as want:
        xp.astype(np.zeros(2), xp.float32, device="gpu")
    with pytest.raises(ValueError) as got:
        f.astype(np.zeros(2), xp.float32, device="gpu")
    assert str(got.value) == str(want.value)


def test_train_step_computes_with_fast_and_gives_the_same_numbers(bk):
    from bpnet.nn import get_activation, get_loss
    from bpnet.optim import get_optimizer
    from bpnet.train.step import Net, TrainState, backward_update, forward_train, train_step

    rng = np.random.default_rng(1)
    X = bk.asarray(rng.standard_normal((6, 40)), dtype="float32")
    Y = bk.asarray(np.eye(3)[:, rng.integers(0, 3, 40)], dtype="float32")
    host = {"W1": rng.standard_normal((5, 6)), "b1": rng.standard_normal((5, 1)),
            "W2": rng.standard_normal((3, 5)), "b2": rng.standard_normal((3, 1))}
    net = Net(get_activation("relu"), get_activation("softmax"), get_loss("categorical_crossentropy"))
    opt = get_optimizer("adam")
    out = []
    for via_step in (True, False):
        p = {k: bk.asarray(v, dtype="float32") for k, v in host.items()}
        ts = TrainState(p, opt, opt.init(p), own=True)
        for _ in range(3):
            if via_step:
                train_step(bk.xp, X, Y, ts, net, 0.01)
            else:  # the same passes with the arrays' own namespace
                batch = ts.batch(bk.xp, 40)
                acts, gs, _ = forward_train(bk.xp, X, ts.Ws, ts.bs, net, ones_row=batch[1], blocks=batch[2])
                backward_update(bk.xp, acts, Y, ts, net, 0.01, gs=gs, batch=batch)
        out.append({k: to_np(v) for k, v in ts.parameters.items()})
    for k in host:  # bit for bit, but JAX's step is compiled (XLA fuses): to rounding there
        np.testing.assert_allclose(out[0][k], out[1][k], rtol=0 if ts.mutable else 1e-6, atol=0)
