"""Checkpoints (bpnet.io.checkpoint): safetensors round trips across backends, atomic writes and stale temporary
files, refusal of bad, special and hostile files, the values checked on load, format 1 (.npz) still read."""

from __future__ import annotations

import bz2
import hashlib
import io
import json
import math
import os
import pathlib
import random
import re
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
import safetensors.numpy
from badinput import api_context, check_table, with_entry
from conftest import ROOT, assert_on, assert_same_result, finishes, to_np, usable_backends
from safetensors import safe_open

import bpnet
from bpnet import backends
from bpnet._validate import check_parameters
from bpnet.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    Checkpoint,
    CheckpointError,
    check_architecture,
    load_checkpoint,
    read_header,
    save_checkpoint,
)
from bpnet.io import atomic

pytestmark = pytest.mark.every_backend  # torch and jax run every case here (tests/conftest.py)

DIMS = [6, 5, 3, 1]
#: where a checkpoint is loaded in the cross-backend tests: numpy, a second device, and every other
#: library under test here (torch, jax, cupy)
TARGETS = ["numpy", "array_api_strict:device1"] + sorted(
    {f"{name}:{device}" if device else name for name, device in usable_backends()
     if name not in ("numpy", "array_api_strict")})
DATA = pathlib.Path(__file__).parent / "data"


# --------------------------------------------------------------------------- #
# helpers


def make_params(bk, dtype="float64", dims=DIMS, seed=0):
    """Random W and non-zero b, drawn on the host and moved to ``bk``."""
    rng = np.random.default_rng(seed)
    p = {}
    for l in range(1, len(dims)):
        p[f"W{l}"] = bk.asarray(rng.standard_normal((dims[l], dims[l - 1])), dtype=dtype)
        p[f"b{l}"] = bk.asarray(rng.standard_normal((dims[l], 1)), dtype=dtype)
    return p


def make_opt(bk, params, seed=1):
    rng = np.random.default_rng(seed)
    dtype = to_np(params["W1"]).dtype.name
    group = lambda: {  # noqa: E731
        f"d{k}": bk.asarray(np.abs(rng.standard_normal(tuple(a.shape))), dtype=dtype) for k, a in params.items()
    }
    return {"t": 7, "v": group(), "s": group(), "beta1": 0.9, "beta2": 0.999, "name": "adam"}


METADATA = {
    "layer_dims": DIMS,
    "hidden_activation": "relu",
    "output_activation": "sigmoid",
    "loss": "binary_crossentropy",
    "epoch": 12,
    "history": [0.69, 0.5, 0.25],
    "seeds": {"init": 3, "shuffle": None},
    "note": "héllo ✓",
}


def assert_same_params(a, b):
    assert list(a) == list(b)
    for k in a:
        x, y = to_np(a[k]), to_np(b[k])
        assert x.dtype == y.dtype, k
        np.testing.assert_array_equal(x, y, err_msg=k, strict=True)


