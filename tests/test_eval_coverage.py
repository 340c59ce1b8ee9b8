"""Density and coverage against the paper's definitions (numpy brute force), prdc, and closed forms;
prdc's precision/recall against torch-fidelity's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from prdc import compute_prdc
from torch_fidelity.metric_prc import prc_features_to_metric

from vamoh.checks import ConfigError, DataError
from vamoh.eval.coverage import COVERAGE, DENSITY, density_coverage, knn_radii


def paper_density_coverage(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    """Naeem et al. (2020), eqs. for density and coverage, written out with dense numpy distances."""
    real, fake = real.astype(np.float64), fake.astype(np.float64)
    d_rr = np.sqrt(((real[:, None, :] - real[None, :, :]) ** 2).sum(-1))  # (N, N)
    d_rf = np.sqrt(((real[:, None, :] - fake[None, :, :]) ** 2).sum(-1))  # (N, M)
    radii = np.sort(d_rr, axis=1)[:, k]  # column 0 is the point itself (distance 0)
    inside = d_rf < radii[:, None]  # Y_j in B(X_i, NND_k(X_i))
    density = inside.sum() / (k * fake.shape[0])
    coverage = (d_rf.min(axis=1) < radii).mean()
    return float(density), float(coverage)


def gaussian_sets(seed: int, n_real: int = 60, n_fake: int = 45, d: int = 6, shift: float = 0.7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(n_real, d)).astype(np.float32)
    fake = (rng.normal(size=(n_fake, d)) * 1.3 + shift).astype(np.float32)
    return real, fake


@pytest.mark.parametrize("k", [1, 3, 5])
def test_density_coverage_equal_paper_definitions_and_prdc(k):
    real, fake = gaussian_sets(seed=k)
    ours = density_coverage(real, fake, k=k)
    density, coverage = paper_density_coverage(real, fake, k)
    assert 0.0 < coverage < 1.0 and density > 0.0  # a case that discriminates
    assert ours[DENSITY] == pytest.approx(density, abs=1e-12)
    assert ours[COVERAGE] == pytest.approx(coverage, abs=1e-12)
    ref = compute_prdc(real_features=real, fake_features=fake, nearest_k=k)
    assert ours[DENSITY] == pytest.approx(ref["density"], abs=1e-12)
    assert ours[COVERAGE] == pytest.approx(ref["coverage"], abs=1e-12)


def test_radii_come_from_the_real_set_only():
    # Swapping the roles changes the answer: the radii are the real set's, not the generated set's.
    real, fake = gaussian_sets(seed=11, n_real=50, n_fake=50)
    a, b = density_coverage(real, fake, k=3), density_coverage(fake, real, k=3)
    assert a != b
    assert b[DENSITY] == pytest.approx(paper_density_coverage(fake, real, 3)[0], abs=1e-12)


def test_identical_sets_give_density_and_coverage_one():
    real, _ = gaussian_sets(seed=3, n_real=80)
    out = density_coverage(real, real.copy(), k=3)
    # Each real ball holds the point itself and its k-1 strictly nearer neighbours: k of N points per ball.
    assert out[COVERAGE] == 1.0
    assert out[DENSITY] == pytest.approx(1.0, abs=1e-12)


def test_far_away_fake_set_gives_zero():
    real, fake = gaussian_sets(seed=4)
    out = density_coverage(real, fake + 1000.0, k=3)
    assert out == {DENSITY: 0.0, COVERAGE: 0.0}


def test_closed_form_on_a_line():
    # Real points 0..9 on a line, k = 1: every radius is 1. A sample at 0.5 lies in the balls of 0 and 1
    # (density contribution 2), one at 100 lies in none: density = 2 / (1 * 2), coverage = 2 / 10.
    real = np.arange(10, dtype=np.float64)[:, None]
    fake = np.array([[0.5], [100.0]])
    assert torch.equal(knn_radii(real, k=1), torch.ones(10, dtype=torch.float64))
    assert knn_radii(real, k=2)[0] == 2.0 and knn_radii(real, k=2)[5] == 1.0
    assert density_coverage(real, fake, k=1) == {DENSITY: 1.0, COVERAGE: 0.2}


def test_radii_count_duplicates_as_neighbours():
    # Two copies of a point are each other's nearest neighbour at distance 0 (as in prdc / torch-fidelity).
    real = np.array([[0.0], [0.0], [3.0], [7.0]])
    assert knn_radii(real, k=1).tolist() == [0.0, 0.0, 3.0, 4.0]


def test_batch_size_and_input_type_do_not_change_the_result():
    real, fake = gaussian_sets(seed=5, n_real=70, n_fake=33)
    whole = density_coverage(real, fake, k=3, batch_size=1000)
    assert density_coverage(torch.from_numpy(real), torch.from_numpy(fake), k=3, batch_size=7) == whole
    assert density_coverage(real, fake, k=3, batch_size=1) == whole


def test_bad_inputs_raise_one_clear_error():
    real, fake = gaussian_sets(seed=6, n_real=10, n_fake=5)
    with pytest.raises(DataError, match="feature dims differ"):
        density_coverage(real, fake[:, :3], k=3)
    with pytest.raises(DataError, match="more than k=10"):
        density_coverage(real, fake, k=10)
    with pytest.raises(ConfigError, match="k=0"):
        density_coverage(real, fake, k=0)
    bad = fake.copy()
    bad[2, 1] = np.nan
    with pytest.raises(DataError, match="fake_features: contains NaN"):
        density_coverage(real, bad, k=3)
    with pytest.raises(DataError, match=r"real_features: shape \(10,\)"):
        density_coverage(real[:, 0], fake, k=3)


# ------------------------------------------------ prdc's precision/recall vs torch-fidelity's (same k)


def tf_precision_recall(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    """torch-fidelity's improved precision/recall through the path FidelityScorer.prc_values takes."""
    out = prc_features_to_metric(
        torch.from_numpy(fake), torch.from_numpy(real), prc_neighborhood=k, prc_batch_size=16, save_cpu_ram=True, verbose=False
    )  # input 1 = generated, input 2 = real
    return out["precision"], out["recall"]


@pytest.mark.parametrize("k", [1, 3])
def test_prdc_precision_recall_equal_torch_fidelity_without_ties(k):
    real, fake = gaussian_sets(seed=20 + k, n_real=64, n_fake=48)
    ref = compute_prdc(real_features=real, fake_features=fake, nearest_k=k)
    precision, recall = tf_precision_recall(real, fake, k)
    assert 0.0 < precision < 1.0 and 0.0 < recall < 1.0
    # torch-fidelity averages in float32: compare the counts of samples inside, which must be equal.
    assert round(ref["precision"] * len(fake)) == round(precision * len(fake))
    assert round(ref["recall"] * len(real)) == round(recall * len(real))


def test_prdc_and_torch_fidelity_differ_exactly_on_ties():
    # Real 0..4 on a line (k = 1: every real radius is 1), generated {5, 7, 9} (every radius 2).
    # The sample at 5 is at distance 1 = radius of real 4: inside a closed ball (torch-fidelity, <=),
    # outside an open one (prdc, <). Real 3 is at distance 2 = radius of sample 5: same story for recall.
    real = np.arange(5, dtype=np.float32)[:, None]
    fake = np.array([[5.0], [7.0], [9.0]], dtype=np.float32)
    assert tf_precision_recall(real, fake, 1) == pytest.approx((1 / 3, 2 / 5), abs=1e-7)  # float32 means
    ref = compute_prdc(real_features=real, fake_features=fake, nearest_k=1)
    assert (ref["precision"], ref["recall"]) == (0.0, 1 / 5)
