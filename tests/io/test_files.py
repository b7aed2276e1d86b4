"""The file readers (bpnet.io.files): the course's flower data set, feature columns read by name."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
from conftest import finishes

from bpnet.datasets import load_dataset, make_flower, read_features


def _write(path, text):
    path.write_text(text)
    return path


def test_flower_is_the_courses_planar_data_set():
    state = np.random.get_state()
    try:  # the course's load_planar_dataset(), verbatim, on the global generator
        np.random.seed(1)
        m = 400
        N = int(m / 2)
        D = 2
        X = np.zeros((m, D))
        Y = np.zeros((m, 1), dtype="uint8")
        a = 4
        for j in range(2):
            ix = range(N * j, N * (j + 1))
            t = np.linspace(j * 3.12, (j + 1) * 3.12, N) + np.random.randn(N) * 0.2
            r = a * np.sin(4 * t) + np.random.randn(N) * 0.2
            X[ix] = np.c_[r * np.sin(t), r * np.cos(t)]
            Y[ix] = j
        X, Y = X.T, Y.T
        after_course = np.random.get_state()
    finally:
        np.random.set_state(state)
    before = np.random.get_state()
    Xf, Yf = make_flower()
    after = np.random.get_state()
    assert all(np.array_equal(u, v) for u, v in zip(before[1:], after[1:]))  # global state untouched
    assert not np.array_equal(after_course[1], before[1])
    assert Xf.shape == (2, 400) and Yf.shape == (1, 400) and Yf.dtype == np.uint8
    np.testing.assert_array_equal(Xf, X)
    np.testing.assert_array_equal(Yf, Y)
    ds = load_dataset("flower", standardize=False)
    np.testing.assert_array_equal(ds.X_train, X[:, ds.index_train])
    np.testing.assert_array_equal(ds.y_train, Y[0, ds.index_train])
    assert ds.class_names == ["red", "blue"] and ds.feature_names == ["x1", "x2"]


def test_make_flower_rejects_odd_m():
    assert make_flower(10, seed=3)[0].shape == (2, 10)
    with pytest.raises(ValueError, match="m: expected an even number"):
        make_flower(7)


def test_read_features_selects_columns_by_name(tmp_path):
    p = _write(tmp_path / "new.csv", "width,label,length\n1,x,2\n3,y,4\n")
    np.testing.assert_array_equal(read_features(p, ["length", "width"]), [[2, 1], [4, 3]])
    with pytest.raises(ValueError, match=r"missing feature column\(s\) \['height'\]"):
        read_features(p, ["height"])
    with pytest.raises(ValueError, match="column 'label': non-numeric value 'x'"):
        read_features(p)
    one = _write(tmp_path / "one.csv", "width\n1\n2\n")
    np.testing.assert_array_equal(read_features(one), [[1], [2]])


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes (POSIX)")
@pytest.mark.parametrize("name", ["data.csv", "data.npz"])
def test_a_fifo_or_a_device_is_refused_without_blocking(tmp_path, name):
    """Reading a FIFO blocks until someone writes into it: every reader refuses it (links followed) first."""
    from bpnet.io import Preprocessor, read_table

    fifo = tmp_path / name
    os.mkfifo(fifo)
    link = tmp_path / f"link{fifo.suffix}"
    link.symlink_to(fifo)
    pre = Preprocessor(["a"], [0.0], [1.0], "binary", ["0", "1"], "label")
    for path in (fifo, link):
        for call in (lambda: load_dataset(path), lambda: read_features(path), lambda: read_table(path),
                     lambda: pre.read(path)):
            exc = finishes(call)
            assert type(exc) is ValueError and re.fullmatch(
                rf"data: '{re.escape(str(path))}': expected a regular \.csv or \.npz file, got a FIFO \(named pipe\)",
                str(exc)), exc


def test_the_open_descriptor_is_checked_too(tmp_path, monkeypatch):
    """Swapped for a FIFO between the path check and the open: the open descriptor is what is checked."""
    from bpnet.io import files

    p = _write(tmp_path / "d.csv", "a,label\n1,0\n2,1\n")
    monkeypatch.setattr(files, "check_regular", lambda *a, **k: None)  # pretend the path check passed
    p.unlink()
    if not hasattr(os, "mkfifo"):
        pytest.skip("needs named pipes (POSIX)")
    os.mkfifo(p)
    exc = finishes(lambda: load_dataset(p))
    assert isinstance(exc, ValueError) and "got a FIFO (named pipe)" in str(exc), exc
    assert type(finishes(lambda: load_dataset(tmp_path / "none.csv"))) is FileNotFoundError
