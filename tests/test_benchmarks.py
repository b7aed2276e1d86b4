"""The benchmark scripts that no other test runs: benchmarks/bench_coldstart.py."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name):
    spec = importlib.util.spec_from_file_location(f"bpnet_{name}", ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_coldstart_runs_the_readme_command_in_fresh_processes(tmp_path, capsys):
    bench = _load("bench_coldstart")
    out = tmp_path / "cold.json"
    assert bench.main(["--backend", "numpy", "--epochs", "1", "--runs", "1", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["run"] for r in rows] == ["startup", "cold", "warm 1"]
    assert all(r["wall_s"] > 0 and r["cache_files"] == 0 for r in rows)  # numpy compiles nothing
    for r in rows[1:]:  # the command's own figures, read from its output
        assert 0 <= r["trained_s"] < r["wall_s"] and 0.5 < r["test_accuracy"] <= 1.0
    assert rows[1]["test_accuracy"] == rows[2]["test_accuracy"]  # the same seeded fit
    printed = capsys.readouterr().out
    assert "--backend numpy --epochs 1" in printed and "warm 1" in printed


@pytest.mark.parametrize("bad", [["--runs", "0"], ["--epochs", "x"]])
def test_coldstart_refuses_bad_counts_naming_the_option(bad, capsys):
    bench = _load("bench_coldstart")
    with pytest.raises(SystemExit):
        bench.main(bad)
    assert f"argument {bad[0]}: expected an integer > 0" in capsys.readouterr().err
