"""Argument types of the command line: each turns a bad value into one clear argparse error line."""

from __future__ import annotations

import argparse
import math

from .. import backends

BACKEND_HELP = f"numpy, array_api_strict[:device], cupy[:N] or auto (default: ${backends.ENV_VAR}, else auto)"


def layers(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers like 20,7,5, got {text!r}")
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


def positive(kind):
    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}")
        if not v > 0 or (kind is float and not math.isfinite(v)):
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}")
        return v

    parse.__name__ = f"positive {kind.__name__}"
    return parse


def nonnegative(kind):
    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            v = -1
        if not v >= 0 or (kind is float and not math.isfinite(v)):
            raise argparse.ArgumentTypeError(f"expected a non-negative {kind.__name__}, got {text!r}")
        return v

    return parse


nonnegative_int = nonnegative(int)


def fraction(low_open: bool):
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            v = -1.0
        ok = (0.0 < v < 1.0) if low_open else (0.0 <= v < 1.0)
        if not ok:
            raise argparse.ArgumentTypeError(f"expected a fraction in {'(0, 1)' if low_open else '[0, 1)'}, got {text!r}")
        return v

    return parse