def digest(arrays):
    """The documented rule: sorted names; ``json.dumps([name, dtype, shape]) + "\\n"``, then little-endian bytes."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = arrays[name]
        h.update(json.dumps([name, a.dtype.name, list(a.shape)]).encode() + b"\n")
        h.update(np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes())
    return h.hexdigest()


def st_parts(path):
    """``(header, tensors)`` of a safetensors checkpoint, read with safetensors alone."""
    with safe_open(str(path), framework="numpy") as f:
        header = json.loads(f.metadata()["bpnet"])
    return header, safetensors.numpy.load_file(str(path))


def st_write(path, header, tensors, *, rehash=True, text=None):
    """A safetensors file with ``header`` as its bpnet metadata (the digest recomputed unless ``rehash=False``)."""
    if rehash and header is not None:
        header = {**header, "sha256": digest(tensors)}
    meta = None if header is None and text is None else {"bpnet": text if text is not None else json.dumps(header)}
    pathlib.Path(path).write_bytes(safetensors.numpy.save(tensors, metadata=meta))
    return path


@pytest.fixture
def saved(tmp_path):
    """A valid float64 checkpoint with optimiser state, on disk."""
    bk = backends.get("numpy")
    params = make_params(bk)
    path = tmp_path / "model.st"
    save_checkpoint(path, params, optimizer_state=make_opt(bk, params), metadata=METADATA)
    return path, params


def refused(path, *fragments, **kw):
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, backend="numpy", **kw)
    msg = str(info.value)
    assert isinstance(info.value, ValueError)
    assert str(path) in msg, msg
    for frag in fragments:
        assert frag in msg, msg
    return msg


# --------------------------------------------------------------------------- #
# round trips


@pytest.mark.parametrize("target", TARGETS)
def test_round_trip_from_backend(bk, dtype, target, tmp_path):
    params = make_params(bk, dtype)
    opt = make_opt(bk, params)
    path = save_checkpoint(tmp_path / "m.st", params, optimizer_state=opt, metadata=METADATA)
    assert path == tmp_path / "m.st"

    ck = load_checkpoint(path, backend=target)
    assert isinstance(ck, Checkpoint)
    tb = backends.get(target)
    assert_same_params(params, ck.parameters)
    for k, a in ck.parameters.items():
        assert_on(tb, a, dtype=dtype, shape=tuple(params[k].shape))
    assert ck.optimizer_state.keys() == opt.keys()
    for key in ("t", "beta1", "beta2", "name"):
        assert ck.optimizer_state[key] == opt[key]
    assert isinstance(ck.optimizer_state["t"], int)
    for group in ("v", "s"):
        assert_same_params(opt[group], ck.optimizer_state[group])
        for a in ck.optimizer_state[group].values():
            assert_on(tb, a, dtype=dtype)
    assert ck.metadata == METADATA
    assert ck.header["metadata"] == METADATA
    assert ck.header["layer_dims"] == DIMS
    assert ck.header["dtype"] == dtype


def test_round_trip_into_backend(bk, dtype, tmp_path):
    """Vice versa: written from numpy, loaded into every backend."""
    params = make_params(backends.get("numpy"), dtype)
    path = save_checkpoint(tmp_path / "m.st", params)
    ck = load_checkpoint(path, backend=bk)
    assert_same_params(params, ck.parameters)
    for a in ck.parameters.values():
        assert_on(bk, a, dtype=dtype)
    assert ck.optimizer_state is None
    assert ck.metadata == {}


def test_predictions_identical_after_load_on_another_backend(bk, tmp_path):
    params = make_params(bk, "float64", dims=[4, 8, 8, 1], seed=5)
    X_host = np.random.default_rng(6).standard_normal((4, 50))
    AL_src, _ = bpnet.L_model_forward(bk.asarray(X_host), params)
    pred_src = bpnet.predict(bk.asarray(X_host), params)
    path = save_checkpoint(tmp_path / "m.st", params, metadata={"output_activation": "sigmoid"})
    for target in TARGETS:
        tb = backends.get(target)
        loaded = load_checkpoint(path, backend=tb).parameters
        X = tb.asarray(X_host)
        AL, _ = bpnet.L_model_forward(X, loaded)
        pred = bpnet.predict(X, loaded)
        assert_on(tb, pred)
        for k in params:  # the parameters travel bit for bit
            np.testing.assert_array_equal(to_np(loaded[k]), to_np(params[k]), strict=True)
        assert_same_result(tb, bk, AL, AL_src)
        np.testing.assert_array_equal(to_np(pred), to_np(pred_src), strict=True)


@pytest.mark.parametrize("saved_dtype, wanted", [("float64", "float32"), ("float32", "float64")])
def test_dtype_cast_on_load(tmp_path, saved_dtype, wanted):
    bk = backends.get("numpy")
    params = make_params(bk, saved_dtype)
    opt = make_opt(bk, params)
    save_checkpoint(tmp_path / "m.st", params, optimizer_state=opt)
    ck = load_checkpoint(tmp_path / "m.st", backend="array_api_strict:device1", dtype=wanted)
    tb = backends.get("array_api_strict:device1")
    for a in ck.parameters.values():
        assert_on(tb, a, dtype=wanted)
    for a in ck.optimizer_state["v"].values():
        assert_on(tb, a, dtype=wanted)
    assert ck.header["dtype"] == saved_dtype  # the header describes the file
    with pytest.raises(TypeError, match="dtype: expected 'float32' or 'float64'"):
        load_checkpoint(tmp_path / "m.st", backend="numpy", dtype="int64")


def test_backend_from_environment(tmp_path, monkeypatch):
    params = make_params(backends.get("numpy"))
    save_checkpoint(tmp_path / "m.st", params)
    monkeypatch.setenv(backends.ENV_VAR, "array_api_strict:device1")
    ck = load_checkpoint(tmp_path / "m.st")
    for a in ck.parameters.values():
        assert_on(backends.get("array_api_strict:device1"), a)


def test_file_is_safetensors_with_the_documented_header(saved):
    path, params = saved
    tensors = safetensors.numpy.load_file(str(path))  # any safetensors reader opens it
    assert set(tensors) == {f"{p}{l}" for l in (1, 2, 3) for p in "Wb"} | \
        {f"opt.{g}.d{p}{l}" for g in "vs" for l in (1, 2, 3) for p in "Wb"}
    np.testing.assert_array_equal(tensors["W2"], to_np(params["W2"]), strict=True)
    header, _ = st_parts(path)
    assert set(header) == {"format", "format_version", "bpnet_version", "created", "dtype", "sha256", "optimizer",
                           "metadata"}  # no layer sizes: the tensors' shapes are the one source
    assert header["format"] == FORMAT == "bpnet-checkpoint"
    assert header["format_version"] == FORMAT_VERSION == 2
    assert header["bpnet_version"] == bpnet.__version__
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", header["created"])
    assert header["dtype"] == "float64" and header["metadata"] == METADATA
    assert header["optimizer"] == {"scalars": {"t": 7, "beta1": 0.9, "beta2": 0.999, "name": "adam"}}
    assert header["sha256"] == digest(tensors)
    full = read_header(path)  # what the tensors give, no data read
    assert full["layer_dims"] == DIMS and full["tensors"]["W1"] == {"shape": [5, 6], "dtype": "float64"}
    assert full["optimizer"] == {"scalars": header["optimizer"]["scalars"], "groups": ["s", "v"]}
    assert full == load_checkpoint(path, backend="numpy").header


def test_torch_opens_a_checkpoint(saved):
    torch = pytest.importorskip("torch")
    import safetensors.torch

    path, params = saved
    tensors = safetensors.torch.load_file(str(path))
    assert isinstance(tensors["W1"], torch.Tensor)
    np.testing.assert_array_equal(tensors["W1"].numpy(), to_np(params["W1"]), strict=True)


def test_path_is_used_as_given(tmp_path):
    params = make_params(backends.get("numpy"))
    out = save_checkpoint(str(tmp_path / "model"), params)
    assert out == tmp_path / "model"
    assert sorted(os.listdir(tmp_path)) == ["model"]  # no suffix appended, no temp file left
    assert_same_params(params, load_checkpoint(tmp_path / "model", backend="numpy").parameters)


def test_overwrite_replaces_content_and_keeps_mode(tmp_path):
    bk = backends.get("numpy")
    path = tmp_path / "m.st"
    save_checkpoint(path, make_params(bk, seed=1), metadata={"i": 1})
    os.chmod(path, 0o640)
    new = make_params(bk, seed=2)
    save_checkpoint(path, new, metadata={"i": 2})
    ck = load_checkpoint(path, backend="numpy")
    assert ck.metadata == {"i": 2}
    assert_same_params(new, ck.parameters)
    if os.name == "posix":
        assert (os.stat(path).st_mode & 0o777) == 0o640
    assert sorted(os.listdir(tmp_path)) == ["m.st"]


def test_metadata_is_copied_and_numpy_scalars_become_json(tmp_path):
    params = make_params(backends.get("numpy"))
    meta = {"epoch": np.int64(3), "lr": np.float32(0.5), "dims": (6, 5), "ok": np.bool_(True)}
    save_checkpoint(tmp_path / "m.st", params, metadata=meta)
    ck = load_checkpoint(tmp_path / "m.st", backend="numpy")
    assert ck.metadata == {"epoch": 3, "lr": 0.5, "dims": [6, 5], "ok": True}
    assert type(ck.metadata["epoch"]) is int
    ck.metadata["epoch"] = 99
    assert ck.header["metadata"]["epoch"] == 3


def test_empty_optimizer_state_round_trips_as_empty(tmp_path):
    params = make_params(backends.get("numpy"))
    save_checkpoint(tmp_path / "m.st", params, optimizer_state={"t": 0})
    assert load_checkpoint(tmp_path / "m.st", backend="numpy").optimizer_state == {"t": 0}


# --------------------------------------------------------------------------- #
# atomic writes


def _listing(d):
    return sorted(os.listdir(d))


@pytest.mark.parametrize("step", ["write", "fsync", "replace"])
def test_failure_mid_save_keeps_previous_checkpoint(tmp_path, monkeypatch, step):
    bk = backends.get("numpy")
    path = tmp_path / "m.st"
    old = make_params(bk, seed=1)
    save_checkpoint(path, old, metadata={"v": "old"})
    before = path.read_bytes()

    class Crash(Exception):
        pass

    if step == "write":
        real = os.fdopen

        class Half:  # writes half of what it is given, then the disk is full
            def __init__(self, f):
                self.f = f

            def write(self, data):
                self.f.write(bytes(data)[: len(data) // 2])
                raise Crash("disk full")

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.f.close()

        monkeypatch.setattr(atomic.os, "fdopen", lambda fd, *a, **k: Half(real(fd, *a, **k)))
    elif step == "fsync":
        def boom(fd):
            raise Crash("I/O error")

        monkeypatch.setattr(atomic.os, "fsync", boom)
    else:
        def boom(src, dst):
            assert pathlib.Path(src).parent == tmp_path  # the temp file sits beside the target
            safetensors.numpy.load_file(src)  # and is complete: it opens
            raise Crash("power cut")

        monkeypatch.setattr(atomic.os, "replace", boom)

    with pytest.raises(Crash):
        save_checkpoint(path, make_params(bk, seed=2), metadata={"v": "new"})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert _listing(tmp_path) == ["m.st"]  # the temp file was removed
    ck = load_checkpoint(path, backend="numpy")
    assert ck.metadata == {"v": "old"}
    assert_same_params(old, ck.parameters)


def test_keyboard_interrupt_mid_save_removes_temp_file(tmp_path, monkeypatch):
    def boom(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "m.st", make_params(backends.get("numpy")))
    assert _listing(tmp_path) == []


def test_save_fsyncs_file_and_directory(tmp_path, monkeypatch):
    calls = []
    real = os.fsync
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    save_checkpoint(tmp_path / "m.st", make_params(backends.get("numpy")))
    assert len(calls) >= (2 if os.name == "posix" else 1)


@pytest.mark.skipif(atomic.fcntl is None, reason="stale temporary files are recognised by flock (POSIX)")
def test_stale_temp_files_of_a_killed_save_are_removed_by_the_next_save(tmp_path):
    import fcntl

    path = tmp_path / "m.st"
    stale = [tmp_path / ".m.st.abcd1234.tmp", tmp_path / ".m.st.k_9x0zq2.tmp"]
    for s in stale:
        s.write_bytes(b"half a checkpoint")  # what a SIGKILL mid-save leaves: no process holds its lock
    live = tmp_path / ".m.st.live0001.tmp"  # a save in progress in another process (it holds the lock)
    other = [tmp_path / ".other.st.abcd1234.tmp", tmp_path / ".m.st.notmine.tmp", tmp_path / "m.st.abcd1234.tmp"]
    for o in other:
        o.write_bytes(b"not ours")
    fd = os.open(live, os.O_CREAT | os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        save_checkpoint(path, make_params(backends.get("numpy")))
        assert _listing(tmp_path) == sorted(p.name for p in [path, live, *other])
    finally:
        os.close(fd)
    save_checkpoint(path, make_params(backends.get("numpy")))  # now the live one is stale too
    assert _listing(tmp_path) == sorted(p.name for p in [path, *other])


_CHILD = r"""
import sys
import numpy as np
from bpnet.checkpoint import save_checkpoint

