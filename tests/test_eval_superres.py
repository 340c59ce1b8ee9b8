"""Super-resolution against a true 2x render and completion against the truth: the alignment of the 2x query, the
model-free baselines, the hidden-region scores, each against a closed form or an independent computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vamoh.checks import DataError
from vamoh.eval.completion import masked_voxel_iou, missing_region, observed_mean_prediction, region_scores
from vamoh.eval.superres import cell_centre_coordinates, score, superres_scores, upsample_baseline
from vamoh.pointcloud import PointCloudBatch, grid_coordinates


def test_cell_centres_sit_a_quarter_cell_either_side_of_each_1x_point():
    q = cell_centre_coordinates((4, 5), 2)  # (8 * 10, 2)
    assert q.shape == (80, 2)
    rows = q.reshape(8, 10, 2)[:, 0, 0].double()
    # 1x index j sits at 2j/3 - 1 on a 4-point axis; cell k of the 2x grid at 1x index (k + 0.5)/2 - 0.5
    expected = torch.tensor([2 * ((k + 0.5) / 2 - 0.5) / 3 - 1 for k in range(8)], dtype=torch.float64)
    torch.testing.assert_close(rows, expected, atol=1e-6, rtol=0)
    # invariance: each 2x2 block of cell centres averages to the 1x point it refines, and no cell centre is a 1x point
    blocks = q.reshape(4, 2, 5, 2, 2).mean(dim=(1, 3)).reshape(-1, 2)
    torch.testing.assert_close(blocks, grid_coordinates((4, 5)), atol=1e-6, rtol=0)
    assert torch.cdist(q, grid_coordinates((4, 5))).min() > 0.1
    with pytest.raises(DataError, match="factor"):
        cell_centre_coordinates((4, 4), 1)


def test_bicubic_baseline_keeps_flat_images_flat_and_matches_a_linear_ramp_inside():
    flat = np.full((2, 8, 8, 3), 77, dtype=np.uint8)
    assert (upsample_baseline(flat, "image") == 77).all()
    # a horizontal ramp 0, 20, ..., 140: Keys' cubic reproduces linear functions, so away from the borders the 2x cell
    # centres (1x positions j -/+ 1/4) get 20 * (j -/+ 1/4)
    ramp = np.tile((np.arange(8) * 20).astype(np.uint8)[None, None, :, None], (1, 8, 1, 1))
    up = upsample_baseline(ramp, "image")[0, 4, :, 0].astype(float)
    expected = 20 * ((np.arange(16) + 0.5) / 2 - 0.5)
    np.testing.assert_allclose(up[4:12], expected[4:12], atol=1.0)
    with pytest.raises(DataError, match="uint8"):
        upsample_baseline(ramp.astype(np.float32), "image")


def test_nearest_baseline_for_voxels_repeats_every_voxel():
    v = (np.random.default_rng(0).random((2, 3, 3, 3)) > 0.5).astype(np.float64)
    up = upsample_baseline(v, "voxels")
    assert up.shape == (2, 6, 6, 6)
    np.testing.assert_array_equal(up[:, ::2, 1::2, ::2], v)
    np.testing.assert_array_equal(up.reshape(2, 3, 2, 3, 2, 3, 2).mean(axis=(2, 4, 6)), v)
    # scored against itself upsampled: IoU 1
    np.testing.assert_array_equal(score(up, up, "voxels"), [1.0, 1.0])


class ConstantModel(torch.nn.Module):
    """Reconstructs every query point with the observed sample's mean colour."""

    can_reconstruct = True

    def __init__(self) -> None:
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(1))

    @property
    def device(self):
        return self.p.device

    def reconstruct(self, observed, query_coords):
        q = query_coords if query_coords.dim() == 2 else query_coords[0]
        return observed.features.mean(1, keepdim=True).expand(-1, q.shape[0], -1)


def test_superres_scores_a_model_against_the_truth_in_the_paper_convention():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 256, (3, 8, 8, 3)).astype(np.uint8)
    low = truth.reshape(3, 4, 2, 4, 2, 3).mean(axis=(2, 4)) / 255.0  # (3, 4, 4, 3)
    feats = torch.from_numpy(low.reshape(3, 16, 3)).float()
    batch = PointCloudBatch(grid_coordinates((4, 4))[None].expand(3, -1, -1), feats, torch.ones(3, 16, dtype=torch.bool), (4, 4))
    values, pred = superres_scores(ConstantModel(), [batch], truth, "image")
    assert pred.shape == (3, 8, 8, 3) and pred.dtype == np.uint8
    # by hand: the prediction is each sample's mean colour, rounded; eq. 19 sums the squared error over channels
    mean = np.rint(np.clip(feats.numpy().mean(1), 0, 1) * 255)  # (3, 3)
    mse = ((truth.astype(float) - mean[:, None, None]) ** 2).sum(-1).reshape(3, -1).mean(1)
    np.testing.assert_allclose(values, 10 * np.log10(255**2 / mse), rtol=1e-9)
    with pytest.raises(DataError, match="2x renders"):
        superres_scores(ConstantModel(), [batch], truth[:2], "image")


def test_masked_voxel_iou_counts_the_hidden_region_only():
    target = np.zeros((1, 4, 4, 4))
    target[0, :, :, 2:] = 1  # occupied: the hidden half only
    pred = np.zeros_like(target)
    pred[0, :, :, 3] = 0.9  # half of the hidden occupied voxels
    pred[0, :, :, 0] = 0.9  # wrong, but in the observed part: not counted
    region = missing_region("half", (4, 4, 4))[None]
    np.testing.assert_allclose(masked_voxel_iou(pred, target, region), [0.5])
    np.testing.assert_allclose(masked_voxel_iou(target, target, region), [1.0])
    np.testing.assert_allclose(masked_voxel_iou(np.zeros_like(target), np.zeros_like(target), region), [1.0])  # both empty
    scores = region_scores(pred, target, "half", "voxels")
    assert set(scores) == {"psnr", "mse", "voxel_iou"} and scores["voxel_iou"][0] == pytest.approx(0.5)


def test_observed_mean_prediction_uses_only_the_observed_part():
    img = np.zeros((1, 4, 4, 3), dtype=np.uint8)
    img[0, :, :2] = [10, 20, 30]  # observed (left half)
    img[0, :, 2:] = [200, 200, 200]  # hidden (right half): must not leak into the guess
    region = missing_region("half", (4, 4))[None]
    guess = observed_mean_prediction(img, region)
    assert guess.dtype == np.uint8 and (guess == np.array([10, 20, 30], dtype=np.uint8)).all()
    psnr = region_scores(guess, img, "half", "image")["psnr"][0]
    mse = (190**2 + 180**2 + 170**2)  # summed over channels, the same at every hidden pixel
    assert psnr == pytest.approx(10 * math.log10(255**2 / mse), rel=1e-12)
    with pytest.raises(DataError, match="no observed point"):
        observed_mean_prediction(img, np.ones((1, 4, 4), dtype=bool))
