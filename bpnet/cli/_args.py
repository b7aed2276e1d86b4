"""Argument types of the command line: each turns a bad value into one clear argparse error line."""

from __future__ import annotations

import argparse

from .. import _validate as v
from .. import backends

BACKEND_HELP = f"numpy, array_api_strict[:device], cupy[:N] or auto (default: ${backends.ENV_VAR}, else auto)"


def layers(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers like 20,7,5, got {text!r}") \
            from None
    if any(n <= 0 for n in sizes):
        raise argparse.ArgumentTypeError(f"expected positive layer sizes, got {text!r}")
    return sizes


def hidden_layers(text: str) -> list[int]:
    if text.strip() in ("", "none"):
        return []  # no hidden layer: logistic / softmax regression
    return layers(text)


def layer_dims(text: str) -> list[int]:
    sizes = layers(text)
    if len(sizes) < 2:
        raise argparse.ArgumentTypeError(
            f"expected at least two sizes n_x,...,n_L (input and output), like 12288,20,7,5,1, got {text!r}"
        )
    return sizes


def checked(kind, check):
    """An argparse type: ``kind(text)`` then ``check(value)`` of :mod:`bpnet._validate`; one error line."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        try:
            return check(value)
        except (TypeError, ValueError) as exc:
            msg = str(exc)
            raise argparse.ArgumentTypeError(msg.split(": ", 1)[1] if ": " in msg else msg) from None

    parse.__name__ = kind.__name__
    return parse


def positive(kind):
    return checked(kind, lambda x: v.integer(x, "value", low=1) if kind is int else
                   v.real(x, "value", low=0.0, low_open=True))


def nonnegative(kind):
    return checked(kind, lambda x: v.integer(x, "value", low=0) if kind is int else v.real(x, "value", low=0.0))


nonnegative_int = nonnegative(int)


def fraction(low_open: bool):
    return checked(float, lambda x: v.real(x, "value", low=0.0, high=1.0, low_open=low_open, high_open=True))