path, i = sys.argv[1], int(sys.argv[2])
while True:
    i += 1
    v = float(i)
    params = {"W1": np.full((2000, 2500), v), "b1": np.full((2000, 1), v),   # 40 MB
              "W2": np.full((1, 2000), v), "b2": np.full((1, 1), v)}
    save_checkpoint(path, params, metadata={"i": i})
    print(i, flush=True)
"""


def _check_big(path):
    ck = load_checkpoint(path, backend="numpy")
    i = ck.metadata["i"]
    for k, a in ck.parameters.items():
        assert bool(np.all(a == float(i))), (k, i)
    return i


def test_sigkill_while_saving_never_leaves_a_half_file(tmp_path):
    """A child saving ~40 MB in a loop is SIGKILLed at random times, 5 times; each next save clears the stale temp."""
    path = tmp_path / "big.st"
    v = 0.0
    save_checkpoint(
        path,
        {"W1": np.full((2000, 2500), v), "b1": np.full((2000, 1), v), "W2": np.full((1, 2000), v), "b2": np.full((1, 1), v)},
        metadata={"i": 0},
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    rnd = random.Random(1234)
    temp_re = re.compile(r"^\.big\.st\.[a-z0-9_]{8}\.tmp$")
    for rep in range(5):
        start = 1000 * (rep + 1)
        with subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(path), str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        ) as proc:
            first = proc.stdout.readline()  # the first save has completed
            assert first.strip() == str(start + 1), proc.stderr.read()
            time.sleep(rnd.uniform(0.05, 0.3))
            proc.kill()  # SIGKILL on POSIX
            out, _ = proc.communicate()
        last = int(([first] + out.split())[-1])
        i = _check_big(path)
        # the file is the last completed save, or the one whose replace landed just before the kill
        assert i in (last, last + 1), (i, last)
        names = os.listdir(tmp_path)
        for name in names:
            assert name == "big.st" or temp_re.match(name), name
        assert len(names) <= 2  # the next run's first save removed what the previous kill left
    # leftover temp files (if any) are never read: load opens only the path given
    stale = tmp_path / ".big.st.abcd1234.tmp"
    stale.write_bytes(b"garbage")
    _check_big(path)


# --------------------------------------------------------------------------- #
# refusals: not a checkpoint, truncated, corrupt, foreign, newer


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_checkpoint(tmp_path / "nope.st")
    assert "nope.st" in str(info.value)
    with pytest.raises(FileNotFoundError, match="nope.st"):
        read_header(tmp_path / "nope.st")


def test_text_file(tmp_path):
    path = tmp_path / "notes.st"
    path.write_text("just some text\n")
    refused(path, "not a bpnet checkpoint", "neither a safetensors file nor an .npz archive", "b'just'")


def test_empty_file_and_npy_file(tmp_path):
    empty = tmp_path / "empty.st"
    empty.write_bytes(b"")
    refused(empty, "empty")
    npy = tmp_path / "one.npz"
    with open(npy, "wb") as f:
        np.save(f, np.ones(3))
    refused(npy, ".npy")


@pytest.mark.parametrize("fraction", [0.01, 0.2, 0.5, 0.99])
def test_truncated_copy(saved, tmp_path, fraction):
    path, _ = saved
    data = path.read_bytes()
    cut = tmp_path / "cut.st"
    cut.write_bytes(data[: int(len(data) * fraction)])
    msg = refused(cut)
    assert "truncated" in msg or "neither a safetensors file" in msg, msg  # 1 %: not even the 8-byte size


def test_flipped_byte_in_place_is_refused(tmp_path):
    params = {"W1": np.ones((300, 400)), "b1": np.zeros((300, 1))}
    path = save_checkpoint(tmp_path / "m.st", params)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # inside W1's data: still a finite number
    path.write_bytes(bytes(data))
    refused(path, "corrupt", "sha256")


def test_foreign_safetensors_file(tmp_path):
    path = tmp_path / "foreign.st"
    path.write_bytes(safetensors.numpy.save({"a": np.ones((3, 3)), "b": np.ones(4)}))
    refused(path, "not a bpnet checkpoint", "'bpnet' metadata", "'a'")


def test_foreign_format_and_newer_format_version(saved, tmp_path):
    header, tensors = st_parts(saved[0])
    st_write(tmp_path / "x.st", {**header, "format": "something-else"}, tensors)
    refused(tmp_path / "x.st", "not a bpnet checkpoint", "'something-else'")
    st_write(tmp_path / "y.st", {**header, "format_version": 999}, tensors)
    refused(tmp_path / "y.st", "format_version 999", "upgrade bpnet")
    with pytest.raises(CheckpointError, match="format_version 999"):
        read_header(tmp_path / "y.st")


def test_header_not_json_or_nested_too_deep(saved, tmp_path):
    _, tensors = st_parts(saved[0])
    st_write(tmp_path / "x.st", None, tensors, text="{not json")
    refused(tmp_path / "x.st", "not valid UTF-8 JSON")
    st_write(tmp_path / "y.st", None, tensors, text="[" * 200_000 + "]" * 200_000)  # no RecursionError
    refused(tmp_path / "y.st", "nested too deeply")
    st_write(tmp_path / "z.st", None, tensors, text="[1, 2]")
    refused(tmp_path / "z.st", "expected a JSON object, got list")


def test_tensors_of_another_dtype_name_or_shape(saved, tmp_path):
    header, tensors = st_parts(saved[0])
    st_write(tmp_path / "a.st", header, {**tensors, "W1": tensors["W1"].astype(np.int64)})
    refused(tmp_path / "a.st", "tensor 'W1': expected dtype float32 or float64, got I64")
    st_write(tmp_path / "b.st", header, {**tensors, "junk": np.ones(2)})
    refused(tmp_path / "b.st", "unexpected tensor 'junk'")
    st_write(tmp_path / "c.st", header, {**tensors, "W2": np.ones((3, 4))})  # W1 has 5 rows
    refused(tmp_path / "c.st", "inconsistent tensors", "W2")
    less = {k: a for k, a in tensors.items() if k != "b2"}
    st_write(tmp_path / "d.st", header, less)
    refused(tmp_path / "d.st", "inconsistent tensors", "missing keys ['b2']")
    st_write(tmp_path / "e.st", header, {**tensors, "opt.v.dW1": np.ones((6, 5))})
    refused(tmp_path / "e.st", "inconsistent tensors", "optimizer group 'v'", "dW1")
    st_write(tmp_path / "f.st", header, {**tensors, "W1": tensors["W1"].astype(np.float32)})
    refused(tmp_path / "f.st", "inconsistent tensors", "float32")


def test_header_disagreeing_with_the_tensors(saved, tmp_path):
    header, tensors = st_parts(saved[0])
    for i, (change, frag) in enumerate([
        ({"dtype": "float32"}, "header['dtype']: 'float32' does not match the tensors, which give 'float64'"),
        ({"layer_dims": [6, 5, 4, 1]}, "header['layer_dims']: [6, 5, 4, 1] does not match the tensors"),
        ({"metadata": {**METADATA, "layer_dims": [6, 1]}}, "metadata['layer_dims']: [6, 1] does not match"),
        ({"optimizer": None}, "optimizer tensors of groups ['s', 'v'] but the header records no optimizer state"),
        ({"extra": 1}, "header: unknown field(s) ['extra']"),
        ({"sha256": 3}, "header 'sha256': expected a str, got int"),
    ]):
        st_write(tmp_path / f"{i}.st", {**header, **change}, tensors, rehash="sha256" not in change)
        refused(tmp_path / f"{i}.st", frag)


# --------------------------------------------------------------------------- #
# values checked on load, naming the tensor


def _with_tensor(saved, tmp_path, name, fix):
    header, tensors = st_parts(saved[0])
    tensors[name] = fix(tensors[name].copy())
    return st_write(tmp_path / "v.st", header, tensors)


VALUES = [
    pytest.param("W2", lambda a: with_entry(a, (0, 1), math.nan), {},
                 r"tensor 'W2': expected finite values, got 1 NaN and 0 inf", id="nan-weight"),
    pytest.param("b1", lambda a: with_entry(a, (2, 0), -math.inf), {},
                 r"tensor 'b1': expected finite values, got 0 NaN and 1 inf", id="inf-bias"),
    pytest.param("opt.v.dW1", lambda a: with_entry(a, (0, 0), math.inf), {},
                 r"tensor 'opt\.v\.dW1': expected finite values, got 0 NaN and 1 inf", id="inf-moment"),
    pytest.param("opt.s.db3", lambda a: a - 5.0, {},
                 r"tensor 'opt\.s\.db3': expected second moments >= 0, got 1 negative values", id="negative-moment"),
    pytest.param("W1", lambda a: with_entry(a, (1, 1), 1e300), {"dtype": "float32"},
                 r"tensor 'W1': expected values that fit in float32 .* got values up to 1e\+300",
                 id="float32-overflow-on-cast"),
    pytest.param("opt.s.dW2", lambda a: with_entry(a, (0, 0), -1e300), {"dtype": "float32"},
                 r"tensor 'opt\.s\.dW2': expected second moments >= 0", id="negative-moment-before-cast"),
]


@pytest.mark.parametrize("name, fix, kw, pattern", VALUES)
def test_values_are_checked_on_load(saved, tmp_path, name, fix, kw, pattern):
    path = _with_tensor(saved, tmp_path, name, fix)
    with pytest.raises(CheckpointError, match=pattern) as info:
        load_checkpoint(path, backend="numpy", **kw)
    assert str(path) in str(info.value)
    read_header(path)  # the header alone is fine: values are checked once read


def test_a_float32_cast_that_fits_loads(saved):
    ck = load_checkpoint(saved[0], backend="numpy", dtype="float32")
    assert all(bool(np.all(np.isfinite(a))) for a in ck.parameters.values())


# --------------------------------------------------------------------------- #
# only regular files: a FIFO would block every reader forever


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes (POSIX)")
def test_a_fifo_or_any_special_file_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "fifo.st"
    os.mkfifo(fifo)
    link = tmp_path / "link.st"
    link.symlink_to(fifo)
    for call, pattern in [
        (lambda: load_checkpoint(fifo, backend="numpy"), r"expected a regular file, got a FIFO \(named pipe\)"),
        (lambda: read_header(fifo), r"expected a regular file, got a FIFO"),
        (lambda: load_checkpoint(link, backend="numpy"), r"link\.st'.*expected a regular file, got a FIFO"),
        (lambda: load_checkpoint(tmp_path, backend="numpy"), r"expected a regular file, got a directory"),
        (lambda: load_checkpoint(os.devnull, backend="numpy"), r"expected a regular file, got a character device"),
        (lambda: bpnet.MLP.load(fifo, backend="numpy"), r"expected a regular file, got a FIFO"),
    ]:
        exc = finishes(call)
        assert isinstance(exc, CheckpointError) and re.search(pattern, str(exc)), exc


# --------------------------------------------------------------------------- #
# size bombs: a small file never declares more than it holds


def test_a_tiny_safetensors_file_declaring_huge_tensors_is_refused_fast(saved, tmp_path):
    header, tensors = st_parts(saved[0])
    blob = bytearray(safetensors.numpy.save(tensors, metadata={"bpnet": json.dumps(header)}))
    n = int.from_bytes(blob[:8], "little")
    st_header = json.loads(blob[8:8 + n])
    st_header["W1"]["shape"] = [20000, 20000]  # 3.2 GB of float64 in a file of a few KB
    text = json.dumps(st_header).encode()
    path = tmp_path / "bomb.st"
    path.write_bytes(len(text).to_bytes(8, "little") + text + bytes(blob[8 + n:]))
    t0 = time.perf_counter()
    msg = refused(path, "not a readable safetensors file")
    assert time.perf_counter() - t0 < 2.0, msg


def _npy_header(shape, descr="<f8") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def test_a_compressed_format1_archive_is_refused_before_decompressing(tmp_path, monkeypatch):
    """A 2.8 KB .npz of bzip2-compressed zeros declaring 20000 x 20000 weights took 27 s and 3.2 GB to load."""
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_BZIP2) as zf:
        zf.writestr("__bpnet__.npy", _npy_header((10,), "|u1") + b"{}" + b" " * 8)
        zf.writestr("param/W1.npy", _npy_header((20000, 20000)) + bz2.compress(b"\0" * 64))
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *a, **k: pytest.fail("opened a member"))
    t0 = time.perf_counter()
    refused(path, "is compressed", "stored .npy members")
    assert time.perf_counter() - t0 < 2.0


def test_a_format1_member_declaring_more_than_it_holds_is_refused(saved_v1, tmp_path):
    header, arrays = read_members(saved_v1[0])
    huge = [10**6, 10**6]  # 8 TB of float64, consistent in the manifest and the .npy header
    header["arrays"]["param/W1"]["shape"] = huge
    path = tmp_path / "huge.npz"
    write_members(path, header, {k: a for k, a in arrays.items() if k != "param/W1"})
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("param/W1.npy", _npy_header(tuple(huge)) + np.ones(4).tobytes())
    refused(path, "'param/W1'", "truncated or padded")


# --------------------------------------------------------------------------- #
# format 1: the .npz checkpoints of earlier versions keep loading, through the same checks


def v1_members(params, opt=None, metadata=None):
    """``(header, arrays)`` of a format-1 checkpoint, built as bpnet's earlier writer built them."""
    arrays = {f"param/{k}": np.asarray(to_np(a)) for k, a in params.items()}
    scalars, groups = {}, {}
    for key, val in (opt or {}).items():
        if isinstance(val, dict):
            groups[key] = sorted(val, key=lambda n: (int(n[2:]), n[1]))
            arrays.update({f"opt/{key}/{n}": np.asarray(to_np(val[n])) for n in groups[key]})
        else:
            scalars[key] = val
    L = len(params) // 2
    W = [arrays[f"param/W{l}"] for l in range(1, L + 1)]
    header = {"format": "bpnet-checkpoint", "format_version": 1, "bpnet_version": "0.1.0",
              "created": "2025-01-01T12:00:00+00:00", "layer_dims": [W[0].shape[1]] + [w.shape[0] for w in W],
              "dtype": W[0].dtype.name,
              "arrays": {n: {"shape": list(a.shape), "dtype": a.dtype.name} for n, a in arrays.items()},
              "sha256": digest(arrays), "optimizer": None if opt is None else {"scalars": scalars, "arrays": groups},
              "metadata": metadata or {}}
    return header, arrays


