"""The explain tool (bpnet.tools.explain): the plan is the training step's, its shapes are the real step's, its
counts are right, every registry entry is explained and checked."""

from __future__ import annotations

import importlib
import re
from dataclasses import replace

import numpy as np
import pytest
from conftest import to_np

import bpnet
from bpnet import cli
from bpnet.nn import ACTIVATIONS, LOSSES, Activation, resolve_head
from bpnet.tools import explain
from bpnet.tools.explain import build_plan, check_plan, compare_shapes, render_check, render_plan, trace_shapes

# (layer_dims, batch, hidden, output, loss): fused and unfused starts, every output, several depths
ARCHS = [
    ([12288, 20, 7, 5, 1], 209, "relu", "sigmoid", None),
    ([3, 2, 1], 1, "relu", "sigmoid", None),
    ([4, 6, 3], 5, "tanh", "softmax", None),
    ([5, 4, 4, 2], 7, "leaky_relu", "linear", None),
    ([4, 3, 2], 3, "sigmoid", "sigmoid", "mse"),  # not fused: dA[L] from the loss, then sigmoid'
    ([2, 3, 3], 4, "linear", "softmax", "mse"),  # not fused: softmax JVP
    ([5, 4, 3], 6, "softplus", "tanh", None),  # tanh output: its default loss is mse
    ([6, 1], 2, "relu", "sigmoid", None),  # L = 1
]
ARCH_IDS = ["course-12288", "tiny", "softmax", "linear-mse", "sigmoid-mse", "softmax-mse", "softplus-tanh",
            "one-layer"]


def _plan(dims, m, hidden, output, loss, dtype="float64"):
    return build_plan(dims, m, hidden_activation=hidden, output_activation=output, loss=loss, dtype=dtype)


# --------------------------------------------------------------------------- #
# shapes: the plan against the real pass


@pytest.mark.parametrize("arch", ARCHS, ids=ARCH_IDS)
def test_plan_shapes_are_those_of_the_real_pass(bk, arch):
    plan = _plan(*arch)
    traced = trace_shapes(plan, bk)
    assert compare_shapes(plan, traced) == []
    L = plan.L
    names = ["A0"] + [f"{p}{l}" for l in range(1, L + 1) for p in ("W", "b", "Z", "A", "dZ", "dW", "db")]
    names += [f"dA{l}" for l in range(1, L)]  # no dA0: the step does not compute it
    for name in names:  # every layer's Z, A, dZ, dW, db, dA is explained, and agrees
        assert plan.shapes()[name] == traced[name], name


@pytest.mark.parametrize("arch", ARCHS, ids=ARCH_IDS)
def test_plan_shapes_match_the_public_api(bk, arch, rng):
    """Independently of the tracer: the course's public functions, on this backend."""
    dims, m, hidden, output, loss = arch
    plan = _plan(*arch)
    shapes = plan.shapes()
    params = bpnet.initialize_parameters_deep(dims, init="xavier", backend=bk)
    X = bk.asarray(rng.standard_normal((dims[0], m)))
    if LOSSES[plan.loss].target == "onehot":
        Y = np.eye(dims[-1])[:, rng.integers(0, dims[-1], m)]
    else:
        Y = rng.integers(0, 2, (dims[-1], m)).astype(float)
    Y = bk.asarray(Y)
    AL, caches = bpnet.L_model_forward(X, params, hidden_activation=hidden, output_activation=plan.output)
    grads = bpnet.L_model_backward(AL, Y, caches, hidden_activation=hidden, output_activation=plan.output,
                                   loss=plan.loss, fused=plan.fused)
    assert "dA0" not in shapes  # the course returns it; the training step does not compute it
    assert shapes[f"A{plan.L}"] == tuple(AL.shape)
    for l, ((A_prev, W, b), Z) in enumerate(caches, start=1):
        assert shapes[f"A{l - 1}"] == tuple(A_prev.shape)
        assert shapes[f"W{l}"] == tuple(W.shape) and shapes[f"b{l}"] == tuple(b.shape)
        assert shapes[f"Z{l}"] == tuple(Z.shape)
        assert shapes[f"dW{l}"] == tuple(grads[f"dW{l}"].shape)
        assert shapes[f"db{l}"] == tuple(grads[f"db{l}"].shape)
        if l > 1:
            assert shapes[f"dA{l - 1}"] == tuple(grads[f"dA{l - 1}"].shape)
        # dZ[l] is not returned; db[l] = sum(dZ[l], axis=1) / m pins its row count, and
        # linear_backward rejects any dZ that is not (rows of W, columns of A_prev)
        dZ = bk.xp.ones(shapes[f"dZ{l}"], dtype=W.dtype, device=bk.device)
        bpnet.linear_backward(dZ, (A_prev, W, b))


