"""The package's shape: layers import downwards only, no cycles, no private names across modules, short functions."""

from __future__ import annotations

import ast
import pathlib
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

# The layer contract itself is in pyproject.toml (``[tool.importlinter]``); these
# tests run it, and check what import-linter cannot see.

PACKAGE = ROOT / "bpnet"
MODULES = sorted(PACKAGE.rglob("*.py"))

#: functions allowed past the length limit: argparse tables (declarations, not logic)
LONG_ALLOWED = {("bpnet/cli/train.py", "add_parser")}
MAX_LINES = 80


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute name of ``from <level dots><target> import ...`` written in ``module``."""
    if level == 0:
        return target or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_import_linter_contracts_are_kept():
    pytest.importorskip("importlinter")
    from importlinter.cli import lint_imports

    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_name_is_imported_from_another_module(path):
    """``from .x import _helper`` or ``x._helper`` across modules: make it a public name in a private module."""
    module = _module_name(path)
    tree = ast.parse(path.read_text(), str(path))
    aliases = {}  # local name -> the bpnet module it is bound to
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _resolve(module, path.name == "__init__.py", node.level, node.module)
            if not source.startswith("bpnet"):
                continue
            for a in node.names:
                if _private(a.name) and not (PACKAGE / source.replace("bpnet", "", 1).strip(".").replace(".", "/")
                                             / f"{a.name}.py").exists():
                    bad.append(f"line {node.lineno}: from {source} import {a.name}")
                aliases[a.asname or a.name] = f"{source}.{a.name}"
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("bpnet"):
                    aliases[a.asname or a.name.split(".")[0]] = a.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases \
                and _private(node.attr):
            bad.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    assert not bad, f"{module} uses private names of other modules: {bad}"


def _code_lines(fn: ast.FunctionDef, source_lines) -> int:
    """Lines of code of a function: no docstring, blank or comment-only lines."""
    body = fn.body[1:] if (fn.body and isinstance(fn.body[0], ast.Expr)
                           and isinstance(fn.body[0].value, ast.Constant)
                           and isinstance(fn.body[0].value.value, str)) else fn.body
    if not body:
        return 0
    lines = source_lines[body[0].lineno - 1: fn.end_lineno]
    return sum(1 for line in lines if line.strip() and not line.strip().startswith("#"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_function_is_longer_than_80_lines_of_code(path):
    rel = str(path.relative_to(ROOT))
    source = path.read_text()
    lines = source.splitlines()
    long = [(n.name, _code_lines(n, lines)) for n in ast.walk(ast.parse(source))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and (rel, n.name) not in LONG_ALLOWED]
    assert not [(name, k) for name, k in long if k > MAX_LINES], f"functions over {MAX_LINES} lines in {rel}"


def test_ruff_is_clean():
    ruff = shutil.which("ruff") or (pathlib.Path(sys.executable).parent / "ruff")
    if not pathlib.Path(ruff).exists():
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    r = subprocess.run([str(ruff), "check", "--no-cache", "bpnet", "tests", "benchmarks", "examples"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
