"""Is the model copying training examples? Generated-to-train against test-to-train nearest distances.

For every generated sample, the distance to its nearest training example; the same for every test
example, which the model never saw and which is what "a new sample from the data distribution" looks
like. If the generator produces new samples, the two distance distributions match. If it copies (all
or part of) the training set, the generated distances pile up near 0. This is the global form of the
data-copying test of Meehan, Chaudhuri & Dasgupta (AISTATS 2020): a Mann-Whitney U test between the two
sets of distances, reported as a Z-score (Z << 0: copying; Z >> 0: samples farther from the training set
than real data are, i.e. underfitting or low fidelity).

Distances in a feature space (the suite's extractor or Inception, as for FID) and/or in pixel space
(flattened images, L2): pixel space catches exact and near-exact copies, feature space catches copies up to
small shifts and colour changes. Use the same training set, metric and features for both sets of distances.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy.stats import mannwhitneyu
from torch import Tensor

from ..checks import ConfigError, DataError, check, check_choice, check_range
from .coverage import check_count, to_matrix


def _euclidean(a: Tensor, b: Tensor) -> Tensor:
    return torch.cdist(a, b)  # (c, n)


def _cosine(a: Tensor, b: Tensor) -> Tensor:
    # 1 - cosine similarity, in [0, 2]; a zero vector has no direction, so its rows are refused upstream.
    return 1.0 - torch.nn.functional.normalize(a, dim=1) @ torch.nn.functional.normalize(b, dim=1).T  # (c, n)


METRICS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {"euclidean": _euclidean, "cosine": _cosine}


def nearest_train_distances(
    samples: Tensor | np.ndarray, train: Tensor | np.ndarray, metric: str = "euclidean", batch_size: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Distance from each sample to its nearest training example, and that example's index.

    ``samples`` (M, ...) and ``train`` (N, ...) are feature vectors (M, d) / (N, d), or images
    (M, H, W, C) / (N, H, W, C) of any dtype (pixel space: each image is flattened to one vector; use the
    same value scale for both). ``metric``: "euclidean" (L2) or "cosine" (1 - cosine similarity).
    Returns float64 (M,) distances and int64 (M,) indices into ``train``. Memory: ``batch_size`` x
    ``batch_size`` distances and ``batch_size`` rows of each input in float64 at a time (10,000 generated
    against 27,000 CelebA-HQ train images of 64 x 64 x 3 never holds either set in float64 at once).
    """
    check_choice("metric", metric, tuple(METRICS), ConfigError)
    check_count("batch_size", batch_size)
    s_all, t_all = torch.as_tensor(samples).detach(), torch.as_tensor(train).detach()
    check(s_all.dim() >= 2 and t_all.dim() >= 2, f"samples {tuple(s_all.shape)}, train {tuple(t_all.shape)}: expected (n, d) or (n, H, W, C)", DataError)
    check(s_all.shape[1:] == t_all.shape[1:], f"samples {tuple(s_all.shape)} and train {tuple(t_all.shape)}: the shape of one sample differs", DataError)
    check(s_all.shape[0] > 0 and t_all.shape[0] > 0, f"samples {tuple(s_all.shape)}, train {tuple(t_all.shape)}: expected at least one of each", DataError)
    distance = METRICS[metric]
    best = torch.full((s_all.shape[0],), float("inf"), dtype=torch.float64)
    index = torch.zeros(s_all.shape[0], dtype=torch.long)
    for t_start in range(0, t_all.shape[0], batch_size):
        # Chunks are converted to float64 on the fly: the uint8 images stay uint8 in memory.
        t = to_matrix(t_all[t_start : t_start + batch_size], "train", flatten=True)  # (c_t, d)
        check(metric != "cosine" or bool((t.norm(dim=1) > 0).all()), "train: a zero vector has no cosine distance", DataError)
        for s_start in range(0, s_all.shape[0], batch_size):
            s = to_matrix(s_all[s_start : s_start + batch_size], "samples", flatten=True).to(t.device)  # (c_s, d)
            check(metric != "cosine" or bool((s.norm(dim=1) > 0).all()), "samples: a zero vector has no cosine distance", DataError)
            d_min, d_arg = distance(s, t).min(dim=1)  # (c_s,) nearest within this train chunk
            rows = slice(s_start, s_start + len(s))
            closer = d_min.cpu() < best[rows]  # ties keep the lowest train index
            best[rows] = torch.where(closer, d_min.cpu(), best[rows])
            index[rows] = torch.where(closer, d_arg.cpu() + t_start, index[rows])
    return best.clamp_min(0.0).numpy(), index.numpy()


