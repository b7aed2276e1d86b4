"""Command line: ``bpnet train | evaluate | predict | gradcheck | explain | backends``.

Also ``python -m bpnet``.  The CLI only parses and calls; every option has a
default and is documented in ``--help``; a bad option or bad data gets one
``bpnet CMD: error: ...`` line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys

from .. import backends as _backends
from .._version import __version__
from . import _args as A
from . import data, tools, train

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The ``bpnet`` parser; ``parser.commands`` maps each command to its sub-parser."""
    p = A.Parser(
        prog="bpnet",
        description="Train L-layer neural networks with the course's hand-written backpropagation, "
        f"on any of bpnet's backends ({', '.join(n for n in _backends.NAMES if n != 'auto')}; 'bpnet backends' "
        "says which are usable here).",
    )
    p.add_argument("--version", action="version", version=f"bpnet {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    fmt = A.HelpFormatter

    train.add_parser(sub, fmt)
    data.add_parsers(sub, fmt)
    tools.add_parsers(sub, fmt)
    p.commands = dict(sub.choices)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # named by the command they were given to, not by the top-level parser
        parser.commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args)
    except (ValueError, TypeError, ImportError, FloatingPointError, OSError, MemoryError) as exc:
        msg = str(exc).replace("\n", " ")
        if isinstance(exc, OSError) and exc.strerror:
            msg = exc.strerror + (f": {exc.filename}" if exc.filename else "")
        print(f"bpnet {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"bpnet {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
