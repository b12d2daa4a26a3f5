"""The user's own data: .npz and .csv round trips and every error a user can hit."""
import numpy as np
import pytest

from autotune.data import DataSpec, load_dataset
from autotune.errors import DataError


def _examples(n_per_class: int, shape: tuple[int, ...], classes: int = 3):
    """Distinct, recognisable examples: example i is filled with i + position / 1000."""
    n = n_per_class * classes
    size = int(np.prod(shape))
    x = (np.arange(n)[:, None] + np.arange(size)[None, :] / 1000.0).reshape((n,) + shape).astype(np.float32)
    y = np.arange(n) % classes
    return x, y


def _all_splits(ds):
    val = [] if ds.kfold else [ds.x_val]
    x = np.concatenate([ds.x_train, *val, ds.x_test])
    y = np.concatenate([ds.y_train, *([] if ds.kfold else [ds.y_val]), ds.y_test])
    return x, y


def _assert_round_trip(ds, x, y, model_shape):
    got_x, got_y = _all_splits(ds)
    assert got_x.dtype == np.float32 and got_y.dtype == np.int64
    assert ds.input_shape == model_shape
    assert len(got_x) == len(x)
    # Each example keeps its label; together the splits hold every example exactly once.
    order = np.argsort(got_x.reshape(len(got_x), -1)[:, 0])
    np.testing.assert_array_equal(got_x[order].reshape(x.shape), x)
    np.testing.assert_array_equal(got_y[order], y)


@pytest.mark.parametrize(
    "shape, model_shape, kind",
    [
        ((32,), (1, 32, 1), "1d"),
        ((32, 2), (1, 32, 2), "1d"),
        ((4, 5, 3), (4, 5, 3), "2d"),
    ],
)
def test_npz_round_trip(tmp_path, shape, model_shape, kind):
    x, y = _examples(10, shape)
    path = tmp_path / "mine.npz"
    np.savez(path, x=x, y=y, class_names=np.array(["a", "b", "c"]))
    ds = load_dataset(DataSpec(source="npz", path=str(path), normalize="none"), seed=0)
    assert ds.name == "mine" and ds.signal_kind == kind
    assert ds.class_names == ("a", "b", "c") and ds.num_classes == 3
    _assert_round_trip(ds, x, y, model_shape)
    assert np.bincount(ds.y_test).tolist() == [2, 2, 2]  # stratified 0.15 of 10 -> 2


def test_npz_string_labels_and_default_names(tmp_path):
    x, y = _examples(6, (16,), classes=2)
    path = tmp_path / "s.npz"
    np.savez(path, x=x, y=np.where(y == 0, "star", "planet"))
    ds = load_dataset(DataSpec(source="npz", path=str(path), normalize="none"), seed=0)
    assert ds.class_names == ("planet", "star")
    got_x, got_y = _all_splits(ds)
    first = got_x[:, 0, 0, 0]
    np.testing.assert_array_equal(got_y, np.where(np.round(first) % 2 == 0, 1, 0))  # star = 1

    np.savez(path, x=x, y=y)
    assert load_dataset(DataSpec(source="npz", path=str(path)), seed=0).class_names == ("0", "1")


def test_per_sample_normalisation(tmp_path):
    x, y = _examples(6, (16,))
    x[0] = 5.0  # a constant example must not become NaN
    path = tmp_path / "n.npz"
    np.savez(path, x=x, y=y)
    got_x, _ = _all_splits(load_dataset(DataSpec(source="npz", path=str(path)), seed=0))
    flat = got_x.reshape(len(got_x), -1)
    assert np.all(np.isfinite(flat))
    np.testing.assert_allclose(flat.mean(1), 0, atol=1e-5)
    stds = flat.std(1)
    assert np.sum(stds == 0) == 1 and np.allclose(stds[stds > 0], 1, atol=1e-4)


def _write_csv(path, x, labels, header=None):
    lines = [header] if header else []
    lines += [",".join([str(lab)] + [repr(float(v)) for v in row.ravel()]) for lab, row in zip(labels, x)]
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    "shape, model_shape, kind",
    [((24, 1), (1, 24, 1), "1d"), ((24, 2), (1, 24, 2), "1d"), ((3, 4, 2), (3, 4, 2), "2d")],
)
def test_csv_round_trip(tmp_path, shape, model_shape, kind):
    x, y = _examples(8, shape)
    path = tmp_path / "rows.csv"
    _write_csv(path, x, y)
    spec = DataSpec(source="csv", path=str(path), input_shape=shape, normalize="none")
    ds = load_dataset(spec, seed=1)
    assert ds.name == "rows" and ds.signal_kind == kind and ds.class_names == ("0", "1", "2")
    _assert_round_trip(ds, x, y, model_shape)


