"""The docs stay true: every ```python block of docs/backprop.md runs, every python block and shell line of
README.md runs as a user would run it, every formula links to the function that implements it, the example
script runs."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, iris_csv, umask

# * ``docs/backprop.md``: each ```python block is executed on its own, in a fresh
#   namespace (so a reader can paste any one of them); each ```math block must be
#   followed, before the next block or heading, by a link to the bpnet source file
#   that implements it, and every function it names there must exist.
# * ``README.md``: each ```python block runs as a script of its own (``python block.py``, in a
#   subprocess: a snippet that needs an ``if __name__ == "__main__":`` guard fails without it), and
#   every line of its ```bash blocks runs in order in one temporary directory, as a shell runs it.
#   A block right after a ``<!-- no-test: REASON -->`` line is skipped: only for what CI cannot
#   have (a GPU, a package installation, a cluster, minutes of run time), and the reason is required.

BACKPROP = ROOT / "docs" / "backprop.md"
README = ROOT / "README.md"

_FENCE = re.compile(r"^```(\w*)\s*$")
_LINK = re.compile(r"\[`?([\w.]+)`?\]\((\.\./[^)\s]+)\)")
_NO_TEST = re.compile(r"^<!--\s*no-test(?::\s*(?P<reason>.*?))?\s*-->$")
_SHELL = ("bash", "sh", "shell")


def _fenced_blocks(text: str):
    """``[(info, first_line_number, code, skip, end), ...]`` for every fenced block of a markdown text.

    ``skip``: None, or the reason of the ``<!-- no-test: REASON -->`` line right before the block ("" if none).
    """
    lines = text.splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        info, start = m.group(1), i + 1
        marker = _NO_TEST.match(lines[i - 1].strip()) if i > 0 else None
        skip = None if marker is None else (marker.group("reason") or "")
        j = start
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        blocks.append((info, start + 1, "\n".join(lines[start:j]) + "\n", skip, j))
        i = j + 1
    return blocks


def _python_blocks(path: Path):
    if not path.exists():
        return []
    return [(line, code) for info, line, code, skip, _ in _fenced_blocks(path.read_text())
            if info == "python" and skip is None]


def _shell_lines(path: Path):
    """``[(line_number, command)]`` of every ```bash block not marked no-test: continuation lines joined,
    blank and comment lines left out."""
    out = []
    for info, first, code, skip, _ in _fenced_blocks(path.read_text()):
        if info not in _SHELL or skip is not None:
            continue
        pending, start = "", None
        for k, text in enumerate(code.splitlines()):
            if not pending and (not text.strip() or text.lstrip().startswith("#")):
                continue
            start = first + k if not pending else start
            pending += text[:-1] if text.endswith("\\") else text
            if not text.endswith("\\"):
                out.append((start, pending.strip()))
                pending = ""
    return out


def _run(code: str, path: Path, line: int, namespace: dict) -> None:
    # pad with blank lines so that a traceback points at the line of the markdown file
    exec(compile("\n" * (line - 1) + code, str(path), "exec"), namespace)


_BACKPROP_BLOCKS = _python_blocks(BACKPROP)


def test_backprop_doc_has_snippets():
    assert BACKPROP.exists()
    assert len(_BACKPROP_BLOCKS) >= 5


@pytest.mark.parametrize("line,code", _BACKPROP_BLOCKS, ids=[f"line{line}" for line, _ in _BACKPROP_BLOCKS])
def test_backprop_snippet_runs(line, code):
    _run(code, BACKPROP, line, {"__name__": "backprop_md"})


_README_BLOCKS = _python_blocks(README)
_README_LINES = _shell_lines(README)


def _user_env(tmp_path: Path) -> dict:
    """The environment of a user who installed bpnet: ``bpnet`` and ``python`` on the PATH (this interpreter)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, argv in (("bpnet", f'"{sys.executable}" -m bpnet'), ("python", f'"{sys.executable}"')):
        (bin_dir / name).write_text(f'#!/bin/sh\nexec {argv} "$@"\n')
        (bin_dir / name).chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "MPLBACKEND": "Agg",
            "MPLCONFIGDIR": str(tmp_path / "mpl"),
            "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def test_readme_has_python_blocks_and_shell_lines():
    assert len(_README_BLOCKS) >= 5 and len(_README_LINES) >= 12


def test_readme_skips_only_marked_blocks_and_says_why():
    """A skipped block carries its reason; what is left to run includes the command line's every command."""
    skipped = [(line, reason) for _, line, _, reason, _ in _fenced_blocks(README.read_text()) if reason is not None]
    assert skipped and all(reason for _, reason in skipped), skipped
    commands = {cmd.split()[1] for _, cmd in _README_LINES if cmd.startswith("bpnet ")}
    assert commands >= {"train", "evaluate", "predict", "gradcheck", "explain", "backends"}


@pytest.mark.parametrize("line,code", _README_BLOCKS, ids=[f"line{line}" for line, _ in _README_BLOCKS])
def test_readme_python_block_runs_as_a_script(line, code, tmp_path):
    """Saved as a file and run with python (warnings are errors), in an empty directory."""
    script = tmp_path / f"readme_line{line}.py"
    script.write_text("\n" * (line - 1) + code)  # a traceback points at the README's line
    r = subprocess.run([sys.executable, "-W", "error", script.name], cwd=tmp_path, env=_user_env(tmp_path),
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"README.md:{line} as a script: exit status {r.returncode}\n{r.stderr[-4000:]}"


def test_readme_blocks_that_start_worker_processes_have_the_main_guard():
    """A block starting a local Dask cluster, saved as a script, crashes without the guard ('Nanny failed to
    start': the worker processes import the script again); the test above runs it as a script, this one names
    the cause."""
    blocks = [(line, code) for line, code in _README_BLOCKS if re.search(r"client=\"local|LocalCluster", code)]
    assert blocks
    for line, code in blocks:
        assert re.search(r"^if __name__ == \"__main__\":", code, re.M), f"README.md:{line}: no main guard"


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_readme_shell_lines_run_in_order(tmp_path):
    """Every shell line of the README, verbatim (``.venv/bin/X`` is this environment's X), in order, in one
    directory holding the files they read; each must exit 0; the files they write get the umask's mode."""
    pytest.importorskip("sklearn")
    work = tmp_path / "work"
    work.mkdir()
    env = _user_env(tmp_path)
    iris_csv(work / "my.csv")
    iris_csv(work / "new.csv", label=None, rows=slice(None, None, 10))
    (work / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    given = {p for p in work.rglob("*")}
    outputs = {}
    for line, cmd in _README_LINES:
        r = subprocess.run(["bash", "-c", cmd.replace(".venv/bin/", "")], cwd=work, env=env, capture_output=True,
                           text=True, timeout=600)
        assert r.returncode == 0, f"README.md:{line}: {cmd}\nexit status {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr}"
        assert "Traceback" not in r.stderr, f"README.md:{line}: {cmd}\n{r.stderr}"
        outputs[cmd] = r.stdout
    # the resumed run kept the data and options runs/mine records: Adam, batch 32, iris from my.csv
    (resumed,) = [out for cmd, out in outputs.items() if "--resume" in cmd]
    assert "adam, lr 0.001, batch 32" in resumed and "my.csv" in resumed and "trained 100 epochs (200..299)" in resumed
    trained = [out for cmd, out in outputs.items() if "--out runs/mine" in cmd and "--resume" not in cmd][0]
    assert "Cost after epoch 199: " in trained and "trained 200 epochs (0..199)" in trained  # counted alike
    assert "Cost after epoch 299: " in resumed
    assert (work / "predictions.csv").read_text().count("\n") == 1 + 15
    assert (work / "bpnet-run" / "course_4layer.png").read_bytes()[:4] == b"\x89PNG"  # the example's default
    mode = 0o666 & ~umask()
    written = [p for p in work.rglob("*") if p.is_file() and p not in given and not p.is_symlink()]
    assert len(written) >= 10
    assert {str(p.relative_to(work)): oct(p.stat().st_mode & 0o777) for p in written
            if p.stat().st_mode & 0o777 != mode} == {}


def test_readme_names_the_options_the_command_line_has():
    """The README's command-line section names every option of ``bpnet train`` and only options some command has;
    its ``--optimizer`` names are the optimiser registry's."""
    from bpnet.cli import build_parser
    from bpnet.optim import OPTIMIZERS

    section = README.read_text().split("\n## The command line\n", 1)[1].split("\n## ", 1)[0]
    parser = build_parser()
    options = {name: set(re.findall(r"(?<![\w-])(--[a-z][\w-]*)", sub.format_usage())) for name, sub in parser.commands.items()}
    assert sorted(o for o in options["train"] if f"`{o}`" not in section) == []
    assert sorted(o for o in re.findall(r"`(--[a-z][\w-]*)", section) if not any(o in v for v in options.values())) == []
    named = re.search(r"`--optimizer` \(([^)]*)\)", section).group(1)
    assert [n.strip() for n in named.split(",")] == list(OPTIMIZERS)


