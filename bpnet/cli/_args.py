"""The command line's parser, help formatter and argument types: each bad value is one clear error line."""

from __future__ import annotations

import argparse

from .. import _validate as v
from .. import backends

#: the --backend help of every command: the names are bpnet.backends.NAMES ('bpnet backends' says which work here)
BACKEND_HELP = (f"{', '.join(n for n in backends.NAMES if n != 'auto')} or auto, each with an optional :DEVICE "
                f"(array_api_strict:device1, cupy:1, torch:cuda:0); 'bpnet backends' lists those usable here "
                f"(default: ${backends.ENV_VAR}, else auto)")


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one ``PROG: error: MESSAGE`` line on stderr and exit status 2.

    argparse's own ``error`` prints the usage block first; ``--help`` still shows it.
    """

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {' '.join(str(message).split())}\n")


def show(value) -> str:
    """A default or an option value as it is typed on the command line: lists as ``20,7,5``, ``[]`` as none."""
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value)) if value else "none"
    if isinstance(value, float):
        return f"{value:g}" if float(f"{value:g}") == value else repr(value)
    return "none" if value is None else str(value)


class HelpFormatter(argparse.HelpFormatter):
    """Adds ``(default: X)`` to an option's help once: not where the help already names its default, nor for
    flags and options without one."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if ("(default" in text or not action.option_strings or default is None or default is argparse.SUPPRESS
                or isinstance(default, bool)):
            return text
        return f"{text} (default: {show(default).replace('%', '%%')})"


def layers(text: str) -> list[int]:
    entries = text.split(",")
    if any(not s.strip() for s in entries):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers like 20,7,5, got {text!r} "
                                         "(an empty entry)")
    try:
        sizes = [int(s) for s in entries]
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