def read_members(path):
    """All members of an .npz, the header decoded (no pickle)."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(arrays.pop("__bpnet__").tobytes().decode("utf-8"))
    return header, arrays


def write_members(path, header, arrays, **extra):
    """An .npz with ``header`` (if not None) and ``arrays``, as np.savez writes them (it pickles object arrays)."""
    members = dict(arrays)
    if header is not None:
        members["__bpnet__"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    members.update(extra)
    with open(path, "wb") as f:
        np.savez(f, **members)


@pytest.fixture
def saved_v1(tmp_path):
    """A valid float64 format-1 checkpoint (.npz) with optimiser state, as the earlier writer wrote it."""
    bk = backends.get("numpy")
    params = make_params(bk)
    path = tmp_path / "model.npz"
    write_members(path, *v1_members(params, make_opt(bk, params), METADATA))
    return path, params


def test_a_checkpoint_written_by_the_previous_version_still_loads():
    """tests/io/data/mlp_format1.npz was written by bpnet's format-1 writer (an Adam-trained 4-5-3 MLP)."""
    path = DATA / "mlp_format1.npz"
    with np.load(path, allow_pickle=False) as z:  # what the old writer stored
        stored = {k: z[k] for k in z.files}
    header = read_header(path)
    assert header["format_version"] == 1 and header["layer_dims"] == [4, 5, 3]
    for target in TARGETS:
        model = bpnet.MLP.load(path, backend=target)
        assert model.layer_dims == [4, 5, 3] and model.hidden_activation == "tanh" and model.epoch == 3
        assert model.optimizer_config["name"] == "adam" and model.optimizer_state["t"] == 9
        assert model.preprocessor.class_names == ("x", "y", "z") and len(model.history) == 3
        for k in ("W1", "b1", "W2", "b2"):
            np.testing.assert_array_equal(to_np(model.parameters[k]), stored[f"param/{k}"], strict=True)
        np.testing.assert_array_equal(to_np(model.optimizer_state["s"]["dW2"]), stored["opt/s/dW2"], strict=True)
        X = np.random.default_rng(1).normal(size=(4, 7))
        Z1 = stored["param/W1"] @ X + stored["param/b1"]
        Z2 = stored["param/W2"] @ np.tanh(Z1) + stored["param/b2"]
        E = np.exp(Z2 - Z2.max(axis=0))
        np.testing.assert_allclose(to_np(model.predict_proba(X)), E / E.sum(axis=0), rtol=1e-12)


