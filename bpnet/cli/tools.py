"""``bpnet gradcheck``, ``bpnet explain`` and ``bpnet backends``."""

from __future__ import annotations

import argparse
import time

from .. import backends as _backends
from .._validate import n_parameters
from ..nn import ACTIVATIONS, LOSSES, resolve_head
from . import _args as A

_HIDDEN = [a for a, e in ACTIVATIONS.items() if e.hidden]
_DIMS_HELP = "all layer sizes, input first (bpnet train's --layers are the hidden sizes only)"


class _RefuseLayers(argparse.Action):
    """``--layers`` on gradcheck and explain: one error line pointing to ``--dims``."""

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(f"--layers: means the hidden sizes (as in bpnet train); here give all sizes, input first, "
                     f"with --dims N_X,N_1,...,N_L (the old '--layers {values}' is '--dims {values}')")


def _network_options(p, *, dims_default, batch_default) -> None:
    p.add_argument("--dims", type=A.layer_dims, metavar="N_X,N_1,...,N_L", help=_DIMS_HELP,
                   **({"required": True} if dims_default is None else {"default": dims_default}))
    p.add_argument("--layers", action=_RefuseLayers, help=argparse.SUPPRESS)
    p.add_argument("--batch", type=A.positive(int), default=batch_default, help="m, the number of examples (columns)")
    p.add_argument("--hidden-activation", default="relu", choices=_HIDDEN, help="activation g of the hidden layers")
    p.add_argument("--output", default="auto", choices=["auto", *ACTIVATIONS],
                   help="output activation; auto: the loss's canonical output, else sigmoid for one output unit, "
                   "softmax for more (bpnet.nn.resolve_head, as in MLP)")
    p.add_argument("--loss", default="auto", choices=["auto", *LOSSES],
                   help="auto: the output's canonical loss (mse for an output without one)")
    p.add_argument("--dtype", default="float64", choices=["float32", "float64"],
                   help="precision of the data, weights and gradients")
    p.add_argument("--seed", type=A.nonnegative_int, default=0,
                   help="seed of the random data and weights (and of the checked entries)")


def _head(args):
    """(output Activation, Loss) of ``--output``/``--loss`` for ``--dims``, as :func:`bpnet.nn.resolve_head` decides."""
    return resolve_head(args.dims[-1], None if args.output == "auto" else args.output,
                        None if args.loss == "auto" else args.loss, output_arg="--output", loss_arg="--loss",
                        units_arg="--dims")


def add_parsers(sub, fmt) -> None:
    gc = sub.add_parser(
        "gradcheck", formatter_class=fmt, help="gradient-check an architecture on the selected backend",
        description="Compare L_model_backward's gradients with central differences, the course's "
        "||g - g_approx|| / (||g|| + ||g_approx||), on random data for the given architecture.  "
        "Exit status 1 when the difference exceeds --threshold.",
    )
    _network_options(gc, dims_default=[4, 5, 3, 1], batch_default=8)
    gc.add_argument("--fused", action="store_true", help="start the backward pass from dZ[L] = AL - Y")
    gc.add_argument("--epsilon", type=A.positive(float), default=1e-7,
                    help="the step of the central differences (J(theta + eps) - J(theta - eps)) / (2 eps)")
    gc.add_argument("--threshold", type=A.positive(float), default=2e-7, help="largest acceptable difference")
    gc.add_argument("--backend", default=None, help=A.BACKEND_HELP)
    gc.set_defaults(func=cmd_gradcheck)

    x = sub.add_parser(
        "explain", formatter_class=fmt,
        help="print every equation of a training step with its shapes, FLOPs and memory",
        description="For the architecture --dims n_x,n_1,...,n_L and a batch of m examples, print every "
        "forward, cost, backward and update equation of the training step MLP.fit runs, in its order, with "
        "the concrete shape of each operand and result, the activations it keeps and their memory, and the "
        "parameter count and FLOPs of a step.  --check also runs the real step on random data and prints, "
        "per layer, the gradient-check relative error beside the equation it verifies.  The derivations "
        "are in docs/backprop.md.",
    )
    _network_options(x, dims_default=None, batch_default=64)
    x.add_argument("--backend", default=None, help="where --check runs: " + A.BACKEND_HELP)
    x.add_argument("--check", action="store_true",
                   help="run the real step and gradient-check every layer (exit 1 if it fails)")
    x.add_argument("--check-entries", type=A.positive(int), default=20,
                   help="entries per parameter compared with central differences")
    x.set_defaults(func=cmd_explain)

    b = sub.add_parser("backends", help="list the backends usable here, and why the others are not")
    b.set_defaults(func=cmd_backends)


def cmd_gradcheck(args) -> int:
    import numpy as np

    from .. import L_model_backward, L_model_forward, gradient_check, initialize_parameters_deep

    dims = args.dims
    n_params = n_parameters(dims)
    if n_params > 20_000:
        raise ValueError(f"--dims: {n_params} parameters need {2 * n_params} forward passes; use at most "
                         "20000 here, or 'bpnet explain --check', which samples entries")
    output, spec = _head(args)
    bk = _backends.get(args.backend)
    rng = np.random.default_rng(args.seed)
    m, n_out = args.batch, dims[-1]
    if spec.target == "onehot":
        Y = np.eye(n_out)[:, rng.integers(0, n_out, size=m)]
    elif spec.target == "binary":
        Y = rng.integers(0, 2, size=(n_out, m)).astype(float)
    else:
        Y = rng.normal(size=(n_out, m))
    X = bk.asarray(rng.normal(size=(dims[0], m)), dtype=args.dtype)
    Y = bk.asarray(Y, dtype=args.dtype)
    params = initialize_parameters_deep(dims, init="xavier", seed=args.seed, dtype=args.dtype, backend=bk)
    # nonzero biases keep relu pre-activations off the kink at exactly 0
    params = {k: (bk.asarray(rng.normal(scale=0.1, size=tuple(v.shape)), dtype=args.dtype) if k[0] == "b" else v)
              for k, v in params.items()}
    kw = dict(hidden_activation=args.hidden_activation, output_activation=output.name)
    AL, caches = L_model_forward(X, params, **kw)
    grads = L_model_backward(AL, Y, caches, loss=spec.name, fused=args.fused, **kw)
    t0 = time.perf_counter()
    diff = gradient_check(params, grads, X, Y, args.epsilon, loss=spec.name, **kw)
    ok = diff <= args.threshold
    print(f"backend: {bk}")
    print(f"network: {'-'.join(map(str, dims))}, {args.hidden_activation} hidden, {output.name} output, {spec.name}, "
          f"{args.dtype}, m = {m}, {n_params} parameters, "
          f"{'fused dZ[L] = AL - Y' if args.fused else 'course dAL'}")
    print(f"difference = {diff:.3e} (||g - g_approx|| / (||g|| + ||g_approx||), epsilon {args.epsilon:g}) "
          f"in {time.perf_counter() - t0:.2f} s: {'OK' if ok else 'FAILED'} (threshold {args.threshold:g})")
    return 0 if ok else 1


def cmd_explain(args) -> int:
    from ..tools import explain

    bk = _backends.get(args.backend)
    output, spec = _head(args)
    plan = explain.build_plan(args.dims, args.batch, hidden_activation=args.hidden_activation,
                              output_activation=output.name, loss=spec.name, dtype=args.dtype)
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
