"""``bpnet evaluate`` and ``bpnet predict``: a saved model on new or held-out data.

Both read data through the model's saved preprocessor (``bpnet.io.Preprocessor``):
feature columns by name, labels with the training classes, the training
standardisation.  Checkpoints of earlier versions, which kept these in
``metadata["data"]``, are converted on load.
"""

from __future__ import annotations

import pathlib

from .. import backends as _backends
from . import _args as A
from .train import report


def add_parsers(sub, fmt) -> None:
    e = sub.add_parser(
        "evaluate", formatter_class=fmt, help="cost and accuracy of a saved model on a data split",
        description="Load a checkpoint written by 'bpnet train' and report its cost and accuracy (RMSE for "
        "regression) on the same data split it was trained with, or on another data set or file, read as the "
        "training data were: feature columns by name, labels with the training classes, the training "
        "standardisation (all saved in the checkpoint).",
    )
    e.add_argument("--model", default="bpnet-run/model.npz", help="checkpoint file")
    e.add_argument("--data", default=None, help="data set or file (default: the one the model was trained on)")
    e.add_argument("--label", default=None,
                   help="label column (CSV) or array (NPZ) of --data (default: the training label column; NPZ: y)")
    e.add_argument("--split", default="test", choices=["train", "val", "test", "all"],
                   help="which examples: a split of the training run (train, val: its validation split, test) "
                   "re-created from --data, or all of --data")
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



#: checkpoints of bpnet before the saved preprocessor kept its fields in metadata["data"], under these names
_LEGACY_FIELDS = ("feature_names", "mean", "std", "task", "class_names", "label", "y_mean", "y_std")


def _load_model(path, backend):
    """``(model, preprocessor, split record)``: the record of the training source and split may be empty."""
    from ..io.preprocess import Preprocessor
    from ..model import MLP

    model = MLP.load(path, backend=_backends.get(backend))
    record = model.metadata.get("data")
    record = record if isinstance(record, dict) else {}
    pre = model.preprocessor
    if pre is None and "feature_names" in record:  # written by an earlier bpnet train
        try:
            pre = Preprocessor.from_dict({k: record[k] for k in _LEGACY_FIELDS if k in record})
        except ValueError as exc:
            raise ValueError(f"--model: {path}: metadata['data']: {exc}") from None
    if pre is None:
        raise ValueError(f"--model: {path} records no preprocessor (how raw data become its inputs); it was not "
                         "written by 'bpnet train' (from Python: set model.preprocessor = ds.preprocessor, then save)")
    return model, pre, record


def _evaluation_data(args, pre, record):
    """``(source, X, Y, y)`` of the asked split: network input and targets, and the ground truth."""
    from ..io.datasets import load_dataset
    from ..io.files import source_kind

    source = args.data or record.get("source")
    if source is None:
        raise ValueError(f"--data: {args.model} does not record the data it was trained on; give --data")
    kind, _ = source_kind(source)
    label = args.label or ("y" if kind == "npz" else None)  # NPZ: the array load_dataset (bpnet train) reads
    if args.split == "all":
        raw, y = pre.read(source, label=label)
        if y is None:
            raise ValueError(f"--data: {source} has no label column {pre.label!r}; name it with --label")
        return source, pre.transform(raw), pre.targets(y, indices=True), y
    if not all(k in record for k in ("test_size", "val_size", "split_seed")):
        raise ValueError(f"--split: {args.model} does not record its training split; use --split all")
    if args.split == "val" and record["val_size"] == 0:
        raise ValueError(f"--split: {args.model} was trained without a validation split (bpnet train --val-size 0), "
                         "so it has no --split val; use --split test, train or all")
    ds = load_dataset(source, test_size=record["test_size"], val_size=record["val_size"], seed=record["split_seed"],
                      label=label if kind == "csv" else None, y_key=label if kind == "npz" else "y",
                      preprocessor=pre)
    # each split of a recorded size > 0 holds ceil(size * m) >= 1 examples (load_dataset)
    return source, getattr(ds, f"X_{args.split}"), getattr(ds, f"Y_{args.split}"), getattr(ds, f"y_{args.split}")


def cmd_evaluate(args) -> int:
    model, pre, record = _load_model(args.model, args.backend)
    source, X, Y, y = _evaluation_data(args, pre, record)
    res = model.evaluate(X, Y)
    print(f"model: {args.model} ({'-'.join(map(str, model.layer_dims))}, epoch {model.epoch}); "
          f"backend: {model.backend}")
    print(f"data: {source}, split {args.split}, m = {res['m']}")
    print(f"cost: {res['cost']:.6g}")
    print(report(model, pre, X, y, args.split))
    return 0


def cmd_predict(args) -> int:
    import csv
    import io

    from array_api_compat import numpy as npx

    from ..backends import to_numpy
    from ..io.atomic import atomic_write, check_parent
    from ..nn import predictions

    check_parent(pathlib.Path(args.output), "--output")  # before any work: a bad --output fails at once
    model, pre, _ = _load_model(args.model, args.backend)
    raw, _ = pre.read(args.input, label=False)  # feature columns by name; a label column is ignored
    proba = to_numpy(model.predict_proba(pre.transform(raw)))  # (n_L, m)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if pre.task == "regression":
        w.writerow(["prediction"])
        for v in pre.decode(proba[0]):
            w.writerow([repr(float(v))])
    else:
        pred = predictions(npx, proba, pre.task)  # the model's decision, on the host probabilities
        if pre.task == "binary":
            probs = [[1.0 - float(p), float(p)] for p in proba[0]]
            pred = pred[0].astype(int)
        else:
            probs = proba.T.tolist()
        w.writerow(["prediction", *[f"p_{c}" for c in pre.class_names]])
        for k, row in zip(pre.decode(pred), probs):
            w.writerow([k, *[f"{p:.6g}" for p in row]])
    atomic_write(args.output, lambda f: f.write(buf.getvalue()), binary=False, argname="--output")
    print(f"wrote {proba.shape[1]} predictions to {args.output}")
    return 0