def test_dZ_and_dA_shapes_are_observed_not_assumed(bk):
    """The tracer records dZ[l] and dA[l] as the real backward kernels see them."""
    plan = _plan([4, 5, 3, 2], 6, "relu", "sigmoid", "mse")  # unfused: every dZ goes through a kernel
    traced = trace_shapes(plan, bk)
    for l in range(1, 4):
        assert traced[f"dZ{l}"] == (plan.layer_dims[l], 6)
    assert traced["dA3"] == (2, 6)  # the loss's dA[L]


def test_compare_shapes_reports_disagreement():
    plan = build_plan([3, 2, 1], 4)
    traced = dict(plan.shapes())
    traced["dW1"] = (3, 2)
    del traced["Z2"]
    assert compare_shapes(plan, traced) == [("Z2", (1, 4), None), ("dW1", (2, 3), (3, 2))]


def test_plan_steps_in_execution_order():
    """The order of bpnet.train.step: layer l is updated in place right after dZ[l-1] used the old W[l]."""
    plan = build_plan([3, 2, 1], 4)
    order = [(s.phase, s.result.name) for s in plan.steps]
    assert order == [
        ("forward", "Z1"), ("forward", "A1"), ("forward", "Z2"), ("forward", "A2"), ("cost", "J"),
        ("backward", "dZ2"), ("backward", "dW2"), ("backward", "db2"), ("backward", "dA1"), ("backward", "dZ1"),
        ("update", "W2"), ("update", "b2"),
        ("backward", "dW1"), ("backward", "db1"), ("update", "W1"), ("update", "b1"),
    ]
    assert plan.fused and plan.step("dZ2").equation == "dZ2 = A2 - Y"
    assert "scaled once by 1/m" in plan.step("dZ2").note  # the step folds 1/m into dZ[L]
    assert plan.step("W2").equation == "W2 -= alpha dW2"
    unfused = build_plan([3, 2, 1], 4, loss="mse", output_activation="sigmoid")
    assert not unfused.fused
    assert [s.result.name for s in unfused.steps][5:7] == ["dA2", "dZ2"]
    assert unfused.step("dA2").equation == "dA2 = A2 - Y"
    assert unfused.step("dZ2").equation == "dZ2 = dA2 * A2 (1 - A2)"


