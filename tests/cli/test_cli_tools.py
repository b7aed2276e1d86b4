"""bpnet gradcheck, bpnet explain, bpnet backends (bpnet.cli.tools): the defaults, every registry head, the
printed shapes and checks, one-line refusals."""

from __future__ import annotations

import re

import pytest
from badinput import check_table
from conftest import backend_arg

import bpnet
from bpnet import cli
from bpnet.cli import main
from bpnet.nn import resolve_head
from bpnet.tools.explain import build_plan

# --------------------------------------------------------------------------- #
# bpnet gradcheck


def test_gradcheck_command(capsys):
    assert main(["gradcheck", "--dims", "4,5,3,1", "--hidden-activation", "tanh"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"difference = [\d.e-]+ .*: OK", out)
    assert main(["gradcheck", "--dims", "3,4,3", "--fused", "--backend", "array_api_strict:device1"]) == 0
    assert "softmax output, categorical_crossentropy" in capsys.readouterr().out
    # a threshold nothing can meet: the command reports the failure with exit status 1
    assert main(["gradcheck", "--dims", "3,2,1", "--threshold", "1e-30"]) == 1
    assert "FAILED" in capsys.readouterr().out


def _allowed_heads(n_out):
    """Every (output, loss) pair of the registries that resolve_head allows for n_out units."""
    out = []
    for g in bpnet.ACTIVATIONS:
        for loss in bpnet.LOSSES:
            try:
                bpnet.nn.resolve_head(n_out, g, loss)
            except ValueError:
                continue
            out.append((g, loss))
    return out


@pytest.mark.parametrize("output, loss", _allowed_heads(3), ids=[f"{o}-{s}" for o, s in _allowed_heads(3)])
def test_gradcheck_command_every_registry_head(output, loss, capsys):
    from bpnet.cli import main

    assert main(["gradcheck", "--dims", "3,4,3", "--hidden-activation", "softplus", "--output", output,
                 "--loss", loss, "--backend", "numpy"]) == 0
    out = capsys.readouterr().out
    assert f"{output} output, {loss}," in out and re.search(r"difference = [\d.e-]+ .*: OK", out)


def test_gradcheck_command_defaults(capsys):
    from bpnet.cli import main

    assert main(["gradcheck", "--backend", "numpy"]) == 0  # --dims 4,5,3,1
    out = capsys.readouterr().out
    assert "network: 4-5-3-1, relu hidden, sigmoid output, binary_crossentropy," in out
    assert main(["gradcheck", "--dims", "3,4", "--loss", "mse", "--backend", "numpy"]) == 0
    assert "linear output, mse," in capsys.readouterr().out  # a loss alone brings its canonical output
    assert main(["gradcheck", "--dims", "3,4", "--output", "tanh", "--backend", "numpy"]) == 0
    assert "tanh output, mse," in capsys.readouterr().out  # an output without a canonical loss: mse


@pytest.mark.parametrize("argv, message", [
    (["--dims", "3,2", "--output", "relu", "--loss", "categorical_crossentropy"],
     "--output: categorical_crossentropy trains softmax outputs"),
    (["--dims", "3,1", "--output", "softmax"], "--dims: a softmax output needs >= 2 units"),
    (["--dims", "784,512,10"], "--dims: 407050 parameters need 814100 forward passes"),
    (["--dims", "3,2", "--output", "sigmoid", "--loss", "mse", "--fused"], "fused"),
])
def test_gradcheck_command_refusals_give_one_line(argv, message, capsys):
    from bpnet.cli import main

    assert main(["gradcheck", *argv]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bpnet gradcheck: error: ") and message in lines[0], lines
    assert captured.out == ""


# --------------------------------------------------------------------------- #
# bpnet explain


def test_explain_prints_the_concrete_shapes(capsys):
    rc = cli.main(["explain", "--dims", "12288,20,7,5,1", "--batch", "209", "--backend", "numpy"])
    out = capsys.readouterr().out
    assert rc == 0
    for text in [
        "W1 (20, 12288)",
        "(12288, 209)",
        "Z1 = W1 A0 + b1",
        "W1 (20, 12288) @ A0 (12288, 209) + b1 (20, 1) -> (20, 209)",
        "dZ4 = A4 - Y",
        "dW1 = (1/m) dZ1 A0^T",
        "(1/m) dZ1 (20, 209) @ A0^T (209, 12288) -> (20, 12288)",
        "dA3 = W4^T dZ4",
        "W4^T (5, 1) @ dZ4 (1, 209) -> (5, 209)",
        "dZ3 = dA3 * 1[A3 > 0]",
        "db1 = (1/m) sum(dZ1, axis=1)",
        "W1 -= alpha dW1",
        "245,973 parameters",
        "counts 2nkm",
        "keeps A1 (20, 209) 32.7 KiB for the backward pass",
        "the input X, 19.6 MiB",
        "KiB",
        f"{build_plan([12288, 20, 7, 5, 1], 209).step_flops:,} FLOP",
    ]:
        assert text in out, text


def test_explain_default_loss_follows_the_output(capsys):
    for output, loss in [("sigmoid", "binary_crossentropy"), ("softmax", "categorical_crossentropy"),
                         ("linear", "mse"), ("tanh", "mse")]:
        assert cli.main(["explain", "--dims", "3,4,2", "--output", output, "--backend", "numpy"]) == 0
        assert f"loss {loss};" in capsys.readouterr().out
    assert cli.main(["explain", "--dims", "3,4,2", "--loss", "mse", "--backend", "numpy"]) == 0
    assert "output linear" in capsys.readouterr().out


@pytest.mark.parametrize("n_out", [1, 2, 5])
def test_explain_and_gradcheck_default_to_the_same_head(n_out, capsys):
    """Neither command has its own rule: both ask resolve_head, as MLP does."""
    g, spec = resolve_head(n_out)
    assert cli.main(["explain", "--dims", f"3,4,{n_out}", "--backend", "numpy"]) == 0
    assert f"output {g.name}, loss {spec.name};" in capsys.readouterr().out
    assert cli.main(["gradcheck", "--dims", f"3,4,{n_out}", "--backend", "numpy"]) == 0
    assert f"{g.name} output, {spec.name}," in capsys.readouterr().out
    model = bpnet.MLP([3, 4, n_out], backend="numpy")  # and MLP
    assert (model.output_activation, model.loss) == (g.name, spec.name)
    if n_out == 5:
        assert (g.name, spec.name) == ("softmax", "categorical_crossentropy")


def _rel_errors(text):
    return [float(x) for x in re.findall(r"rel\. error (\S+)", text)]


def test_explain_check_small_net(bk, capsys):
    rc = cli.main(["explain", "--dims", "5,4,3,1", "--batch", "6", "--check", "--backend", backend_arg(bk)])
    out = capsys.readouterr().out
    assert rc == 0, out
    errors = _rel_errors(out)
    assert len(errors) == 2 * 3 + 1  # dW, db per layer, and the course's dA0
    assert max(errors) < 1e-6
    assert "dW1 = (1/m) dZ1 A0^T" in out and "PASSED" in out
    assert "all" in out and "shapes above agree" in out
    # the relative error is printed on the line of the equation it verifies
    for l in (1, 2, 3):
        assert re.search(rf"layer {l}\s+dW{l} = \(1/m\) dZ{l} A{l - 1}\^T .* rel\. error \S+\s+ok", out)


@pytest.mark.parametrize(
    "argv",
    [
        [],  # --dims is required
        ["--dims", "5"],
        ["--dims", "3,x"],
        ["--dims", "3,0,1"],
        ["--dims", ""],
        ["--dims", "3,2,1", "--batch", "0"],
        ["--dims", "3,2,1", "--batch", "two"],
        ["--dims", "3,2,1", "--hidden-activation", "swish"],
        ["--dims", "3,2,1", "--hidden-activation", "softmax"],
        ["--dims", "3,2,1", "--output", "gelu"],
        ["--dims", "3,2,1", "--loss", "hinge"],
        ["--dims", "3,2,1", "--dtype", "float16"],
        ["--dims", "3,2,1", "--check-entries", "0"],
        ["--dims", "3,2,1", "--seed", "-1"],
        ["--layers", "3,2,1"],
    ],
    ids=["no-dims", "one-size", "not-int", "zero-size", "empty", "batch0", "batch-text", "activation",
         "hidden-softmax", "output", "loss", "dtype", "entries0", "seed", "layers"],
)
def test_explain_bad_options_argparse(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["explain", *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and err.splitlines()[-1] == errors[0]
    assert errors[0].startswith("bpnet explain: error:")


@pytest.mark.parametrize("command", ["explain", "gradcheck"])
def test_layers_is_refused_with_one_line_pointing_to_dims(command, capsys):
    """``--layers`` means the hidden sizes (bpnet train); these commands take all sizes as --dims."""
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--layers", "4,5,3,1"])
    assert exc.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith(f"bpnet {command}: error: --layers: means the hidden sizes")
    assert "--dims N_X,N_1,...,N_L" in errors[0] and "'--dims 4,5,3,1'" in errors[0]


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--dims", "3,1", "--output", "softmax"], "--dims: a softmax output needs >= 2 units"),
        (["--dims", "3,2", "--output", "linear", "--loss", "binary_crossentropy"],
         "--output: binary_crossentropy trains sigmoid outputs"),
        (["--dims", "3,2,1", "--backend", "tpu"], "unknown backend"),
    ],
)
def test_explain_bad_combinations_give_one_line(argv, message, capsys):
    assert cli.main(["explain", *argv]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bpnet explain: error:") and message in lines[0]
    assert captured.out == ""


# --------------------------------------------------------------------------- #
# bpnet backends


def test_backends_command(capsys):
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    assert "numpy: available" in out and "array_api_strict: available" in out
    assert "cupy:" in out  # available, or the reason why not


# --------------------------------------------------------------------------- #
# bad inputs (badinput.py)


#: each case: (argv of `bpnet`, regex on its one error line)
BAD_INPUTS = [
    pytest.param(["gradcheck", "--dims", "5"],
                 r"--dims: expected at least two sizes n_x,\.\.\.,n_L .*got '5'$", id="cli-gradcheck-one-layer"),
    pytest.param(["gradcheck", "--layers", "4,5,1"],
                 r"--layers: means the hidden sizes \(as in bpnet train\).*--dims", id="cli-gradcheck-layers-is-not-dims"),
]


@pytest.mark.parametrize(("argv", "pattern"), BAD_INPUTS)
def test_bad_input(argv, pattern, harness):
    harness.cli_refuses(argv, pattern)


def test_the_bad_input_tables_are_distinct():
    check_table(BAD_INPUTS, minimum=2)
