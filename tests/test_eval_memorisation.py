"""Memorisation check: nearest-training distances against numpy, and the report on copying,
held-out-like, partly copying and underfitting generators."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import mannwhitneyu, norm

from vamoh.checks import ConfigError, DataError
from vamoh.eval.memorisation import memorisation_report, nearest_train_distances


def numpy_nearest(samples: np.ndarray, train: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray]:
    s = samples.reshape(len(samples), -1).astype(np.float64)
    t = train.reshape(len(train), -1).astype(np.float64)
    if metric == "euclidean":
        d = np.sqrt(((s[:, None, :] - t[None, :, :]) ** 2).sum(-1))
    else:
        d = 1.0 - (s / np.linalg.norm(s, axis=1, keepdims=True)) @ (t / np.linalg.norm(t, axis=1, keepdims=True)).T
    return d.min(axis=1), d.argmin(axis=1)


def draw(rng: np.random.Generator, n: int, d: int = 16) -> np.ndarray:
    """n samples of the 'data distribution': a correlated Gaussian in d dimensions."""
    mixing = np.linspace(0.5, 1.5, d)
    return rng.normal(size=(n, d)) * mixing


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    train, test = draw(rng, 400), draw(rng, 300)
    test_to_train, _ = nearest_train_distances(test, train)
    return {"rng": rng, "train": train, "test": test, "test_to_train": test_to_train}


# ----------------------------------------------------------------------------- nearest distances


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_nearest_train_distances_equal_numpy_for_any_batch_size(metric):
    rng = np.random.default_rng(1)
    samples, train = rng.normal(size=(23, 7)), rng.normal(size=(41, 7))
    expected_d, expected_i = numpy_nearest(samples, train, metric)
    for batch_size in (1, 5, 1024):
        d, i = nearest_train_distances(samples, train, metric=metric, batch_size=batch_size)
        assert d.shape == (23,) and d.dtype == np.float64 and i.dtype == np.int64
        assert np.allclose(d, expected_d, rtol=1e-10, atol=1e-12)
        assert np.array_equal(i, expected_i)


def test_images_are_compared_in_pixel_space():
    rng = np.random.default_rng(2)
    train = rng.integers(0, 256, (30, 8, 8, 3), dtype=np.uint8)
    samples = rng.integers(0, 256, (12, 8, 8, 3), dtype=np.uint8)
    samples[3] = train[17]  # an exact copy
    d, i = nearest_train_distances(torch.from_numpy(samples), torch.from_numpy(train), batch_size=7)
    expected_d, expected_i = numpy_nearest(samples, train, "euclidean")
    assert np.allclose(d, expected_d, rtol=1e-10) and np.array_equal(i, expected_i)
    assert i[3] == 17 and d[3] < 1e-4 * np.median(d)


def test_bad_inputs_raise_one_clear_error():
    x = np.ones((4, 3))
    with pytest.raises(ConfigError, match="metric='manhattan'"):
        nearest_train_distances(x, x, metric="manhattan")
    with pytest.raises(DataError, match="the shape of one sample differs"):
        nearest_train_distances(x, np.ones((4, 5)))
    with pytest.raises(DataError, match="zero vector"):
        nearest_train_distances(x, np.zeros((2, 3)), metric="cosine")
    with pytest.raises(DataError, match="samples: contains NaN"):
        nearest_train_distances(np.full((2, 3), np.nan), x)
    with pytest.raises(DataError, match="median distance is 0"):
        memorisation_report(np.ones(5), np.zeros(5))
    with pytest.raises(ConfigError, match="quantile=1.5"):
        memorisation_report(np.ones(5), np.ones(5), quantile=1.5)


# ----------------------------------------------------------------------------- the report


def test_a_generator_of_training_copies_is_flagged(data):
    picks = data["rng"].choice(len(data["train"]), 200)
    gen_to_train, index = nearest_train_distances(data["train"][picks], data["train"])
    assert np.array_equal(index, picks)
    report = memorisation_report(gen_to_train, data["test_to_train"])
    assert report["flagged"] is True
    assert report["median_ratio"] < 1e-6
    assert report["frac_below_test_quantile"] == 1.0 and report["frac_below_test_min"] == 1.0
    assert report["auc_closer"] == 1.0 and report["mannwhitney_z"] < -10
    assert len(report["closest_generated"]) == 16


def test_a_generator_of_held_out_like_samples_is_not_flagged(data):
    gen_to_train, _ = nearest_train_distances(draw(data["rng"], 300), data["train"])
    report = memorisation_report(gen_to_train, data["test_to_train"])
    assert report["flagged"] is False
    assert 0.85 < report["median_ratio"] < 1.15
    assert report["frac_below_test_quantile"] < 0.1
    assert abs(report["auc_closer"] - 0.5) < 0.07 and abs(report["mannwhitney_z"]) < 3


def test_partial_copying_is_flagged_and_underfitting_is_not(data):
    rng = data["rng"]
    # 30 % slightly noisy copies of training examples, 70 % new samples.
    copies = data["train"][rng.choice(len(data["train"]), 90)] + rng.normal(0, 1e-3, (90, 16))
    partial, _ = nearest_train_distances(np.concatenate([copies, draw(rng, 210)]), data["train"])
    report = memorisation_report(partial, data["test_to_train"])
    assert report["flagged"] is True and report["frac_below_test_quantile"] >= 0.3
    assert set(report["closest_generated"]) <= set(range(90))  # the closest ones are the copies
    # Samples far from the data (a blurry or broken generator) are not copies.
    far, _ = nearest_train_distances(draw(rng, 300) * 3.0, data["train"])
    report = memorisation_report(far, data["test_to_train"])
    assert report["flagged"] is False and report["median_ratio"] > 1.5 and report["mannwhitney_z"] > 3


def test_mann_whitney_numbers_equal_pair_counts_and_scipy():
    rng = np.random.default_rng(3)
    gen = np.round(rng.gamma(2.0, 1.0, 70), 1)  # rounded: many ties, to exercise the tie correction
    test = np.round(rng.gamma(2.3, 1.0, 50), 1)
    report = memorisation_report(gen, test)
    greater = (gen[:, None] > test[None, :]).sum() + 0.5 * (gen[:, None] == test[None, :]).sum()
    assert report["mannwhitney_u"] == greater
    closer = (gen[:, None] < test[None, :]).mean() + 0.5 * (gen[:, None] == test[None, :]).mean()
    assert report["auc_closer"] == pytest.approx(closer, abs=1e-12)
    # Z, tie-corrected, without continuity correction: scipy's asymptotic one-sided p is Phi(Z).
    p = mannwhitneyu(gen, test, alternative="less", method="asymptotic", use_continuity=False).pvalue
    assert norm.cdf(report["mannwhitney_z"]) == pytest.approx(p, rel=1e-9)
    assert report["test_quantile_distance"] == np.quantile(test, 0.05)
    assert report["frac_below_test_quantile"] == pytest.approx((gen < np.quantile(test, 0.05)).mean())
