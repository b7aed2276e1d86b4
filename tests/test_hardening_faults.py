"""Faults: SIGKILL and Ctrl-C during `bpnet train`, diverging training, pickle payloads, out of memory.

Already covered elsewhere (and checked to test what they claim):
``test_checkpoint.py::test_sigkill_while_saving_never_leaves_a_half_file`` (a child
saving 40 MB checkpoints in a loop is SIGKILLed at 5 random times; the file is
always the last completed save), ``test_failure_mid_save_keeps_previous_checkpoint``,
``test_pickle_payload_is_never_executed`` (a payload whose unpickling writes a
marker file is refused in the header, in ``param/W1`` and in a foreign archive; the
control shows that ``allow_pickle=True`` would run it),
``test_cli.py::test_ctrl_c_saves_a_checkpoint_and_exits_cleanly`` and
``test_model.py::test_out_of_memory_becomes_a_clear_error``.

Here, end to end through the command line and the training loop:

* ``bpnet train`` with a checkpoint every epoch (``--print-every 1``, ~12 MB
  checkpoints) SIGKILLed three times, resuming in between -- twice while a
  checkpoint is being written (the kill is aimed at the moment its temporary file
  exists), once at a random moment: the checkpoint always loads, is finite and
  consistent, and training resumes from it;
* Ctrl-C at random moments: exit status 130, one line, a loadable checkpoint and
  no temporary file left; Ctrl-C in the middle of an epoch saves the last
  *completed* epoch (the documented contract that makes ``--resume`` bit-identical);
* training that diverges: one ``error`` line naming the epoch and suggesting a
  smaller learning rate, exit 2, the previous checkpoint byte-identical (or, with a
  checkpoint every epoch, loadable and finite); the same for ``MLP.fit`` and
  ``L_layer_model``;
* a crafted checkpoint or data file that would run code when unpickled is refused
  by ``bpnet evaluate``/``train`` with one line, and the code never runs;
* out of memory (simulated here; real on a GPU in the ``gpu`` test) becomes one
  line suggesting a smaller ``--batch-size``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib
import random
import re
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

import bpnet
from bpnet import backends
from bpnet.checkpoint import load_checkpoint
from bpnet.cli import main
from bpnet.datasets import load_dataset
from bpnet.model import MLP
from bpnet.nn.losses import LOSSES
from bpnet.train import LocalBatches

ROOT = pathlib.Path(__file__).resolve().parents[1]
TEMP_RE = re.compile(r"^\.model\.npz\.[A-Za-z0-9_]+\.tmp$")


def _env():
    return dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                BPNET_BACKEND="numpy")


def _popen(args, cwd):
    return subprocess.Popen([sys.executable, "-m", "bpnet", *args], cwd=cwd, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_for(path: pathlib.Path, proc, timeout=120.0, newer_than=None):
    """Until ``path`` exists (and, with ``newer_than``, was rewritten since that ``st_mtime_ns``)."""
    t0 = time.monotonic()
    while not path.exists() or (newer_than is not None and path.stat().st_mtime_ns == newer_than):
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() - t0 < timeout, "no checkpoint appeared"
        time.sleep(0.02)


def _assert_good_checkpoint(path: pathlib.Path, *, check_t=True):
    model = MLP.load(path, backend="numpy")
    assert model.epoch >= 1 and len(model.history) == model.epoch
    assert all(np.all(np.isfinite(v)) for v in model.parameters.values())
    if check_t:  # full batch: one Adam step an epoch
        assert int(model.optimizer_state["t"]) == model.epoch
    return model


# big enough that a good share of the time goes into writing checkpoints (~12 MB with Adam)
HEAVY = ["train", "--data", "flower", "--layers", "1024,1024", "--optimizer", "adam", "--lr", "0.001",
         "--epochs", "100000", "--print-every", "1", "--no-plots", "--quiet", "--out", "run"]


def _temp_files(directory: pathlib.Path) -> set:
    return {n for n in os.listdir(directory) if TEMP_RE.match(n)} if directory.exists() else set()


def _kill_while_writing(proc, directory: pathlib.Path, rnd, stale: set, timeout=120.0) -> None:
    """SIGKILL ``proc`` while a checkpoint is being written: a new temporary file exists."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if _temp_files(directory) - stale:
            time.sleep(rnd.uniform(0.0, 0.004))
            proc.kill()
            return
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.0005)
    raise AssertionError("no checkpoint write was seen")


