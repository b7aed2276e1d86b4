"""Command line: ``bpnet train``, ``bpnet explain`` and ``bpnet backends`` (also ``python -m bpnet``)."""

from __future__ import annotations

import argparse
import sys
import time

from . import __version__
from . import backends as _backends
from .activations import ACTIVATIONS
from .core import INITS, _decide, _forward
from .datasets import DATASETS
from .losses import LOSSES

__all__ = ["main"]


def _layers(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers like 20,7,5, got {text!r}")
    if any(n <= 0 for n in sizes):
        raise argparse.ArgumentTypeError(f"expected positive layer sizes, got {text!r}")
    return sizes


def _positive(kind):
    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}")
        if not v > 0:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}")
        return v

    return parse


def _fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = -1.0
    if not 0.0 < v < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1), got {text!r}")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bpnet",
        description="Train L-layer neural networks with the course's hand-written backpropagation, "
        "on numpy (CPU) or cupy (NVIDIA GPU).",
    )
    p.add_argument("--version", action="version", version=f"bpnet {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    t = sub.add_parser(
        "train",
        help="train a network on an embedded data set and report its accuracy",
        description="Train [LINEAR->g]*(L-1) -> LINEAR->sigmoid/softmax by full-batch gradient descent "
        "on a data set shipped with scikit-learn (nothing is downloaded), printing the course's "
        "'Cost after iteration N' lines, then train and test accuracy.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    t.add_argument("--data", default="breast_cancer", choices=sorted(DATASETS),
                   help="embedded data set (binary ones get a sigmoid output, others softmax)")
    t.add_argument("--layers", type=_layers, default=[20, 7, 5], metavar="N,N,...",
                   help="hidden layer sizes; input and output sizes come from the data")
    t.add_argument("--hidden-activation", default="relu", choices=[a for a in ACTIVATIONS if a != "softmax"])
    t.add_argument("--lr", type=_positive(float), default=0.01, help="learning rate")
    t.add_argument("--iterations", type=_positive(int), default=2500, help="gradient-descent iterations")
    t.add_argument("--init", default="he", choices=list(INITS), help="weight initialisation")
    t.add_argument("--seed", type=int, default=1, help="seed of the weight initialisation")
    t.add_argument("--split-seed", type=int, default=0, help="seed of the train/test split")
    t.add_argument("--test-size", type=_fraction, default=0.2, help="fraction of examples held out")
    t.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    t.add_argument("--backend", default=None,
                   help=f"numpy, array_api_strict, cupy or auto (default: ${_backends.ENV_VAR}, else auto)")
    t.add_argument("--print-every", type=_positive(int), default=100, help="print the cost every N iterations")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser(
        "explain",
        help="print every forward/backward equation of a network with its shapes, FLOPs and memory",
        description="For the architecture --layers n_x,n_1,...,n_L and a batch of m examples, print every "
        "forward, cost, backward and update equation in the order bpnet runs them, with the concrete "
        "shape of each operand and result, the cache each layer keeps and its memory, and the parameter "
        "count and FLOPs of a training step.  --check also runs the real forward/backward pass on random "
        "data and prints, per layer, the gradient-check relative error beside the equation it verifies.  "
        "The derivations are in docs/backprop.md.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    e.add_argument("--layers", type=_layer_dims, required=True, metavar="N_X,N_1,...,N_L",
                   help="all layer sizes, input first, e.g. 12288,20,7,5,1")
    e.add_argument("--batch", type=_positive(int), default=64, help="m, the number of examples (columns)")
    e.add_argument("--hidden-activation", default="relu", choices=[a for a in ACTIVATIONS if a != "softmax"])
    e.add_argument("--output", default=None, choices=["sigmoid", "softmax", "linear"],
                   help="output activation (default: the loss's natural output, else sigmoid)")
    e.add_argument("--loss", default=None, choices=list(LOSSES),
                   help="default: binary_crossentropy for sigmoid, categorical_crossentropy for softmax, "
                   "mse for linear")
    e.add_argument("--dtype", default="float64", choices=["float32", "float64"],
                   help="for the memory figures and the --check pass")
    e.add_argument("--backend", default=None,
                   help=f"where --check runs: numpy, array_api_strict, cupy or auto "
                   f"(default: ${_backends.ENV_VAR}, else auto)")
    e.add_argument("--check", action="store_true",
                   help="run the real pass and gradient-check every layer (exit 1 if it fails)")
    e.add_argument("--check-entries", type=_positive(int), default=20,
                   help="entries per parameter compared with central differences")
    e.add_argument("--seed", type=_nonnegative_int, default=0, help="seed of the random data, weights and entries")
    e.set_defaults(func=cmd_explain)

    b = sub.add_parser("backends", help="list the backends usable here, and why the others are not")
    b.set_defaults(func=cmd_backends)
    return p


