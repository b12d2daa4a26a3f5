"""The synthetic LARUN spectral task: determinism, shapes, physics per class, and difficulty."""
import os
import time

import numpy as np
import pytest

from autotune.data import CLASS_NAMES, DataSpec, Dataset, generate_spectral, load_dataset
from autotune.errors import DataError


def _normalised(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True)


def test_class_names_order():
    assert CLASS_NAMES == (
        "noise", "stellar_signal", "planetary_transit",
        "eclipsing_binary", "instrument_artifact", "unknown_anomaly",
    )


def test_deterministic_in_seed():
    x1, y1 = generate_spectral(10, 256, seed=1)
    x2, y2 = generate_spectral(10, 256, seed=1)
    x3, _ = generate_spectral(10, 256, seed=2)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.allclose(x1, x3)


@pytest.mark.parametrize("length", [256, 300])
def test_shapes_dtypes_balance(length):
    x, y = generate_spectral(12, length, seed=0)
    assert x.shape == (72, length) and x.dtype == np.float32
    assert y.shape == (72,) and y.dtype == np.int64
    assert np.bincount(y).tolist() == [12] * 6
    assert np.all(np.isfinite(x))
    assert np.all(x.std(axis=1) > 0)


def test_bad_arguments():
    with pytest.raises(DataError, match="samples_per_class"):
        generate_spectral(0, 256, seed=0)
    with pytest.raises(DataError, match="length"):
        generate_spectral(5, 16, seed=0)


def test_fast_enough():
    best = min(_timed(lambda: generate_spectral(500, 1024, seed=s)) for s in range(2))
    assert best < 2.0, f"6 x 500 curves of 1024 took {best:.2f} s"


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def test_every_class_has_its_physical_signature():
    x, y = generate_spectral(100, 512, seed=0)
    z = _normalised(x.astype(np.float64))
    skew = (z**3).mean(1)
    kurt = (z**4).mean(1) - 3
    ac1 = (z[:, 1:] * z[:, :-1]).mean(1)  # lag-1 autocorrelation: smooth signals near 1
    med = {name: {} for name in CLASS_NAMES}
    for k, name in enumerate(CLASS_NAMES):
        for stat, v in (("skew", skew), ("kurt", kurt), ("ac1", ac1), ("min", z.min(1)), ("max", z.max(1))):
            med[name][stat] = float(np.median(v[y == k]))
    noise, stellar, transit = med["noise"], med["stellar_signal"], med["planetary_transit"]
    eb, artifact, anomaly = med["eclipsing_binary"], med["instrument_artifact"], med["unknown_anomaly"]
    # Noise: Gaussian-like (no skew, no excess kurtosis), weakly correlated (some red noise).
    assert abs(noise["skew"]) < 0.2 and abs(noise["kurt"]) < 0.5 and noise["ac1"] < 0.4
    # Stellar variability: smooth and sinusoid-like (negative excess kurtosis), symmetric.
    assert stellar["ac1"] > noise["ac1"] + 0.4 and stellar["kurt"] < -0.3 and abs(stellar["skew"]) < 0.5
    # Transits and eclipses are dips; eclipses are deeper, with hardly any upward excursions.
    assert transit["skew"] < -1.0 and eb["skew"] < -1.0
    assert eb["min"] < transit["min"] - 0.5 and eb["max"] < transit["max"] - 0.5
    # Flares and other single events: strong positive excursions.
    assert anomaly["skew"] > 1.0 and anomaly["max"] > 4.0
    # Artifacts: heavy tails without a preferred sign (spikes and jumps go both ways).
    assert artifact["kurt"] > 1.0 and abs(artifact["skew"]) < 0.5
    # Gaps (runs of the exact fill value) occur only in the artifact class.
    has_gap = np.array([_longest_zero_run(row) >= 5 for row in x])
    assert has_gap[y == 4].mean() > 0.2
    assert not has_gap[y != 4].any()