def _section_after(lines, end):
    """The prose after a block that ends on line index ``end``, up to the next fence or heading."""
    out = []
    for line in lines[end + 1:]:
        if _FENCE.match(line) or line.startswith("#"):
            break
        out.append(line)
    return "\n".join(out)


def _math_blocks():
    text = BACKPROP.read_text()
    lines = text.splitlines()
    return [(line, _section_after(lines, end)) for info, line, _, _, end in _fenced_blocks(text) if info == "math"]


def test_backprop_doc_has_formulas():
    assert len(_math_blocks()) >= 20


@pytest.mark.parametrize("line,after", _math_blocks(), ids=[f"line{line}" for line, _ in _math_blocks()])
def test_every_formula_links_to_its_implementation(line, after):
    links = _LINK.findall(after)
    targets = [t for _, t in links if t.startswith("../bpnet/") and t.endswith(".py")]
    assert targets, f"the formula at docs/backprop.md:{line} is not followed by a link to a bpnet source file"
    for target in targets:
        assert (BACKPROP.parent / target).resolve().is_file(), target
    # every function named there exists: dotted names resolve, bare `_kernel` names live in a linked module
    modules = []
    for name, target in links:
        modules.append(importlib.import_module(_module_of(target)))
        if name.startswith("bpnet."):
            _resolve(name)
    for bare in re.findall(r"`(_?[a-z][\w]*)`", after):
        if bare.startswith("_") and not bare.startswith("__"):
            assert any(hasattr(m, bare) for m in modules), f"{bare} (docs/backprop.md:{line}) not found in {modules}"


