"""bpnet.sklearn against scikit-learn's MLP: the same estimators, data and seeds, side by side.

One command::

    python benchmarks/bench_sklearn.py [--quick] [--threads N] [--json PATH] [--backend numpy]
                                       [--parts quality,time]

``quality``: test accuracy (classifiers; subset accuracy for the multilabel
set) or R^2 (regressor), the final training loss ``loss_`` and ``n_iter_`` of
``bpnet.sklearn.MLPClassifier`` / ``MLPRegressor`` and of scikit-learn's, with
the same constructor arguments (scikit-learn's defaults, ``max_iter=200``)
and ``random_state`` on the same 75/25 split, averaged over three seeds, for
the solvers ``adam`` (the default) and ``lbfgs``:

    digits          1797 x 64, 10 classes, X / 16
    breast cancer   569 x 30, 2 classes, standardised
    diabetes        442 x 10, regression, y as loaded (scikit-learn's example that warns at 200 iterations)
    multilabel      make_multilabel_classification(1000 x 20, 5 labels, random_state=0), X standardised

``time``: the fit time of ``bpnet.sklearn`` over scikit-learn's (the column
"bpnet.sklearn vs sklearn") for the four nets of ``benchmarks/bench.py``
(their layer sizes and batch sizes, imported from there): random data of a few
batches (one for net c), ``solver="adam"``, ``batch_size`` the net's,
``max_iter`` epochs with ``tol=0`` and ``n_iter_no_change=inf`` (both run every
epoch, no early stop), float32 (net c; float64 for the others, scikit-learn's
default).  The two fits alternate (A B A B ...), several repeats; the ratio of
the medians is reported.  BLAS threads are pinned (threadpoolctl and the
``*_NUM_THREADS`` variables, set before numpy loads).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

if __name__ == "__main__":  # pin BLAS threads before numpy loads (threadpoolctl pins them again below)
    _threads = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--threads=")), None)
    if _threads is None and "--threads" in sys.argv[:-1]:
        _threads = sys.argv[sys.argv.index("--threads") + 1]
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = _threads or "1"

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench import NETS  # noqa: E402  (the four reference nets: one definition)
from sklearn import neural_network  # noqa: E402
from sklearn.datasets import (  # noqa: E402
    load_breast_cancer,
    load_diabetes,
    load_digits,
    make_multilabel_classification,
)
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import bpnet.sklearn  # noqa: E402

SEEDS = (0, 1, 2)
SOLVERS = ("adam", "lbfgs")


def datasets():
    """``{name: (kind, X_train, X_test, y_train, y_test)}``."""
    out = {}
    X, y = load_digits(return_X_y=True)
    out["digits"] = ("clf", *train_test_split(X / 16.0, y, test_size=0.25, random_state=0, stratify=y))
    X, y = load_breast_cancer(return_X_y=True)
    parts = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    sc = StandardScaler().fit(parts[0])
    out["breast cancer"] = ("clf", sc.transform(parts[0]), sc.transform(parts[1]), parts[2], parts[3])
    X, y = load_diabetes(return_X_y=True)
    out["diabetes"] = ("reg", *train_test_split(X, y, test_size=0.25, random_state=0))
    X, Y = make_multilabel_classification(n_samples=1000, n_features=20, n_classes=5, random_state=0)
    parts = train_test_split(X, Y, test_size=0.25, random_state=0)
    sc = StandardScaler().fit(parts[0])
    out["multilabel"] = ("clf", sc.transform(parts[0]), sc.transform(parts[1]), parts[2], parts[3])
    return out


def _fit(est, X, y):
    """Fit, counting scikit-learn's ConvergenceWarnings (either implementation)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        est.fit(X, y)
    return sum(issubclass(w.category, ConvergenceWarning) for w in caught)


def quality(backend, seeds):
    rows = []
    for name, (kind, X_tr, X_te, y_tr, y_te) in datasets().items():
        for solver in SOLVERS:
            row = {"data": name, "solver": solver, "metric": "accuracy" if kind == "clf" else "R2"}
            for impl, module in (("sklearn", neural_network), ("bpnet", bpnet.sklearn)):
                scores, losses, iters, warned = [], [], [], 0
                for seed in seeds:
                    cls = module.MLPClassifier if kind == "clf" else module.MLPRegressor
                    kw = {"backend": backend} if impl == "bpnet" else {}
                    est = cls(solver=solver, random_state=seed, **kw)
                    warned += _fit(est, X_tr, y_tr)
                    scores.append(est.score(X_te, y_te))
                    losses.append(est.loss_)
                    iters.append(est.n_iter_)
                row[impl] = {"score": float(np.mean(scores)), "loss": float(np.mean(losses)),
                             "n_iter": float(np.mean(iters)), "convergence_warnings": warned}
            rows.append(row)
            print(f"{name:14s} {solver:6s} {row['metric']:8s} sklearn {row['sklearn']['score']:.4f} "
                  f"(loss {row['sklearn']['loss']:.4g}, {row['sklearn']['n_iter']:.0f} it)   bpnet "
                  f"{row['bpnet']['score']:.4f} (loss {row['bpnet']['loss']:.4g}, {row['bpnet']['n_iter']:.0f} it)",
                  flush=True)
    return rows


