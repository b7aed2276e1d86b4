"""The one bad-input harness: every module's ``PER_BACKEND`` / ``BAD_INPUTS`` table runs through it.

A refused call must raise the documented exception (exactly that type: a ``ValueError`` or
``TypeError``, a missing file a ``FileNotFoundError``; a CLI one ``error`` line on stderr and
exit status 2, no traceback) with a message matching the row's regex, which names the
argument, what was expected and what came; and:

* none reaches the math: every forward/backward/update kernel and every activation, loss and
  optimiser of the registries is replaced by a function that fails the test if called, so
  validation must come first (:func:`forbid_math`);
* nothing on disk changes: each case runs in a fresh directory holding the fixture files
  (:data:`FILES`, good and corrupt checkpoints, a trained run, an existing predictions file);
  after the call every file is byte-identical and nothing was added (:func:`snapshot`).

The ``harness`` fixture of ``conftest.py`` hands a :class:`Harness` to a test.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import os
import pathlib
import re
import shutil
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

import bpnet
from bpnet import backends

DIMS = [3, 4, 1]  # n_x = 3, one hidden layer of 4, one output unit
M = 5

# --------------------------------------------------------------------------- #
# fixture files, made once (conftest's ``bad_input_files``) and copied into each case's own directory

GOOD_CSV = "a,b,label\n" + "".join(f"{i % 7},{(3 * i) % 5},{i % 2}\n" for i in range(20))
XY_CSV = "a,b,label\n" + "".join(f"{i % 7},{(3 * i) % 5},{'xy'[i % 2]}\n" for i in range(20))
FILES = {
    "good.csv": GOOD_CSV,
    "xy.csv": XY_CSV,  # the features of good.csv, but classes 'x'/'y' instead of 0/1
    "text.csv": "a,b,label\n1,2,0\n3,x,1\n5,6,0\n7,8,1\n",
    "nan.csv": "a,b,label\n1,nan,0\n3,4,1\n5,6,0\n",
    "empty.csv": "",
    "other.csv": "x,y\n1,2\n3,4\n",  # not the features a model of good.csv was trained on
    "features.csv": "a,b\n1,2\n3,4\n",
    "preds.csv": "prediction,p_0,p_1\nkeep,me,intact\n",  # an existing output that must survive
    "afile": "not a directory\n",
    "corrupt.npz": "this is not a checkpoint\n",
}


def make_files(d: pathlib.Path) -> pathlib.Path:
    """Write the fixture files into ``d``: :data:`FILES`, checkpoints, and a ``bpnet train`` run."""
    from bpnet.cli import main
    from bpnet.io.checkpoint import save_checkpoint

    for name, text in FILES.items():
        (d / name).write_text(text)
    bk = backends.get("numpy")
    params = bpnet.initialize_parameters_deep(DIMS, init="he", seed=1, backend=bk)
    save_checkpoint(d / "good.npz", params, metadata={"layer_dims": DIMS})  # a checkpoint, but not an MLP's
    data = (d / "good.npz").read_bytes()
    (d / "truncated.npz").write_bytes(data[: len(data) // 2])
    cwd = os.getcwd()
    os.chdir(d)
    try:  # a run of `bpnet train` on good.csv (2-3-1), as --resume and evaluate/predict need
        assert main(["train", "--data", "good.csv", "--layers", "3", "--epochs", "2", "--out", "run",
                     "--no-plots", "--quiet"]) == 0
    finally:
        os.chdir(cwd)
    (d / "corrupt_run").mkdir()
    (d / "corrupt_run" / "model.npz").write_text("half a checkpoint\n")
    return d


# --------------------------------------------------------------------------- #
# what the rows call with


def host(shape, fill=None, dtype=np.float64):
    a = np.random.default_rng(1).standard_normal(shape)
    if fill is not None:
        a = np.full(shape, fill)
    return a.astype(dtype)


def without(d, key):
    d = dict(d)
    del d[key]
    return d


def replaced(d, **kw):
    return {**d, **kw}


def with_entry(a, idx, value):
    a = np.array(a, dtype=np.float64)
    a[idx] = value
    return a


def small_net(bk, dtype="float64"):
    """A valid 3-4-1 network on backend ``bk``, its pass on 5 examples: each PER_BACKEND row breaks one thing."""
    rng = np.random.default_rng(0)
    params = bpnet.initialize_parameters_deep(DIMS, init="xavier", seed=1, dtype=dtype, backend=bk)
    X = bk.asarray(rng.standard_normal((DIMS[0], M)), dtype=dtype)
    Y = bk.asarray(np.array([[0.0, 1.0, 1.0, 0.0, 1.0]]), dtype=dtype)
    AL, caches = bpnet.L_model_forward(X, params)
    grads = bpnet.L_model_backward(AL, Y, caches)
    return SimpleNamespace(bk=bk, X=X, Y=Y, params=params, AL=AL, caches=caches, grads=grads, rng=rng)


def X_with(n, values):
    """X of the right shape with some entries replaced (NaN, inf)."""
    a = host((DIMS[0], M))
    for (i, j), v in values.items():
        a[i, j] = v
    return n.bk.asarray(a)


def layer_cache(n):
    """((A_prev, W, b), Z) of layer 1."""
    return n.caches[0]


def numpy_and_strict():
    """numpy, array-api-strict, and a 3-4-1 network on array-api-strict: for the two-backends rows."""
    strict = backends.get("array_api_strict")
    return backends.get("numpy"), strict, bpnet.initialize_parameters_deep(DIMS, backend=strict)


def default_and_device1():
    """array-api-strict on its default device and on device1, a 3-4-1 network on the default: two-devices rows."""
    dev0 = backends.get("array_api_strict")
    dev1 = backends.get("array_api_strict:device1")
    return dev0, dev1, bpnet.initialize_parameters_deep(DIMS, backend=dev0)


def api_context():
    """What the BAD_INPUTS rows call with: a valid 3-4-1 network on numpy, its pass, and variations."""
    bk = backends.get("numpy")
    rng = np.random.default_rng(0)
    params = bpnet.initialize_parameters_deep(DIMS, init="xavier", seed=1, backend=bk)
    X = rng.standard_normal((DIMS[0], M))
    Y = np.array([[0.0, 1.0, 1.0, 0.0, 1.0]])
    AL, caches = bpnet.L_model_forward(X, params)
    grads = bpnet.L_model_backward(AL, Y, caches)
    X20 = rng.standard_normal((3, 20))
    Y20 = (X20[:1] > 0).astype(float)
    AL3 = np.full((3, M), 1 / 3)
    _, strict, strict_params = numpy_and_strict()  # a pass on another backend than numpy's
    strict_AL, strict_caches = bpnet.L_model_forward(strict.asarray(host((3, M))), strict_params)
    return SimpleNamespace(bk=bk, params=params, X=X, Y=Y, AL=AL, caches=caches, grads=grads, X20=X20,
                           Y20=Y20, AL3=AL3, strict_AL=strict_AL, strict_caches=strict_caches)


# --------------------------------------------------------------------------- #
# the harness


def snapshot(root: pathlib.Path) -> dict:
    """Every file and directory under root: relative path -> sha256 (None for directories)."""
    snap = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        snap[rel] = None if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return snap


def forbid_math(monkeypatch):
    """Make every computing kernel fail the test if it is called."""
    from bpnet.nn.activations import ACTIVATIONS
    from bpnet.nn.losses import LOSSES
    from bpnet.optim.rules import OPTIMIZERS

    def reached(*args, **kwargs):
        raise AssertionError("a bad input reached the math: validation must come first")

    for modname in ("bpnet.nn._kernels", "bpnet.nn.course", "bpnet.model", "bpnet.train.step", "bpnet.train.loop",
                    "bpnet.tools.gradcheck"):
        mod = importlib.import_module(modname)
        for fn in ("forward", "backward", "forward_train", "backward_update", "apply_gradients", "train_step"):
            if callable(getattr(mod, fn, None)):
                monkeypatch.setattr(mod, fn, reached)
    for registry in (ACTIVATIONS, LOSSES, OPTIMIZERS):
        for name, entry in list(registry.items()):
            kernels = {f.name: reached for f in dataclasses.fields(entry)
                       if f.init and callable(getattr(entry, f.name)) and f.name != "name"}
            monkeypatch.setitem(registry, name, dataclasses.replace(entry, **kernels))


def run_cli(argv, capsys):
    """``bpnet.cli.main(argv)`` in process: (exit status, stdout, stderr)."""
    from bpnet.cli import main

    try:
        rc = main(list(argv))
    except SystemExit as exc:  # argparse errors
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def _one_error_line(err, pattern):
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1, err
    assert re.search(pattern, lines[0]), (pattern, lines[0])


@dataclasses.dataclass
class Harness:
    """Runs one bad-input case: in a fresh copy of ``files``, with the math forbidden."""

    files: pathlib.Path
    tmp_path: pathlib.Path
    capsys: pytest.CaptureFixture

    def _copy_files(self):
        for item in self.files.iterdir():
            (shutil.copytree if item.is_dir() else shutil.copy2)(item, self.tmp_path / item.name)

    @contextlib.contextmanager
    def _guarded(self):
        self._copy_files()
        with pytest.MonkeyPatch.context() as mp:
            mp.chdir(self.tmp_path)
            before = snapshot(self.tmp_path)
            forbid_math(mp)
            yield
        assert snapshot(self.tmp_path) == before, "a failed call changed, added or left files on disk"

    def refuses(self, call, exc, pattern):
        """``call()`` raises exactly ``exc`` with a message matching ``pattern``, computing and writing nothing.

        ``exc`` is ``ValueError``, ``TypeError`` or ``FileNotFoundError``, or a documented subclass:
        ``CheckpointError`` (a ``ValueError``), the estimators' ``InvalidParameterError`` (both, as in scikit-learn).
        """
        assert issubclass(exc, (ValueError, TypeError, FileNotFoundError))
        with self._guarded(), pytest.raises(exc) as info:
            call()
        assert re.search(pattern, str(info.value)), (pattern, str(info.value))
        # exactly the documented type, not a subclass from deep inside the math
        assert type(info.value) is exc, f"{type(info.value).__name__}: {info.value}"

    def cli_refuses(self, argv, pattern):
        """``bpnet ARGV`` in process: exit status 2, one ``error`` line matching ``pattern``, nothing written."""
        with self._guarded():
            rc, out, err = run_cli(argv, self.capsys)
        assert rc == 2, (rc, out, err)
        _one_error_line(err, pattern)

    def subprocess_refuses(self, argv, pattern):
        """``python -m bpnet ARGV`` as a shell runs it: exit status 2, one ``error`` line, nothing written."""
        from conftest import ROOT

        self._copy_files()
        before = snapshot(self.tmp_path)
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        r = subprocess.run([sys.executable, "-m", "bpnet", *argv], cwd=self.tmp_path, capture_output=True,
                           text=True, env=env, timeout=120)
        assert r.returncode == 2, r.stderr
        _one_error_line(r.stderr, pattern)
        assert snapshot(self.tmp_path) == before


def check_table(rows, minimum: int) -> None:
    """A table of bad inputs: at least ``minimum`` rows, distinct ids, no row repeating another's call."""
    ids = [p.id for p in rows]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    calls = [p.values[0] for p in rows]
    assert len({id(c) if callable(c) else tuple(c) for c in calls}) == len(calls)
    assert len(rows) >= minimum, (len(rows), minimum)
