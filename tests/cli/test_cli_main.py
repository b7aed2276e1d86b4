"""The command line's entry point (bpnet.cli): python -m bpnet, --help, --version, and bad options of every
command as one error line with exit status 2."""

import re

import pytest
from conftest import run_bpnet

from bpnet.cli import build_parser, main

COMMANDS = ("train", "evaluate", "predict", "gradcheck", "explain", "backends")


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
    (["train", "--optimizer", "newton"], r"--optimizer: invalid choice: 'newton'"),
    (["train", "--data", "mnist"], r"data: unknown data set 'mnist'"),
    (["train", "--data", "missing.csv"], r"data: no such file: 'missing.csv'"),
    (["train", "--test-size", "1.5"], r"--test-size: expected a finite number in \(0, 1\)"),
    (["train", "--val-size", "0.0001"], r"^bpnet train: error: val_size: a stratified split .* 2 classes in the "
                                        r"validation set.* use val_size >= 0.0036 \(bpnet train: --val-size\), or \(from "
                                        r"Python\) pass stratify=False$"),
    (["train", "--layers", "1000000000000"], r"^bpnet train: error: layer_dims: the 30-1000000000000-1 network has "
                                             r"32,000,000,000,001 parameters, .* more than this machine's .* GiB of "
                                             r"memory and swap: use fewer or smaller layers$"),
    (["train", "--backend", "tpu"], r"unknown backend 'tpu'.*available here: numpy"),
    (["train", "--backend", "array_api_strict:device9"], r"device: array_api_strict has devices"),
    (["train", "--hidden-activation", "swish"], r"--hidden-activation: invalid choice"),
    (["train", "--early-stopping", "3"], r"--early-stopping: needs a validation split"),
    (["train", "--resume", "--out", "no-such-run"], r"--resume: no checkpoint at no-such-run"),
    (["evaluate", "--model", "missing.npz"], r"checkpoint file not found: missing.npz"),
    (["predict", "--model", "missing.npz", "--input", "x.csv"], r"checkpoint file not found"),
    (["predict"], r"the following arguments are required: --input"),
    (["gradcheck", "--dims", "5"], r"--dims: expected at least two sizes"),
    (["gradcheck", "--dims", "4,,1"], r"--dims: expected comma-separated positive integers .*\(an empty entry\)"),
    (["train", "--layers", "20,7,"], r"--layers: expected comma-separated positive integers .*\(an empty entry\)"),
    (["train", "--nonsense"], r"^bpnet train: error: unrecognized arguments: --nonsense$"),
    (["gradcheck", "--dims", "784,512,10"], r"--dims: 407050 parameters"),
    ([], r"the following arguments are required: COMMAND"),
])
def test_bad_options_get_one_line_and_nonzero_exit(args, pattern, tmp_path):
    r = run_bpnet(*args, cwd=tmp_path)
    assert r.returncode == 2
    err_lines = [line for line in r.stderr.splitlines() if "error" in line]
    assert len(err_lines) == 1, r.stderr
    assert re.search(pattern, err_lines[0]), r.stderr
    assert "Traceback" not in r.stderr and "usage:" not in r.stderr


def test_bad_backend_environment_variable(tmp_path):
    r = run_bpnet("train", "--epochs", "1", env={"BPNET_BACKEND": "nope"}, cwd=tmp_path)
    assert r.returncode == 2
    assert "BPNET_BACKEND environment variable: unknown backend 'nope'" in r.stderr


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("bad", [["--no-such-option"], ["--backend"], ["extra-argument"]],
                         ids=["unknown-option", "missing-value", "extra-argument"])
def test_every_commands_argparse_errors_are_one_line(command, bad, capsys):
    """argparse's errors (unknown option, missing value, ...) are one 'bpnet CMD: error:' line, no usage block."""
    argv = [command, *(["--input", "x.csv"] if command == "predict" else []), *bad]
    if command == "backends" and bad == ["--backend"]:
        argv = [command, "--backend=x"]  # backends has no options: an unknown one
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith(f"bpnet {command}: error: "), err
    assert "usage" not in err


def _help_entries(parser) -> dict:
    """``{flag: help text}`` of the options in ``parser.format_help()``, as printed (the first flag of each)."""
    entries, flag = {}, None
    for line in parser.format_help().splitlines():
        m = re.match(r"^  (-\S.*?)(?:\s{2,}(\S.*))?$", line)
        if m:
            flag = m.group(1).split()[0].rstrip(",")
            entries[flag] = m.group(2) or ""
        elif flag is not None and line.startswith(" " * 4) and line.strip():
            entries[flag] += " " + line.strip()  # the help on the next line(s)
        else:
            flag = None
    return entries


def test_every_option_has_help_and_its_default_once(monkeypatch):
    """Every option of every command says what it does (--dtype, --hidden-activation and evaluate's --split had
    no help); its default appears once (it used to print '(default: $BPNET_BACKEND, else auto) (default: None)'),
    never as None/False."""
    monkeypatch.setenv("COLUMNS", "400")  # one line per option
    parser = build_parser()
    assert set(parser.commands) == set(COMMANDS)
    for command, sub in parser.commands.items():
        entries = _help_entries(sub)
        assert "-h" in entries and (command == "backends" or "--backend" in entries), (command, entries)
        for flag, text in entries.items():
            assert text.strip(), f"bpnet {command} {flag}: no help"
            assert text.count("(default") <= 1, (command, flag, text)
            assert "(default: None)" not in text and "(default: False)" not in text, (command, flag, text)
    for command, flag in (("train", "--dtype"), ("train", "--hidden-activation"), ("evaluate", "--split"),
                          ("gradcheck", "--dtype"), ("explain", "--hidden-activation")):
        assert len(_help_entries(parser.commands[command])[flag]) > 20, (command, flag)
    train = " ".join(parser.commands["train"].format_help().split())
    for option, default in (("--epochs", "2500"), ("--batch-size", "0"), ("--optimizer", "gd"), ("--layers", "20,7,5"),
                            ("--dtype", "float32"), ("--hidden-activation", "relu"), ("--data", "breast_cancer")):
        assert re.search(rf"{option} .*?\(default: {re.escape(default)}\)", train), option
