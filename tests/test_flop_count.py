"""The analytical matmul FLOP counts of benchmarks/flops.py against torch's own counter, on real training steps.

Known-answer tests: each runs one real ``training_step`` (forward, backward, optimiser step) of a
small VAMoH, GASP or Functa under ``torch.utils.flop_counter.FlopCounterMode`` and asks for exactly
the count the analytical formula gives from the configuration, batch size and number of points.
The configurations exercise what changes the count: micro-batching (shared products repeated per
micro-batch), per-sample coordinates, average pools, fewer points than centroids, Fourier-space
neighbourhoods, the uniform categorical prior, mixed precision, R1 on the probability or the logit
or off, second- and first-order inner loops.
"""

from __future__ import annotations

import pytest
import torch

from benchmarks.flops import (counted_flops, functa_reconstruction_flops, functa_step_flops, gasp_step_flops,
                              vamoh_step_flops)
from vamoh.interface import DataInfo, build_model
from vamoh.pointcloud import PointCloudBatch, grid_coordinates

IMAGE = DataInfo(2, 3, "discretized_logistic", (16, 16), "image")
VOXELS = DataInfo(3, 1, "bernoulli", (8, 8, 8), "voxels")
POOLED = {"weightnet_hidden": [8, 8], "neighbours": [9, 9, 9], "centroids": [256, 64, 16], "out_channels": [8, 16, 16],
          "pool_neighbours": [9, 9, None], "pool_centroids": [128, 32, None], "generator_hidden": [8]}


def batch_of(info: DataInfo, B: int, points: int | None = None, shared: bool = True, seed: int = 0) -> PointCloudBatch:
    """B samples on the grid (or ``points`` random grid points), the same for every sample unless ``shared`` is False."""
    g = torch.Generator().manual_seed(seed)
    grid = grid_coordinates(info.grid_shape)
    if points is not None:
        grid = grid[torch.randperm(len(grid), generator=g)[:points]]
    D = len(grid)
    coords = grid[None].expand(B, -1, -1)
    if not shared:  # per-sample coordinates: the encoder plans and weight-nets, and the RFF, run per sample
        coords = coords + 1e-3 * torch.randn(B, D, info.coord_dim, generator=g)
    y = torch.rand(B, D, info.feature_dim, generator=g)
    return PointCloudBatch(coords, y, torch.ones(B, D, dtype=torch.bool), ())


def counted_step(name: str, info: DataInfo, overrides: dict, batch: PointCloudBatch, epoch: int = 0):
    torch.manual_seed(0)
    model = build_model(name, info, "tiny", overrides)
    if name == "vamoh":
        model.dropout_alpha = 0.0  # the all-points step
    opts = model.make_optimizers()
    flops, per_op = counted_flops(lambda: model.training_step(batch, opts, 0, epoch))
    assert flops > 0 and set(per_op) <= {"aten.mm", "aten.addmm", "aten.bmm", "aten.baddbmm"}
    return model, flops


VAMOH_CASES = {
    "tiny": ({}, 4, None, True, 0),
    "microbatch_3_of_4": ({"microbatch_size": 3}, 4, None, True, 0),
    "per_sample_coords": ({}, 3, None, False, 0),
    "fourier_space_neighbourhoods": ({"neighbourhoods_in_fourier_space": True}, 3, None, True, 0),
    "uniform_prior_epochs": ({"frozen_uniform_categorical_prior_epochs": 5}, 3, None, True, 0),
    "fewer_points_than_centroids": ({}, 3, 100, True, 0),
    "pools_flow_active": (POOLED, 3, None, True, 5),
    "pools_bf16_microbatch_2": ({**POOLED, "compute_dtype": "bfloat16", "microbatch_size": 2}, 3, None, True, 5),
    "detached_flow": ({**POOLED, "flow_on_detached_posterior": True}, 3, None, True, 5),
}


@pytest.mark.parametrize("case", list(VAMOH_CASES))
def test_vamoh_step_flops_equal_torch_counter(case):
    overrides, B, points, shared, epoch = VAMOH_CASES[case]
    batch = batch_of(IMAGE, B, points, shared)
    model, flops = counted_step("vamoh", IMAGE, overrides, batch, epoch)
    est = vamoh_step_flops(model.config, IMAGE, B, batch.num_points, shared_coords=shared, epoch=epoch)
    assert est.total == flops
    assert est.group("encoder") + est.group("decoder") == est.total


def test_vamoh_point_dropout_counts_the_kept_points():
    """A shared dropout mask: the step is the all-points step on the kept points (the dropped ones are removed once)."""
    batch = batch_of(IMAGE, 3)
    keep = torch.ones(batch.num_points, dtype=torch.bool)
    keep[torch.randperm(batch.num_points, generator=torch.Generator().manual_seed(1))[:90]] = False
    model, flops = counted_step("vamoh", IMAGE, {}, batch.with_mask(keep))
    assert vamoh_step_flops(model.config, IMAGE, 3, int(keep.sum())).total == flops


def test_the_naive_three_times_forward_rule_is_not_what_runs():
    """The count can fail: a backward of 2x every forward (the old estimate's rule) misses the counter on the tiny model."""
    batch = batch_of(IMAGE, 4)
    model, flops = counted_step("vamoh", IMAGE, {}, batch)
    est = vamoh_step_flops(model.config, IMAGE, 4, batch.num_points)
    assert 3 * sum(est.forward.values()) != flops
    assert est.total == flops


GASP_CASES = {
    "r1_on_probability": (IMAGE, {}, 4, None),
    "r1_on_logit": (IMAGE, {"r1_on_probability": False}, 4, None),
    "no_r1": (IMAGE, {"r1_weight": 0.0}, 4, None),
    "voxels_raw_coords": (VOXELS, {"fourier_features": False}, 3, 200),
}


@pytest.mark.parametrize("case", list(GASP_CASES))
def test_gasp_step_flops_equal_torch_counter(case):
    info, overrides, B, points = GASP_CASES[case]
    batch = batch_of(info, B, points)
    model, flops = counted_step("gasp", info, overrides, batch)
    assert gasp_step_flops(model.config, info, B, batch.num_points).total == flops


FUNCTA_CASES = {
    "second_order": ({}, True),
    "first_order": ({"first_order": True}, True),
    "second_order_per_sample_coords": ({}, False),
    "two_inner_steps_depth_4": ({"inner_steps": 2, "depth": 4}, True),
}


@pytest.mark.parametrize("case", list(FUNCTA_CASES))
def test_functa_step_flops_equal_torch_counter(case):
    overrides, shared = FUNCTA_CASES[case]
    batch = batch_of(IMAGE, 3, shared=shared)
    model, flops = counted_step("functa", IMAGE, overrides, batch)
    assert functa_step_flops(model.config, IMAGE, 3, batch.num_points, shared_coords=shared).total == flops


def test_functa_reconstruction_flops_equal_torch_counter():
    torch.manual_seed(0)
    model = build_model("functa", IMAGE, "tiny")
    observed = batch_of(IMAGE, 1)
    flops, _ = counted_flops(lambda: model.reconstruct(observed, steps=4))
    assert functa_reconstruction_flops(model.config, IMAGE, observed.num_points, 4).total == flops
