"""Fidelity to the paper and the original code: sampling on any device, posterior mixture weights at
observed query points, the training-points bound of point dropout, and the planar flow's activation."""

from dataclasses import asdict

import pytest
import torch
import torch.nn.functional as F

from vamoh.checks import ConfigError
from vamoh.interface import DataInfo, available_models, build_model
from vamoh.model import PRESETS, match_observed_points, max_dropout_alpha
from vamoh.nn.flows import PlanarLayer
from vamoh.pointcloud import PointCloudBatch, grid_coordinates, query_grid

from .vamoh_fixtures import BlobImages, strict_randn, tiny_model, to_meta

IMAGE8 = DataInfo(2, 3, "discretized_logistic", (8, 8), "image")


# ----------------------------------------------------------------------------- sampling on any device


# switches: VAMoH's flow_active (warm-up N(0, I) prior or the flow), Functa's prior_fitted
@pytest.mark.parametrize("name, switches", [("vamoh", False), ("vamoh", True), ("gasp", True), ("functa", True)])
def test_sampling_with_a_cpu_generator_works_on_another_device(monkeypatch, name, switches):
    # CUDA refuses a CPU generator in torch.randn(..., device="cuda"); the patched randn does the same on 'meta'
    strict_randn(monkeypatch)
    torch.manual_seed(0)
    model = to_meta(build_model(name, IMAGE8, "tiny").eval(), switches=switches)
    g = torch.Generator().manual_seed(0)
    out = model.sample(3, grid_coordinates((8, 8)), generator=g)
    assert out.shape == (3, 64, 3) and out.device.type == "meta"
    if name == "vamoh":
        z = model.sample_z(5, torch.Generator().manual_seed(1))
        assert z.shape == (5, model.config.dim_z) and z.device.type == "meta"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", available_models())
def test_same_cpu_generator_gives_the_same_samples_on_cpu_and_cuda(name):
    torch.manual_seed(0)
    model = build_model(name, IMAGE8, "tiny").eval()
    for buf in ("flow_active", "prior_fitted"):
        if hasattr(model, buf):
            getattr(model, buf).fill_(True)
    coords = grid_coordinates((8, 8))
    on_cpu = model.sample(4, coords, generator=torch.Generator().manual_seed(7))
    on_gpu = model.cuda().sample(4, coords, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, atol=1e-4, rtol=0)


# ----------------------------------------------------------------------------- matching query points to observed points


def brute_force_match(query, coords, mask, tol):
    """The reference: a full (B, Q, D) distance matrix."""
    B = max(query.shape[0], coords.shape[0])
    d = torch.cdist(query.double().expand(B, -1, -1), coords.double().expand(B, -1, -1))
    d = d.masked_fill(~mask.expand(B, -1)[:, None, :], float("inf"))
    best, index = d.min(-1)
    return torch.where(best <= tol, index, -1)


@pytest.mark.parametrize("Bq, Bo", [(1, 1), (1, 3), (3, 1), (3, 3)])
def test_matcher_equals_brute_force_distances(Bq, Bo):
    g = torch.Generator().manual_seed(Bq * 10 + Bo)
    tol, D, c = 1e-5, 300, 3
    coords = torch.rand(Bo, D, c, generator=g) * 2 - 1
    # a cluster of near-coincident points (like a lat/lon grid's pole): a window wider than the default
    coords[:, :25] = coords[:, :1] + torch.randn(Bo, 25, c, generator=g) * tol / 20
    mask = torch.rand(Bo, D, generator=g) < 0.7
    src = coords if Bq == Bo else coords[:1]  # query sample b copies points of observed sample b (or of the first)
    pick = torch.randint(D, (Bq, 400), generator=g)
    near = torch.gather(src.expand(Bq, -1, -1), 1, pick[:, :, None].expand(-1, -1, c))
    direction = F.normalize(torch.randn(Bq, 400, c, generator=g), dim=-1)
    # inside the tolerance, just outside it, and far away
    radius = torch.tensor([0.0, 0.3, 0.9, 1.5, 3.0])[torch.randint(5, (Bq, 400), generator=g)] * tol
    query = torch.cat([near + direction * radius[..., None], torch.rand(Bq, 100, c, generator=g) * 2 - 1], dim=1)
    got = match_observed_points(query, coords, mask, tol)
    expected = brute_force_match(query, coords, mask, tol)
    assert got.shape == (max(Bq, Bo), 500)
    assert torch.equal(got, expected)
    assert (got >= 0).sum() > 100 and (got == -1).sum() > 100  # both outcomes exercised
    # without a mask every point counts as observed
    assert torch.equal(match_observed_points(query, coords, None, tol), brute_force_match(query, coords, torch.ones_like(mask), tol))


