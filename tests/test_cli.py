"""The command line end to end, in temporary directories: train, evaluate, predict,
gradcheck, backends, python -m bpnet, Ctrl-C, --resume, and one-line errors."""

import csv
import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

from bpnet import backends
from bpnet.cli import main
from bpnet.model import MLP

PNG = b"\x89PNG\r\n\x1a\n"


def _run(*args, env=None, cwd=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "bpnet", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd, timeout=timeout)


def _acc(text, which="test"):
    return float(re.search(rf"{which} accuracy: ([\d.]+)%", text).group(1))


def _cost(text):
    return float(re.search(r"^cost: (\S+)$", text, re.M).group(1))


def test_train_default_main_job(capsys, tmp_path, monkeypatch):
    # the README's main job, in process: breast cancer, 30-20-7-5-1, full-batch gradient descent
    monkeypatch.chdir(tmp_path)
    assert main(["train"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"backend: {backends.get()}"  # backend and device first (auto: cupy on a GPU)
    costs = re.findall(r"^Cost after iteration (\d+): (\S+)$", out, re.M)
    assert [int(i) for i, _ in costs] == [*range(0, 2500, 100), 2499]
    assert float(costs[-1][1]) < 0.1 * float(costs[0][1])
    assert _acc(out) >= 95.0 and _acc(out, "train") >= 95.0
    run = tmp_path / "bpnet-run"
    assert (run / "cost.png").read_bytes().startswith(PNG)
    hist = json.loads((run / "history.json").read_text())
    assert len(hist["history"]["cost"]) == 2500 and hist["config"]["layer_dims"] == [30, 20, 7, 5, 1]
    model = MLP.load(run / "model.npz")
    assert model.epoch == 2500
    # the checkpoint keeps how raw data become inputs (the preprocessor) and where the split came from
    assert model.preprocessor.class_names == ("malignant", "benign") and len(model.preprocessor.feature_names) == 30
    assert model.metadata["data"] == {"source": "breast_cancer", "label_arg": None, "test_size": 0.2,
                                      "val_size": 0.0, "split_seed": 0}
    # bpnet evaluate on the model's own split reports what bpnet train reported (the README: 97.37 %)
    assert main(["evaluate"]) == 0
    ev = capsys.readouterr().out
    assert "data: breast_cancer, split test, m = 114" in ev and _acc(ev) == _acc(out)


@pytest.mark.parametrize("backend", ["numpy", "array_api_strict", "array_api_strict:device1"])
def test_train_on_each_backend(capsys, tmp_path, backend):
    assert main(["train", "--backend", backend, "--epochs", "300", "--out", str(tmp_path), "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith(f"backend: {backend.split(':')[0]} (device: ")
    costs = [float(c) for c in re.findall(r"Cost after iteration \d+: (\S+)", out)]
    assert len(costs) == 4 and costs[-1] < costs[0]
    assert not (tmp_path / "cost.png").exists()


def test_train_backend_from_environment(tmp_path):
    r = _run("train", "--epochs", "5", "--out", str(tmp_path), "--no-plots",
             env={"BPNET_BACKEND": "array_api_strict"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("backend: array_api_strict (device: CPU_DEVICE)")


def test_train_flower_draws_the_decision_boundary(capsys, tmp_path):
    assert main(["train", "--data", "flower", "--layers", "4", "--hidden-activation", "tanh", "--lr", "1.2",
                 "--epochs", "1000", "--out", str(tmp_path)]) == 0
    assert _acc(capsys.readouterr().out) > 75
    assert (tmp_path / "decision_boundary.png").read_bytes().startswith(PNG)


def test_mini_batches_validation_early_stopping_evaluate(capsys, tmp_path):
    run = tmp_path / "digits"
    assert main(["train", "--data", "digits", "--layers", "32", "--optimizer", "adam", "--lr", "0.003",
                 "--batch-size", "64", "--epochs", "40", "--val-size", "0.1", "--early-stopping", "3",
                 "--dropout", "0.1", "--l2", "0.01", "--lr-decay", "0.01", "--clip-norm", "5",
                 "--print-every", "5", "--out", str(run)]) == 0
    out = capsys.readouterr().out
    assert "Cost after epoch 0: " in out and "Cost after epoch 5: " in out
    assert "validation accuracy: " in out and _acc(out) > 90
    hist = json.loads((run / "history.json").read_text())["history"]
    assert all(v is not None for v in hist["val_cost"])
    assert main(["evaluate", "--model", str(run / "model.npz"), "--split", "test"]) == 0
    ev = capsys.readouterr().out
    assert "split test, m = 360" in ev
    assert _acc(ev) == pytest.approx(_acc(out), abs=0.01)


def test_regression_reports_rmse(capsys, tmp_path):
    assert main(["train", "--data", "diabetes", "--layers", "8", "--optimizer", "adam", "--lr", "0.01",
                 "--batch-size", "32", "--epochs", "40", "--out", str(tmp_path), "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "linear output, mse" in out
    rmse = float(re.search(r"test RMSE: ([\d.]+)", out).group(1))
    assert 40 < rmse < 80  # diabetes targets span 25..346; predicting the mean gives ~77
    assert main(["evaluate", "--model", str(tmp_path / "model.npz")]) == 0
    assert f"test RMSE: {rmse:.4g}" in capsys.readouterr().out


def _iris_csv(path, rows=None, label="species"):
    from sklearn.datasets import load_iris

    d = load_iris()
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(list(d.feature_names) + ([label] if label else []))
        for x, t in list(zip(d.data, d.target))[:rows]:
            w.writerow(list(x) + ([d.target_names[t]] if label else []))
    return d


def test_csv_train_predict_evaluate(capsys, tmp_path):
    _iris_csv(tmp_path / "iris.csv")
    d = _iris_csv(tmp_path / "new.csv", label=None)
    run = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "iris.csv"), "--layers", "8", "--optimizer", "adam",
                 "--lr", "0.01", "--batch-size", "16", "--epochs", "150", "--out", str(run), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "Cost after" not in out and _acc(out) > 85  # --quiet: no cost lines
    pred = tmp_path / "pred.csv"
    assert main(["predict", "--model", str(run / "model.npz"), "--input", str(tmp_path / "new.csv"),
                 "--output", str(pred)]) == 0
    with pred.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 150 and set(rows[0]) == {"prediction", "p_setosa", "p_versicolor", "p_virginica"}
    names = np.array([r["prediction"] for r in rows])
    assert (names == d.target_names[d.target]).mean() > 0.9
    probs = np.array([[float(r[f"p_{c}"]) for c in d.target_names] for r in rows])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert main(["evaluate", "--model", str(run / "model.npz"), "--split", "all"]) == 0
    assert "m = 150" in capsys.readouterr().out


def _iris_file(path, order=(0, 1, 2, 3), classes=(0, 1, 2)):
    """iris as a CSV file: the feature columns in ``order``, the rows of ``classes``, a species column."""
    from sklearn.datasets import load_iris

    d = load_iris()
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([d.feature_names[j] for j in order] + ["species"])
        for x, t in zip(d.data, d.target):
            if t in classes:
                w.writerow([x[j] for j in order] + [d.target_names[t]])
    return path


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    """A directory with iris.csv and run/model.npz, trained on it by bpnet train."""
    d = tmp_path_factory.mktemp("iris")
    _iris_file(d / "iris.csv")
    assert main(["train", "--data", str(d / "iris.csv"), "--layers", "8", "--optimizer", "adam", "--lr", "0.01",
                 "--batch-size", "16", "--epochs", "150", "--out", str(d / "run"), "--quiet", "--no-plots"]) == 0
    return d


def _evaluate(capsys, *args):
    capsys.readouterr()
    assert main(["evaluate", *args]) == 0
    return capsys.readouterr().out


def _predicted(capsys, model, data, out):
    assert main(["predict", "--model", model, "--input", str(data), "--output", str(out)]) == 0
    capsys.readouterr()
    with open(out, newline="") as f:
        return [r["prediction"] for r in csv.DictReader(f)]


def _species(path):
    with open(path, newline="") as f:
        return [r["species"] for r in csv.DictReader(f)]


def test_evaluate_matches_feature_columns_by_name(capsys, iris_run, tmp_path):
    # the bug: evaluate took the columns of --data by position (31.5 % on reordered iris) while predict used names
    model = str(iris_run / "run" / "model.npz")
    reordered = _iris_file(tmp_path / "reordered.csv", order=(3, 2, 0, 1))
    for split in ("test", "all"):
        same = _evaluate(capsys, "--model", model, "--data", str(iris_run / "iris.csv"), "--split", split)
        swapped = _evaluate(capsys, "--model", model, "--data", str(reordered), "--split", split)
        assert _acc(same, split) > 90
        assert (_acc(swapped, split), _cost(swapped)) == (_acc(same, split), _cost(same))
    # predict and evaluate agree on the same (reordered) file
    predicted = _predicted(capsys, model, reordered, tmp_path / "pred.csv")
    hits = np.mean(np.array(predicted) == np.array(_species(reordered)))
    assert _acc(swapped, "all") == pytest.approx(100 * hits, abs=0.005)


def test_evaluate_a_subset_of_the_classes_uses_the_training_codec(capsys, iris_run, tmp_path):
    # the bug: with two of the three classes in --data, evaluate re-inferred the classes (about 1 % accuracy)
    model = str(iris_run / "run" / "model.npz")
    two = _iris_file(tmp_path / "two.csv", classes=(1, 2))
    out = _evaluate(capsys, "--model", model, "--data", str(two), "--split", "all")
    assert "m = 100" in out and _acc(out, "all") > 90
    predicted = _predicted(capsys, model, two, tmp_path / "pred.csv")
    hits = np.mean(np.array(predicted) == np.array(_species(two)))
    assert _acc(out, "all") == pytest.approx(100 * hits, abs=0.005)
    test = _evaluate(capsys, "--model", model, "--data", str(two), "--split", "test")
    assert "m = 20" in test and _acc(test) > 80


def test_evaluate_names_unknown_classes_and_missing_columns(capsys, iris_run, tmp_path):
    model = str(iris_run / "run" / "model.npz")
    rows = (iris_run / "iris.csv").read_text().splitlines()
    rose = tmp_path / "rose.csv"
    rose.write_text("\n".join(rows[:5] + [rows[5].rsplit(",", 1)[0] + ",rose"]) + "\n")
    capsys.readouterr()
    assert main(["evaluate", "--model", model, "--data", str(rose), "--split", "all"]) == 2
    assert "label 'species': unknown class label 'rose'; the model's classes are" in capsys.readouterr().err
    cut = tmp_path / "cut.csv"
    cut.write_text("".join(",".join(r.split(",")[1:]) + "\n" for r in rows))
    assert main(["evaluate", "--model", model, "--data", str(cut), "--split", "all"]) == 2
    assert "missing feature column(s) ['sepal length (cm)']" in capsys.readouterr().err
    unlabelled = tmp_path / "unlabelled.csv"
    unlabelled.write_text("".join(r.rsplit(",", 1)[0] + "\n" for r in rows))
    assert main(["evaluate", "--model", model, "--data", str(unlabelled), "--split", "all"]) == 2
    assert "no label column 'species'" in capsys.readouterr().err


def test_checkpoints_of_the_previous_version_still_evaluate_and_predict(capsys, iris_run, tmp_path):
    # before the saved preprocessor, bpnet train kept the statistics and classes in metadata["data"]
    new = iris_run / "run" / "model.npz"
    model = MLP.load(new)
    pre, split = model.preprocessor, model.metadata["data"]
    model.metadata["data"] = {
        "name": "iris.csv", "source": split["source"], "label": pre.label, "label_arg": None, "task": pre.task,
        "class_names": list(pre.class_names), "feature_names": list(pre.feature_names), "mean": list(pre.mean),
        "std": list(pre.std), "y_mean": 0.0, "y_std": 1.0, "test_size": 0.2, "val_size": 0.0, "split_seed": 0}
    model.preprocessor = None
    old = tmp_path / "old.npz"
    model.save(old)
    assert MLP.load(old).preprocessor is None
    for args in (["--split", "test"], ["--split", "all"], ["--data", str(iris_run / "iris.csv"), "--split", "train"]):
        a, b = (_evaluate(capsys, "--model", str(m), *args).splitlines()[1:] for m in (new, old))
        assert a == b
    assert _predicted(capsys, str(old), iris_run / "iris.csv", tmp_path / "a.csv") == \
        _predicted(capsys, str(new), iris_run / "iris.csv", tmp_path / "b.csv")
    model.metadata["data"]["std"][0] = 0.0  # untrusted statistics are refused, naming the field
    model.save(old)
    assert main(["evaluate", "--model", str(old)]) == 2
    assert "metadata['data']: preprocessor: std[0]: expected a finite number > 0" in capsys.readouterr().err


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


def test_gradcheck_command(capsys):
    assert main(["gradcheck", "--dims", "4,5,3,1", "--hidden-activation", "tanh"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"difference = [\d.e-]+ .*: OK", out)
    assert main(["gradcheck", "--dims", "3,4,3", "--fused", "--backend", "array_api_strict:device1"]) == 0
    assert "softmax output, categorical_crossentropy" in capsys.readouterr().out
    # a threshold nothing can meet: the command reports the failure with exit status 1
    assert main(["gradcheck", "--dims", "3,2,1", "--threshold", "1e-30"]) == 1
    assert "FAILED" in capsys.readouterr().out


def test_backends_command(capsys):
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    assert "numpy: available" in out and "array_api_strict: available" in out
    assert "cupy:" in out  # available, or the reason why not


def test_python_dash_m_help_and_version():
    r = _run("--help")
    assert r.returncode == 0
    for cmd in ("train", "evaluate", "predict", "gradcheck", "explain", "backends"):
        assert cmd in r.stdout
    r = _run("train", "--help")
    assert r.returncode == 0
    for opt in ("--data", "--layers", "--hidden-activation", "--output", "--loss", "--optimizer", "--lr",
                "--lr-decay", "--epochs", "--batch-size", "--l2", "--dropout", "--seed", "--dtype", "--backend",
                "--out", "--quiet", "BPNET_BACKEND"):
        assert opt in r.stdout, opt
    r = _run("--version")
    assert r.returncode == 0 and r.stdout.startswith("bpnet ")


@pytest.mark.parametrize("args, pattern", [
    (["train", "--lr", "-1"], r"--lr: expected a finite number > 0, got -1"),
    (["train", "--lr", "nan"], r"--lr: expected a finite number > 0, got nan"),
    (["train", "--epochs", "0"], r"--epochs: expected an integer > 0, got 0"),
    (["train", "--batch-size", "-5"], r"--batch-size: expected an integer >= 0, got -5"),
    (["train", "--layers", "20,x"], r"--layers: expected comma-separated positive integers"),
    (["train", "--layers", "0"], r"--layers: expected positive layer sizes"),
    (["train", "--dropout", "1"], r"--dropout: expected a finite number in \[0, 1\)"),
    (["train", "--l2", "-0.1"], r"--l2: expected a finite number >= 0"),
    (["train", "--optimizer", "sgd"], r"--optimizer: invalid choice: 'sgd'"),
    (["train", "--data", "mnist"], r"data: unknown data set 'mnist'"),
    (["train", "--data", "missing.csv"], r"data: no such file: 'missing.csv'"),
    (["train", "--test-size", "1.5"], r"--test-size: expected a finite number in \(0, 1\)"),
    (["train", "--backend", "tpu"], r"unknown backend 'tpu'.*available here: numpy"),
    (["train", "--backend", "array_api_strict:device9"], r"device: array_api_strict has devices"),
    (["train", "--hidden-activation", "swish"], r"--hidden-activation: invalid choice"),
    (["train", "--early-stopping", "3"], r"--early-stopping: needs a validation split"),
    (["train", "--resume", "--out", "no-such-run"], r"--resume: no checkpoint at no-such-run"),
    (["evaluate", "--model", "missing.npz"], r"checkpoint file not found: missing.npz"),
    (["predict", "--model", "missing.npz", "--input", "x.csv"], r"checkpoint file not found"),
    (["predict"], r"the following arguments are required: --input"),
    (["gradcheck", "--dims", "5"], r"--dims: expected at least two sizes"),
    (["gradcheck", "--dims", "784,512,10"], r"--dims: 407050 parameters"),
    ([], r"the following arguments are required: COMMAND"),
])
def test_bad_options_get_one_line_and_nonzero_exit(args, pattern, tmp_path):
    r = _run(*args, cwd=tmp_path)
    assert r.returncode == 2
    err_lines = [line for line in r.stderr.splitlines() if "error" in line]
    assert len(err_lines) == 1, r.stderr
    assert re.search(pattern, err_lines[0]), r.stderr
    assert "Traceback" not in r.stderr


def test_bad_backend_environment_variable(tmp_path):
    r = _run("train", "--epochs", "1", env={"BPNET_BACKEND": "nope"}, cwd=tmp_path)
    assert r.returncode == 2
    assert "BPNET_BACKEND environment variable: unknown backend 'nope'" in r.stderr


def test_corrupt_checkpoint_is_refused_and_kept(tmp_path):
    bad = tmp_path / "model.npz"
    bad.write_bytes(b"not a checkpoint at all")
    r = _run("evaluate", "--model", str(bad))
    assert r.returncode == 2 and "checkpoint" in r.stderr and "Traceback" not in r.stderr
    assert bad.read_bytes() == b"not a checkpoint at all"