def test_sigkill_during_training_with_a_checkpoint_every_epoch(tmp_path, monkeypatch):
    """Killed twice while writing a checkpoint (aimed at the write) and once at a random moment."""
    monkeypatch.chdir(tmp_path)
    rnd = random.Random(2024)
    ckpt = tmp_path / "run" / "model.npz"
    epochs, mid_write = [], 0
    for rep, how in enumerate(["while-writing", "random", "while-writing"]):
        stale = _temp_files(ckpt.parent)  # left by an earlier kill
        proc = _popen(HEAVY + (["--resume"] if rep else []), tmp_path)
        try:
            if rep == 0:
                _wait_for(ckpt, proc)  # a first checkpoint exists: the next write replaces it
            if how == "while-writing":
                _kill_while_writing(proc, ckpt.parent, rnd, stale)
            else:
                time.sleep(rnd.uniform(0.2, 0.8))
                proc.kill()  # SIGKILL: no handler runs
            proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == -signal.SIGKILL
        epochs.append(_assert_good_checkpoint(ckpt).epoch)
        left = sorted(os.listdir(ckpt.parent))
        for name in left:  # at most a stale temp file, never a half model.npz
            assert name == "model.npz" or TEMP_RE.match(name), name
        mid_write += bool(_temp_files(ckpt.parent) - stale)
    assert mid_write >= 1  # evidence that a kill did land in the middle of a write (typically 2)
    assert epochs == sorted(epochs)  # each resumed run continued from the last checkpoint
    # and a normal run resumes from what the last kill left
    assert main([*HEAVY[:HEAVY.index("--epochs")], "--epochs", "1", *HEAVY[HEAVY.index("--print-every"):],
                 "--resume"]) == 0
    assert MLP.load(ckpt).epoch == epochs[-1] + 1


def test_ctrl_c_at_random_moments_saves_and_leaves_no_temp_file(tmp_path):
    rnd = random.Random(7)
    ckpt = tmp_path / "run" / "model.npz"
    for rep in range(3):
        before = ckpt.stat().st_mtime_ns if rep else None
        proc = _popen(HEAVY + (["--resume"] if rep else []), tmp_path)
        try:
            # training has started (a first checkpoint, or the resumed run's first one): the random
            # moment falls in training, not in the interpreter's start-up (seconds on a GPU machine)
            _wait_for(ckpt, proc, newer_than=before)
            time.sleep(rnd.uniform(0.2, 0.8))
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 130, err
        assert "Traceback" not in err
        (line,) = [l for l in err.splitlines() if l.strip()]
        saved = int(re.fullmatch(r"bpnet train: interrupted after epoch (\d+); checkpoint saved to "
                                 r"run/model\.npz \(continue with --resume\)", line).group(1))
        # (the optimiser's step count is checked by the deterministic mid-epoch test below)
        assert _assert_good_checkpoint(ckpt, check_t=False).epoch == saved
        assert os.listdir(ckpt.parent) == ["model.npz"]  # KeyboardInterrupt removes its temp file