def _mann_whitney_z(u: float, m: int, n: int, pooled: np.ndarray) -> float:
    """Normal-approximation Z of a Mann-Whitney U (first sample of size m), with the tie correction."""
    _, ties = np.unique(pooled, return_counts=True)
    total = m + n
    variance = m * n / 12.0 * ((total + 1) - float((ties**3 - ties).sum()) / (total * (total - 1)))
    return (u - m * n / 2.0) / np.sqrt(variance) if variance > 0 else 0.0


def memorisation_report(
    gen_to_train: np.ndarray,
    test_to_train: np.ndarray,
    quantile: float = 0.05,
    alpha: float = 0.01,
    tail_excess: float = 2.0,
    n_closest: int = 16,
) -> dict[str, float | int | bool | list[int]]:
    """Numbers to judge whether generated samples copy training examples.

    ``gen_to_train`` (M,): nearest-training distances of generated samples; ``test_to_train`` (T,): the
    same for held-out test examples (both from ``nearest_train_distances``, same train set and metric).
    Returns:

    - ``median_ratio``: median(gen) / median(test); ~1 for new samples, -> 0 when copying, > 1 when the
      samples are farther from the data than real examples are (poor fidelity, not copying);
    - ``frac_below_test_quantile``: fraction of generated samples closer to the training set than the
      ``quantile`` (5 %) closest test examples (``test_quantile_distance``); ~``quantile`` for new samples,
      -> 1 when copying. Partial copying shows here before it moves the median;
    - ``frac_below_test_min``: fraction closer than the closest test example (expected ~1 / (T + 1));
    - ``mannwhitney_u`` (for the generated sample), ``mannwhitney_z`` (Meehan et al.'s Z_U, tie-corrected),
      ``mannwhitney_p`` (one-sided: generated distances stochastically smaller), ``auc_closer`` = P(a
      generated distance < a test distance) + P(tie) / 2 = 1 - U / (M T) (0.5 for new samples, 1 for copies);
    - ``flagged``: ``mannwhitney_p < alpha`` and ``frac_below_test_quantile > tail_excess * quantile``,
      a screening rule: significance alone is reached by negligible shifts at M = 10,000, so the tail
      excess (by default twice as many very close samples as real data has) is required as well;
    - ``closest_generated``: indices of the ``n_closest`` generated samples nearest to the training set,
      to show beside their nearest training examples (the evidence a reader needs to see);
    - ``num_generated``, ``num_test``, ``median_generated``, ``median_test``, ``test_quantile``.
    """
    gen = np.asarray(gen_to_train, dtype=np.float64).reshape(-1)
    test = np.asarray(test_to_train, dtype=np.float64).reshape(-1)
    for name, d in (("gen_to_train", gen), ("test_to_train", test)):
        check(d.size > 0 and bool(np.isfinite(d).all()) and bool((d >= 0).all()), f"{name}: expected a non-empty array of finite distances >= 0", DataError)
    check_range("quantile", quantile, 0.0, 1.0)
    check_range("alpha", alpha, 0.0, 1.0)
    check_count("n_closest", n_closest)
    median_test = float(np.median(test))
    check(median_test > 0, "test_to_train: median distance is 0 (half the test set duplicates training examples): no reference to compare with", DataError)
    M, T = gen.size, test.size
    threshold = float(np.quantile(test, quantile))
    result = mannwhitneyu(gen, test, alternative="less")  # U of the generated sample: # pairs gen > test (+ ties / 2)
    u = float(result.statistic)
    frac_quantile = float((gen < threshold).mean())
    p_value = float(result.pvalue)
    return {
        "num_generated": M,
        "num_test": T,
        "median_generated": float(np.median(gen)),
        "median_test": median_test,
        "median_ratio": float(np.median(gen)) / median_test,
        "test_quantile": quantile,
        "test_quantile_distance": threshold,
        "frac_below_test_quantile": frac_quantile,
        "frac_below_test_min": float((gen < test.min()).mean()),
        "mannwhitney_u": u,
        "mannwhitney_z": float(_mann_whitney_z(u, M, T, np.concatenate([gen, test]))),
        "mannwhitney_p": p_value,
        "auc_closer": 1.0 - u / (M * T),
        "flagged": bool(p_value < alpha and frac_quantile > tail_excess * quantile),
        "closest_generated": np.argsort(gen, kind="stable")[:n_closest].tolist(),
    }