def test_matcher_finds_a_grid_inside_its_2x_refinement():
    fine, shape = query_grid((16, 16), 2)  # 31 x 31, float rounding ~1e-7 away from the 16 x 16 nodes
    index = match_observed_points(fine[None], grid_coordinates((16, 16))[None]).reshape(shape)
    assert torch.equal(index[::2, ::2], torch.arange(256).reshape(16, 16))
    index[::2, ::2] = -1
    assert (index == -1).all()  # the new points are no observed points


# ----------------------------------------------------------------------------- mixture weights in reconstruction


def direct_reconstruction(model, batch, points):
    """Reconstruction and log pi at the batch's points ``points`` (Q,) computed from the model's parts:
    posterior q(c | x, y, z) where the point is observed, prior p(c | x, z) where it is hidden."""
    with torch.no_grad():
        mask = None if bool(batch.mask.all()) else batch.mask
        z, _ = model.encode(batch.coords, batch.features, mask)
        rff = model.rff(batch.coords[:, points])
        log_prior = model.prior_c(rff, z)
        log_post = model.posterior_c(rff, z, batch.features[:, points])
        log_pi = torch.where(batch.mask[:, points, None], log_post, log_prior)
        means = model.likelihood.mean(model.decode(z, rff))  # (B, Q, K, f)
        return (log_pi.exp()[..., None] * means).sum(2), log_pi, (log_prior.exp()[..., None] * means).sum(2)


def entropy(log_pi):
    return -(log_pi.exp() * log_pi).sum(-1)


@pytest.fixture(scope="module")
def blobs():
    return BlobImages(4, 16)