def test_ctrl_c_mid_epoch_saves_the_last_completed_epoch(tmp_path, monkeypatch, capsys):
    """Deterministic: KeyboardInterrupt at the 4th mini-batch of epoch 4 (of 8 per epoch)."""
    monkeypatch.chdir(tmp_path)
    common = ["train", "--data", "breast_cancer", "--layers", "16", "--optimizer", "adam", "--lr", "0.01",
              "--batch-size", "64", "--dtype", "float64", "--no-plots", "--quiet", "--print-every", "1000"]
    spec = LOSSES["binary_crossentropy"]
    calls = []

    def cost(xp, AL, Y):  # the per-batch cost of the training loop
        calls.append(1)
        if len(calls) == 3 * 8 + 4:
            raise KeyboardInterrupt
        return spec.cost(xp, AL, Y)

    monkeypatch.setitem(LOSSES, "binary_crossentropy", dataclasses.replace(spec, cost=cost))
    assert main([*common, "--epochs", "10", "--out", "interrupted"]) == 130
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    got = MLP.load("interrupted/model.npz")
    assert got.epoch == 3
    assert main([*common, "--epochs", "3", "--out", "clean"]) == 0
    want = MLP.load("clean/model.npz")
    assert int(got.optimizer_state["t"]) == int(want.optimizer_state["t"]) == 24
    for k in want.parameters:
        np.testing.assert_array_equal(backends.to_numpy(got.parameters[k]), backends.to_numpy(want.parameters[k]),
                                      err_msg=k)
    capsys.readouterr()


# --------------------------------------------------------------------------- #
# divergence


GOOD = ["train", "--data", "breast_cancer", "--layers", "8", "--epochs", "3", "--print-every", "1",
        "--no-plots", "--quiet", "--out", "run"]


