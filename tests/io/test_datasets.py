"""load_dataset (bpnet.io.datasets): embedded data sets, CSV/NPZ files, splits, standardisation, encoding,
errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from bpnet.datasets import DATASETS, Dataset, load_dataset, read_features

# name -> (task, loss, n_x, number of classes, number of examples)
EMBEDDED = {
    "breast_cancer": ("binary", "binary_crossentropy", 30, 2, 569),
    "digits": ("multiclass", "categorical_crossentropy", 64, 10, 1797),
    "iris": ("multiclass", "categorical_crossentropy", 4, 3, 150),
    "wine": ("multiclass", "categorical_crossentropy", 13, 3, 178),
    "diabetes": ("regression", "mse", 10, 0, 442),
    "flower": ("binary", "binary_crossentropy", 2, 2, 400),
}


def _raw_sklearn(name):
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, DATASETS[name][0])()
    return np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target)


def _write(path, text):
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- #
# embedded data sets


def test_every_embedded_data_set_is_listed():
    assert set(EMBEDDED) == set(DATASETS)


@pytest.mark.parametrize("name", sorted(EMBEDDED))
def test_embedded_shapes_task_and_loss(name):
    task, loss, n_x, k, n = EMBEDDED[name]
    ds = load_dataset(name)
    assert isinstance(ds, Dataset)
    assert (ds.task, ds.loss, ds.n_x, ds.n_classes) == (task, loss, n_x, k)
    n_y = k if k > 2 else 1
    assert ds.n_y == n_y
    assert ds.output_activation == {"binary": "sigmoid", "multiclass": "softmax", "regression": "linear"}[task]
    assert ds.m_train + ds.m_val + ds.m_test == n and ds.m_val == 0
    assert ds.m_test == int(np.ceil(0.2 * n))
    for X, Y, y, m in [(ds.X_train, ds.Y_train, ds.y_train, ds.m_train),
                       (ds.X_val, ds.Y_val, ds.y_val, 0), (ds.X_test, ds.Y_test, ds.y_test, ds.m_test)]:
        assert X.shape == (n_x, m) and Y.shape == (n_y, m) and y.shape == (m,)
        assert X.dtype == Y.dtype == np.float64 and X.flags.c_contiguous
    assert ds.mean.shape == ds.std.shape == (n_x, 1)
    assert len(ds.feature_names) == n_x and ds.source == name and name in repr(ds)
    if task == "regression":
        assert ds.class_names == [] and ds.y_train.dtype == np.float64
    else:
        assert len(ds.class_names) == k and ds.y_train.dtype == np.int64
        assert set(np.unique(ds.y_train)) == set(range(k))
        if k > 2:  # one-hot columns
            assert np.array_equal(ds.Y_train.sum(axis=0), np.ones(ds.m_train))
            assert np.array_equal(ds.Y_train.argmax(axis=0), ds.y_train)
        else:
            assert np.array_equal(ds.Y_train[0], ds.y_train)


def test_embedded_split_is_the_historical_one():
    # the split and standardisation bpnet always used: stratified train_test_split, training statistics
    from sklearn.model_selection import train_test_split

    X, y = _raw_sklearn("breast_cancer")
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    mean, std = X_tr.mean(axis=0, keepdims=True), X_tr.std(axis=0, keepdims=True)
    ds = load_dataset("breast_cancer")
    np.testing.assert_array_equal(ds.X_train, ((X_tr - mean) / std).T)
    np.testing.assert_array_equal(ds.X_test, ((X_te - mean) / std).T)
    np.testing.assert_array_equal(ds.y_train, y_tr)
    np.testing.assert_array_equal(ds.Y_test, y_te[np.newaxis, :].astype(float))
    assert ds.class_names == ["malignant", "benign"]


@pytest.mark.parametrize("name", ["breast_cancer", "digits", "wine", "diabetes"])
def test_standardised_with_training_statistics_only(name):
    ds = load_dataset(name, val_size=0.1)
    X, _ = _raw_sklearn(name)
    varying = X[ds.index_train].std(axis=0) > 0
    np.testing.assert_allclose(ds.X_train.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(ds.X_train.std(axis=1)[varying], 1, rtol=1e-12)
    np.testing.assert_array_equal(ds.X_train[~varying], 0)  # constant features (digits' corners) stay 0
    # validation and test sets: the raw rows through the TRAINING mean and std, not their own
    for Xs, idx in [(ds.X_val, ds.index_val), (ds.X_test, ds.index_test)]:
        np.testing.assert_allclose(Xs, ((X[idx] - ds.mean.T) / ds.std.T).T, rtol=0, atol=1e-15)
    assert np.abs(ds.X_test.mean(axis=1)).max() > 1e-3  # its own mean is not removed


def test_standardize_false_keeps_raw_values():
    ds = load_dataset("iris", standardize=False)
    X, _ = _raw_sklearn("iris")
    np.testing.assert_array_equal(ds.X_test, X[ds.index_test].T)
    assert np.all(ds.mean == 0) and np.all(ds.std == 1)


def test_split_sizes_and_disjoint_indices():
    ds = load_dataset("iris", test_size=0.25, val_size=0.15, seed=4)
    assert (ds.m_train, ds.m_val, ds.m_test) == (150 - 38 - 23, 23, 38)  # ceil(37.5), ceil(22.5)
    assert ds.X_val.shape == (4, 23) and ds.Y_val.shape == (3, 23)
    allidx = np.concatenate([ds.index_train, ds.index_val, ds.index_test])
    assert np.array_equal(np.sort(allidx), np.arange(150))
    # the test set does not depend on val_size
    assert np.array_equal(load_dataset("iris", test_size=0.25, seed=4).index_test, ds.index_test)


@pytest.mark.parametrize("name", ["wine", "flower"])  # scikit-learn's split, bpnet's own split
def test_stratification_keeps_class_proportions(name):
    ds = load_dataset(name, test_size=0.3, val_size=0.2, seed=7)
    total = np.bincount(np.concatenate([ds.y_train, ds.y_val, ds.y_test]))
    for y in (ds.y_train, ds.y_val, ds.y_test):
        expected = total * len(y) / total.sum()
        assert np.all(np.abs(np.bincount(y, minlength=len(total)) - expected) <= 1.0), (y, expected)


def test_split_seed_changes_the_split_reproducibly():
    a, b, c = (load_dataset("flower", seed=s) for s in (0, 0, 1))
    assert np.array_equal(a.index_test, b.index_test) and np.array_equal(a.X_train, b.X_train)
    assert not np.array_equal(a.index_test, c.index_test)


def test_diabetes_is_regression_with_invertible_targets():
    ds = load_dataset("diabetes")
    assert ds.loss == "mse" and ds.task == "regression" and ds.n_y == 1
    _, y = _raw_sklearn("diabetes")
    np.testing.assert_array_equal(ds.y_test, y[ds.index_test])  # raw targets
    np.testing.assert_allclose(ds.Y_train.mean(), 0, atol=1e-12)  # standardised targets
    np.testing.assert_allclose(ds.Y_train.std(), 1, rtol=1e-12)
    np.testing.assert_allclose(ds.decode(ds.Y_test), ds.y_test[np.newaxis, :], rtol=1e-12)
    np.testing.assert_allclose(ds.encode(ds.y_test), ds.Y_test[0], rtol=1e-12)
    raw = load_dataset("diabetes", standardize=False)
    np.testing.assert_array_equal(raw.Y_train[0], raw.y_train)


def test_transform_reproduces_the_test_columns():
    ds = load_dataset("breast_cancer")
    X, _ = _raw_sklearn("breast_cancer")
    np.testing.assert_array_equal(ds.transform(X[ds.index_test]), ds.X_test)
    assert ds.transform(X[0]).shape == (30, 1)  # one example as a 1-D row
    with pytest.raises(ValueError, match=r"expected shape \(n_samples, 30\).*examples are ROWS"):
        ds.transform(ds.X_test)
    bad = X[:2].copy()
    bad[1, 3] = np.nan
    with pytest.raises(ValueError, match="NaN at row 1, feature 'mean area'"):
        ds.transform(bad)
    with pytest.raises(TypeError, match="numeric"):
        ds.transform([["a"] * 30])


def test_decode_and_encode_class_labels():
    ds = load_dataset("iris")
    assert list(ds.decode(np.array([[2, 0, 1]]))[0]) == ["virginica", "setosa", "versicolor"]
    assert ds.decode(np.array([[2.0, 0.0]])).shape == (1, 2)  # float indices from predict() are fine
    np.testing.assert_array_equal(ds.encode(ds.decode(ds.y_test)), ds.y_test)
    with pytest.raises(ValueError, match=r"expected values in \[0, 2\]"):
        ds.decode([3])
    with pytest.raises(ValueError, match="unknown class label 'rose'"):
        ds.encode(["rose"])


# --------------------------------------------------------------------------- #
# argument validation


@pytest.mark.parametrize("kw, pattern", [
    (dict(test_size=0.0), r"test_size: expected a finite number in \(0, 1\)"),
    (dict(test_size=1.0), r"test_size: expected a finite number in \(0, 1\)"),
    (dict(val_size=-0.1), r"val_size: expected a finite number in \[0, 1\)"),
    (dict(val_size=1.0), r"val_size: expected a finite number in \[0, 1\)"),
    (dict(test_size=0.5, val_size=0.5), r"test_size \+ val_size: expected a sum below 1"),
    (dict(task="ranking"), r"task: expected one of 'binary', 'multiclass', 'regression'"),
    (dict(task="binary"), r"task='binary' needs exactly 2 classes"),
    (dict(stratify=True, task="regression"), r"regression target cannot be stratified"),
])
def test_bad_arguments(kw, pattern):
    with pytest.raises(ValueError, match=pattern):
        load_dataset("iris", **kw)


@pytest.mark.parametrize("kw", [dict(test_size="0.2"), dict(test_size=True), dict(seed=1.5)])
def test_bad_argument_types(kw):
    with pytest.raises(TypeError):
        load_dataset("iris", **kw)


def test_unknown_name_lists_the_embedded_data_sets():
    with pytest.raises(ValueError, match=r"unknown data set 'mnist'; expected one of 'breast_cancer'.*'flower'"):
        load_dataset("mnist")


def test_missing_file_is_named(tmp_path):
    for missing in [tmp_path / "nope.csv", str(tmp_path / "nope.npz"), "data/train.csv", "nope.CSV"]:
        with pytest.raises(FileNotFoundError, match="no such file.*nope|train"):
            load_dataset(missing)


def test_unsupported_file_type(tmp_path):
    p = _write(tmp_path / "data.txt", "a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"unsupported file type '\.txt'; expected \.csv or \.npz"):
        load_dataset(p)


def test_without_scikit_learn(monkeypatch, tmp_path):
    # flower and user files need no scikit-learn; the scikit-learn sets say how to get it
    for mod in [m for m in sys.modules if m == "sklearn" or m.startswith("sklearn.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(ImportError, match=r"pip install 'bpnet\[sklearn\]'"):
        load_dataset("iris")
    assert load_dataset("flower").m_test == 80
    p = _write(tmp_path / "d.csv", "a,label\n" + "".join(f"{i},{i % 2}\n" for i in range(10)))
    assert load_dataset(p).m_train == 8


# --------------------------------------------------------------------------- #
# CSV files


def _csv(rows, header):
    return ",".join(header) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows)


def _blobs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = rng.normal(size=(n, 2)) + 3 * y[:, np.newaxis]
    return X, y


def test_csv_with_a_named_label_column(tmp_path):
    X, y = _blobs()
    names = np.array(["setosa", "versicolor", "virginica"])
    rows = [[names[c], repr(float(a)), repr(float(b))] for (a, b), c in zip(X, y)]
    p = _write(tmp_path / "flowers.csv", _csv(rows, ["species", "length", "width"]))
    ds = load_dataset(p, label="species", test_size=0.2, val_size=0.2, seed=3)
    assert (ds.task, ds.loss, ds.n_x, ds.n_y) == ("multiclass", "categorical_crossentropy", 2, 3)
    assert ds.class_names == ["setosa", "versicolor", "virginica"]  # sorted unique strings
    assert ds.feature_names == ["length", "width"] and ds.label_name == "species"
    assert (ds.m_train, ds.m_val, ds.m_test) == (36, 12, 12)
    assert ds.name == "flowers.csv" and ds.source == str(p)
    for idx, yy in [(ds.index_train, ds.y_train), (ds.index_val, ds.y_val), (ds.index_test, ds.y_test)]:
        np.testing.assert_array_equal(yy, y[idx])
        assert np.array_equal(np.bincount(yy), [len(yy) // 3] * 3)  # stratified
    # raw rows of a file -> transform() -> exactly the test columns
    raw = read_features(p, ds.feature_names)
    np.testing.assert_array_equal(raw, X)  # repr() round-trips floats
    np.testing.assert_array_equal(ds.transform(raw[ds.index_test]), ds.X_test)
    np.testing.assert_allclose(ds.X_train.mean(axis=1), 0, atol=1e-12)
    assert list(ds.decode(ds.y_test[:3])) == list(names[y[ds.index_test[:3]]])


def test_csv_label_detection(tmp_path):
    X, y = _blobs(40)
    # a column called "target" (any case) wins, wherever it is
    p = _write(tmp_path / "t.csv", _csv([[a, c, b] for (a, b), c in zip(X, y)], ["f1", "Target", "f2"]))
    ds = load_dataset(p)
    assert ds.label_name == "Target" and ds.feature_names == ["f1", "f2"] and ds.class_names == ["0", "1", "2"]
    # otherwise the LAST column; two integer values -> binary, 0/1 row
    p = _write(tmp_path / "last.csv", _csv([[a, b, c % 2] for (a, b), c in zip(X, y)], ["f1", "f2", "outcome"]))
    ds = load_dataset(p)
    assert (ds.label_name, ds.task, ds.n_y, ds.class_names) == ("outcome", "binary", 1, ["0", "1"])
    np.testing.assert_array_equal(ds.Y_train[0], ds.y_train)


def test_csv_numeric_labels_task_inference(tmp_path):
    X, _ = _blobs(50)
    price = 100 + 10 * X[:, 0] + X[:, 1]
    p = _write(tmp_path / "price.csv", _csv([[a, b, t] for (a, b), t in zip(X, price)], ["a", "b", "price"]))
    ds = load_dataset(p)
    assert (ds.task, ds.loss, ds.class_names, ds.n_y) == ("regression", "mse", [], 1)
    np.testing.assert_allclose(ds.decode(ds.Y_test)[0], ds.y_test, rtol=1e-12)
    # integers with many distinct values are a target too; task= overrides
    p = _write(tmp_path / "age.csv", _csv([[a, i] for a, i in zip(X[:, 0], range(50))], ["a", "age"]))
    assert load_dataset(p).task == "regression"
    p = _write(tmp_path / "cls.csv", _csv([[a, i % 3 + 1] for a, i in zip(X[:, 0], range(50))], ["a", "label"]))
    assert load_dataset(p).class_names == ["1", "2", "3"]
    assert load_dataset(p, task="regression").task == "regression"


def test_csv_blank_lines_spaces_and_quotes_are_fine(tmp_path):
    text = 'x1, "x2" ,label\n\n 1.5 , 2,cat\n3,"4",dog\n\n5,6e-1, cat\n7,8,dog\n9,10,cat\n'
    ds = load_dataset(_write(tmp_path / "s.csv", text), test_size=0.4, standardize=False, stratify=False)
    assert ds.class_names == ["cat", "dog"] and ds.feature_names == ["x1", "x2"]
    assert ds.m_train + ds.m_test == 5 and ds.m_test == 2
    got = np.concatenate([ds.X_train, ds.X_test], axis=1)[:, np.argsort(np.r_[ds.index_train, ds.index_test])]
    np.testing.assert_array_equal(got, [[1.5, 3, 5, 7, 9], [2, 4, 0.6, 8, 10]])


@pytest.mark.parametrize("text, kw, pattern", [
    ("a,b,label\n1,2,0\n3,4,1\n", dict(label="class"),
     r"label column 'class' not found; the columns are: 'a', 'b', 'label'"),
    ("a,b,label\n1,2,0\n3,x7,1\n", {}, r"line 3 \(data row 2\), column 'b': non-numeric value 'x7'"),
    ("a,b,label\n1,2,0\n3,,1\n", {}, r"line 3 \(data row 2\), column 'b': empty cell"),
    ("a,b,label\n1,nan,0\n3,4,1\n", {}, r"line 2 \(data row 1\), column 'b': NaN 'nan'"),
    ("a,b,label\n1,2,0\n-inf,4,1\n", {}, r"line 3 \(data row 2\), column 'a': infinite value '-inf'"),
    ("a,b,label\n1,2,0\n3,4\n", {}, r"line 3: expected 3 values .*got 2"),
    ("1,2,0\n3,4,1\n", {}, r"line 1 holds numbers.*header row naming the columns is required"),
    ("", {}, r"the file is empty"),
    ("a,b,label\n", {}, r"no data rows"),
    ("a,a,label\n1,2,0\n", {}, r"duplicate column names.*'a'"),
    ("a,label\n1,0\n2,\n", {}, r"line 3 \(data row 2\), label column 'label': empty label"),
    ("a,label\n1,0\n2,nan\n", {}, r"label column 'label': 'nan' is not a finite number"),
    ("a,label\n1,0\n2,one\n", {}, r"'one' is text but other labels are numbers"),
    ("a,label\n1,0\n2,0\n", {}, r"single class \('0'\)"),
])
def test_csv_errors(tmp_path, text, kw, pattern):
    p = _write(tmp_path / "bad.csv", text)
    with pytest.raises(ValueError, match=pattern) as info:
        load_dataset(p, **kw)
    assert str(p) in str(info.value)


def test_csv_not_utf8(tmp_path):
    p = tmp_path / "latin.csv"
    p.write_bytes("a,label\n1,caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not a UTF-8 text file"):
        load_dataset(p)


def test_too_few_examples_for_a_split(tmp_path):
    p = _write(tmp_path / "tiny.csv", "a,label\n1,0\n2,1\n")
    with pytest.raises(ValueError, match=r"too few examples \(2\).*leave none for training"):
        load_dataset(p, test_size=0.5, val_size=0.2)
    p = _write(tmp_path / "lonely.csv", _csv([[i, "a" if i else "b"] for i in range(10)], ["x", "label"]))
    with pytest.raises(ValueError, match=r"class 'b' has a single example.*stratify=False"):
        load_dataset(p)
    ds = load_dataset(p, stratify=False)
    assert ds.m_test == 2 and ds.class_names == ["a", "b"]


@pytest.mark.parametrize("kw, pattern", [
    (dict(val_size=0.0001), r"^val_size: a stratified split puts an example of each of the 2 classes in the validation "
                            r"set, so it needs at least 2 examples; val_size=0.0001 of 569 gives 1: use val_size >= "
                            r"0.0036 \(bpnet train: --val-size\), or \(from Python\) pass stratify=False$"),
    (dict(test_size=0.001), r"^test_size: .* the 2 classes in the test set, .* test_size=0.001 of 569 gives 1: use "
                            r"test_size >= 0.0036 \(bpnet train: --test-size\), or \(from Python\) pass stratify=False$"),
    (dict(test_size=0.997), r"^test_size \+ val_size: a stratified split needs a training example of each of the 2 "
                            r"classes; test_size=0.997 and val_size=0.0 leave 1 of 569: lower test_size/val_size"),
])
def test_an_embedded_stratified_split_too_small_for_its_classes_names_the_argument(kw, pattern):
    """scikit-learn's split of the embedded data sets puts every class in every part: a part with fewer examples
    than classes is refused by bpnet, naming the argument and a fraction that is enough (not train_test_split's
    words, which said test_size for a validation set)."""
    with pytest.raises(ValueError, match=pattern):
        load_dataset("breast_cancer", **kw)
    ds = load_dataset("breast_cancer", val_size=0.0036)  # the fraction the message names: ceil(2.05) examples
    assert ds.m_val == 3


# --------------------------------------------------------------------------- #
# NPZ files


def test_npz_good_file(tmp_path):
    X, y = _blobs(30)
    p = tmp_path / "d.npz"
    np.savez(p, X=X, y=y)
    ds = load_dataset(p, test_size=0.2)
    assert (ds.task, ds.n_x, ds.n_y, ds.m_test) == ("multiclass", 2, 3, 6)
    assert ds.feature_names == ["x0", "x1"] and ds.label_name == "y"
    np.testing.assert_array_equal(ds.y_train, y[ds.index_train])
    np.testing.assert_array_equal(ds.transform(read_features(p)[ds.index_test]), ds.X_test)
    # other keys, string labels, feature names
    q = tmp_path / "e.npz"
    np.savez(q, feats=X, cls=np.where(y == 0, "no", "yes"), feature_names=np.array(["u", "v"]))
    ds = load_dataset(q, x_key="feats", y_key="cls")
    assert ds.class_names == ["no", "yes"] and ds.task == "binary" and ds.feature_names == ["u", "v"]


def test_npz_errors(tmp_path):
    X, y = _blobs(10)
    p = tmp_path / "k.npz"
    np.savez(p, data=X, y=y)
    with pytest.raises(ValueError, match=r"no array 'X'; the file holds: 'data', 'y'"):
        load_dataset(p)
    p = tmp_path / "obj.npz"
    np.savez(p, X=X, y=np.array([{"a": 1}] * 10, dtype=object))
    with pytest.raises(ValueError, match="'y' is an object array"):
        load_dataset(p)
    p = tmp_path / "nan.npz"
    Xn = X.copy()
    Xn[4, 1] = np.nan
    np.savez(p, X=Xn, y=y)
    with pytest.raises(ValueError, match="NaN at row 4, feature 'x1'"):
        load_dataset(p)
    p = tmp_path / "shape.npz"
    np.savez(p, X=X, y=y[:-1])
    with pytest.raises(ValueError, match="'X' has 10 rows .* but 'y' has 9 labels"):
        load_dataset(p)
    p = tmp_path / "flat.npz"
    np.savez(p, X=X[:, 0], y=y)
    with pytest.raises(ValueError, match=r"must be 2-D \(n_samples, n_features\)"):
        load_dataset(p)
    p = _write(tmp_path / "junk.npz", "not a zip")
    with pytest.raises(ValueError, match="not a readable .npz file"):
        load_dataset(p)
    p = tmp_path / "lone.npz"
    with open(p, "wb") as f:
        np.save(f, X)
    with pytest.raises(ValueError, match=r"single array \(.npy format\)"):
        load_dataset(p)
    p = tmp_path / "ok.npz"
    np.savez(p, X=X, y=y)
    with pytest.raises(ValueError, match="label: names the label column of a CSV file.*named by y_key="):
        load_dataset(p, label="y")


def test_legacy_positional_construction_still_works():
    X, Y, y = np.zeros((3, 4)), np.zeros((1, 4)), np.zeros(4, dtype=np.int64)
    ds = Dataset("d", X, Y, y, X[:, :2], Y[:, :2], y[:2], ["a", "b"], "binary_crossentropy",
                 np.zeros((3, 1)), np.ones((3, 1)))
    assert ds.task == "binary" and ds.X_val.shape == (3, 0) and ds.Y_val.shape == (1, 0) and ds.y_val.shape == (0,)
    assert ds.feature_names == ["x0", "x1", "x2"] and ds.source == "d" and ds.output_activation == "sigmoid"
