"""``bpnet evaluate`` and ``bpnet predict``: a saved model on new or held-out data."""

from __future__ import annotations

import pathlib

from .. import backends as _backends
from . import _args as A
from .train import _dataset_from_metadata, _report


def add_parsers(sub, fmt) -> None:
    e = sub.add_parser(
        "evaluate", formatter_class=fmt, help="cost and accuracy of a saved model on a data split",
        description="Load a checkpoint written by 'bpnet train' and report its cost and accuracy (RMSE for "
        "regression) on the same data split it was trained with, or on another data set or file "
        "(standardised with the training statistics saved in the checkpoint).",
    )
    e.add_argument("--model", default="bpnet-run/model.npz", help="checkpoint file")
    e.add_argument("--data", default=None, help="data set or file (default: the one the model was trained on)")
    e.add_argument("--label", default=None, help="label column of a CSV file")
    e.add_argument("--split", default="test", choices=["train", "val", "test", "all"])
    e.add_argument("--backend", default=None, help=A.BACKEND_HELP)
    e.set_defaults(func=cmd_evaluate)

    pr = sub.add_parser(
        "predict", formatter_class=fmt, help="predict new examples from a CSV/.npz file into a CSV file",
        description="Standardise the rows of INPUT with the training statistics saved in the checkpoint, "
        "run the network and write one row per example: the predicted class (or value) and, for "
        "classification, the probability of each class.  Feature columns are matched by name.",
    )
    pr.add_argument("--model", default="bpnet-run/model.npz", help="checkpoint file")
    pr.add_argument("--input", required=True, help=".csv (with a header) or .npz (array X) of raw features")
    pr.add_argument("--output", default="predictions.csv", help="CSV file to write (atomically)")
    pr.add_argument("--backend", default=None, help=A.BACKEND_HELP)
    pr.set_defaults(func=cmd_predict)



def _load_model(path, backend):
    from ..model import MLP

    model = MLP.load(path, backend=_backends.get(backend))
    meta = model.metadata.get("data")
    if not meta:
        raise ValueError(f"--model: {path} was not written by 'bpnet train' (it records no data statistics)")
    return model, meta


def cmd_evaluate(args) -> int:
    import numpy as np

    from ..io.datasets import load_dataset

    model, meta = _load_model(args.model, args.backend)
    saved = _dataset_from_metadata(meta)
    source = args.data or meta["source"]
    if args.split == "val" and meta["val_size"] == 0 and args.data is None:
        raise ValueError("--split: the model was trained without a validation split (use test, train or all)")
    # the same split, raw (standardize=False), then standardised with the statistics the model was trained with
    ds = load_dataset(source, test_size=meta["test_size"], val_size=meta["val_size"], seed=meta["split_seed"],
                      label=args.label or meta.get("label_arg"), standardize=False)
    parts = {"train": [("train", ds.X_train, ds.y_train)], "val": [("val", ds.X_val, ds.y_val)],
             "test": [("test", ds.X_test, ds.y_test)]}
    parts["all"] = parts["train"] + parts["val"] + parts["test"]
    raw = np.concatenate([X.T for _, X, _ in parts[args.split]], axis=0)
    y = np.concatenate([yy for _, _, yy in parts[args.split]])
    if raw.shape[1] != saved.n_x:
        raise ValueError(f"--data: {source} has {raw.shape[1]} features, the model expects {saved.n_x}")
    X = saved.transform(raw)
    if saved.task == "regression":
        Y = saved.encode(y)[np.newaxis, :]
    else:
        try:
            idx = saved.encode(ds.decode(y))  # the data's class indices -> the model's
        except ValueError as exc:
            raise ValueError(f"--data: {source} holds a class the model was not trained on ({exc})") from None
        Y = idx if saved.task == "multiclass" else idx[np.newaxis, :]
    res = model.evaluate(X, Y)
    print(f"model: {args.model} ({'-'.join(map(str, model.layer_dims))}, epoch {model.epoch}); "
          f"backend: {model.backend}")
    print(f"data: {source}, split {args.split}, m = {res['m']}")
    print(f"cost: {res['cost']:.6g}")
    print(_report(model, saved, X, y, args.split))
    return 0


def cmd_predict(args) -> int:
    import csv
    import io

    from ..io.atomic import atomic_write, check_parent
    from ..backends import to_numpy
    from ..io.datasets import read_features

    check_parent(pathlib.Path(args.output), "--output")  # before any work: a bad --output fails at once
    model, meta = _load_model(args.model, args.backend)
    saved = _dataset_from_metadata(meta)
    raw = read_features(args.input, saved.feature_names)
    X = saved.transform(raw)
    proba = to_numpy(model.predict_proba(X))  # (n_L, m)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if saved.task == "regression":
        w.writerow(["prediction"])
        for v in saved.decode(proba[0]):
            w.writerow([repr(float(v))])
    else:
        classes = saved.class_names
        if saved.task == "binary":
            p1 = proba[0]
            probs = [[1.0 - float(p), float(p)] for p in p1]
            pred = (p1 > 0.5).astype(int)
        else:
            probs = proba.T.tolist()
            pred = proba.argmax(axis=0)
        w.writerow(["prediction", *[f"p_{c}" for c in classes]])
        for k, row in zip(saved.decode(pred), probs):
            w.writerow([k, *[f"{p:.6g}" for p in row]])
    atomic_write(args.output, lambda f: f.write(buf.getvalue()), binary=False, argname="--output")
    print(f"wrote {proba.shape[1]} predictions to {args.output}")
    return 0
