"""Checkpoints (bpnet.io.checkpoint): round trips across backends, atomic writes, refusal of bad files."""

from __future__ import annotations

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
from badinput import api_context, check_table, with_entry
from conftest import ROOT, assert_on, assert_same_result, to_np

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
from bpnet.io import checkpoint as ckpt

DIMS = [6, 5, 3, 1]
TARGETS = ["numpy", "array_api_strict:device1"]


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
        f"d{k}": bk.asarray(rng.standard_normal(tuple(a.shape)), dtype=dtype) for k, a in params.items()
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


def read_members(path):
    """All members of an .npz, the header decoded (no pickle)."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(arrays.pop("__bpnet__").tobytes().decode("utf-8"))
    return header, arrays


def write_members(path, header, arrays, **extra):
    """An .npz with ``header`` (if not None) and ``arrays``; np.savez pickles object arrays."""
    members = dict(arrays)
    if header is not None:
        members["__bpnet__"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    members.update(extra)
    with open(path, "wb") as f:
        np.savez(f, **members)


@pytest.fixture
def saved(tmp_path):
    """A valid float64 checkpoint with optimiser state, on disk."""
    bk = backends.get("numpy")
    params = make_params(bk)
    path = tmp_path / "model.npz"
    save_checkpoint(path, params, optimizer_state=make_opt(bk, params), metadata=METADATA)
    return path, params


def refused(path, *fragments):
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, backend="numpy")
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
    path = save_checkpoint(tmp_path / "m.npz", params, optimizer_state=opt, metadata=METADATA)
    assert path == tmp_path / "m.npz"

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
    path = save_checkpoint(tmp_path / "m.npz", params)
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
    path = save_checkpoint(tmp_path / "m.npz", params, metadata={"output_activation": "sigmoid"})
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
    save_checkpoint(tmp_path / "m.npz", params, optimizer_state=opt)
    ck = load_checkpoint(tmp_path / "m.npz", backend="array_api_strict:device1", dtype=wanted)
    tb = backends.get("array_api_strict:device1")
    for a in ck.parameters.values():
        assert_on(tb, a, dtype=wanted)
    for a in ck.optimizer_state["v"].values():
        assert_on(tb, a, dtype=wanted)
    assert ck.header["dtype"] == saved_dtype  # the header describes the file
    with pytest.raises(TypeError, match="dtype: expected 'float32' or 'float64'"):
        load_checkpoint(tmp_path / "m.npz", backend="numpy", dtype="int64")


def test_backend_from_environment(tmp_path, monkeypatch):
    params = make_params(backends.get("numpy"))
    save_checkpoint(tmp_path / "m.npz", params)
    monkeypatch.setenv(backends.ENV_VAR, "array_api_strict:device1")
    ck = load_checkpoint(tmp_path / "m.npz")
    for a in ck.parameters.values():
        assert_on(backends.get("array_api_strict:device1"), a)


def test_file_is_an_open_npz_with_the_documented_header(saved):
    path, params = saved
    # any numpy reads it without pickle
    with np.load(path, allow_pickle=False) as z:
        names = set(z.files)
        np.testing.assert_array_equal(z["param/W2"], to_np(params["W2"]))
    assert "__bpnet__" in names and "opt/v/dW1" in names and "opt/s/db3" in names
    header, arrays = read_members(path)
    assert header["format"] == FORMAT == "bpnet-checkpoint"
    assert header["format_version"] == FORMAT_VERSION == 1
    assert header["bpnet_version"] == bpnet.__version__
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", header["created"])
    assert header["layer_dims"] == DIMS and header["dtype"] == "float64"
    assert header["arrays"]["param/W1"] == {"shape": [5, 6], "dtype": "float64"}
    assert set(header["arrays"]) == set(arrays)
    assert header["optimizer"]["scalars"] == {"t": 7, "beta1": 0.9, "beta2": 0.999, "name": "adam"}
    assert header["optimizer"]["arrays"]["v"] == ["dW1", "db1", "dW2", "db2", "dW3", "db3"]
    # the digest, recomputed from the documented rule
    import hashlib

    h = hashlib.sha256()
    for name in sorted(arrays):
        a = arrays[name]
        h.update(json.dumps([name, a.dtype.name, list(a.shape)]).encode() + b"\n")
        h.update(np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes())
    assert header["sha256"] == h.hexdigest()
    assert read_header(path) == load_checkpoint(path, backend="numpy").header


def test_path_is_used_as_given(tmp_path):
    params = make_params(backends.get("numpy"))
    out = save_checkpoint(str(tmp_path / "model"), params)
    assert out == tmp_path / "model"
    assert sorted(os.listdir(tmp_path)) == ["model"]  # no ".npz" appended, no temp file left
    assert_same_params(params, load_checkpoint(tmp_path / "model", backend="numpy").parameters)


def test_overwrite_replaces_content_and_keeps_mode(tmp_path):
    bk = backends.get("numpy")
    path = tmp_path / "m.npz"
    save_checkpoint(path, make_params(bk, seed=1), metadata={"i": 1})
    os.chmod(path, 0o640)
    new = make_params(bk, seed=2)
    save_checkpoint(path, new, metadata={"i": 2})
    ck = load_checkpoint(path, backend="numpy")
    assert ck.metadata == {"i": 2}
    assert_same_params(new, ck.parameters)
    if os.name == "posix":
        assert (os.stat(path).st_mode & 0o777) == 0o640
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]


def test_metadata_is_copied_and_numpy_scalars_become_json(tmp_path):
    params = make_params(backends.get("numpy"))
    meta = {"epoch": np.int64(3), "lr": np.float32(0.5), "dims": (6, 5), "ok": np.bool_(True)}
    save_checkpoint(tmp_path / "m.npz", params, metadata=meta)
    ck = load_checkpoint(tmp_path / "m.npz", backend="numpy")
    assert ck.metadata == {"epoch": 3, "lr": 0.5, "dims": [6, 5], "ok": True}
    assert type(ck.metadata["epoch"]) is int
    ck.metadata["epoch"] = 99
    assert ck.header["metadata"]["epoch"] == 3


def test_empty_optimizer_state_round_trips_as_empty(tmp_path):
    params = make_params(backends.get("numpy"))
    save_checkpoint(tmp_path / "m.npz", params, optimizer_state={"t": 0})
    assert load_checkpoint(tmp_path / "m.npz", backend="numpy").optimizer_state == {"t": 0}


# --------------------------------------------------------------------------- #
# atomic writes


def _listing(d):
    return sorted(os.listdir(d))


@pytest.mark.parametrize("step", ["savez", "fsync", "replace"])
def test_failure_mid_save_keeps_previous_checkpoint(tmp_path, monkeypatch, step):
    bk = backends.get("numpy")
    path = tmp_path / "m.npz"
    old = make_params(bk, seed=1)
    save_checkpoint(path, old, metadata={"v": "old"})
    before = path.read_bytes()

    class Crash(Exception):
        pass

    if step == "savez":
        real = np.savez

        def boom(f, **kw):
            f.write(b"PK\x03\x04 half an archive")
            raise Crash("disk full")

        monkeypatch.setattr(ckpt.np, "savez", boom)
    elif step == "fsync":
        def boom(fd):
            raise Crash("I/O error")

        monkeypatch.setattr(ckpt.os, "fsync", boom)
    else:
        def boom(src, dst):
            assert pathlib.Path(src).parent == tmp_path  # the temp file sits beside the target
            assert pathlib.Path(src).read_bytes()[:4] == b"PK\x03\x04"  # and is complete
            raise Crash("power cut")

        monkeypatch.setattr(ckpt.os, "replace", boom)

    with pytest.raises(Crash):
        save_checkpoint(path, make_params(bk, seed=2), metadata={"v": "new"})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert _listing(tmp_path) == ["m.npz"]  # the temp file was removed
    ck = load_checkpoint(path, backend="numpy")
    assert ck.metadata == {"v": "old"}
    assert_same_params(old, ck.parameters)
    if step == "savez":
        assert np.savez is real


def test_keyboard_interrupt_mid_save_removes_temp_file(tmp_path, monkeypatch):
    def boom(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "m.npz", make_params(backends.get("numpy")))
    assert _listing(tmp_path) == []


def test_save_fsyncs_file_and_directory(tmp_path, monkeypatch):
    calls = []
    real = os.fsync
    monkeypatch.setattr(ckpt.os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    save_checkpoint(tmp_path / "m.npz", make_params(backends.get("numpy")))
    assert len(calls) >= (2 if os.name == "posix" else 1)


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
    """A child saving ~40 MB in a loop is SIGKILLed at random times, 5 times."""
    path = tmp_path / "big.npz"
    v = 0.0
    save_checkpoint(
        path,
        {"W1": np.full((2000, 2500), v), "b1": np.full((2000, 1), v), "W2": np.full((1, 2000), v), "b2": np.full((1, 1), v)},
        metadata={"i": 0},
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    rnd = random.Random(1234)
    temp_re = re.compile(r"^\.big\.npz\.[A-Za-z0-9_]+\.tmp$")
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
        for name in os.listdir(tmp_path):
            assert name == "big.npz" or temp_re.match(name), name
    # leftover temp files (if any) are never read: load opens only the path given
    stale = tmp_path / ".big.npz.abcd1234.tmp"
    stale.write_bytes(b"PK\x03\x04 garbage")
    _check_big(path)


# --------------------------------------------------------------------------- #
# refusals


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_checkpoint(tmp_path / "nope.npz")
    assert "nope.npz" in str(info.value)
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        read_header(tmp_path / "nope.npz")


def test_text_file_renamed_npz(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("just some text\n")
    refused(path, "not a bpnet checkpoint", "not an .npz archive")


def test_empty_file_and_npy_file(tmp_path):
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    refused(empty, "empty")
    npy = tmp_path / "one.npz"
    with open(npy, "wb") as f:
        np.save(f, np.ones(3))
    refused(npy, ".npy")


@pytest.mark.parametrize("fraction", [0.01, 0.5, 0.99])
def test_truncated_copy(saved, tmp_path, fraction):
    path, _ = saved
    data = path.read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[: int(len(data) * fraction)])
    refused(cut, "truncated")


def test_flipped_byte_in_place_is_refused(tmp_path):
    params = {"W1": np.ones((300, 400)), "b1": np.zeros((300, 1))}
    path = save_checkpoint(tmp_path / "m.npz", params)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside W1's data
    path.write_bytes(bytes(data))
    refused(path, "corrupt")


def test_foreign_npz_without_header(tmp_path):
    path = tmp_path / "foreign.npz"
    rng = np.random.default_rng(0)
    np.savez(path, a=rng.random((3, 3)), b=rng.random(4))
    refused(path, "not a bpnet checkpoint", "'__bpnet__'", "'a'")


def test_foreign_format(saved, tmp_path):
    header, arrays = read_members(saved[0])
    header["format"] = "something-else"
    write_members(tmp_path / "x.npz", header, arrays)
    refused(tmp_path / "x.npz", "not a bpnet checkpoint", "'something-else'")


def test_newer_format_version(saved, tmp_path):
    header, arrays = read_members(saved[0])
    header["format_version"] = 999
    write_members(tmp_path / "x.npz", header, arrays)
    refused(tmp_path / "x.npz", "format_version 999", "upgrade bpnet")
    with pytest.raises(CheckpointError, match="format_version 999"):
        read_header(tmp_path / "x.npz")


def test_header_not_json(saved, tmp_path):
    _, arrays = read_members(saved[0])
    write_members(tmp_path / "x.npz", None, arrays, __bpnet__=np.frombuffer(b"{not json", dtype=np.uint8))
    refused(tmp_path / "x.npz", "not valid UTF-8 JSON")
    write_members(tmp_path / "y.npz", None, arrays, __bpnet__=np.zeros(3))
    refused(tmp_path / "y.npz", "1-D uint8")


def test_manifest_shape_mismatch(saved, tmp_path):
    header, arrays = read_members(saved[0])
    header["arrays"]["param/W1"]["shape"] = [99, 6]
    write_members(tmp_path / "x.npz", header, arrays)
    refused(tmp_path / "x.npz", "'param/W1'", "shape (5, 6)", "(99, 6)")


def test_manifest_dtype_mismatch(saved, tmp_path):
    header, arrays = read_members(saved[0])
    arrays["param/b1"] = arrays["param/b1"].astype(np.float32)
    write_members(tmp_path / "x.npz", header, arrays)
    refused(tmp_path / "x.npz", "'param/b1'", "float32", "float64")


def test_missing_and_extra_arrays(saved, tmp_path):
    header, arrays = read_members(saved[0])
    less = dict(arrays)
    del less["param/b2"]
    write_members(tmp_path / "less.npz", header, less)
    refused(tmp_path / "less.npz", "missing", "'param/b2'")
    write_members(tmp_path / "more.npz", header, arrays, junk=np.ones(2))
    refused(tmp_path / "more.npz", "does not list", "'junk'")


def test_sha256_mismatch(saved, tmp_path):
    header, arrays = read_members(saved[0])
    W = arrays["param/W2"].copy()
    W.reshape(-1).view(np.uint8)[3] ^= 0x01  # one bit of one weight; the header is stale
    arrays["param/W2"] = W
    write_members(tmp_path / "x.npz", header, arrays)
    refused(tmp_path / "x.npz", "corrupt", "sha256")


def test_inconsistent_layer_shapes(saved, tmp_path):
    header, arrays = read_members(saved[0])
    arrays["param/W2"] = np.ones((3, 4))  # W1 has 5 rows
    header["arrays"]["param/W2"]["shape"] = [3, 4]
    header["sha256"] = ckpt._digest(arrays)
    write_members(tmp_path / "x.npz", header, arrays)
    refused(tmp_path / "x.npz", "inconsistent parameters", "W2")


def test_layer_dims_header_mismatch(saved, tmp_path):
    header, arrays = read_members(saved[0])
    header["layer_dims"] = [6, 5, 4, 1]
    write_members(tmp_path / "x.npz", header, arrays)
    refused(tmp_path / "x.npz", "layer_dims")


def test_huge_declared_shape_is_refused_before_allocating(saved, tmp_path):
    header, arrays = read_members(saved[0])
    huge = [10**6, 10**6]  # 8 TB of float64, consistent in the manifest and the .npy header
    header["arrays"]["param/W1"]["shape"] = huge
    path = tmp_path / "huge.npz"
    write_members(path, header, {k: a for k, a in arrays.items() if k != "param/W1"})
    buf = io.BytesIO()
    d = np.lib.format.header_data_from_array_1_0(np.ones((2, 2)))
    d["shape"] = tuple(huge)
    np.lib.format.write_array_header_1_0(buf, d)
    buf.write(np.ones(4).tobytes())
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("param/W1.npy", buf.getvalue())
    refused(path, "'param/W1'", "truncated")


def test_object_array_is_refused(saved, tmp_path):
    # foreign npz holding an object array (np.savez pickles it by default)
    path = tmp_path / "obj.npz"
    np.savez(path, a=np.array([{"x": 1}, None], dtype=object))
    refused(path, "not a bpnet checkpoint")
    # a checkpoint whose W1 was replaced by an object array
    header, arrays = read_members(saved[0])
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
def test_pickle_payload_is_never_executed(saved, tmp_path, where):
    marker = tmp_path / "PWNED"
    evil = np.array([_Payload(str(marker))], dtype=object)
    header, arrays = read_members(saved[0])
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


def test_non_npy_member_and_duplicate_member(saved, tmp_path):
    data = saved[0].read_bytes()
    odd = tmp_path / "odd.npz"
    odd.write_bytes(data)
    with zipfile.ZipFile(odd, "a") as zf:
        zf.writestr("readme.txt", "hi")
    refused(odd, "'readme.txt'")
    dup = tmp_path / "dup.npz"
    dup.write_bytes(data)
    with zipfile.ZipFile(saved[0]) as zf:
        w1 = zf.read("param/W1.npy")
    with zipfile.ZipFile(dup, "a") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr("param/W1.npy", w1)
    refused(dup, "appears twice")


def test_optimizer_arrays_inconsistent_with_header(saved, tmp_path):
    header, arrays = read_members(saved[0])
    header["optimizer"] = None
    write_members(tmp_path / "x.npz", header, arrays)
    refused(tmp_path / "x.npz", "optimizer")


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
    path = save_checkpoint(tmp_path / "m.npz", make_params(backends.get("numpy")), metadata=meta)
    check_architecture(read_header(path), DIMS, hidden_activation="tanh", loss="mse")
    with pytest.raises(ValueError, match="saved with hidden_activation 'tanh', expected 'relu'"):
        check_architecture(read_header(path), DIMS, hidden_activation="relu")


def test_check_architecture_unrecorded_key_and_bad_input(tmp_path):
    path = save_checkpoint(tmp_path / "m.npz", make_params(backends.get("numpy")))
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
        save_checkpoint(tmp_path / "m.npz", params, metadata={"epoch": 1, "fn": print})
    with pytest.raises(TypeError, match=r"metadata\['history'\]\[1\]: not JSON-serialisable.*ndarray"):
        save_checkpoint(tmp_path / "m.npz", params, metadata={"history": [0.5, np.ones(2)]})
    with pytest.raises(TypeError, match=r"metadata\['seeds'\]: keys must be str"):
        save_checkpoint(tmp_path / "m.npz", params, metadata={"seeds": {1: 2}})
    with pytest.raises(ValueError, match=r"metadata\['cost'\]: nan cannot be stored"):
        save_checkpoint(tmp_path / "m.npz", params, metadata={"cost": float("nan")})
    with pytest.raises(TypeError, match="metadata: expected a dict"):
        save_checkpoint(tmp_path / "m.npz", params, metadata=[1])
    with pytest.raises(ValueError, match=r"metadata\['layer_dims'\]"):
        save_checkpoint(tmp_path / "m.npz", params, metadata={"layer_dims": [6, 1]})
    with pytest.raises(ValueError, match=r"metadata\['dtype'\]"):
        save_checkpoint(tmp_path / "m.npz", params, metadata={"dtype": "float32"})
    assert _listing(tmp_path) == []


def test_parent_directory_missing(tmp_path):
    params = make_params(backends.get("numpy"))
    with pytest.raises(FileNotFoundError, match="does not exist") as info:
        save_checkpoint(tmp_path / "no" / "such" / "m.npz", params)
    assert "no" in str(info.value)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(NotADirectoryError):
        save_checkpoint(tmp_path / "afile" / "m.npz", params)
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
        save_checkpoint(tmp_path / "m.npz", bad)
    assert str(got.value) == str(expected.value)
    with pytest.raises(TypeError, match="parameters: expected a dict"):
        save_checkpoint(tmp_path / "m.npz", [1, 2])
    with pytest.raises(ValueError, match=r"unexpected keys \['lr'\]"):
        save_checkpoint(tmp_path / "m.npz", {**params, "lr": 0.1})
    assert _listing(tmp_path) == []


def test_invalid_optimizer_state(tmp_path):
    bk = backends.get("numpy")
    params = make_params(bk)
    opt = make_opt(bk, params)
    path = tmp_path / "m.npz"
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
                 r"^checkpoint 'corrupt\.npz': not a bpnet checkpoint: not an \.npz archive \(it starts with "
                 r"b'this', expected b'PK\\x03\\x04'\)$", id="ckpt-load-corrupt"),
    pytest.param(lambda c: load_checkpoint("truncated.npz"), CheckpointError,
                 r"^checkpoint 'truncated\.npz': unreadable archive, truncated or corrupt", id="ckpt-load-truncated"),
    pytest.param(lambda c: check_architecture(read_header("good.npz"), [3, 5, 1]), ValueError,
                 r"^checkpoint: saved for layer_dims \[3, 4, 1\], expected \[3, 5, 1\]$",
                 id="ckpt-other-architecture"),
    pytest.param(lambda c: save_checkpoint(pathlib.Path("nodir") / "m.npz", c.params), FileNotFoundError,
                 r"path: the directory 'nodir' does not exist", id="ckpt-save-into-missing-directory"),
    pytest.param(_save_nan_over_good, ValueError,
                 r"^parameters\['W1'\]: expected finite values, got 1 NaN and 0 inf .*existing checkpoint is "
                 r"left as it was$", id="ckpt-save-nan-parameters-over-a-good-one"),
]


@pytest.mark.parametrize(("call", "exc", "pattern"), BAD_INPUTS)
def test_bad_input_once(call, exc, pattern, harness):
    c = api_context()
    harness.refuses(lambda: call(c), exc, pattern)


def test_the_bad_input_tables_are_distinct():
    check_table(BAD_INPUTS, minimum=5)
