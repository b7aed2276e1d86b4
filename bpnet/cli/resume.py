"""What ``bpnet train --resume`` takes from the checkpoint it continues.

A run of ``bpnet train`` records its options in its checkpoint: the data source and split in
``metadata["data"]``, the architecture in the model itself (layer sizes, activations, loss, init, seed,
dtype), the optimisation options (``FitConfig``'s flags) and the epoch the run is to end at in
``metadata["train"]``.  ``--resume`` takes each option not given from there; an option given again
must agree with it, or is refused naming the option, the checkpoint's value and the given one.
"""

from __future__ import annotations

import os

from .. import _validate as v
from . import _args as A

__all__ = ["DATA_FIELDS", "recorded", "check_given", "epochs_to_train", "train_record"]

#: metadata["data"] field -> bpnet train option (dest) it records
DATA_FIELDS = {"source": "data", "label_arg": "label", "test_size": "test_size", "val_size": "val_size",
               "split_seed": "split_seed"}

#: options compared with the data in hand (cli.train), not here: "auto" stands for what the data call for
_HEAD = ("output", "loss")


def _data_record(record, where) -> dict:
    """The options ``metadata["data"]`` records, by dest, type-checked (it is untrusted input)."""
    have = {}
    for field, dest in DATA_FIELDS.items():
        if field not in record:
            continue
        value, name = record[field], f"{where}['data'][{field!r}]"
        if field in ("source", "label_arg"):
            if not (isinstance(value, str) or (value is None and field == "label_arg")):
                raise ValueError(f"{name}: expected a string, got {type(value).__name__} {str(value)[:40]!r}")
        elif field == "split_seed":
            value = v.integer(value, name, low=0)
        else:
            value = v.real(value, name, low=0.0, high=1.0, high_open=True)
        have[dest] = value
    return have


def _train_record(record, fit_fields, where) -> dict:
    """The optimisation options ``metadata["train"]`` records, checked as ``FitConfig`` checks them."""
    from ..train import FitConfig

    have = {k: record[k] for k in fit_fields if k in record}
    try:
        # batch_size 0 is bpnet train's full batch; the rest are FitConfig's fields, checked by it
        FitConfig(**{k: val for k, val in have.items() if not (k == "batch_size" and val == 0)})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}['train']: {exc}") from None
    if "until" in record:
        have["until"] = v.integer(record["until"], f"{where}['train']['until']", low=0)
    return have


def recorded(model, ckpt, fit_fields) -> dict:
    """The options the checkpoint ``ckpt`` (loaded as ``model``) records, by dest; ``until``: the run's last epoch.

    An option it does not record is absent (a checkpoint written from Python has no ``data`` and ``train``
    entries; one of an earlier bpnet no ``train`` entry: its optimiser's name comes from its state).
    """
    where = f"--resume: {ckpt}: metadata"
    meta = model.metadata
    have = _data_record(meta["data"], where) if isinstance(meta.get("data"), dict) else {}
    cfg = model.config()
    have.update(layers=list(cfg["layer_dims"][1:-1]), hidden_activation=cfg["hidden_activation"],
                output=cfg["output_activation"], loss=cfg["loss"], init=cfg["init"], seed=cfg["seed"],
                dtype=cfg["dtype"])
    if isinstance(meta.get("train"), dict):
        have.update(_train_record(meta["train"], fit_fields, where))
    elif model.optimizer_config is not None:
        have["optimizer"] = model.optimizer_config["name"]
    return have


def _same(dest, given, have, pre) -> bool:
    if given == have:
        return True
    if dest == "data":  # the same file under another name
        try:
            return os.path.samefile(given, have)
        except (OSError, TypeError):
            return False
    if dest == "label" and have is None:  # the label column found without --label
        return pre is not None and given == pre.label
    return isinstance(given, (int, float)) and isinstance(have, (int, float)) and float(given) == float(have)


def check_given(given: dict, have: dict, flags: dict, ckpt, pre) -> None:
    """Every option given on the command line agrees with what the checkpoint records; else one ``ValueError``
    naming each that differs.  ``--epochs`` counts the epochs to add; ``--output``/``--loss`` are compared once
    the data are known."""
    differ = [(flags[dest], have[dest], value) for dest, value in given.items()
              if dest != "epochs" and dest not in _HEAD and dest in have and not _same(dest, value, have[dest], pre)]
    if differ:
        raise refusal(ckpt, differ)


def refusal(ckpt, differ) -> ValueError:
    """The one error line of the options that differ from the checkpoint's: ``[(flag, checkpoint's, given)]``."""
    parts = [(f"{flag}: {ckpt} was trained with {flag} {A.show(have)}" if have is not None else
              f"{flag}: {ckpt} was trained without {flag}") + f", got {flag} {A.show(given)}"
             for flag, have, given in differ]
    leave = " ".join(flag for flag, _, _ in differ)
    return ValueError("; ".join(parts) + f"; --resume continues a run with its own options (leave out {leave}), "
                      "or train a new model with --force or another --out")


def epochs_to_train(model, given, have, default) -> tuple[int, str]:
    """``(epochs, why)``: --epochs if given, else what an interrupted run had left, else the run's --epochs."""
    if "epochs" in given:
        return given["epochs"], "--epochs"
    until = have.get("until")
    if until is not None and model.epoch < until and not model.history.stopped_early:
        return until - model.epoch, f"the rest of the interrupted run, to epoch {until}"
    return have.get("epochs", default), "the run's --epochs"


def train_record(opts: dict, fit_fields, cfg, until: int) -> dict:
    """``metadata["train"]`` of a run: its optimisation options (the learning rate resolved) and last epoch."""
    record = {k: opts[k] for k in fit_fields}
    record.update(learning_rate=cfg.learning_rate, until=until)
    return record