def _longest_zero_run(row: np.ndarray) -> int:
    padded = np.concatenate([[0], (row == 0).astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(padded))
    return int((edges[1::2] - edges[::2]).max()) if len(edges) else 0


def test_load_dataset_synthetic():
    spec = DataSpec(samples_per_class=20, length=256, split=(0.6, 0.2, 0.2), cv_below=0)  # a validation split
    ds = load_dataset(spec, seed=3)
    assert isinstance(ds, Dataset)
    assert ds.name == "synthetic_spectral" and ds.signal_kind == "1d"
    assert ds.class_names == CLASS_NAMES and ds.num_classes == 6
    assert ds.input_shape == (1, 256, 1)
    # Stratified: 12/4/4 of each class.
    assert np.bincount(ds.y_train).tolist() == [12] * 6
    assert np.bincount(ds.y_val).tolist() == [4] * 6
    assert np.bincount(ds.y_test).tolist() == [4] * 6
    for x in (ds.x_train, ds.x_val, ds.x_test):
        assert x.dtype == np.float32
        flat = x.reshape(len(x), -1)
        np.testing.assert_allclose(flat.mean(1), 0, atol=1e-4)
        np.testing.assert_allclose(flat.std(1), 1, atol=1e-3)
    # Splits are disjoint and the training set is shuffled, not in class blocks.
    rows = {r.tobytes() for x in (ds.x_train, ds.x_val, ds.x_test) for r in x}
    assert len(rows) == 120
    assert np.any(np.diff(ds.y_train) < 0)
    again = load_dataset(spec, seed=3)
    np.testing.assert_array_equal(ds.x_train, again.x_train)
    np.testing.assert_array_equal(ds.y_test, again.y_test)
    # 96 training examples (< 500 by default): 5-fold validation over them instead of a split.
    folded = load_dataset(DataSpec(samples_per_class=20, length=256, split=(0.6, 0.2, 0.2)), seed=3)
    assert folded.kfold and folded.x_val is None and len(folded.y_train) == 96 and len(folded.folds) == 5
    np.testing.assert_array_equal(folded.y_test, ds.y_test)
    assert sorted(np.concatenate([va for _, va in folded.folds]).tolist()) == list(range(96))
    other = load_dataset(spec, seed=4)
    assert not np.array_equal(ds.x_train, other.x_train)


@pytest.mark.parametrize(
    "spec, match",
    [
        (DataSpec(source="hdf5"), "unknown source"),
        (DataSpec(normalize="minmax"), "normalize"),
        (DataSpec(split=(0.8, 0.3, 0.1)), "split"),
        (DataSpec(split=(0.9, 0.1, 0.0)), "split"),
        (DataSpec(source="npz"), "data.path"),
    ],
)
def test_load_dataset_rejects_bad_spec(spec, match):
    with pytest.raises(DataError, match=match):
        load_dataset(spec, seed=0)


@pytest.mark.slow
def test_task_needs_a_cnn_but_is_not_trivial():
    """Measured (seeds 0-3, 200/class, length 512): logistic 0.14-0.19 (chance 0.17), CNN 0.77-0.82."""
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import tf_keras
    from sklearn.linear_model import LogisticRegression

    ds = load_dataset(DataSpec(samples_per_class=200, length=512), seed=0)
    x_fit = np.concatenate([ds.x_train, ds.x_val])
    y_fit = np.concatenate([ds.y_train, ds.y_val])
    flat = lambda a: a.reshape(len(a), -1)  # noqa: E731
    logistic = LogisticRegression(max_iter=300).fit(flat(x_fit), y_fit).score(flat(ds.x_test), ds.y_test)

    tf_keras.utils.set_random_seed(0)
    L = tf_keras.layers
    model = tf_keras.Sequential([
        L.Input(ds.input_shape),
        L.Conv2D(16, (1, 7), padding="same", activation="relu"),
        L.MaxPooling2D((1, 2)),
        L.Conv2D(32, (1, 5), padding="same", activation="relu"),
        L.MaxPooling2D((1, 2)),
        L.Conv2D(32, (1, 5), padding="same", activation="relu"),
        L.GlobalMaxPooling2D(),  # events can be anywhere in the window
        L.Dense(32, activation="relu"),
        L.Dense(ds.num_classes, activation="softmax"),
    ])
    model.compile(tf_keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_fit, y_fit, epochs=10, batch_size=32, verbose=0)
    cnn = model.evaluate(ds.x_test, ds.y_test, verbose=0)[1]
    print(f"logistic {logistic:.3f}  cnn {cnn:.3f}")
    assert cnn >= 0.7, "a small CNN should learn the shapes"
    assert logistic <= cnn - 0.3, "a linear model on raw curves should not come close"
    assert logistic < 0.35 and cnn < 0.95, "the task should not be trivially solvable"
