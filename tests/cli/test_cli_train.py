"""bpnet train (bpnet.cli.train) end to end: the main job, every backend, data sets and CSV files, --resume,
Dask; Ctrl-C and SIGKILL mid-run, divergence, pickle payloads, out of memory; its bad options."""

from __future__ import annotations

import json
import os
import pathlib
import random
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from badinput import check_table
from conftest import ROOT, accuracy, backend_arg, cli_in_time, iris_csv, run_bpnet, umask

from bpnet import backends
from bpnet.cli import main
from bpnet.model import MLP
from bpnet.train import LocalBatches, loop

PNG = b"\x89PNG\r\n\x1a\n"


def test_train_default_main_job(capsys, tmp_path, monkeypatch):
    # the README's main job, in process: breast cancer, 30-20-7-5-1, full-batch gradient descent
    monkeypatch.chdir(tmp_path)
    assert main(["train"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"backend: {backends.get()}"  # backend and device first (auto: cupy on a GPU)
    costs = re.findall(r"^Cost after iteration (\d+): (\S+)$", out, re.M)
    assert [int(i) for i, _ in costs] == [*range(0, 2500, 100), 2499]
    assert re.search(r"^trained 2500 iterations \(0\.\.2499\) in [\d.]+ s$", out, re.M)  # counted as labelled
    assert float(costs[-1][1]) < 0.1 * float(costs[0][1])
    assert accuracy(out) >= 95.0 and accuracy(out, "train") >= 95.0
    run = tmp_path / "bpnet-run"
    assert (run / "cost.png").read_bytes().startswith(PNG)
    hist = json.loads((run / "history.json").read_text())
    assert len(hist["history"]["cost"]) == 2500 and hist["config"]["layer_dims"] == [30, 20, 7, 5, 1]
    times = hist["history"]["time_s"]  # seconds from the start of the run: cumulative, as the README says
    assert times == sorted(times) and times[-1] >= times[0] > 0
    # every file written with the mode a new file gets from the umask (atomic writes used to give 0600)
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in run.iterdir()} == \
        {n: oct(0o666 & ~umask()) for n in ("model.npz", "history.json", "cost.png")}
    model = MLP.load(run / "model.npz")
    assert model.epoch == 2500
    # the checkpoint keeps how raw data become inputs (the preprocessor) and where the split came from
    assert model.preprocessor.class_names == ("malignant", "benign") and len(model.preprocessor.feature_names) == 30
    assert model.metadata["data"] == {"source": "breast_cancer", "label_arg": None, "test_size": 0.2,
                                      "val_size": 0.0, "split_seed": 0}
    # bpnet evaluate on the model's own split reports what bpnet train reported (the README: 97.37 %)
    assert main(["evaluate"]) == 0
    ev = capsys.readouterr().out
    assert "data: breast_cancer, split test, m = 114" in ev and accuracy(ev) == accuracy(out)


def test_train_on_each_backend(capsys, tmp_path, bk):
    """``--backend NAME[:DEVICE]`` for each backend under test (torch and jax too: the names are bpnet.backends',
    the CLI lists none of its own): a few epochs, then --resume on it ends where an uninterrupted run ends."""
    arg = backend_arg(bk)
    common = ["--backend", arg, "--data", "iris", "--layers", "6", "--optimizer", "adam", "--batch-size", "40",
              "--print-every", "1", "--no-plots"]
    assert main(["train", *common, "--epochs", "3", "--out", str(tmp_path / "part")]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"backend: {bk}"
    costs = [float(c) for c in re.findall(r"^Cost after epoch \d+: (\S+)$", out, re.M)]
    assert len(costs) == 3 and costs[-1] < costs[0]
    assert main(["train", "--backend", arg, "--out", str(tmp_path / "part"), "--resume", "--epochs", "2",
                 "--no-plots", "--quiet"]) == 0
    assert main(["train", *common, "--epochs", "5", "--quiet", "--out", str(tmp_path / "whole")]) == 0
    got, want = MLP.load(tmp_path / "part" / "model.npz"), MLP.load(tmp_path / "whole" / "model.npz")
    assert got.epoch == want.epoch == 5
    for k in want.parameters:
        np.testing.assert_array_equal(backends.to_numpy(got.parameters[k]), backends.to_numpy(want.parameters[k]),
                                      err_msg=k)
    assert not (tmp_path / "whole" / "cost.png").exists()


def test_train_backend_from_environment(tmp_path):
    r = run_bpnet("train", "--epochs", "5", "--out", str(tmp_path), "--no-plots",
             env={"BPNET_BACKEND": "array_api_strict"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("backend: array_api_strict (device: CPU_DEVICE)")


def test_train_flower_draws_the_decision_boundary(capsys, tmp_path):
    assert main(["train", "--data", "flower", "--layers", "4", "--hidden-activation", "tanh", "--lr", "1.2",
                 "--epochs", "1000", "--out", str(tmp_path)]) == 0
    assert accuracy(capsys.readouterr().out) > 75
    assert (tmp_path / "decision_boundary.png").read_bytes().startswith(PNG)


def test_mini_batches_validation_early_stopping_evaluate(capsys, tmp_path):
    run = tmp_path / "digits"
    assert main(["train", "--data", "digits", "--layers", "32", "--optimizer", "adam", "--lr", "0.003",
                 "--batch-size", "64", "--epochs", "40", "--val-size", "0.1", "--early-stopping", "3",
                 "--dropout", "0.1", "--l2", "0.01", "--lr-decay", "0.01", "--clip-norm", "5",
                 "--print-every", "5", "--out", str(run)]) == 0
    out = capsys.readouterr().out
    assert "Cost after epoch 0: " in out and "Cost after epoch 5: " in out
    assert "validation accuracy: " in out and accuracy(out) > 90
    hist = json.loads((run / "history.json").read_text())["history"]
    assert all(v is not None for v in hist["val_cost"])
    assert main(["evaluate", "--model", str(run / "model.npz"), "--split", "test"]) == 0
    ev = capsys.readouterr().out
    assert "split test, m = 360" in ev
    assert accuracy(ev) == pytest.approx(accuracy(out), abs=0.01)


def test_regression_reports_rmse(capsys, tmp_path):
    assert main(["train", "--data", "diabetes", "--layers", "8", "--optimizer", "adam", "--lr", "0.01",
                 "--batch-size", "32", "--epochs", "40", "--out", str(tmp_path), "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "linear output, mse" in out
    rmse = float(re.search(r"test RMSE: ([\d.]+)", out).group(1))
    assert 40 < rmse < 80  # diabetes targets span 25..346; predicting the mean gives ~77
    assert main(["evaluate", "--model", str(tmp_path / "model.npz")]) == 0
    assert f"test RMSE: {rmse:.4g}" in capsys.readouterr().out


def test_resume_takes_the_data_network_and_options_from_the_checkpoint(capsys, tmp_path, monkeypatch):
    """The README's lines: --resume with only --out and --epochs continues on the recorded data (my.csv, its
    split), network and options (Adam, batch 32), ending where an uninterrupted run ends."""
    monkeypatch.chdir(tmp_path)
    iris_csv("my.csv")
    first = ["train", "--data", "my.csv", "--label", "species", "--optimizer", "adam", "--batch-size", "32",
             "--layers", "8", "--no-plots", "--quiet"]
    assert main([*first, "--epochs", "7", "--out", "full"]) == 0
    assert main([*first, "--epochs", "4", "--out", "mine"]) == 0
    capsys.readouterr()
    assert main(["train", "--out", "mine", "--resume", "--epochs", "3", "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "resume: mine/model.npz at epoch 4; 3 more epochs (--epochs)" in out
    assert "data: my.csv" in out and "4-8-3, relu hidden, softmax output" in out and "adam, lr 0.001, batch 32" in out
    assert re.search(r"^Cost after epoch 4: .*\nCost after epoch 6: ", out, re.M)
    assert "trained 3 epochs (4..6)" in out
    full, part = MLP.load("full/model.npz"), MLP.load("mine/model.npz")
    assert part.epoch == 7 and part.optimizer_config == full.optimizer_config
    assert part.metadata["data"] == full.metadata["data"]  # where the data came from, and the split
    assert part.metadata["train"] == {**full.metadata["train"], "epochs": 3}  # the options of the last run
    assert part.metadata["train"]["optimizer"] == "adam" and part.metadata["train"]["batch_size"] == 32
    assert part.metadata["train"]["until"] == 7
    for k in full.parameters:
        np.testing.assert_array_equal(backends.to_numpy(part.parameters[k]), backends.to_numpy(full.parameters[k]))
    # options given again that agree are fine (the same file by another name too); one that differs is refused
    assert main(["train", "--out", "mine", "--resume", "--epochs", "1", "--no-plots", "--quiet", "--data",
                 str(tmp_path / "my.csv"), "--optimizer", "adam", "--batch-size", "32", "--output", "auto",
                 "--loss", "categorical_crossentropy", "--layers", "8", "--lr", "0.001"]) == 0
    capsys.readouterr()
    assert main(["train", "--out", "mine", "--resume", "--batch-size", "64", "--dtype", "float64"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line == ("bpnet train: error: --dtype: mine/model.npz was trained with --dtype float32, got --dtype float64; "
                    "--batch-size: mine/model.npz was trained with --batch-size 32, got --batch-size 64; --resume "
                    "continues a run with its own options (leave out --dtype --batch-size), or train a new model "
                    "with --force or another --out")


def test_resume_of_a_checkpoint_that_records_no_options(capsys, tmp_path, monkeypatch):
    """A checkpoint saved from Python (or by an earlier bpnet train) records no options: the data must be
    given, the optimiser comes from its state, the rest are the defaults, and a note says so; a record that
    is not what bpnet train writes is refused naming the field."""
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--data", "iris", "--layers", "4", "--optimizer", "adam", "--epochs", "2", "--out", "run",
                 "--no-plots", "--quiet"]) == 0
    model = MLP.load("run/model.npz")
    del model.metadata["train"]
    model.save("run/model.npz")
    capsys.readouterr()
    assert main(["train", "--out", "run", "--resume", "--epochs", "1", "--no-plots", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "adam, lr 0.001, full batch" in out
    assert err == ("note: run/model.npz does not record its optimisation options (saved from Python or by an earlier "
                   "bpnet); those not given are bpnet train's defaults\n")
    model = MLP.load("run/model.npz")
    model.metadata["train"]["learning_rate"] = "fast"
    model.save("run/model.npz")
    assert main(["train", "--out", "run", "--resume", "--no-plots", "--quiet"]) == 2
    assert "bpnet train: error: --resume: run/model.npz: metadata['train']: learning_rate: expected a real number > 0" \
        in capsys.readouterr().err
    model.metadata = {}
    model.save("run/model.npz")
    assert main(["train", "--out", "run", "--resume", "--no-plots", "--quiet"]) == 2
    assert ("bpnet train: error: --data: run/model.npz does not record the data it was trained on; give --data and "
            "the split options it was trained with") in capsys.readouterr().err


def test_resume_continues_the_same_run(capsys, tmp_path):
    common = ["--data", "breast_cancer", "--layers", "8", "--optimizer", "adam", "--lr", "0.01",
              "--batch-size", "64", "--dtype", "float64", "--no-plots", "--quiet"]
    assert main(["train", *common, "--epochs", "6", "--out", str(tmp_path / "full")]) == 0
    assert main(["train", *common, "--epochs", "2", "--out", str(tmp_path / "part")]) == 0
    assert main(["train", *common, "--epochs", "4", "--out", str(tmp_path / "part"), "--resume"]) == 0
    full, part = MLP.load(tmp_path / "full" / "model.npz"), MLP.load(tmp_path / "part" / "model.npz")
    assert part.epoch == full.epoch == 6
    for k in full.parameters:
        np.testing.assert_array_equal(backends.to_numpy(part.parameters[k]), backends.to_numpy(full.parameters[k]))
    capsys.readouterr()


def test_cli_train_dask_local_2(tmp_path, capsys):
    pytest.importorskip("distributed")
    out = tmp_path / "run"
    rc = main(["train", "--dask", "local:2", "--chunk-size", "120", "--data", "iris", "--layers", "8",
               "--epochs", "3", "--out", str(out), "--no-plots", "--quiet"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "dask: 2 workers at tcp://" in text and "test accuracy:" in text
    model = MLP.load(out / "model.npz", backend="numpy")
    assert model.epoch == 3
    assert main(["train", "--chunk-size", "10", "--out", str(tmp_path / "x")]) == 2
    assert "--chunk-size: only used with --dask" in capsys.readouterr().err
    assert main(["train", "--dask", "host:1", "--out", str(tmp_path / "y")]) == 2
    assert "--dask: expected local:N or a scheduler address" in capsys.readouterr().err


# --------------------------------------------------------------------------- #
# faults: Ctrl-C and SIGKILL mid-run


# `bpnet train` with a checkpoint every epoch (--print-every 1, ~12 MB checkpoints) SIGKILLed three times,
# resuming in between (twice aimed at a checkpoint write): the checkpoint always loads, is finite and consistent,
# and training resumes from it.  Ctrl-C at random moments: exit status 130, one line, a loadable checkpoint and no
# temporary file left; Ctrl-C in the middle of an epoch saves the last *completed* epoch (what makes --resume
# bit-identical).  The atomic write itself: io/test_checkpoint.py.


def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "bpnet", "train", "--epochs", "1000000", "--print-every", "50",
                             "--out", str(tmp_path), "--no-plots"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        # wait until training has started (a few cost lines), then press Ctrl-C
        for _ in range(3):
            line = proc.stdout.readline()
            while line and not line.startswith("Cost after"):
                line = proc.stdout.readline()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert re.search(r"interrupted after epoch \d+; checkpoint saved to .*model.npz", err)
    assert "Traceback" not in err
    model = MLP.load(tmp_path / "model.npz")
    assert model.epoch >= 100


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
    step = loop.train_step
    calls = []

    def interrupted_step(*args, **kwargs):  # the training loop's step, once per mini-batch
        calls.append(1)
        if len(calls) == 3 * 8 + 4:
            raise KeyboardInterrupt
        return step(*args, **kwargs)

    monkeypatch.setattr(loop, "train_step", interrupted_step)
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
    # --resume without --epochs trains what the interrupted run had left (7 of its 10) and ends where it would have
    capsys.readouterr()
    assert main(["train", "--out", "interrupted", "--resume", "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "resume: interrupted/model.npz at epoch 3; 7 more epochs (the rest of the interrupted run, to epoch 10)" \
        in out and "trained 7 epochs (3..9)" in out and "Cost after epoch 9: " in out
    assert main([*common, "--epochs", "10", "--out", "whole"]) == 0
    got, want = MLP.load("interrupted/model.npz"), MLP.load("whole/model.npz")
    assert got.epoch == want.epoch == 10
    for k in want.parameters:
        np.testing.assert_array_equal(backends.to_numpy(got.parameters[k]), backends.to_numpy(want.parameters[k]),
                                      err_msg=k)
    # the run is complete: --resume alone trains its --epochs (10) again
    assert main(["train", "--out", "whole", "--resume", "--no-plots", "--quiet"]) == 0
    assert "10 more epochs (the run's --epochs)" in capsys.readouterr().out
    assert MLP.load("whole/model.npz").epoch == 20


# --------------------------------------------------------------------------- #
# faults: divergence, pickle payloads, out of memory


# three finite epochs at a learning rate that diverges in the fifth (from these weights, in every run)
GOOD = ["train", "--data", "breast_cancer", "--layers", "8", "--lr", "1e6", "--epochs", "3", "--print-every", "1",
        "--no-plots", "--quiet", "--out", "run"]


def _diverge(tmp_path, print_every):
    r = subprocess.run([sys.executable, "-m", "bpnet", *GOOD[:GOOD.index("--epochs")], "--resume",
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


# --------------------------------------------------------------------------- #
# bad inputs (badinput.py)


#: each case: (argv of `bpnet`, regex on its one error line)
BAD_INPUTS = [
    pytest.param(["train", "--lr", "0"], r"--lr: expected a finite number > 0, got 0\.0$", id="cli-lr-zero"),
    pytest.param(["train", "--lr", "-0.1"], r"--lr: expected a finite number > 0, got -0\.1$",
                 id="cli-lr-negative"),
    pytest.param(["train", "--batch-size", "-5"],
                 r"--batch-size: expected an integer >= 0, got -5$", id="cli-batch-size-negative"),
    pytest.param(["train", "--epochs", "0"], r"--epochs: expected an integer > 0, got 0$",
                 id="cli-epochs-zero"),
    pytest.param(["train", "--layers", "8,0"], r"--layers: expected positive layer sizes, got '8,0'$",
                 id="cli-layer-size-zero"),
    pytest.param(["train", "--dropout", "1"], r"--dropout: expected a finite number in \[0, 1\), got 1\.0$",
                 id="cli-dropout-one"),
    pytest.param(["train", "--optimizer", "newton"], r"--optimizer: invalid choice: 'newton'",
                 id="cli-unknown-optimizer"),
    pytest.param(["train", "--hidden-activation", "swish"], r"--hidden-activation: invalid choice: 'swish'",
                 id="cli-unknown-activation"),
    pytest.param(["train", "--loss", "hinge"], r"--loss: invalid choice: 'hinge'", id="cli-unknown-loss"),
    pytest.param(["train", "--dtype", "float16"], r"--dtype: invalid choice: 'float16'",
                 id="cli-unknown-dtype"),
    pytest.param(["train", "--backend", "tpu"],
                 r"bpnet train: error: backend: unknown backend 'tpu'; expected one of .*\(available here: numpy",
                 id="cli-unknown-backend"),
    pytest.param(["train", "--data", "good.csv", "--label", "species"],
                 r"good\.csv: label column 'species' not found; the columns are: 'a', 'b', 'label'$",
                 id="cli-csv-missing-label-column"),
    pytest.param(["train", "--data", "text.csv"],
                 r"text\.csv: line 3 \(data row 2\), column 'b': non-numeric value 'x'; features must be numbers",
                 id="cli-csv-text-in-a-feature"),
    pytest.param(["train", "--data", "nan.csv"],
                 r"nan\.csv: line 2 \(data row 1\), column 'b': NaN 'nan'; missing or infinite values are not "
                 r"supported", id="cli-csv-nan"),
    pytest.param(["train", "--data", "empty.csv"],
                 r"empty\.csv: the file is empty; expected a header row", id="cli-csv-empty"),
    pytest.param(["train", "--data", "missing.csv"], r"data: no such file: 'missing\.csv'$",
                 id="cli-data-missing-file"),
    pytest.param(["train", "--data", "good.csv", "--out", "afile"],
                 r"--out: expected a directory .*got the existing file 'afile'$", id="cli-out-is-a-file"),
    pytest.param(["train", "--data", "good.csv", "--output", "softmax", "--out", "new"],
                 r"--output: binary_crossentropy trains sigmoid outputs .*got 'softmax'; use 'sigmoid'", id="cli-softmax-over-binary-labels"),
    pytest.param(["train", "--data", "good.csv", "--loss", "categorical_crossentropy", "--out", "new"],
                 r"--loss: categorical_crossentropy trains multiclass labels, got good\.csv, a binary task "
                 r"\(1 output unit\); use binary_crossentropy or auto", id="cli-categorical-loss-on-binary-labels"),
    pytest.param(["train", "--data", "diabetes", "--loss", "binary_crossentropy", "--out", "new"],
                 r"--loss: binary_crossentropy trains binary labels, got diabetes, a regression task",
                 id="cli-binary-loss-on-regression-targets"),
    pytest.param(["train", "--data", "good.csv", "--output", "linear", "--out", "new"],
                 r"--output: binary_crossentropy trains sigmoid outputs .*got 'linear'; use 'sigmoid' \(or loss 'mse'",
                 id="cli-binary-loss-with-linear-output"),
    pytest.param(["train", "--data", "iris", "--loss", "binary_crossentropy", "--output", "softmax", "--out",
                  "new"],
                 r"--output: binary_crossentropy trains sigmoid outputs .*got 'softmax'",
                 id="cli-binary-loss-with-softmax-output"),
    pytest.param(["train", "--resume", "--out", "nowhere"],
                 r"--resume: no checkpoint at nowhere/model\.npz", id="cli-resume-without-checkpoint"),
    pytest.param(["train", "--data", "good.csv", "--resume", "--out", "corrupt_run"],
                 r"checkpoint 'corrupt_run/model\.npz': not a bpnet checkpoint", id="cli-resume-corrupt-checkpoint"),
    pytest.param(["train", "--data", "good.csv", "--layers", "5", "--resume", "--out", "run"],
                 r"bpnet train: error: --layers: run/model\.npz was trained with --layers 3, got --layers 5; --resume "
                 r"continues a run with its own options \(leave out --layers\), or train a new model with --force or "
                 r"another --out$", id="cli-resume-other-architecture"),
    pytest.param(["train", "--resume", "--out", "run", "--data", "iris", "--optimizer", "adam", "--lr", "0.01"],
                 r"--data: run/model\.npz was trained with --data good\.csv, got --data iris; --optimizer: "
                 r"run/model\.npz was trained with --optimizer gd, got --optimizer adam; --resume continues a run "
                 r"with its own options \(leave out --data --optimizer\)", id="cli-resume-other-data-and-optimizer"),
    pytest.param(["train", "--resume", "--out", "run", "--loss", "mse"],
                 r"--loss: run/model\.npz was trained with --loss binary_crossentropy, got --loss mse;",
                 id="cli-resume-other-loss"),
    pytest.param(["train", "--resume", "--out", "run", "--clip-norm", "5"],
                 r"--clip-norm: run/model\.npz was trained without --clip-norm, got --clip-norm 5;",
                 id="cli-resume-clip-norm-not-recorded"),
    pytest.param(["train", "--layers", "20,7,,5"],
                 r"bpnet train: error: argument --layers: expected comma-separated positive integers like 20,7,5, "
                 r"got '20,7,,5' \(an empty entry\)$", id="cli-layers-empty-entry"),
    pytest.param(["train", "--data", "good.csv", "--out", "run"],
                 r"--out: 'run' already holds a model \(run/model\.npz\); continue it with --resume, replace it with "
                 r"--force, or choose another --out$", id="cli-out-holds-a-model"),
    pytest.param(["train", "--data", "good.csv", "--out", "run", "--resume", "--force"],
                 r"--force: replaces the model in --out, --resume continues it; give one of them$",
                 id="cli-resume-and-force"),
    pytest.param(["train", "--data", "run"], r"data: 'run' is a directory; expected a \.csv or \.npz file$",
                 id="cli-data-is-a-directory"),
]


@pytest.mark.parametrize(("argv", "pattern"), BAD_INPUTS)
def test_bad_input(argv, pattern, harness):
    harness.cli_refuses(argv, pattern)


def test_the_bad_input_tables_are_distinct():
    check_table(BAD_INPUTS, minimum=28)


# a few rows as a real process: the exit status and stderr a shell sees
@pytest.mark.parametrize("case_id", ["cli-out-is-a-file", "cli-csv-text-in-a-feature", "cli-lr-zero",
                                     "cli-resume-other-architecture", "cli-out-holds-a-model"])
def test_bad_input_cli_subprocess(case_id, harness):
    (param,) = [p for p in BAD_INPUTS if p.id == case_id]
    harness.subprocess_refuses(*param.values)


# --------------------------------------------------------------------------- #
# trust boundaries: an --out holding a model, special files as --data, hints that name the CLI's options


def test_train_into_an_out_holding_a_model_needs_resume_or_force(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    small = ["train", "--data", "iris", "--layers", "4", "--epochs", "2", "--no-plots", "--quiet", "--out", "run"]
    assert main(small) == 0
    before = (tmp_path / "run" / "model.npz").read_bytes()
    assert main([*small, "--seed", "5"]) == 2
    err = capsys.readouterr().err
    assert re.search(r"bpnet train: error: --out: 'run' already holds a model \(run/model\.npz\); continue it with "
                     r"--resume, replace it with --force", err), err
    assert (tmp_path / "run" / "model.npz").read_bytes() == before  # refused before anything was written
    assert main([*small, "--resume"]) == 0
    assert MLP.load("run/model.npz").epoch == 4
    assert main([*small, "--seed", "5", "--force"]) == 0  # a new model replaces the old one
    assert MLP.load("run/model.npz").epoch == 2


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes (POSIX)")
def test_train_refuses_a_fifo_as_data(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    os.mkfifo("data.csv")
    os.symlink("data.csv", "link.npz")
    for data in ("data.csv", "link.npz"):
        assert cli_in_time(main, ["train", "--data", data, "--out", "run", "--no-plots"]) == 2
        err = capsys.readouterr().err
        assert f"bpnet train: error: data: '{data}': expected a regular .csv or .npz file, got a FIFO (named pipe)" \
            in err, err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("rows, extra, pattern", [
    ("1,2,0\n3,4,1\n5,6,0\n7,8,0\n9,1,0\n", [],  # class 1 has a single example
     r"class '1' has a single example; a stratified split needs at least 2 per class: add another example of it or "
     r"remove it \(from Python, load_dataset\(\.\.\., stratify=False\) splits without stratifying\)$"),
    ("1,2,0\n3,4,0\n", [], r"label 'label' has a single class \('0'\); classification needs at least 2: add examples of "
                       r"another class \(from Python, load_dataset\(\.\.\., task='regression'\) fits"),
    ("1,2,0\n3,4,x\n5,6,1\n", [], r"'x' is text but other labels are numbers; fix the value \(from Python, "
                               r"load_dataset\(\.\.\., task='binary' or 'multiclass'\) reads"),
    ("1,2,0\n3,4,1\n5,6,0\n7,8,1\n", ["--test-size", "0.7"],
     r"for a stratified split into 3 test .*lower test_size/val_size \(bpnet train: --test-size/--val-size\), add "
     r"examples, or \(from Python\) pass stratify=False$"),
])
def test_hints_on_a_tiny_csv_say_what_to_do_on_the_command_line(tmp_path, monkeypatch, capsys, rows, extra, pattern):
    """The hints used to name only Python arguments (stratify=False, task='regression') that bpnet train lacks."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.csv").write_text("a,b,label\n" + rows)
    argv = ["train", "--data", "tiny.csv", "--out", "run", "--no-plots", "--quiet"]
    assert main(argv + extra) == 2
    (line,) = [l for l in capsys.readouterr().err.splitlines() if "error" in l]
    assert re.search(pattern, line), line


def test_plots_leave_the_caller_s_matplotlib_alone(tmp_path):
    """The PNGs are drawn on Figure objects of their own: pyplot is not imported, so no backend is chosen for
    the caller's session (a notebook's stays as it was) and no figure is left open."""
    code = ("import sys, numpy as np; from bpnet.tools.plots import plot_history, plot_decision_boundary\n"
            "plot_history({'epoch': [1, 2], 'cost': [1.0, 0.5], 'accuracy': [0.5, 0.9]}, sys.argv[1] + '/h.png')\n"
            "X = np.random.default_rng(0).normal(size=(2, 40)); y = (X[0] > 0).astype(int)\n"
            "plot_decision_boundary(lambda P: (P[0] > 0).astype(int), X, y, sys.argv[1] + '/b.png')\n"
            "print('matplotlib.pyplot' in sys.modules)\n")
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False"]  # no pyplot: no figure manager, no backend chosen
    for name in ("h.png", "b.png"):
        assert (tmp_path / name).read_bytes().startswith(PNG)
