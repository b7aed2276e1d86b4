"""Command line: ``bpnet train | evaluate | predict | gradcheck | explain | backends``.

Also ``python -m bpnet``.  The CLI only parses and calls; every option has a
default and is documented in ``--help``; a bad option or bad data gets one
``bpnet CMD: error: ...`` line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys

from .._version import __version__
from . import data, tools, train

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bpnet",
        description="Train L-layer neural networks with the course's hand-written backpropagation, "
        "on numpy (CPU) or cupy (NVIDIA GPU).",
    )
    p.add_argument("--version", action="version", version=f"bpnet {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    fmt = argparse.ArgumentDefaultsHelpFormatter

    train.add_parser(sub, fmt)
    data.add_parsers(sub, fmt)
    tools.add_parsers(sub, fmt)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