def _diverge(tmp_path, print_every):
    r = subprocess.run([sys.executable, "-m", "bpnet", *GOOD[:GOOD.index("--epochs")], "--resume", "--lr", "1e6",
                        "--epochs", "40", "--print-every", str(print_every), "--no-plots", "--quiet", "--out",
                        "run"], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "Warning" not in r.stderr, r.stderr
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    m = re.fullmatch(r"bpnet train: error: training diverged in epoch (\d+): .*try a smaller (learning_rate|"
                     r"learning rate --lr) \(now 1e\+06\).*", lines[0])
    assert m, lines[0]
    return int(m.group(1))


def test_cli_divergence_keeps_the_previous_checkpoint_byte_identical(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(GOOD) == 0
    before = (tmp_path / "run" / "model.npz").read_bytes()
    epoch = _diverge(tmp_path, print_every=1000)  # no checkpoint between the good run and the divergence
    assert epoch > 3
    assert (tmp_path / "run" / "model.npz").read_bytes() == before
    assert _assert_good_checkpoint(tmp_path / "run" / "model.npz").epoch == 3


def test_cli_divergence_with_a_checkpoint_every_epoch_keeps_a_finite_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(GOOD) == 0
    epoch = _diverge(tmp_path, print_every=1)
    model = _assert_good_checkpoint(tmp_path / "run" / "model.npz")
    assert 3 <= model.epoch < epoch  # the last good epoch, never the diverged one


@pytest.fixture(scope="module")
def cancer():
    return load_dataset("breast_cancer")


def _nonfinite_update_run(path, cancer, **kw):
    """gd at lr = 1e308 with mse: epoch 1's cost is finite, its update is not."""
    model = MLP([cancer.n_x, 4, 1], loss="mse", dtype="float64", backend="numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's overflow warnings on the way to inf
        with np.errstate(all="ignore"):
            model.fit(cancer.X_train * 3, cancer.Y_train * 10, epochs=3, batch_size=1000, optimizer="gd",
                      learning_rate=1e308, checkpoint=path, **kw)


def test_mlp_divergence_never_writes_a_non_finite_checkpoint(cancer, tmp_path):
    path = tmp_path / "ck.npz"
    MLP([cancer.n_x, 4, 1], loss="mse", dtype="float64", backend="numpy").save(path)
    good = path.read_bytes()
    with pytest.raises((bpnet.TrainingDivergedError, ValueError), match=r"(diverged|finite values)"):
        _nonfinite_update_run(path, cancer)
    assert path.read_bytes() == good  # the refused save left the good file alone
    ck = load_checkpoint(path, backend="numpy")
    assert all(np.all(np.isfinite(v)) for v in ck.parameters.values())
    assert os.listdir(tmp_path) == ["ck.npz"]


def test_mlp_divergence_in_the_last_update_is_a_training_diverged_error(cancer, tmp_path):
    with pytest.raises(bpnet.TrainingDivergedError, match=r"diverged in epoch 1\b.*smaller learning_rate"):
        _nonfinite_update_run(tmp_path / "ck.npz", cancer)


def test_L_layer_model_never_returns_non_finite_parameters(cancer):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with np.errstate(all="ignore"):
            with pytest.raises(bpnet.TrainingDivergedError,
                               match=r"^training diverged at iteration 0: its updates made the parameters NaN or "
                                     r"infinite; try a smaller learning_rate \(now 1e\+308\)$"):
                bpnet.L_layer_model(cancer.X_train * 3, cancer.Y_train * 10, [cancer.n_x, 4, 1],
                                    learning_rate=1e308, num_iterations=1, loss="mse", backend="numpy")


# --------------------------------------------------------------------------- #
# pickle payloads through the command line


class _Payload:
    """Unpickling this writes a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path(self.marker).write_text, ("pwned",))


@pytest.mark.parametrize("how", ["evaluate-model", "train-data-npz", "resume-checkpoint"])
def test_cli_refuses_pickle_payloads_without_running_them(how, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "PWNED"
    evil = np.array([_Payload(str(marker))], dtype=object)
    if how == "train-data-npz":
        with open("evil.npz", "wb") as f:
            np.savez(f, X=np.ones((10, 2)), y=evil)
        argv = ["train", "--data", "evil.npz", "--out", "run", "--no-plots"]
        pattern = r"evil\.npz: array 'y' is an object array, which bpnet refuses to unpickle"
    else:
        (tmp_path / "run").mkdir()
        with open("run/model.npz", "wb") as f:
            np.savez(f, __bpnet__=evil)
        argv = (["evaluate", "--model", "run/model.npz"] if how == "evaluate-model" else
                ["train", "--data", "flower", "--resume", "--out", "run", "--no-plots"])
        pattern = r"checkpoint 'run/model\.npz': .*pickled data\); refused, checkpoints are never unpickled"
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert main(argv) == 2
    err = capsys.readouterr().err
    (line,) = [l for l in err.splitlines() if "error" in l]
    assert re.search(pattern, line), line
    assert not marker.exists()
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


# --------------------------------------------------------------------------- #
# out of memory


def test_cli_out_of_memory_is_one_line_suggesting_a_smaller_batch(tmp_path, monkeypatch, capsys):
    class OutOfMemoryError(Exception):  # what cupy raises (matched by name, cupy being optional)
        pass

    def boom(self, *args, **kwargs):
        raise OutOfMemoryError("Out of memory allocating 17,179,869,184 bytes (allocated so far: 0 bytes).")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(LocalBatches, "run_epoch", boom)
    assert main(["train", "--batch-size", "256", "--epochs", "2", "--no-plots", "--quiet"]) == 2
    err = capsys.readouterr().err
    (line,) = [l for l in err.splitlines() if l.strip()]
    assert re.fullmatch(rf"bpnet train: error: out of memory on {backends.get().name} .* in epoch 1 with batch_size=256 .*try a "
                        r"smaller batch_size \(--batch-size\).*", line), line
    assert os.listdir(tmp_path) == []  # the output directory it had created is removed again


@pytest.mark.gpu
@pytest.mark.skipif("cupy" in backends.unavailable_reasons(),
                    reason=f"needs a usable cupy GPU: {backends.unavailable_reasons().get('cupy')}")
def test_real_gpu_out_of_memory_is_a_clear_error():
    """A batch whose first activation needs ~128 GiB: cupy's OutOfMemoryError becomes a MemoryError."""
    model = MLP([8, 2**20, 1], dtype="float32", backend="cupy")
    X = np.random.default_rng(0).normal(size=(8, 2**15)).astype(np.float32)
    Y = (X[:1] > 0).astype(np.float32)
    with pytest.raises(MemoryError, match=r"out of memory on cupy .*batch_size=32768.*try a smaller batch_size"):
        model.fit(X, Y, epochs=1, batch_size=2**15, optimizer="gd")
    assert model.epoch == 0
    assert math.isfinite(float(np.asarray(backends.to_numpy(model.parameters["W2"])).sum()))