def _accuracy(xp, X, y_true, parameters, L, hidden, output, bk) -> float:
    AL, _ = _forward(xp, X, parameters, L, hidden, output)
    pred = _backends.to_numpy(_decide(xp, AL, output.name)).reshape(-1)
    return float((pred.astype(int) == y_true).mean())


def cmd_train(args) -> int:
    from .activations import get_activation
    from .datasets import load_dataset
    from .train import L_layer_model

    bk = _backends.get(args.backend)
    print(f"backend: {bk}")
    ds = load_dataset(args.data, test_size=args.test_size, seed=args.split_seed)
    dims = [ds.n_x, *args.layers, ds.n_y]
    output = "sigmoid" if ds.loss == "binary_crossentropy" else "softmax"
    print(f"data: {args.data} ({DATASETS[args.data][1]}); train m = {ds.X_train.shape[1]}, "
          f"test m = {ds.X_test.shape[1]}")
    print(f"network: {'-'.join(map(str, dims))}, {args.hidden_activation} hidden, {output} output, "
          f"{ds.loss}, {args.dtype}")
    X_train = bk.asarray(ds.X_train, dtype=args.dtype)
    Y_train = bk.asarray(ds.Y_train, dtype=args.dtype)
    t0 = time.perf_counter()
    parameters, costs = L_layer_model(
        X_train, Y_train, dims, learning_rate=args.lr, num_iterations=args.iterations, print_cost=True,
        hidden_activation=args.hidden_activation, output_activation=output, loss=ds.loss,
        init=args.init, seed=args.seed, dtype=args.dtype, backend=bk, print_every=args.print_every,
    )
    bk.synchronize()
    seconds = time.perf_counter() - t0
    hidden, out = get_activation(args.hidden_activation), get_activation(output)
    L = len(dims) - 1
    X_test = bk.asarray(ds.X_test, dtype=args.dtype)
    train_acc = _accuracy(bk.xp, X_train, ds.y_train, parameters, L, hidden, out, bk)
    test_acc = _accuracy(bk.xp, X_test, ds.y_test, parameters, L, hidden, out, bk)
    print(f"trained {args.iterations} iterations in {seconds:.2f} s")
    print(f"train accuracy: {100 * train_acc:.2f}%")
    print(f"test accuracy: {100 * test_acc:.2f}%")
    return 0


def _layer_dims(text: str) -> list[int]:
    sizes = _layers(text)
    if len(sizes) < 2:
        raise argparse.ArgumentTypeError(
            f"expected at least two sizes n_x,...,n_L (input and output), like 12288,20,7,5,1, got {text!r}"
        )
    return sizes


def _nonnegative_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        v = -1
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return v


def cmd_explain(args) -> int:
    from . import explain

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
        print(f"{name}: available, device {_backends._device_str(bk.device)}{mark}")
    for name, reason in _backends.unavailable_reasons().items():
        print(f"{name}: not available: {reason}")
    return 0


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, ImportError, FloatingPointError) as exc:
        print(f"bpnet {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"bpnet {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
