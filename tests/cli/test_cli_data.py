"""bpnet evaluate and bpnet predict (bpnet.cli.data): CSV columns by name, classes by the training codec,
checkpoints of the previous version, corrupt checkpoints; their bad options."""

import csv
import os
import re

import numpy as np
import pytest
from badinput import check_table
from conftest import accuracy, cli_in_time, run_bpnet

from bpnet.cli import main
from bpnet.model import MLP


def _cost(text):
    return float(re.search(r"^cost: (\S+)$", text, re.M).group(1))


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
    assert "Cost after" not in out and accuracy(out) > 85  # --quiet: no cost lines
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
        assert accuracy(same, split) > 90
        assert (accuracy(swapped, split), _cost(swapped)) == (accuracy(same, split), _cost(same))
    # predict and evaluate agree on the same (reordered) file
    predicted = _predicted(capsys, model, reordered, tmp_path / "pred.csv")
    hits = np.mean(np.array(predicted) == np.array(_species(reordered)))
    assert accuracy(swapped, "all") == pytest.approx(100 * hits, abs=0.005)


def test_evaluate_a_subset_of_the_classes_uses_the_training_codec(capsys, iris_run, tmp_path):
    # the bug: with two of the three classes in --data, evaluate re-inferred the classes (about 1 % accuracy)
    model = str(iris_run / "run" / "model.npz")
    two = _iris_file(tmp_path / "two.csv", classes=(1, 2))
    out = _evaluate(capsys, "--model", model, "--data", str(two), "--split", "all")
    assert "m = 100" in out and accuracy(out, "all") > 90
    predicted = _predicted(capsys, model, two, tmp_path / "pred.csv")
    hits = np.mean(np.array(predicted) == np.array(_species(two)))
    assert accuracy(out, "all") == pytest.approx(100 * hits, abs=0.005)
    test = _evaluate(capsys, "--model", model, "--data", str(two), "--split", "test")
    assert "m = 20" in test and accuracy(test) > 80


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


def test_corrupt_checkpoint_is_refused_and_kept(tmp_path):
    bad = tmp_path / "model.npz"
    bad.write_bytes(b"not a checkpoint at all")
    r = run_bpnet("evaluate", "--model", str(bad))
    assert r.returncode == 2 and "checkpoint" in r.stderr and "Traceback" not in r.stderr
    assert bad.read_bytes() == b"not a checkpoint at all"


# --------------------------------------------------------------------------- #
# bad inputs (badinput.py)


#: each case: (argv of `bpnet`, regex on its one error line)
BAD_INPUTS = [
    pytest.param(["evaluate", "--model", "corrupt.npz"],
                 r"bpnet evaluate: error: checkpoint 'corrupt\.npz': not a bpnet checkpoint", id="cli-evaluate-corrupt"),
    pytest.param(["evaluate", "--model", "missing.npz"],
                 r"bpnet evaluate: error: checkpoint file not found: missing\.npz$", id="cli-evaluate-missing-model"),
    pytest.param(["evaluate", "--model", "run/model.npz", "--data", "xy.csv"],
                 r"xy\.csv: label 'label': unknown class labels 'x', 'y'; the model's classes are \['0', '1'\]",
                 id="cli-evaluate-unknown-class"),
    pytest.param(["predict", "--model", "run/model.npz", "--input", "features.csv", "--output",
                  "nodir/p.csv"],
                 r"--output: the directory 'nodir' does not exist", id="cli-predict-output-into-missing-dir"),
    pytest.param(["predict", "--model", "run/model.npz", "--input", "other.csv", "--output", "preds.csv"],
                 r"other\.csv: missing feature column\(s\) \['a', 'b'\]; the columns are: 'x', 'y'$",
                 id="cli-predict-missing-feature-columns"),
    pytest.param(["predict", "--model", "run/model.npz", "--input", "text.csv", "--output", "preds.csv"],
                 r"text\.csv: line 3 \(data row 2\), column 'b': non-numeric value 'x'",
                 id="cli-predict-text-keeps-existing-output"),
    pytest.param(["evaluate", "--model", "run/model.npz", "--split", "val"],
                 r"bpnet evaluate: error: --split: run/model\.npz was trained without a validation split \(bpnet train "
                 r"--val-size 0\), so it has no --split val; use --split test, train or all$",
                 id="cli-evaluate-val-split-of-a-run-without-one"),
    pytest.param(["evaluate", "--model", "run"],
                 r"bpnet evaluate: error: checkpoint 'run': expected a regular file, got a directory$",
                 id="cli-evaluate-model-is-a-directory"),
    pytest.param(["predict", "--model", "run/model.npz", "--input", "run", "--output", "preds.csv"],
                 r"bpnet predict: error: data: 'run' is a directory; expected a \.csv or \.npz file$",
                 id="cli-predict-input-is-a-directory"),
]


@pytest.mark.parametrize(("argv", "pattern"), BAD_INPUTS)
def test_bad_input(argv, pattern, harness):
    harness.cli_refuses(argv, pattern)


def test_the_bad_input_tables_are_distinct():
    check_table(BAD_INPUTS, minimum=8)


# --------------------------------------------------------------------------- #
# special files: a FIFO as --model, --data or --input used to block the command forever


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes (POSIX)")
def test_evaluate_and_predict_refuse_a_fifo(capsys, iris_run, tmp_path):
    model = str(iris_run / "run" / "model.npz")
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    link = tmp_path / "model.npz"
    link.symlink_to(fifo)
    capsys.readouterr()
    for argv, line in [
        (["evaluate", "--model", str(link)],
         f"bpnet evaluate: error: checkpoint '{link}': expected a regular file, got a FIFO (named pipe)"),
        (["evaluate", "--model", model, "--data", str(fifo), "--split", "all"],
         f"bpnet evaluate: error: data: '{fifo}': expected a regular .csv or .npz file, got a FIFO (named pipe)"),
        (["predict", "--model", model, "--input", str(fifo), "--output", str(tmp_path / "p.csv")],
         f"bpnet predict: error: data: '{fifo}': expected a regular .csv or .npz file, got a FIFO (named pipe)"),
        (["predict", "--model", str(link), "--input", str(iris_run / "iris.csv"), "--output", str(tmp_path / "p.csv")],
         f"bpnet predict: error: checkpoint '{link}': expected a regular file, got a FIFO (named pipe)"),
    ]:
        assert cli_in_time(main, argv) == 2
        err = capsys.readouterr().err
        assert line in err and "Traceback" not in err, err
    assert not (tmp_path / "p.csv").exists()