def test_csv_string_labels_and_header(tmp_path):
    x, y = _examples(5, (8, 1), classes=2)
    path = tmp_path / "named.csv"
    names = np.array(["transit", "noise"])[y]
    _write_csv(path, x, names, header="label," + ",".join(f"v{i}" for i in range(8)))
    ds = load_dataset(DataSpec(source="csv", path=str(path), input_shape=(8, 1), normalize="none"), seed=0)
    assert ds.class_names == ("noise", "transit")  # sorted; transit (y=0) becomes index 1
    _assert_round_trip(ds, x, 1 - y, (1, 8, 1))


# --- errors: each names the file and the problem -------------------------------------------------


def _npz(tmp_path, name="bad.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def _load(path, source="npz", **kw):
    return load_dataset(DataSpec(source=source, path=str(path), **kw), seed=0)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nothere\.npz: data file not found"):
        _load(tmp_path / "nothere.npz")
    with pytest.raises(DataError, match=r"nothere\.csv: data file not found"):
        _load(tmp_path / "nothere.csv", source="csv", input_shape=(4, 1))


def test_not_an_npz(tmp_path):
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(DataError, match=r"text\.npz: not an npz archive"):
        _load(text)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(DataError, match=r"single\.npy: not an npz archive"):
        _load(single)


@pytest.mark.parametrize("missing", ["x", "y"])
def test_npz_missing_key(tmp_path, missing):
    x, y = _examples(5, (8,))
    arrays = {"x": x, "y": y}
    del arrays[missing]
    path = _npz(tmp_path, **arrays)
    with pytest.raises(DataError, match=rf"bad\.npz: missing key '{missing}'"):
        _load(path)


def test_npz_length_mismatch(tmp_path):
    x, y = _examples(5, (8,))
    path = _npz(tmp_path, x=x, y=y[:-1])
    with pytest.raises(DataError, match=r"bad\.npz: x has 15 examples but y has 14 labels"):
        _load(path)


def test_npz_bad_shapes_and_values(tmp_path):
    x, y = _examples(5, (8,))
    with pytest.raises(DataError, match=r"bad\.npz: x has shape \(15,\)"):
        _load(_npz(tmp_path, x=x[:, 0], y=y))
    x_nan = x.copy()
    x_nan[3, 2] = np.nan
    with pytest.raises(DataError, match=r"bad\.npz: x contains NaN"):
        _load(_npz(tmp_path, x=x_nan, y=y))
    with pytest.raises(DataError, match=r"bad\.npz: x must be numeric"):
        _load(_npz(tmp_path, x=x.astype(str), y=y))
    with pytest.raises(DataError, match=r"bad\.npz: label 2 is out of range for 2 class_names"):
        _load(_npz(tmp_path, x=x, y=y, class_names=np.array(["a", "b"])))


def test_fewer_than_two_classes(tmp_path):
    x, _ = _examples(5, (8,))
    with pytest.raises(DataError, match=r"bad\.npz: fewer than 2 classes"):
        _load(_npz(tmp_path, x=x, y=np.zeros(len(x), dtype=int)))
    path = tmp_path / "one.csv"
    _write_csv(path, x, ["only"] * len(x))
    with pytest.raises(DataError, match=r"one\.csv: fewer than 2 classes"):
        _load(path, source="csv", input_shape=(8, 1))


def test_too_few_examples_to_split(tmp_path):
    x, y = _examples(5, (8,))
    y[:] = 0
    y[[0, 1]] = 1  # class "1" has 2 examples: cannot fill train, val and test
    path = _npz(tmp_path, x=x, y=y)
    with pytest.raises(DataError, match=r"bad\.npz: class '1' has only 1 training example\(s\); k-fold"):
        _load(path)
    y[[0, 1]] = 0
    y[0] = 1  # one example of class "1": nothing left to train on once the test part is held out
    with pytest.raises(DataError, match=r"bad\.npz: class '1' has only 1 examples, too few to split off a test"):
        _load(_npz(tmp_path, x=x, y=y))


def test_csv_non_numeric_value_names_line(tmp_path):
    path = tmp_path / "broken.csv"
    path.write_text("0,1,2,3\n1,4,5,6\n0,7,oops,9\n1,1,1,1\n")
    with pytest.raises(DataError, match=r"broken\.csv: line 3: non-numeric value 'oops'"):
        _load(path, source="csv", input_shape=(3, 1))


def test_csv_needs_input_shape(tmp_path):
    path = tmp_path / "noshape.csv"
    path.write_text("0,1,2\n1,3,4\n")
    with pytest.raises(DataError, match=r"noshape\.csv: csv data needs data\.input_shape"):
        _load(path, source="csv")


def test_csv_value_count_mismatch(tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("0,1,2,3,4\n1,1,2,3\n")
    with pytest.raises(DataError, match=r"short\.csv: line 2 has 3 values but input_shape \(2, 2\) needs 4"):
        _load(path, source="csv", input_shape=(2, 2))