def test_format1_round_trip_and_resave_as_safetensors(saved_v1, tmp_path):
    path, params = saved_v1
    ck = load_checkpoint(path, backend="array_api_strict:device1")
    assert_same_params(params, ck.parameters)
    assert ck.metadata == METADATA and ck.optimizer_state["t"] == 7 and ck.optimizer_state["name"] == "adam"
    assert ck.header["format_version"] == 1 and ck.header["layer_dims"] == DIMS
    out = save_checkpoint(tmp_path / "new.st", ck.parameters, optimizer_state=ck.optimizer_state, metadata=ck.metadata)
    again = load_checkpoint(out, backend="numpy")
    assert again.header["format_version"] == 2
    assert_same_params(params, again.parameters)
    assert_same_params(ck.optimizer_state["s"], again.optimizer_state["s"])


def test_format1_values_are_checked_like_safetensors(saved_v1, tmp_path):
    header, arrays = read_members(saved_v1[0])
    arrays["param/W2"] = with_entry(arrays["param/W2"], (0, 0), math.nan)
    header["sha256"] = digest(arrays)
    write_members(tmp_path / "nan.npz", header, arrays)
    refused(tmp_path / "nan.npz", "tensor 'W2': expected finite values, got 1 NaN")
    header, arrays = read_members(saved_v1[0])
    header["metadata"] = {"layer_dims": [6, 2, 1]}
    write_members(tmp_path / "meta.npz", header, arrays)
    refused(tmp_path / "meta.npz", "metadata['layer_dims']: [6, 2, 1] does not match the tensors")
    header, arrays = read_members(saved_v1[0])
    header["optimizer"]["scalars"]["t"] = -3
    write_members(tmp_path / "t.npz", header, arrays)
    refused(tmp_path / "t.npz", "optimizer_state['t']: expected an integer >= 0, got -3")