def _module_of(target: str) -> str:
    """``../bpnet/nn/_kernels.py`` -> ``bpnet.nn._kernels`` (a package's ``__init__.py`` -> the package)."""
    parts = (BACKPROP.parent / target).resolve().relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(dotted: str):
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise AssertionError(f"cannot resolve {dotted}")


def test_every_dotted_name_in_the_doc_exists():
    text = BACKPROP.read_text()
    names = set(re.findall(r"`(bpnet(?:\.\w+)+)`", text))
    assert names
    for name in sorted(names):
        _resolve(name)


# --------------------------------------------------------------------------- #
# examples/


EXAMPLE = ROOT / "examples" / "train_course_4layer.py"


def _example(tmp_path, *args, umask=None):
    import importlib.util

    for module, extra in (("matplotlib", "plot"), ("sklearn", "sklearn")):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install 'bpnet[{extra}]')")
    env = {**os.environ, "MPLBACKEND": "Agg", "MPLCONFIGDIR": str(tmp_path / "mpl")}
    return subprocess.run([sys.executable, str(EXAMPLE), *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300, **({} if umask is None else {"umask": umask}))


@pytest.mark.parametrize("given", [True, False], ids=["path-given", "default-path"])
def test_course_example_trains_and_plots(tmp_path, given):
    """The notebook-style example runs as is (few iterations) and writes a PNG where it is told (default:
    bpnet-run/course_4layer.png under the current directory, beside bpnet train's plots, never the directory
    it runs in), atomically, with the mode the umask gives a new file (it was 0600)."""
    png = tmp_path / ("plots/curve.png" if given else "bpnet-run/course_4layer.png")  # a missing directory is made
    mask = 0o027 if given else 0o022
    proc = _example(tmp_path, *([str(png.relative_to(tmp_path))] if given else []), "--iterations", "150",
                    "--backend", "numpy", umask=mask)
    assert proc.returncode == 0, proc.stderr
    assert "Cost after iteration 100:" in proc.stdout
    assert re.search(r"test accuracy: \d+\.\d\d%", proc.stdout)
    assert f"cost plot: {png}" in proc.stdout  # says where it went
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_mode & 0o777 == 0o666 & ~mask
    assert [q.name for q in png.parent.iterdir()] == [png.name]  # written atomically: no temporary file left
    assert sorted(q.name for q in tmp_path.iterdir() if q.name != "mpl") == [png.relative_to(tmp_path).parts[0]]


@pytest.mark.parametrize("args, message", [
    (["--iterations", "0"], "argument --iterations: expected a positive integer, got '0'"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["cost.txt"], "output: expected a file name ending in .png (or another format matplotlib writes), got 'cost.txt'"),
])
def test_course_example_bad_options_are_one_line(tmp_path, args, message):
    proc = _example(tmp_path, *args)
    assert proc.returncode == 2
    assert proc.stderr == f"train_course_4layer.py: error: {message}\n"  # no usage block
    assert sorted(q.name for q in tmp_path.iterdir() if q.name != "mpl") == []  # nothing written


def test_course_example_is_notebook_style():
    text = EXAMPLE.read_text()
    assert text.count("# %%") >= 5
    assert "matplotlib.use(\"Agg\")" in text and "L_layer_model" in text and "load_dataset" in text
