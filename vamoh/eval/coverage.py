"""Density and coverage (Naeem et al., ICML 2020), on the features and k of improved precision/recall.

With real features X (N, d), generated features Y (M, d), and r_i the distance from X_i to its k-th
nearest *other* real sample (the radii come from the real set only):

- density  = 1 / (k M) * sum_j sum_i 1[ |Y_j - X_i| < r_i ]   (expected ~1 when Y ~ the real distribution;
  it is not capped at 1: a generator that piles samples into dense real regions scores > 1);
- coverage = 1 / N * sum_i 1[ min_j |Y_j - X_i| < r_i ]        (fraction of real balls holding a sample).

Balls are open (strict ``<``), as in the authors' ``prdc`` package (``compute_prdc``), so two identical
sets without duplicate points give density exactly 1 and coverage 1. torch-fidelity's improved
precision/recall uses closed balls (``<=``); the two agree except when a distance equals a radius exactly.

Why not call ``prdc.compute_prdc`` here (it is the tests' reference): it builds the full N x N, M x M
and N x M distance matrices at once (plus int64 ``argpartition`` indices of the same size: ~9 GB for
CelebA-HQ's 27,000 train images), runs sklearn with a hard-coded ``n_jobs=8``, computes the M x M
generated radii that density and coverage do not need, and prints on every call. This module holds at
most ``batch_size`` rows of distances at a time and runs on the inputs' device.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..checks import ConfigError, DataError, check
from .keys import COVERAGE, DENSITY

# Result keys of ``density_coverage``.


def to_matrix(x: Tensor | np.ndarray, name: str, flatten: bool = False) -> Tensor:
    """float64 tensor (n, d) of finite values; with ``flatten`` any (n, ...) array is flattened per row."""
    t = torch.as_tensor(x).detach()
    if flatten and t.dim() > 2:
        t = t.reshape(t.shape[0], -1)  # (n, prod(...)): pixel space of images (n, H, W, C)
    check(t.dim() == 2, f"{name}: shape {tuple(t.shape)}, expected (n, d)", DataError)
    check(t.shape[0] > 0 and t.shape[1] > 0, f"{name}: shape {tuple(t.shape)}, expected at least one row and one column", DataError)
    t = t.to(torch.float64)  # distances that decide a strict inequality: no float32 cancellation
    check(bool(torch.isfinite(t).all()), f"{name}: contains NaN or infinite values", DataError)
    return t


def check_count(name: str, value: int) -> None:
    """``value`` must be an int >= 1 (k, a batch size, a number of points)."""
    check(isinstance(value, int) and not isinstance(value, bool) and value >= 1, f"{name}={value!r}: expected an int >= 1", ConfigError)


def knn_radii(features: Tensor | np.ndarray, k: int = 3, batch_size: int = 1024) -> Tensor:
    """Distance from each row of ``features`` (N, d) to its k-th nearest other row: float64 (N,).

    The point itself is excluded by index, not by value, so duplicates count as neighbours at distance
    0 (as in prdc and torch-fidelity, which take the (k+1)-th smallest distance including the self-distance).
    """
    check_count("k", k)
    check_count("batch_size", batch_size)
    x = to_matrix(features, "features")
    N = x.shape[0]
    check(N > k, f"features: {N} rows, need more than k={k} for a k-th nearest other neighbour", DataError)
    radii = torch.empty(N, dtype=torch.float64, device=x.device)
    for start in range(0, N, batch_size):
        rows = torch.arange(start, min(start + batch_size, N), device=x.device)
        d = torch.cdist(x[rows], x)  # (c, N)
        d[torch.arange(len(rows), device=x.device), rows] = float("inf")  # leave each point out of its own ball
        radii[rows] = d.kthvalue(k, dim=1).values
    return radii


def density_coverage(
    real_features: Tensor | np.ndarray, fake_features: Tensor | np.ndarray, k: int = 3, batch_size: int = 1024
) -> dict[str, float]:
    """Density and coverage of generated features (M, d) against real features (N, d), k-NN radii from the real set.

    Returns ``{"density": float, "coverage": float}``. Memory: ``batch_size`` x max(N, M) float64
    distances at a time. Use the same features, the same k and the same real subset as precision/recall
    (the suite: ``eval.prc_neighborhood`` = 3, real subset of ``eval.num_samples`` when ``prc_match_sizes``),
    because the radii shrink as the real set grows.
    """
    real = to_matrix(real_features, "real_features")
    fake = to_matrix(fake_features, "fake_features").to(real.device)
    check(real.shape[1] == fake.shape[1], f"feature dims differ: real {tuple(real.shape)}, fake {tuple(fake.shape)}", DataError)
    radii = knn_radii(real, k, batch_size)  # (N,)
    N, M = real.shape[0], fake.shape[0]
    inside_total = 0  # sum over (i, j) of 1[Y_j in B(X_i, r_i)]
    covered = 0  # number of real balls holding at least one generated sample
    for start in range(0, N, batch_size):
        d = torch.cdist(real[start : start + batch_size], fake)  # (c, M)
        r = radii[start : start + batch_size, None]  # (c, 1)
        inside_total += int((d < r).sum())
        covered += int((d.min(dim=1).values < r[:, 0]).sum())
    return {DENSITY: inside_total / (k * M), COVERAGE: covered / N}
