"""``bpnet gradcheck``, ``bpnet explain`` and ``bpnet backends``."""

from __future__ import annotations

import time

from .. import backends as _backends
from ..nn import LOSSES
from . import _args as A
from .train import HIDDEN_CHOICES


def add_parsers(sub, fmt) -> None:
    gc = sub.add_parser(
        "gradcheck", formatter_class=fmt, help="gradient-check an architecture on the selected backend",
        description="Compare L_model_backward's gradients with central differences, the course's "
        "||g - g_approx|| / (||g|| + ||g_approx||), on random data for the given architecture.  "
        "Exit status 1 when the difference exceeds --threshold.",
    )
    gc.add_argument("--layers", type=A.layer_dims, default=[4, 5, 3, 1], metavar="N_X,N_1,...,N_L",
                    help="all layer sizes, input first")
    gc.add_argument("--batch", type=A.positive(int), default=8, help="m, examples of random data")
    gc.add_argument("--hidden-activation", default="relu", choices=HIDDEN_CHOICES)
    gc.add_argument("--output", default="auto", choices=["auto", "sigmoid", "softmax", "linear"],
                    help="auto: sigmoid for one output unit, softmax for more")
    gc.add_argument("--loss", default="auto", choices=["auto", *LOSSES])
    gc.add_argument("--fused", action="store_true", help="start the backward pass from dZ[L] = AL - Y")
    gc.add_argument("--epsilon", type=A.positive(float), default=1e-7)
    gc.add_argument("--threshold", type=A.positive(float), default=2e-7, help="largest acceptable difference")
    gc.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    gc.add_argument("--seed", type=A.nonnegative_int, default=0)
    gc.add_argument("--backend", default=None, help=A.BACKEND_HELP)
    gc.set_defaults(func=cmd_gradcheck)

    x = sub.add_parser(
        "explain", formatter_class=fmt,
        help="print every forward/backward equation of a network with its shapes, FLOPs and memory",
        description="For the architecture --layers n_x,n_1,...,n_L and a batch of m examples, print every "
        "forward, cost, backward and update equation in the order bpnet runs them, with the concrete "
        "shape of each operand and result, the cache each layer keeps and its memory, and the parameter "
        "count and FLOPs of a training step.  --check also runs the real forward/backward pass on random "
        "data and prints, per layer, the gradient-check relative error beside the equation it verifies.  "
        "The derivations are in docs/backprop.md.",
    )
    x.add_argument("--layers", type=A.layer_dims, required=True, metavar="N_X,N_1,...,N_L",
                   help="all layer sizes, input first, e.g. 12288,20,7,5,1")
    x.add_argument("--batch", type=A.positive(int), default=64, help="m, the number of examples (columns)")
    x.add_argument("--hidden-activation", default="relu", choices=HIDDEN_CHOICES)
    x.add_argument("--output", default=None, choices=["sigmoid", "softmax", "linear"],
                   help="output activation (default: the loss's natural output, else sigmoid)")
    x.add_argument("--loss", default=None, choices=list(LOSSES),
                   help="default: binary_crossentropy for sigmoid, categorical_crossentropy for softmax, "
                   "mse for linear")
    x.add_argument("--dtype", default="float64", choices=["float32", "float64"],
                   help="for the memory figures and the --check pass")
    x.add_argument("--backend", default=None, help="where --check runs: " + A.BACKEND_HELP)
    x.add_argument("--check", action="store_true",
                   help="run the real pass and gradient-check every layer (exit 1 if it fails)")
    x.add_argument("--check-entries", type=A.positive(int), default=20,
                   help="entries per parameter compared with central differences")
    x.add_argument("--seed", type=A.nonnegative_int, default=0, help="seed of the random data, weights and entries")
    x.set_defaults(func=cmd_explain)

    b = sub.add_parser("backends", help="list the backends usable here, and why the others are not")
    b.set_defaults(func=cmd_backends)


def cmd_gradcheck(args) -> int:
    import numpy as np

    from .. import L_model_backward, L_model_forward, gradient_check, initialize_parameters_deep
    from ..nn.losses import DEFAULT_OUTPUT

    dims = args.layers
    n_params = sum(dims[l] * (dims[l - 1] + 1) for l in range(1, len(dims)))
    if n_params > 20_000:
        raise ValueError(f"--layers: {n_params} parameters need {2 * n_params} forward passes; use at most "
                         "20000 here, or 'bpnet explain --check', which samples entries")
    output = args.output if args.output != "auto" else ("sigmoid" if dims[-1] == 1 else "softmax")
    loss = args.loss if args.loss != "auto" else {v: k for k, v in DEFAULT_OUTPUT.items()}[output]
    bk = _backends.get(args.backend)
    rng = np.random.default_rng(args.seed)
    m = args.batch
    if output == "softmax":
        Y = np.eye(dims[-1])[:, rng.integers(0, dims[-1], size=m)]
    elif loss == "binary_crossentropy":
        Y = rng.integers(0, 2, size=(dims[-1], m)).astype(float)
    else:
        Y = rng.normal(size=(dims[-1], m))
    X = bk.asarray(rng.normal(size=(dims[0], m)), dtype=args.dtype)
    Y = bk.asarray(Y, dtype=args.dtype)
    params = initialize_parameters_deep(dims, init="xavier", seed=args.seed, dtype=args.dtype, backend=bk)
    # nonzero biases keep relu pre-activations off the kink at exactly 0
    params = {k: (bk.asarray(rng.normal(scale=0.1, size=tuple(v.shape)), dtype=args.dtype) if k[0] == "b" else v)
              for k, v in params.items()}
    kw = dict(hidden_activation=args.hidden_activation, output_activation=output)
    AL, caches = L_model_forward(X, params, **kw)
    grads = L_model_backward(AL, Y, caches, loss=loss, fused=args.fused, **kw)
    t0 = time.perf_counter()
    diff = gradient_check(params, grads, X, Y, args.epsilon, loss=loss, **kw)
    ok = diff <= args.threshold
    print(f"backend: {bk}")
    print(f"network: {'-'.join(map(str, dims))}, {args.hidden_activation} hidden, {output} output, {loss}, "
          f"{args.dtype}, m = {m}, {n_params} parameters, "
          f"{'fused dZ[L] = AL - Y' if args.fused else 'course dAL'}")
    print(f"difference = {diff:.3e} (||g - g_approx|| / (||g|| + ||g_approx||), epsilon {args.epsilon:g}) "
          f"in {time.perf_counter() - t0:.2f} s: {'OK' if ok else 'FAILED'} (threshold {args.threshold:g})")
    return 0 if ok else 1


def cmd_explain(args) -> int:
    from ..tools import explain

    bk = _backends.get(args.backend)
    plan = explain.build_plan(
        args.layers, args.batch, hidden_activation=args.hidden_activation, output_activation=args.output,
        loss=args.loss, dtype=args.dtype,
    )
    print(explain.render_plan(plan, backend=bk), flush=True)
    if not args.check:
        return 0
    result = explain.check_plan(plan, backend=bk, entries=args.check_entries, seed=args.seed)
    print(explain.render_check(result))
    return 0 if result.ok else 1


def cmd_backends(args) -> int:
    default = None
    try:
        default = _backends.get(None)
    except ValueError as exc:
        print(f"default: error: {exc}")
    for name in _backends.available():
        bk = _backends.get(name)
        mark = "  (default)" if default is not None and default.name == name else ""
        print(f"{name}: available, device {_backends.device_str(bk.device)}{mark}")
    for name, reason in _backends.unavailable_reasons().items():
        print(f"{name}: not available: {reason}")
    return 0
