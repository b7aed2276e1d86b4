"""The command line's entry point (bpnet.cli): python -m bpnet, --help, --version, and bad options of every
command as one error line with exit status 2."""

import re

import pytest
from conftest import run_bpnet


def test_python_dash_m_help_and_version():
    r = run_bpnet("--help")
    assert r.returncode == 0
    for cmd in ("train", "evaluate", "predict", "gradcheck", "explain", "backends"):
        assert cmd in r.stdout
    r = run_bpnet("train", "--help")
    assert r.returncode == 0
    for opt in ("--data", "--layers", "--hidden-activation", "--output", "--loss", "--optimizer", "--lr",
                "--lr-decay", "--epochs", "--batch-size", "--l2", "--dropout", "--seed", "--dtype", "--backend",
                "--out", "--quiet", "BPNET_BACKEND"):
        assert opt in r.stdout, opt
    r = run_bpnet("--version")
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
    r = run_bpnet(*args, cwd=tmp_path)
    assert r.returncode == 2
    err_lines = [line for line in r.stderr.splitlines() if "error" in line]
    assert len(err_lines) == 1, r.stderr
    assert re.search(pattern, err_lines[0]), r.stderr
    assert "Traceback" not in r.stderr


def test_bad_backend_environment_variable(tmp_path):
    r = run_bpnet("train", "--epochs", "1", env={"BPNET_BACKEND": "nope"}, cwd=tmp_path)
    assert r.returncode == 2
    assert "BPNET_BACKEND environment variable: unknown backend 'nope'" in r.stderr