def test_reconstruction_at_the_observed_points_uses_the_posterior(blobs):
    model = tiny_model(blobs).eval()
    batch = blobs.batch(torch.arange(4))
    own = model.reconstruct(batch, None)
    expected, _, prior_only = direct_reconstruction(model, batch, torch.arange(256))
    torch.testing.assert_close(own, expected, atol=1e-6, rtol=0)
    assert (own - prior_only).abs().max() > 1e-3  # the prior would give another image: the test can tell them apart
    for query in (batch.coords, batch.coords[0]):  # (B, Q, c) and (Q, c), both the batch's own points
        torch.testing.assert_close(model.reconstruct(batch, query), own, atol=1e-6, rtol=0)
    # the same points in another order go through the matcher
    perm = torch.randperm(256, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(model.reconstruct(batch, batch.coords[0, perm]), own[:, perm], atol=1e-6, rtol=0)
    maps = model.mixture_maps(batch, batch.coords[0, perm])
    torch.testing.assert_close(maps["entropy"], model.mixture_maps(batch)["entropy"][:, perm], atol=1e-6, rtol=0)


def test_leak_free_weights_never_read_the_value_at_the_point_they_weight(blobs, monkeypatch):
    """With z held fixed, perturbing y at observed points leaves the leak-free prediction there unchanged (its weights
    are the prior p(c | x, z) everywhere), while the paper protocol's prediction there moves (the test can fail)."""
    model = tiny_model(blobs).eval()
    batch = blobs.batch(torch.arange(4))
    with torch.no_grad():
        z_fixed, logvar = model.encode(batch.coords, batch.features, None)
    monkeypatch.setattr(model, "encode", lambda coords, features, mask=None: (z_fixed, logvar))  # z held fixed
    points = torch.tensor([3, 40, 77, 130, 201])
    altered = batch.features.clone()
    altered[:, points] = 1 - altered[:, points]
    other = type(batch)(batch.coords, altered, batch.mask, batch.grid_shape)
    for query in (None, batch.coords[0], query_grid((16, 16), 2)[0]):  # own points, the same given as queries, a 2x grid
        leak_free = model.reconstruct(batch, query, protocol="leak_free")
        torch.testing.assert_close(model.reconstruct(other, query, protocol="leak_free"), leak_free, atol=0, rtol=0)
    paper, paper_other = model.reconstruct(batch, None), model.reconstruct(other, None)
    assert (paper - paper_other)[:, points].abs().max() > 1e-3  # the paper protocol reads y at these points
    torch.testing.assert_close(paper[:, 250:], paper_other[:, 250:], atol=1e-6, rtol=0)  # and only there (z fixed)
    # leak-free = the prior mixture at every point: the reconstruction direct_reconstruction computes from the parts
    _, _, prior_only = direct_reconstruction(model, batch, torch.arange(256))
    torch.testing.assert_close(model.reconstruct(batch, None, protocol="leak_free"), prior_only, atol=1e-6, rtol=0)
    with pytest.raises(ConfigError, match="protocol"):
        model.reconstruct(batch, None, protocol="oracle")


def test_2x_super_resolution_equals_the_1x_reconstruction_at_shared_pixels(blobs):
    model = tiny_model(blobs).eval()
    batch = blobs.batch(torch.arange(4))
    q2, (h, w) = query_grid((16, 16), 2)
    shared = lambda x: x.reshape(4, h, w, *x.shape[2:])[:, ::2, ::2].reshape(4, 256, *x.shape[2:])  # noqa: E731
    torch.testing.assert_close(shared(model.reconstruct(batch, q2)), model.reconstruct(batch, None), atol=1e-5, rtol=0)
    maps2, maps1 = model.mixture_maps(batch, q2), model.mixture_maps(batch)
    torch.testing.assert_close(shared(maps2["entropy"]), maps1["entropy"], atol=1e-5, rtol=0)


def test_2x_super_resolution_on_the_sphere_matches_1x_nodes_and_poles():
    # ERA5's layout: every node of a pole row is (almost) the same point; each must still find its own node
    info = DataInfo(3, 1, "continuous_bernoulli", (8, 16), "field")
    q1, _ = query_grid((8, 16), 1, sphere=True)
    q2, (h, w) = query_grid((8, 16), 2, sphere=True)
    y = torch.rand(2, 128, 1, generator=torch.Generator().manual_seed(0))
    batch = PointCloudBatch(q1[None].expand(2, -1, -1), y, torch.ones(2, 128, dtype=torch.bool), (8, 16))
    torch.manual_seed(0)
    model = build_model("vamoh", info, "tiny").eval()
    one = model.reconstruct(batch, None)
    two = model.reconstruct(batch, q2).reshape(2, h, w, 1)[:, ::2, ::2].reshape(2, 128, 1)
    torch.testing.assert_close(two, one, atol=1e-5, rtol=0)


@pytest.mark.parametrize("per_sample", [False, True])
def test_completion_uses_the_posterior_at_observed_and_the_prior_at_hidden_points(blobs, per_sample):
    model = tiny_model(blobs).eval()
    batch = blobs.batch(torch.arange(4))
    if per_sample:
        mask = torch.rand(4, 256, generator=torch.Generator().manual_seed(1)) < 0.6
    else:
        mask = torch.ones(256, dtype=torch.bool)
        mask[:100] = False  # the top rows hidden
    partial = batch.with_mask(mask)
    perm = torch.randperm(256, generator=torch.Generator().manual_seed(2))
    expected, log_pi, _ = direct_reconstruction(model, partial, perm)
    for query in (partial.coords[:, perm], partial.coords[0, perm]):
        torch.testing.assert_close(model.reconstruct(partial, query), expected, atol=1e-6, rtol=0)
        torch.testing.assert_close(model.mixture_maps(partial, query)["entropy"], entropy(log_pi), atol=1e-6, rtol=0)
    # the batch's own points (no query coordinates) follow the same rule
    expected_own, _, _ = direct_reconstruction(model, partial, torch.arange(256))
    torch.testing.assert_close(model.reconstruct(partial, None), expected_own, atol=1e-6, rtol=0)


# ----------------------------------------------------------------------------- point dropout bound from the training points


def test_dropout_bound_follows_the_training_points():
    info = BlobImages(2, 16).info  # 256 grid points; the tiny preset's first layer asks 64 centroids
    every = build_model("vamoh", info, "tiny")
    assert every.dropout_alpha == pytest.approx(max_dropout_alpha([64, 16], 256)) == pytest.approx(0.75)
    subsampled = build_model("vamoh", DataInfo(**{**asdict(info), "train_points": 100}), "tiny")
    assert subsampled.dropout_alpha == pytest.approx(1 - 64 / 100)
    # voxels are no special case: without train_points the bound comes from every grid point
    voxels = build_model("vamoh", DataInfo(3, 1, "bernoulli", (8, 8, 8), "voxels"), "tiny")
    assert voxels.dropout_alpha == pytest.approx(1 - 64 / 512)
    voxels_4096 = build_model("vamoh", DataInfo(3, 1, "bernoulli", (32, 32, 32), "voxels", train_points=4096),
                              "tiny", {"centroids": [1024, 16]})
    assert voxels_4096.dropout_alpha == pytest.approx(1 - 1024 / 4096)


def test_data_info_train_points_is_backward_compatible_and_checked():
    info = DataInfo(3, 1, "bernoulli", (32, 32, 32), "voxels", train_points=4096)
    assert DataInfo(**asdict(info)) == info
    old = {k: v for k, v in asdict(info).items() if k != "train_points"}  # a checkpoint written before the field
    assert DataInfo(**old).train_points is None
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ConfigError, match=rf"train_points={bad!r}: expected a positive integer or None"):
            DataInfo(2, 3, "discretized_logistic", (8, 8), train_points=bad)


