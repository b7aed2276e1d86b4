"""The docs stay true: every ```python block of docs/backprop.md and README.md runs, every formula links
to the function that implements it, the example script runs."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
from conftest import ROOT

# * ``docs/backprop.md``: each ```python block is executed on its own, in a fresh
#   namespace (so a reader can paste any one of them); each ```math block must be
#   followed, before the next block or heading, by a link to the bpnet source file
#   that implements it, and every function it names there must exist.
# * ``README.md`` (if present): its ```python blocks run in order in one shared
#   namespace, like a notebook.  A block right after a ``<!-- no-test -->`` line is
#   skipped.  A README without python blocks (or no README) is fine.

BACKPROP = ROOT / "docs" / "backprop.md"
README = ROOT / "README.md"

_FENCE = re.compile(r"^```(\w*)\s*$")
_LINK = re.compile(r"\[`?([\w.]+)`?\]\((\.\./[^)\s]+)\)")


def _fenced_blocks(text: str):
    """``[(info, first_line_number, code, skip), ...]`` for every fenced block of a markdown text."""
    lines = text.splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        info, start = m.group(1), i + 1
        skip = i > 0 and lines[i - 1].strip() == "<!-- no-test -->"
        j = start
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        blocks.append((info, start + 1, "\n".join(lines[start:j]) + "\n", skip, j))
        i = j + 1
    return blocks


def _python_blocks(path: Path):
    if not path.exists():
        return []
    return [(line, code) for info, line, code, skip, _ in _fenced_blocks(path.read_text()) if info == "python" and not skip]


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


def test_readme_snippets_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # snippets may write files (e.g. a checkpoint)
    blocks = _python_blocks(README)
    if not blocks:
        pytest.skip("README.md has no python blocks" if README.exists() else "no README.md")
    namespace = {"__name__": "readme_md"}
    for line, code in blocks:
        _run(code, README, line, namespace)


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


@pytest.mark.parametrize("given", [True, False], ids=["path-given", "default-cost.png"])
def test_course_example_trains_and_plots(tmp_path, given):
    """The notebook-style example runs as is (few iterations) and writes a PNG (default ./cost.png)."""
    import importlib.util
    import os
    import subprocess
    import sys

    for module, extra in (("matplotlib", "plot"), ("sklearn", "sklearn")):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install 'bpnet[{extra}]')")
    png = tmp_path / ("curve.png" if given else "cost.png")
    env = {**os.environ, "MPLBACKEND": "Agg", "MPLCONFIGDIR": str(tmp_path / "mpl")}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), *([str(png)] if given else []), "--iterations", "150", "--backend", "numpy"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Cost after iteration 100:" in proc.stdout
    assert re.search(r"test accuracy: \d+\.\d\d%", proc.stdout)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [q.name for q in tmp_path.iterdir() if q.name.startswith(".tmp-")] == []  # written atomically


def test_course_example_is_notebook_style():
    text = EXAMPLE.read_text()
    assert text.count("# %%") >= 5
    assert "matplotlib.use(\"Agg\")" in text and "L_layer_model" in text and "load_dataset" in text
