"""Cold start: the README's training command in fresh processes, with an empty and then a warm kernel cache.

On a GPU the first ``bpnet train --backend cupy`` of a machine compiles every elementwise and reduction
kernel the fit uses (cupy compiles each on first use, with NVRTC, and keeps it in ``CUPY_CACHE_DIR``,
``~/.cupy/kernel_cache`` by default); later processes load them from that directory. This script runs

* ``startup``: a process that imports bpnet, resolves the backend and makes and syncs one array (the
  fixed cost: imports, the CUDA context);
* ``cold``: the command with an empty cache directory (a fresh machine);
* ``warm`` (``--runs`` times): the command again, the directory as ``cold`` left it;

each timed from the outside (wall clock, process start to exit), with the command's own "trained ... in
X s" and its test accuracy, and the number of files the cache directory holds after it (on cupy: the
kernels compiled so far). On numpy nothing is compiled: the runs show the process's own start-up cost.

    python benchmarks/bench_coldstart.py                    # cupy where a GPU is usable, else numpy
    python benchmarks/bench_coldstart.py --backend numpy --epochs 5 --json cold.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: the README's GPU command (section "On a GPU"), without --backend and --epochs
COMMAND = ["train", "--data", "digits", "--layers", "256,128", "--optimizer", "adam", "--batch-size", "256"]
STARTUP = ("import sys, bpnet; bk = bpnet.backends.get(sys.argv[1]); "
           "a = bk.asarray([1.0, 2.0]); bk.xp.sum(a); bk.synchronize()")


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer > 0, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected an integer > 0, got {n}")
    return n


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", default=None,
                   help="the backend to time (default: cupy where a GPU is usable, else numpy)")
    p.add_argument("--epochs", type=_positive, default=50, help="epochs of the command (default 50, the README's)")
    p.add_argument("--runs", type=_positive, default=2, help="warm runs after the cold one (default 2)")
    p.add_argument("--timeout", type=_positive, default=600, help="seconds a run may take (default 600)")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    return p.parse_args(argv)


def _run(args, env, timeout):
    """``(wall seconds, stdout)`` of ``python args...`` in ``env``; a clear error when it fails."""
    t = time.perf_counter()
    r = subprocess.run([sys.executable, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"bench_coldstart: {' '.join(args[:4])} ... exited {r.returncode}:\n{r.stderr.strip()}")
    return wall, r.stdout


def _files(directory: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(directory))


def measure(backend: str, epochs: int, runs: int, timeout: int) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bpnet-coldstart-") as tmp:
        cache = Path(tmp) / "kernel_cache"
        cache.mkdir()
        env = {**os.environ, "CUPY_CACHE_DIR": str(cache), "MPLBACKEND": "Agg"}
        env.pop("BPNET_BACKEND", None)
        wall, _ = _run(["-c", STARTUP, backend], env, timeout)
        rows.append(dict(run="startup", wall_s=wall, trained_s=None, test_accuracy=None, cache_files=_files(cache)))
        for i in range(runs + 1):
            cmd = ["-m", "bpnet", *COMMAND, "--backend", backend, "--epochs", str(epochs),
                   "--out", str(Path(tmp) / f"run{i}"), "--force"]
            wall, out = _run(cmd, env, timeout)
            trained = re.search(r"^trained \d+ \w+ .* in ([\d.]+) s$", out, re.M)
            acc = re.search(r"^test accuracy: ([\d.]+)%$", out, re.M)
            rows.append(dict(run="cold" if i == 0 else f"warm {i}", wall_s=wall,
                             trained_s=float(trained.group(1)) if trained else None,
                             test_accuracy=float(acc.group(1)) / 100 if acc else None, cache_files=_files(cache)))
    return rows


def _default_backend() -> str:
    sys.path.insert(0, str(ROOT))
    from bpnet import backends

    return backends.get("auto").name


def main(argv=None) -> int:
    args = parse_args(argv)
    backend = args.backend or _default_backend()
    rows = measure(backend, args.epochs, args.runs, args.timeout)
    print(f"# bpnet {' '.join(COMMAND)} --backend {backend} --epochs {args.epochs}; "
          f"fresh processes, CUPY_CACHE_DIR empty before 'cold'")
    print(f"{'run':>8} {'wall s':>8} {'trained s':>10} {'test acc':>9} {'cache files':>12}")
    for r in rows:
        trained = "" if r["trained_s"] is None else f"{r['trained_s']:.2f}"
        acc = "" if r["test_accuracy"] is None else f"{100 * r['test_accuracy']:.2f}%"
        print(f"{r['run']:>8} {r['wall_s']:8.2f} {trained:>10} {acc:>9} {r['cache_files']:12d}")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(backend=backend, epochs=args.epochs, rows=rows), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