def test_format1_foreign_and_newer(saved_v1, tmp_path):
    path = tmp_path / "foreign.npz"
    rng = np.random.default_rng(0)
    np.savez(path, a=rng.random((3, 3)), b=rng.random(4))
    refused(path, "not a bpnet checkpoint", "'__bpnet__'", "'a'")
    header, arrays = read_members(saved_v1[0])
    write_members(tmp_path / "x.npz", {**header, "format": "something-else"}, arrays)
    refused(tmp_path / "x.npz", "not a bpnet checkpoint", "'something-else'")
    write_members(tmp_path / "y.npz", {**header, "format_version": 999}, arrays)
    refused(tmp_path / "y.npz", "format_version 999", "upgrade bpnet")
    write_members(tmp_path / "z.npz", {**header, "format_version": 2}, arrays)
    refused(tmp_path / "z.npz", "an .npz archive of format_version 2; expected 1")


def test_format1_header_not_json(saved_v1, tmp_path):
    _, arrays = read_members(saved_v1[0])
    write_members(tmp_path / "x.npz", None, arrays, __bpnet__=np.frombuffer(b"{not json", dtype=np.uint8))
    refused(tmp_path / "x.npz", "not valid UTF-8 JSON")
    write_members(tmp_path / "y.npz", None, arrays, __bpnet__=np.zeros(3))
    refused(tmp_path / "y.npz", "1-D uint8")


def test_format1_manifest_and_digest(saved_v1, tmp_path):
    header, arrays = read_members(saved_v1[0])
    bad = json.loads(json.dumps(header))
    bad["arrays"]["param/W1"]["shape"] = [99, 6]
    write_members(tmp_path / "a.npz", bad, arrays)
    refused(tmp_path / "a.npz", "'param/W1'", "shape (5, 6)", "[99, 6]")
    write_members(tmp_path / "b.npz", header, {**arrays, "param/b1": arrays["param/b1"].astype(np.float32)})
    refused(tmp_path / "b.npz", "'param/b1'", "float32", "float64")
    write_members(tmp_path / "c.npz", header, {k: a for k, a in arrays.items() if k != "param/b2"})
    refused(tmp_path / "c.npz", "missing", "'param/b2'")
    write_members(tmp_path / "d.npz", header, arrays, junk=np.ones(2))
    refused(tmp_path / "d.npz", "does not list", "'junk'")
    W = arrays["param/W2"].copy()
    W.reshape(-1).view(np.uint8)[3] ^= 0x01  # one bit of one weight; the header is stale
    write_members(tmp_path / "e.npz", header, {**arrays, "param/W2": W})
    refused(tmp_path / "e.npz", "corrupt", "sha256")
    bad = json.loads(json.dumps(header))
    bad["layer_dims"] = [6, 5, 4, 1]
    write_members(tmp_path / "f.npz", bad, arrays)
    refused(tmp_path / "f.npz", "header['layer_dims']: [6, 5, 4, 1] does not match the tensors")
    bad = json.loads(json.dumps(header))
    bad["optimizer"] = None
    write_members(tmp_path / "g.npz", bad, arrays)
    refused(tmp_path / "g.npz", "optimizer")


def test_format1_object_arrays_are_refused(saved_v1, tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, a=np.array([{"x": 1}, None], dtype=object))
    refused(path, "not a bpnet checkpoint")
    header, arrays = read_members(saved_v1[0])
    arrays["param/W1"] = np.array([[1.0] * 6] * 5, dtype=object)
    write_members(tmp_path / "obj2.npz", header, arrays)
    refused(tmp_path / "obj2.npz", "'param/W1'", "pickled", "never unpickled")