def fit_times(backend, quick):
    rows = []
    for key, net in NETS.items():
        dims, m = net["dims"], net["m"]
        big = key == "c"
        n = m * (1 if big else 4)
        epochs = 1 if big else (3 if quick else 10)
        repeats = 2 if big and quick else 3 if big else 3 if quick else 7
        dtype = np.float32 if big else np.float64
        rng = np.random.default_rng(0)
        X = rng.standard_normal((n, dims[0])).astype(dtype)
        y = rng.integers(0, dims[-1] if dims[-1] > 1 else 2, size=n)
        kw = dict(hidden_layer_sizes=tuple(dims[1:-1]), batch_size=m, max_iter=epochs, tol=0.0,
                  n_iter_no_change=np.inf, random_state=0)
        pair = {"sklearn": lambda: neural_network.MLPClassifier(**kw),
                "bpnet": lambda: bpnet.sklearn.MLPClassifier(backend=backend, **kw)}
        times = {name: [] for name in pair}
        _fit(pair["bpnet"](), X[:m], y[:m])  # warm-up (imports, a compiled step on JAX)
        for _ in range(repeats):  # interleaved: A B A B ...
            for name, make in pair.items():
                est = make()
                t0 = time.perf_counter()
                _fit(est, X, y)
                times[name].append(time.perf_counter() - t0)
        med = {name: statistics.median(t) for name, t in times.items()}
        row = {"net": key, "dims": dims, "batch": m, "n": n, "epochs": epochs, "dtype": np.dtype(dtype).name,
               "repeats": repeats, "sklearn_s": med["sklearn"], "bpnet_s": med["bpnet"],
               "ratio": med["bpnet"] / med["sklearn"]}
        rows.append(row)
        print(f"net {key} {'-'.join(map(str, dims))} batch {m}: sklearn {med['sklearn']:.3f} s, bpnet "
              f"{med['bpnet']:.3f} s, bpnet.sklearn vs sklearn {row['ratio']:.2f}x", flush=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one seed, fewer epochs and repeats")
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    ap.add_argument("--backend", default="numpy", help="bpnet backend of the estimators (default numpy)")
    ap.add_argument("--parts", default="quality,time", help="quality, time or both (default)")
    ap.add_argument("--json", help="also write the results there")
    args = ap.parse_args(argv)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        limiter = None
        print("threadpoolctl is not installed: BLAS threads pinned by environment variables only", file=sys.stderr)
    else:
        limiter = threadpool_limits(limits=args.threads)
    parts = {p.strip() for p in args.parts.split(",")}
    result = {"machine": platform.platform(), "python": platform.python_version(), "numpy": np.__version__,
              "sklearn": __import__("sklearn").__version__, "threads": args.threads, "backend": args.backend}
    if "quality" in parts:
        result["quality"] = quality(args.backend, SEEDS[:1] if args.quick else SEEDS)
    if "time" in parts:
        result["time"] = fit_times(args.backend, args.quick)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    print(markdown(result))
    del limiter
    return result


def markdown(result) -> str:
    """The README's tables from a result (``--json``'s content)."""
    out = []
    if "quality" in result:
        out += ["| data | solver | metric | sklearn | bpnet.sklearn | sklearn loss_ | bpnet.sklearn loss_ | n_iter_ "
                "(sklearn / bpnet) | ConvergenceWarnings (sklearn / bpnet) |", "|---|---|---|---|---|---|---|---|---|"]
        for r in result["quality"]:
            sk, bp = r["sklearn"], r["bpnet"]
            out.append(f"| {r['data']} | {r['solver']} | {r['metric']} | {sk['score']:.4f} | {bp['score']:.4f} | "
                       f"{sk['loss']:.4g} | {bp['loss']:.4g} | {sk['n_iter']:.0f} / {bp['n_iter']:.0f} | "
                       f"{sk['convergence_warnings']} / {bp['convergence_warnings']} |")
        out.append("")
    if "time" in result:
        out += ["| net | batch | epochs | dtype | sklearn fit (s) | bpnet.sklearn fit (s) | bpnet.sklearn vs sklearn |",
                "|---|---|---|---|---|---|---|"]
        for r in result["time"]:
            out.append(f"| {r['net']} {'-'.join(map(str, r['dims']))} | {r['batch']} | {r['epochs']} | {r['dtype']} | "
                       f"{r['sklearn_s']:.3f} | {r['bpnet_s']:.3f} | {r['ratio']:.2f}x |")
    return "\n".join(out)


if __name__ == "__main__":
    main()
