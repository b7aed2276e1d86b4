"""The command line: bpnet train / backends, python -m bpnet, and its errors."""

import os
import re
import subprocess
import sys

import pytest

from bpnet.cli import main


def _run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "bpnet", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def test_train_default_main_job(capsys):
    # the README's main job, in process: breast cancer, 30-20-7-5-1
    assert main(["train"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("backend: ")  # backend and device first
    assert any(line.startswith("Cost after iteration 0: ") for line in out)
    assert any(line.startswith("Cost after iteration 2499: ") for line in out)
    test_acc = float(re.search(r"test accuracy: ([\d.]+)%", "\n".join(out)).group(1))
    assert test_acc >= 95.0


@pytest.mark.parametrize("backend", ["numpy", "array_api_strict", "array_api_strict:device1"])
def test_train_on_each_backend(capsys, backend):
    assert main(["train", "--backend", backend, "--iterations", "300", "--print-every", "100",
                 "--dtype", "float32"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith(f"backend: {backend.split(':')[0]} (device: ")
    costs = [float(c) for c in re.findall(r"Cost after iteration \d+: (\S+)", out)]
    assert len(costs) == 4 and costs[-1] < costs[0]


def test_train_backend_from_environment():
    r = _run("train", "--iterations", "5", env={"BPNET_BACKEND": "array_api_strict"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("backend: array_api_strict (device: CPU_DEVICE)")


def test_train_softmax_data_set(capsys):
    assert main(["train", "--data", "iris", "--layers", "8", "--lr", "0.1", "--iterations", "500"]) == 0
    out = capsys.readouterr().out
    assert "softmax output, categorical_crossentropy" in out
    assert float(re.search(r"test accuracy: ([\d.]+)%", out).group(1)) > 85


def test_backends_command(capsys):
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    assert "numpy: available" in out and "array_api_strict: available" in out
    assert "cupy:" in out  # available, or the reason why not


def test_python_dash_m_help_and_version():
    r = _run("--help")
    assert r.returncode == 0 and "train" in r.stdout and "backends" in r.stdout
    r = _run("train", "--help")
    assert r.returncode == 0 and "--backend" in r.stdout and "BPNET_BACKEND" in r.stdout
    r = _run("--version")
    assert r.returncode == 0 and r.stdout.startswith("bpnet ")


@pytest.mark.parametrize("args, pattern", [
    (["train", "--lr", "-1"], r"--lr: expected a positive float"),
    (["train", "--iterations", "0"], r"--iterations: expected a positive int"),
    (["train", "--layers", "20,x"], r"--layers: expected comma-separated positive integers"),
    (["train", "--layers", "0"], r"--layers: expected positive layer sizes"),
    (["train", "--data", "mnist"], r"--data: invalid choice: 'mnist'"),
    (["train", "--test-size", "1.5"], r"--test-size: expected a fraction in \(0, 1\)"),
    (["train", "--backend", "tpu"], r"unknown backend 'tpu'.*available here: numpy"),
    (["train", "--backend", "array_api_strict:device9"], r"device: array_api_strict has devices"),
    (["train", "--hidden-activation", "swish"], r"--hidden-activation: invalid choice"),
    ([], r"the following arguments are required: COMMAND"),
])
def test_bad_options_get_one_line_and_nonzero_exit(args, pattern):
    r = _run(*args)
    assert r.returncode == 2
    err_lines = [line for line in r.stderr.splitlines() if "error" in line]
    assert len(err_lines) == 1, r.stderr
    assert re.search(pattern, err_lines[0]), r.stderr
    assert "Traceback" not in r.stderr


def test_bad_backend_environment_variable():
    r = _run("train", "--iterations", "1", env={"BPNET_BACKEND": "nope"})
    assert r.returncode == 2
    assert "BPNET_BACKEND environment variable: unknown backend 'nope'" in r.stderr