# ----------------------------------------------------------------------------- the planar flow's activation


@pytest.mark.parametrize("activation", ["leaky_relu", "tanh"])
def test_planar_layer_is_the_named_function(activation):
    torch.manual_seed(0)
    layer = PlanarLayer(4, activation).double()
    for p in (layer.u, layer.w, layer.b):
        torch.nn.init.normal_(p, std=1.5)
    z = torch.randn(50, 4, dtype=torch.float64)
    u = layer.u_hat()
    assert float((layer.w @ u).detach()) > -1  # invertibility constraint
    a = z @ layer.w + layer.b
    h = F.leaky_relu(a, 0.2) if activation == "leaky_relu" else torch.tanh(a)
    out, _ = layer(z)
    torch.testing.assert_close(out, z + h[:, None] * u)
    # inverse(forward(z)) = z in float32 (exact up to rounding for the piecewise-linear LeakyReLU)
    layer32 = layer.float()
    z32 = z.float()
    torch.testing.assert_close(layer32.inverse(layer32(z32)[0]), z32, atol=1e-5, rtol=0)


def test_flow_activation_switch():
    data = BlobImages(2, 16)
    assert all(p.flow_activation == "leaky_relu" for p in PRESETS.values())  # the paper's and the original code's
    assert {layer.activation for layer in tiny_model(data).flow.layers} == {"leaky_relu"}
    assert {layer.activation for layer in tiny_model(data, flow_activation="tanh").flow.layers} == {"tanh"}
    with pytest.raises(ConfigError, match=r"vamoh\.flow_activation='relu' is not one of \['leaky_relu', 'tanh'\]"):
        tiny_model(data, flow_activation="relu")
