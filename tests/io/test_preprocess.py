"""The saved preprocessor (bpnet.io.preprocess): fitted with the data set, round trip through dict/JSON/checkpoint,
untrusted dicts refused field by field, columns read by name, classes by the training codec."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from bpnet.io import Preprocessor, load_dataset
from bpnet.model import MLP


def _write(path, header, rows):
    path.write_text(",".join(header) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def iris():
    return load_dataset("iris", val_size=0.1)


def _pre(**change):
    d = {"feature_names": ["a", "b"], "mean": [1.0, -2.0], "std": [0.5, 3.0], "task": "multiclass",
         "class_names": ["cat", "dog", "emu"], "label": "animal", "y_mean": 0.0, "y_std": 1.0}
    d.update(change)
    return d


# --------------------------------------------------------------------------- #
# one object: the data set's standardisation and codec


def test_the_dataset_uses_its_preprocessor(iris):
    pre = iris.preprocessor
    assert isinstance(pre, Preprocessor)
    assert (pre.task, pre.class_names, pre.label) == ("multiclass", ("setosa", "versicolor", "virginica"), "target")
    assert pre.feature_names == tuple(iris.feature_names) and len(pre.feature_names) == 4
    np.testing.assert_array_equal(iris.mean, np.array(pre.mean)[:, None])
    np.testing.assert_array_equal(iris.std, np.array(pre.std)[:, None])
    raw = pre.read("iris")[0][iris.index_test]
    np.testing.assert_array_equal(pre.transform(raw), iris.X_test)
    np.testing.assert_array_equal(iris.transform(raw), iris.X_test)  # the README's Dataset API delegates
    np.testing.assert_array_equal(pre.targets(iris.y_val, indices=True), iris.Y_val)
    np.testing.assert_array_equal(pre.targets(iris.decode(iris.y_val)), iris.Y_val)
    assert list(pre.decode(iris.y_test[:3])) == list(iris.decode(iris.y_test[:3]))
    with pytest.raises(AttributeError):
        pre.mean = (0.0,) * 4  # frozen: a model's preprocessor cannot drift


def test_regression_targets_are_standardised_and_decoded():
    ds = load_dataset("diabetes")
    pre = ds.preprocessor
    assert pre.task == "regression" and pre.class_names == () and pre.n_y == 1
    np.testing.assert_array_equal(pre.targets(ds.y_train), ds.Y_train)
    np.testing.assert_allclose(pre.decode(ds.Y_test[0]), ds.y_test, rtol=1e-12)


def test_fit_from_python():
    X = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 10.0]])
    pre = Preprocessor.fit(X, ["b", "a", "b"], task="binary", feature_names=["u", "v"], label="kind")
    assert pre.class_names == ("a", "b") and pre.mean == (3.0, 10.0)
    assert pre.std[1] == 1.0  # a constant column is centred, not divided by 0
    np.testing.assert_allclose(pre.transform(X)[0], [-1.2247448714, 0, 1.2247448714])
    np.testing.assert_array_equal(pre.targets(["a", "b", "b"]), [[0.0, 1.0, 1.0]])
    raw = Preprocessor.fit(X, [0, 1, 1], task="binary", standardize=False)
    assert raw.class_names == ("0", "1") and raw.mean == (0.0, 0.0) and raw.std == (1.0, 1.0)
    assert raw.feature_names == ("x0", "x1")


# --------------------------------------------------------------------------- #
# the codec is the training one


def test_encode_uses_the_training_codec_and_names_unknown_classes():
    pre = Preprocessor.from_dict(_pre())
    np.testing.assert_array_equal(pre.encode(["emu", "dog", "emu"]), [2, 1, 2])
    # a subset of the classes keeps the training indices and one-hot width
    assert pre.targets(["dog", "emu"]).shape == (3, 2)
    np.testing.assert_array_equal(pre.targets(["dog", "emu"]).argmax(axis=0), [1, 2])
    with pytest.raises(ValueError, match=r"unknown class label 'rose'; the model's classes are \['cat'"):
        pre.encode(["cat", "rose"])
    with pytest.raises(ValueError, match=r"unknown class labels 'ant', 'rose'"):
        pre.encode(["rose", "cat", "ant"])
    num = Preprocessor.from_dict(_pre(class_names=["1", "2", "3"]))
    np.testing.assert_array_equal(num.encode(np.array([3.0, 1.0])), [2, 0])  # numbers named as bpnet names them
    np.testing.assert_array_equal(num.encode([[2, 3]]), [[1, 2]])
    with pytest.raises(ValueError, match="class indices: expected integers in"):
        num.targets([3], indices=True)


# --------------------------------------------------------------------------- #
# to_dict / from_dict


def test_round_trip_through_json_and_a_checkpoint(iris, tmp_path):
    pre = iris.preprocessor
    d = pre.to_dict()
    again = Preprocessor.from_dict(json.loads(json.dumps(d, allow_nan=False)))
    assert again == pre and again.to_dict() == d
    np.testing.assert_array_equal(again.transform(np.ones((2, 4))), pre.transform(np.ones((2, 4))))
    model = MLP([4, 3], seed=0, dtype="float64", backend="numpy")
    model.preprocessor = pre
    model.save(tmp_path / "m.npz")
    assert MLP.load(tmp_path / "m.npz").preprocessor == pre
    reg = load_dataset("diabetes").preprocessor
    assert Preprocessor.from_dict(json.loads(json.dumps(reg.to_dict()))) == reg


@pytest.mark.parametrize("change, field", [
    ({"task": "ranking"}, "task"),
    ({"task": None}, "task"),
    ({"feature_names": "ab"}, "feature_names"),
    ({"feature_names": ["a", 2]}, r"feature_names\[1\]"),
    ({"feature_names": ["a", "a"]}, "feature_names: duplicate"),
    ({"feature_names": []}, "feature_names"),
    ({"mean": [1.0]}, "mean: expected 2 values"),
    ({"mean": [1.0, "x"]}, r"mean\[1\]"),
    ({"mean": [1.0, math.nan]}, r"mean\[1\]"),
    ({"mean": [math.inf, 1.0]}, r"mean\[0\]"),
    ({"mean": [True, 1.0]}, r"mean\[0\]"),
    ({"std": [0.5, 0.0]}, r"std\[1\]: expected a finite number > 0"),
    ({"std": [-1.0, 1.0]}, r"std\[0\]"),
    ({"std": {"a": 1}}, "std"),
    ({"class_names": ["cat"]}, "class_names: a multiclass task needs at least 2"),
    ({"class_names": ["cat", 1, "emu"]}, r"class_names\[1\]"),
    ({"class_names": ["cat", "cat", "emu"]}, "class_names: duplicate"),
    ({"task": "binary"}, "class_names: a binary task needs exactly 2"),
    ({"task": "regression"}, "class_names: a regression task has no classes"),
    ({"label": 3}, "label"),
    ({"y_std": 0}, "y_std"),
    ({"y_mean": "0"}, "y_mean"),
    ({"extra": 1}, r"unknown field\(s\) \['extra'\]"),
])
def test_from_dict_refuses_bad_fields(change, field):
    with pytest.raises(ValueError, match=rf"^preprocessor: .*{field}"):
        Preprocessor.from_dict(_pre(**change))


def test_from_dict_refuses_missing_fields_and_non_dicts():
    d = _pre()
    del d["task"]
    with pytest.raises(ValueError, match=r"missing field\(s\) \['task'\]"):
        Preprocessor.from_dict(d)
    with pytest.raises(ValueError, match="preprocessor: expected a dict, got list"):
        Preprocessor.from_dict([1, 2])


# --------------------------------------------------------------------------- #
# reading files the training way


def test_read_takes_columns_by_name_and_labels_by_the_codec(tmp_path):
    pre = Preprocessor.from_dict(_pre())
    p = _write(tmp_path / "new.csv", ["note", "b", "animal", "a"], [["x", 2, "emu", 1], ["y", 4, "cat", 3]])
    X, y = pre.read(p)  # reordered, an extra text column, the label in the middle
    np.testing.assert_array_equal(X, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(y, [2, 0])
    assert pre.read(p, label=False)[1] is None
    q = _write(tmp_path / "nolabel.csv", ["b", "a"], [[2, 1]])
    assert pre.read(q)[1] is None  # no label column: features only (prediction)
    with pytest.raises(ValueError, match=r"no label column 'kind'"):
        pre.read(q, label="kind")
    r = _write(tmp_path / "missing.csv", ["a", "animal"], [[1, "emu"]])
    with pytest.raises(ValueError, match=r"missing feature column\(s\) \['b'\]"):
        pre.read(r)
    s = _write(tmp_path / "rose.csv", ["a", "b", "animal"], [[1, 2, "rose"]])
    with pytest.raises(ValueError, match=r"rose.csv: label 'animal': unknown class label 'rose'"):
        pre.read(s)


def test_read_npz_by_name_or_position(tmp_path):
    pre = Preprocessor.from_dict(_pre())
    named = tmp_path / "named.npz"
    np.savez(named, X=np.array([[2.0, 1.0]]), y=np.array(["dog"]), feature_names=np.array(["b", "a"]))
    X, y = pre.read(named, label="y")
    np.testing.assert_array_equal(X, [[1.0, 2.0]])
    np.testing.assert_array_equal(y, [1])
    plain = tmp_path / "plain.npz"
    np.savez(plain, X=np.array([[1.0, 2.0, 3.0]]))
    with pytest.raises(ValueError, match="has 3 columns, expected 2 features"):
        pre.read(plain)


def test_load_dataset_through_a_preprocessor(tmp_path):
    rng = np.random.default_rng(0)
    animals = ["cat", "dog", "emu"]
    rows = [[repr(float(a)), repr(float(b)), animals[i % 3]] for i, (a, b) in enumerate(rng.normal(size=(60, 2)))]
    p = _write(tmp_path / "d.csv", ["a", "b", "animal"], rows)
    ds = load_dataset(p, val_size=0.2, seed=2)
    again = load_dataset(p, val_size=0.2, seed=2, preprocessor=ds.preprocessor)
    for k in ("X_train", "Y_train", "y_train", "X_val", "X_test", "Y_test", "y_test", "index_test"):
        np.testing.assert_array_equal(getattr(again, k), getattr(ds, k))
    swapped = _write(tmp_path / "swapped.csv", ["animal", "b", "a"], [[r[2], r[1], r[0]] for r in rows])
    other = load_dataset(swapped, val_size=0.2, seed=2, preprocessor=ds.preprocessor)
    np.testing.assert_array_equal(other.X_test, ds.X_test)
    two = _write(tmp_path / "two.csv", ["a", "b", "animal"], [r for r in rows if r[2] != "cat"])
    sub = load_dataset(two, preprocessor=ds.preprocessor)
    assert sub.class_names == ["cat", "dog", "emu"] and sub.Y_test.shape[0] == 3
    assert set(sub.y_test) <= {1, 2}
    with pytest.raises(ValueError, match="the preprocessor's task is 'multiclass'"):
        load_dataset(p, task="binary", preprocessor=ds.preprocessor)


def test_huge_but_finite_csv_values_are_standardised(tmp_path):
    """|x| ~ 1.7e308 overflows x**2 in the standard deviation: the statistics are still computed, finitely."""
    rows = ["a,b,label"] + [f"{s * 0.85e308 * (i % 3)!r},{i},{i % 2}" for i, s in
                            zip(range(12), [1, -1] * 6)]
    (tmp_path / "huge.csv").write_text("\n".join(rows) + "\n")
    ds = load_dataset(str(tmp_path / "huge.csv"), test_size=0.25)
    for A in (ds.X_train, ds.X_test, ds.mean, ds.std):
        assert np.all(np.isfinite(A))
    assert abs(ds.X_train[0].mean()) < 1e-12 and ds.X_train[0].std() == pytest.approx(1.0)