class _Payload:
    """Unpickling this calls ``Path(marker).write_text("pwned")``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path(self.marker).write_text, ("pwned",))


@pytest.mark.parametrize("where", ["header", "param/W1", "foreign"])
def test_pickle_payload_is_never_executed(saved_v1, tmp_path, where):
    marker = tmp_path / "PWNED"
    evil = np.array([_Payload(str(marker))], dtype=object)
    header, arrays = read_members(saved_v1[0])
    path = tmp_path / "evil.npz"
    if where == "header":
        write_members(path, None, arrays, __bpnet__=evil)
    elif where == "param/W1":
        arrays["param/W1"] = evil
        write_members(path, header, arrays)
    else:
        write_members(path, None, {"x": evil})
    refused(path, "not a bpnet checkpoint" if where == "foreign" else "pickled")
    if where != "foreign":
        with pytest.raises(CheckpointError):
            read_header(path) if where == "header" else load_checkpoint(path, backend="array_api_strict")
    assert not marker.exists()

    # control: the payload is live -- numpy with allow_pickle=True would run it
    control = tmp_path / "CONTROL"
    write_members(tmp_path / "control.npz", None, {"x": np.array([_Payload(str(control))], dtype=object)})
    with np.load(tmp_path / "control.npz", allow_pickle=True) as z:
        z["x"]
    assert control.read_text() == "pwned"
    assert not marker.exists()


def test_format1_non_npy_member_and_duplicate_member(saved_v1, tmp_path):
    data = saved_v1[0].read_bytes()
    odd = tmp_path / "odd.npz"
    odd.write_bytes(data)
    with zipfile.ZipFile(odd, "a") as zf:
        zf.writestr("readme.txt", "hi")
    refused(odd, "'readme.txt'")
    dup = tmp_path / "dup.npz"
    dup.write_bytes(data)
    with zipfile.ZipFile(saved_v1[0]) as zf:
        w1 = zf.read("param/W1.npy")
    with zipfile.ZipFile(dup, "a") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr("param/W1.npy", w1)
    refused(dup, "appears twice")


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.99])
def test_format1_truncated_copy(saved_v1, tmp_path, fraction):
    data = saved_v1[0].read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[: int(len(data) * fraction)])
    refused(cut, "truncated")


# --------------------------------------------------------------------------- #
# check_architecture


def test_check_architecture_accepts_a_match(saved):
    path, _ = saved
    ck = load_checkpoint(path, backend="numpy")
    check_architecture(ck, DIMS, hidden_activation="relu", output_activation="sigmoid", loss="binary_crossentropy")
    check_architecture(read_header(path), tuple(DIMS))
    check_architecture(ck.header, DIMS, hidden_activation=bpnet.get_activation("relu"))


def test_check_architecture_mismatch_messages(saved):
    ck = load_checkpoint(saved[0], backend="numpy")
    with pytest.raises(ValueError, match=re.escape("checkpoint: saved for layer_dims [6, 5, 3, 1], expected [6, 10, 1]")):
        check_architecture(ck, [6, 10, 1])
    with pytest.raises(ValueError) as info:
        check_architecture(ck, DIMS, hidden_activation="tanh", output_activation="softmax", loss="mse")
    msg = str(info.value)
    assert "saved with hidden_activation 'relu', expected 'tanh'" in msg
    assert "saved with output_activation 'sigmoid', expected 'softmax'" in msg
    assert "saved with loss 'binary_crossentropy', expected 'mse'" in msg
    assert "layer_dims" not in msg


def test_check_architecture_reads_a_nested_model_entry(tmp_path):
    meta = {"model": {"layer_dims": DIMS, "hidden_activation": "tanh", "loss": "mse"}, "epoch": 2}
    path = save_checkpoint(tmp_path / "m.st", make_params(backends.get("numpy")), metadata=meta)
    check_architecture(read_header(path), DIMS, hidden_activation="tanh", loss="mse")
    with pytest.raises(ValueError, match="saved with hidden_activation 'tanh', expected 'relu'"):
        check_architecture(read_header(path), DIMS, hidden_activation="relu")


def test_check_architecture_unrecorded_key_and_bad_input(tmp_path):
    path = save_checkpoint(tmp_path / "m.st", make_params(backends.get("numpy")))
    with pytest.raises(ValueError, match="does not record loss"):
        check_architecture(read_header(path), DIMS, loss="mse")
    with pytest.raises(TypeError, match="checkpoint_or_header"):
        check_architecture(str(path), DIMS)
    with pytest.raises(ValueError, match="checkpoint_or_header"):
        check_architecture({"a": 1}, DIMS)
    with pytest.raises(ValueError, match="layer_dims: expected positive integers"):
        check_architecture(read_header(path), [6, 0, 1])


# --------------------------------------------------------------------------- #
# save-side errors


def test_metadata_not_serialisable_names_the_key(tmp_path):
    params = make_params(backends.get("numpy"))
    with pytest.raises(TypeError, match=r"metadata\['fn'\]: not JSON-serialisable"):
        save_checkpoint(tmp_path / "m.st", params, metadata={"epoch": 1, "fn": print})
    with pytest.raises(TypeError, match=r"metadata\['history'\]\[1\]: not JSON-serialisable.*ndarray"):
        save_checkpoint(tmp_path / "m.st", params, metadata={"history": [0.5, np.ones(2)]})
    with pytest.raises(TypeError, match=r"metadata\['seeds'\]: keys must be str"):
        save_checkpoint(tmp_path / "m.st", params, metadata={"seeds": {1: 2}})
    with pytest.raises(ValueError, match=r"metadata\['cost'\]: nan cannot be stored"):
        save_checkpoint(tmp_path / "m.st", params, metadata={"cost": float("nan")})
    with pytest.raises(TypeError, match="metadata: expected a dict"):
        save_checkpoint(tmp_path / "m.st", params, metadata=[1])
    with pytest.raises(ValueError, match=r"metadata\['layer_dims'\]"):
        save_checkpoint(tmp_path / "m.st", params, metadata={"layer_dims": [6, 1]})
    with pytest.raises(ValueError, match=r"metadata\['dtype'\]"):
        save_checkpoint(tmp_path / "m.st", params, metadata={"dtype": "float32"})
    deep = []
    for _ in range(40):
        deep = [deep]
    with pytest.raises(ValueError, match=r"metadata\['deep'\]\[0\].*nested deeper than 32 levels"):
        save_checkpoint(tmp_path / "m.st", params, metadata={"deep": deep})
    assert _listing(tmp_path) == []


def test_deep_but_allowed_metadata_round_trips_and_deeper_is_refused_on_load(saved, tmp_path):
    params = make_params(backends.get("numpy"))
    ok = 1
    for _ in range(31):
        ok = [ok]
    save_checkpoint(tmp_path / "ok.st", params, metadata={"deep": ok})
    assert load_checkpoint(tmp_path / "ok.st", backend="numpy").metadata == {"deep": ok}
    header, tensors = st_parts(tmp_path / "ok.st")
    st_write(tmp_path / "deeper.st", {**header, "metadata": {"deep": [ok, [[[1]]]]}}, tensors)
    refused(tmp_path / "deeper.st", "metadata", "nested deeper than 32 levels")


def test_parent_directory_missing(tmp_path):
    params = make_params(backends.get("numpy"))
    with pytest.raises(FileNotFoundError, match="does not exist") as info:
        save_checkpoint(tmp_path / "no" / "such" / "m.st", params)
    assert "no" in str(info.value)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(NotADirectoryError):
        save_checkpoint(tmp_path / "afile" / "m.st", params)
    with pytest.raises(IsADirectoryError):
        save_checkpoint(tmp_path, params)
    with pytest.raises(TypeError, match="path: expected a str or os.PathLike"):
        save_checkpoint(3, params)


def test_invalid_parameters_give_the_checks_error(bk, tmp_path):
    params = make_params(bk)
    bad = dict(params)
    bad["b2"] = bad["W2"]
    with pytest.raises(ValueError) as expected:
        check_parameters(bad)
    with pytest.raises(ValueError) as got:
        save_checkpoint(tmp_path / "m.st", bad)
    assert str(got.value) == str(expected.value)
    with pytest.raises(TypeError, match="parameters: expected a dict"):
        save_checkpoint(tmp_path / "m.st", [1, 2])
    with pytest.raises(ValueError, match=r"unexpected keys \['lr'\]"):
        save_checkpoint(tmp_path / "m.st", {**params, "lr": 0.1})
    assert _listing(tmp_path) == []


def test_invalid_optimizer_state(tmp_path):
    bk = backends.get("numpy")
    params = make_params(bk)
    opt = make_opt(bk, params)
    path = tmp_path / "m.st"
    with pytest.raises(ValueError, match=r"optimizer_state\['v'\].*missing \['db3'\]"):
        save_checkpoint(path, params, optimizer_state={**opt, "v": {k: a for k, a in opt["v"].items() if k != "db3"}})
    with pytest.raises(ValueError, match=r"optimizer_state\['s'\]\['dW1'\]: expected shape \(5, 6\)"):
        save_checkpoint(path, params, optimizer_state={**opt, "s": {**opt["s"], "dW1": np.ones((6, 5))}})
    with pytest.raises(TypeError, match=r"optimizer_state\['s'\]\['dW1'\]: expected dtype float64"):
        save_checkpoint(path, params, optimizer_state={**opt, "s": {**opt["s"], "dW1": np.ones((5, 6), np.float32)}})
    with pytest.raises(ValueError, match=r"optimizer_state\['t'\]: expected an integer >= 0"):
        save_checkpoint(path, params, optimizer_state={**opt, "t": -1})
    with pytest.raises(TypeError, match=r"optimizer_state\['lr_fn'\]: not JSON-serialisable"):
        save_checkpoint(path, params, optimizer_state={**opt, "lr_fn": print})
    with pytest.raises(TypeError, match=r"optimizer_state\['m'\]: a bare array"):
        save_checkpoint(path, params, optimizer_state={**opt, "m": np.ones(3)})
    with pytest.raises(TypeError, match="optimizer_state: expected a dict or None"):
        save_checkpoint(path, params, optimizer_state=[1])
    assert _listing(tmp_path) == []


# --------------------------------------------------------------------------- #
# bad inputs (badinput.py)


def _nan_params(c):
    p = dict(c.params)
    p["W1"] = with_entry(p["W1"], (0, 0), math.nan)
    return p


def _save_nan_over_good(c):
    # the existing good.npz must survive a refused save of diverged (NaN) parameters
    return save_checkpoint("good.npz", _nan_params(c))


#: each case: (function of the numpy context c of badinput.api_context, exception type, regex on the message)
#: (run in a copy of badinput's files: good.npz, corrupt.npz, truncated.npz)
BAD_INPUTS = [
    pytest.param(lambda c: load_checkpoint("corrupt.npz"), CheckpointError,
                 r"^checkpoint 'corrupt\.npz': not a bpnet checkpoint: neither a safetensors file nor an \.npz "
                 r"archive \(it starts with b'this'\)$", id="ckpt-load-corrupt"),
    pytest.param(lambda c: load_checkpoint("truncated.npz"), CheckpointError,
                 r"^checkpoint 'truncated\.npz': (truncated|not a readable safetensors file, truncated or corrupt)",
                 id="ckpt-load-truncated"),
    pytest.param(lambda c: check_architecture(read_header("good.npz"), [3, 5, 1]), ValueError,
                 r"^checkpoint: saved for layer_dims \[3, 4, 1\], expected \[3, 5, 1\]$",
                 id="ckpt-other-architecture"),
    pytest.param(lambda c: save_checkpoint(pathlib.Path("nodir") / "m.npz", c.params), FileNotFoundError,
                 r"path: the directory 'nodir' does not exist", id="ckpt-save-into-missing-directory"),
    pytest.param(_save_nan_over_good, ValueError,
                 r"^parameters\['W1'\]: expected finite values, got 1 NaN and 0 inf .*existing checkpoint is "
                 r"left as it was$", id="ckpt-save-nan-parameters-over-a-good-one"),
    pytest.param(lambda c: load_checkpoint("good.npz", dtype="float16"), TypeError,
                 r"^dtype: expected 'float32' or 'float64'", id="ckpt-load-unknown-dtype"),
]


@pytest.mark.parametrize(("call", "exc", "pattern"), BAD_INPUTS)
def test_bad_input_once(call, exc, pattern, harness):
    c = api_context()
    harness.refuses(lambda: call(c), exc, pattern)


def test_the_bad_input_tables_are_distinct():
    check_table(BAD_INPUTS, minimum=6)