def _resolve(dotted):
    """The object a dotted name (module path, then attributes) names."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise AssertionError(dotted)


def test_every_step_names_a_real_function():
    for plan in (build_plan([4, 3, 2], 5, output_activation="softmax", loss="categorical_crossentropy"),
                 build_plan([4, 3, 2], 5, hidden_activation="linear", output_activation="softmax", loss="mse")):
        for s in plan.steps:
            assert callable(_resolve(s.implemented_by)), s.implemented_by
    names = {s.result.name: s.implemented_by for s in build_plan([3, 2, 1], 4, hidden_activation="tanh").steps}
    assert names["Z1"] == "bpnet.train.step.forward_train"
    assert names["dW1"] == names["dZ2"] == "bpnet.train.step.backward_update"
    assert _resolve(names["A1"]) is ACTIVATIONS["tanh"].forward
    assert _resolve(names["dZ1"]) is ACTIVATIONS["tanh"].derivative
    assert _resolve(names["J"]) is LOSSES["binary_crossentropy"].logit_cost  # the cost the step reports


# --------------------------------------------------------------------------- #
# one source of truth: the registries and resolve_head


def _head_pairs():
    """Every (output, loss) pair of the registries that resolve_head allows for 3 output units."""
    pairs = []
    for out in ACTIVATIONS:
        for loss in LOSSES:
            try:
                resolve_head(3, out, loss)
            except ValueError:
                continue
            pairs.append((out, loss))
    return pairs


HEADS = _head_pairs()
HIDDEN = [a for a, e in ACTIVATIONS.items() if e.hidden]


def test_the_pairs_cover_the_registries():
    assert {o for o, _ in HEADS} == set(ACTIVATIONS) and {l for _, l in HEADS} == set(LOSSES)
    assert ("softmax", "binary_crossentropy") not in HEADS and ("tanh", "mse") in HEADS


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("output, loss", HEADS, ids=[f"{o}-{l}" for o, l in HEADS])
def test_every_registry_pair_is_explained_and_checked(hidden, output, loss):
    plan = build_plan([4, 5, 3], 6, hidden_activation=hidden, output_activation=output, loss=loss)
    text = render_plan(plan)
    g, h, spec = ACTIVATIONS[output], ACTIVATIONS[hidden], LOSSES[loss]
    # every equation, derivative and FLOP count is the registry's
    assert "dZ1 = " + h.dz.format(dA="dA1", A="A1") in text and h.derivative_text in text
    assert plan.step("A1").flops == h.flops[0] * 5 * 6 and plan.step("A2").flops == g.flops[0] * 3 * 6
    assert plan.step("dZ1").flops == h.flops[1] * 5 * 6
    # the cost the step reports: from the logits for the loss's canonical output, else from A[L]
    cost_text = spec.logit_text if output == spec.output else spec.cost_text
    assert plan.step("J").equation == cost_text.format(L=2) and plan.step("J").flops == spec.flops[0] * 3 * 6
    assert plan.fused == (output == spec.output)
    if not plan.fused:
        assert plan.step("dA2").equation == spec.grad_text.format(L=2)
        assert plan.step("dZ2").equation == "dZ2 = " + g.dz.format(dA="dA2", A="A2")
    result = check_plan(plan, backend="numpy", entries=6)
    assert result.ok, render_check(result)
    assert result.step_vs_course < 1e-12


def test_a_new_registry_entry_needs_no_edit_here(monkeypatch):
    """An activation added to ACTIVATIONS is explained, traced and checked as it is."""
    arctan = Activation("arctan", lambda xp, Z: xp.atan(Z), lambda xp, A: xp.cos(A) ** 2, "atan(Z)",
                        "{dA} * cos({A})^2", "arctan'(z) = 1 / (1 + z^2) = cos(A)^2", (1, 3))
    monkeypatch.setitem(ACTIVATIONS, "arctan", arctan)
    plan = build_plan([3, 4, 2], 5, hidden_activation="arctan", output_activation="arctan")
    assert plan.loss == "mse"  # resolve_head: an output without a canonical loss trains with mse
    text = render_plan(plan)
    assert "A1 = arctan(Z1)" in text and "dZ1 = dA1 * cos(A1)^2" in text and "dZ2 = dA2 * cos(A2)^2" in text
    assert "arctan'(z) = 1 / (1 + z^2) = cos(A)^2" in text
    assert compare_shapes(plan, trace_shapes(plan, "numpy")) == []
    assert check_plan(plan, backend="numpy").ok


def test_kinks_are_read_from_the_registry(monkeypatch):
    """A kinked activation shrinks the step (eps x1); a smooth one enlarges it (x10)."""
    rows = {r.name: r for r in check_plan(build_plan([3, 4, 2], 5, hidden_activation="relu",
                                                     output_activation="tanh"), backend="numpy").rows}
    assert rows["dW1"].epsilon == pytest.approx(1e-6) and rows["dW2"].epsilon == pytest.approx(1e-5)
    rows = {r.name: r for r in check_plan(build_plan([3, 4, 2], 5, hidden_activation="softplus",
                                                     output_activation="tanh"), backend="numpy").rows}
    assert rows["dW1"].epsilon == pytest.approx(1e-5)
    step = replace(ACTIVATIONS["relu"], name="step_relu")
    monkeypatch.setitem(ACTIVATIONS, "step_relu", step)
    rows = {r.name: r for r in check_plan(build_plan([3, 4, 2], 5, hidden_activation="step_relu",
                                                     output_activation="tanh"), backend="numpy").rows}
    assert rows["dW1"].epsilon == pytest.approx(1e-6)


def test_defaults_and_refusals_are_resolve_heads():
    for n_out in (1, 2, 5):
        g, spec = resolve_head(n_out)
        plan = build_plan([3, 4, n_out], 8)
        assert (plan.output, plan.loss) == (g.name, spec.name)
    assert (build_plan([3, 4, 5], 8).output, build_plan([3, 4, 5], 8).loss) == ("softmax", "categorical_crossentropy")
    for kw in (dict(output_activation="linear", loss="binary_crossentropy"), dict(output_activation="softmax")):
        n_out = 1 if "loss" not in kw else 2
        with pytest.raises(ValueError) as want:
            resolve_head(n_out, kw.get("output_activation"), kw.get("loss"))
        with pytest.raises(ValueError) as got:
            build_plan([3, n_out], 4, **kw)
        assert str(got.value) == str(want.value)


# --------------------------------------------------------------------------- #
# counts


def test_flops_params_and_memory_of_a_tiny_net():
    # [3, 2, 1], m = 4, relu hidden, sigmoid output, binary cross-entropy (fused), as the step computes it
    plan = build_plan([3, 2, 1], 4)
    f = {(s.phase, s.result.name): s.flops for s in plan.steps}
    # forward
    assert f["forward", "Z1"] == 2 * 2 * 3 * 4 + 2 * 4 == 56  # W1 (2,3) @ A0 (3,4): 2nkm; + b1: n m
    assert f["forward", "A1"] == 1 * 2 * 4 == 8  # relu: 1 per element
    assert f["forward", "Z2"] == 2 * 1 * 2 * 4 + 1 * 4 == 20
    assert f["forward", "A2"] == 3 * 1 * 4 == 12  # sigmoid: exp, add, divide
    assert plan.flops("forward") == 56 + 8 + 20 + 12 == 96
    # cost (not in a training step): 8 per element of A2
    assert f["cost", "J"] == 8 * 4 == 32
    # backward: the 1/m (times alpha) is applied once, to dZ[L]; dW, db, dZ[l-1] carry it
    assert f["backward", "dZ2"] == 2 * 1 * 4 == 8  # A2 - Y, then the scaling
    assert f["backward", "dW2"] == 2 * 1 * 4 * 2 == 16  # dZ2 (1,4) @ A1^T (4,2)
    assert f["backward", "db2"] == 1 * 4 == 4  # sum of 4 (a GEMV with ones)
    assert f["backward", "dA1"] == 2 * 2 * 1 * 4 == 16  # W2^T (2,1) @ dZ2 (1,4)
    assert f["backward", "dZ1"] == 2 * 2 * 4 == 16  # relu': compare and multiply per element
    assert f["backward", "dW1"] == 2 * 2 * 4 * 3 == 48
    assert f["backward", "db1"] == 2 * 4 == 8
    assert ("backward", "dA0") not in f  # the step never computes it
    assert plan.flops("backward") == 8 + 16 + 4 + 16 + 16 + 48 + 8 == 116
    # update: alpha is folded into dZ[L]'s scaling, one subtraction per parameter, 11 parameters
    assert plan.n_params == (2 * 3 + 2) + (1 * 2 + 1) == 11
    assert plan.flops("update") == 11
    assert plan.step_flops == 96 + 116 + 11 == 223
    assert plan.flops(training_only=False) == 223 + 32
    # kept for the backward pass (float64): A1 (2,4) and A2 (1,4); no Z
    assert [c.kept_bytes for c in plan.caches] == [8 * 8, 4 * 8]
    assert plan.cache_bytes == 96
    assert build_plan([3, 2, 1], 4, dtype="float32").cache_bytes == 48


def test_course_network_counts():
    plan = build_plan([12288, 20, 7, 5, 1], 209)
    assert plan.n_params == 12288 * 20 + 20 + 20 * 7 + 7 + 7 * 5 + 5 + 5 + 1 == 245_973
    assert plan.step("Z1").flops == 2 * 20 * 12288 * 209 + 20 * 209
    assert plan.step("dW1").flops == 2 * 20 * 209 * 12288
    assert plan.caches[0].kept_bytes == 20 * 209 * 8


def test_human_units():
    assert explain.human_bytes(512) == "512 B"
    assert explain.human_bytes(1536) == "1.5 KiB"
    assert explain.human_bytes(12288 * 209 * 8) == "19.6 MiB"
    assert explain.human_flops(999) == "999 FLOP"
    assert explain.human_flops(206_447_005) == "206.4 MFLOP"


# --------------------------------------------------------------------------- #
# text


def test_render_plan_is_the_cli_text(capsys):
    plan = build_plan([4, 6, 3], 5, output_activation="softmax", hidden_activation="tanh")
    text = render_plan(plan, backend=bpnet.backends.get("numpy"))
    assert "loss categorical_crossentropy" in text and "backend numpy (device: cpu)" in text
    assert "dZ1 = dA1 * (1 - A1^2)" in text
    assert "A2 = softmax(Z2)" in text
    assert cli.main(["explain", "--dims", "4,6,3", "--batch", "5", "--output", "softmax",
                     "--hidden-activation", "tanh", "--backend", "numpy"]) == 0
    assert text in capsys.readouterr().out


@pytest.mark.parametrize("arch", ARCHS[1:], ids=ARCH_IDS[1:])
def test_check_plan_passes(bk, arch):
    result = check_plan(_plan(*arch), backend=bk, entries=6)
    assert result.shape_mismatches == ()
    assert result.max_rel_error < 1e-6, render_check(result)
    assert result.ok
    assert result.step_vs_course < 1e-12


def test_check_course_network_subsamples_and_caps_the_batch(bk):
    plan = build_plan([12288, 20, 7, 5, 1], 209)
    result = check_plan(plan, backend=bk, entries=5)
    assert result.ok, render_check(result)
    assert result.check_batch == 16 and result.shape_batch == 209
    rows = {r.name: r for r in result.rows}
    assert rows["dW1"].entries == 5 and rows["dW1"].shape == (20, 12288)
    assert rows["db4"].entries == 1  # all entries when there are fewer
    text = render_check(result)
    assert "capped at 16" in text and "5 seeded random entries per array" in text
    assert "5 of 245,760" in text


def test_check_float32(bk):
    result = check_plan(build_plan([5, 4, 1], 8, dtype="float32"), backend=bk)
    assert result.ok, render_check(result)
    assert "float32" in render_check(result)


def test_check_traces_a_small_batch_when_the_caches_are_large(monkeypatch):
    monkeypatch.setattr(explain, "_SHAPE_TRACE_LIMIT", 1000)
    result = check_plan(build_plan([30, 8, 1], 100), backend="numpy")
    assert result.ok and result.shape_batch == 16
    assert "exceed" in render_check(result)


def test_check_catches_a_wrong_backward(monkeypatch, capsys):
    """A training step whose db misses the 1/m fails the check, and the CLI exits 1."""
    real = explain.backward_update

    def no_one_over_m(xp, acts, Y, *args, **kwargs):
        got = real(xp, acts, Y, *args, **kwargs)
        return got if got is None else [(l, dW, db * Y.shape[1]) for l, dW, db in got]

    monkeypatch.setattr(explain, "backward_update", no_one_over_m)
    rc = cli.main(["explain", "--dims", "3,4,1", "--batch", "8", "--check", "--backend", "numpy"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "FAILED" in out and re.search(r"db1 = .* FAIL", out)
    assert re.search(r"dW1 = .* ok", out)


def test_check_values_come_from_the_backend(bk):
    """The random problem lives on the selected backend and is the host draw, moved."""
    plan = build_plan([3, 2, 1], 4)
    X, Y, params = explain._random_problem(plan, bk, 4, 0)
    for a in (X, Y, *params.values()):
        assert bk.xp is __import__("array_api_compat").array_namespace(a)
    assert to_np(X).shape == (3, 4) and set(np.unique(to_np(Y))) <= {0.0, 1.0}


def test_build_plan_validates():
    with pytest.raises(ValueError, match="layer_dims"):
        build_plan([3], 4)
    with pytest.raises(TypeError, match="layer_dims"):
        build_plan("3,2,1", 4)
    with pytest.raises(ValueError, match="batch"):
        build_plan([3, 2, 1], 0)
    with pytest.raises(TypeError, match="batch"):
        build_plan([3, 2, 1], 2.5)
    with pytest.raises(ValueError, match="dtype"):
        build_plan([3, 2, 1], 4, dtype="float16")
    with pytest.raises(ValueError, match="hidden_activation"):
        build_plan([3, 2, 1], 4, hidden_activation="swish")
    with pytest.raises(ValueError, match="hidden_activation: softmax normalises over the class axis"):
        build_plan([3, 2, 2], 4, hidden_activation="softmax")
    with pytest.raises(ValueError, match="output_activation: categorical_crossentropy trains softmax outputs"):
        build_plan([3, 2, 2], 4, output_activation="sigmoid", loss="categorical_crossentropy")
    with pytest.raises(ValueError, match="seed"):
        check_plan(build_plan([3, 2, 1], 4), backend="numpy", seed=-1)
    with pytest.raises(ValueError, match="check_entries"):
        check_plan(build_plan([3, 2, 1], 4), backend="numpy", entries=0)
