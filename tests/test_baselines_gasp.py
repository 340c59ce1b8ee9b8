"""GASP: the R1 penalty, the discriminator stacks of REFERENCE §2, resolution-free sampling, no inference."""

import pytest
import torch

from baselines.gasp.discriminator import PointConvDiscriminator
from baselines.gasp.model import GASP, PRESETS, GASPConfig, r1_penalty, to_data_range, to_discriminator_range
from vamoh.checks import ConfigError
from vamoh.interface import CannotReconstructError, DataInfo, build_model
from vamoh.nn.pointconv import build_stages
from vamoh.pointcloud import PointCloudBatch, grid_coordinates

from .vamoh_fixtures import BlobImages

IMAGE = DataInfo(2, 3, "discretized_logistic", (8, 8), "image")


def tiny_gasp(**overrides):
    torch.manual_seed(0)
    return build_model("gasp", IMAGE, "tiny", overrides)


def discriminator_of(config, coord_dim=2, feature_dim=3):
    stages = build_stages(config.centroids, config.neighbours, config.out_channels, config.pool_centroids, config.pool_neighbours)
    return PointConvDiscriminator(stages, feature_dim, coord_dim, config.weightnet_hidden)


@pytest.mark.parametrize("on_probability", [False, True])
def test_r1_penalty_equals_finite_differences(on_probability):
    torch.manual_seed(0)
    model = build_model("gasp", DataInfo(2, 1, "continuous_bernoulli", (8, 8), "field"), "tiny").double()  # one channel: fewer differences
    D = model.discriminator.train()  # batch statistics, as during training
    coords = grid_coordinates((8, 8)).double()[None].expand(2, -1, -1)
    real = torch.rand(2, 64, 1, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2 - 1
    penalty, logits = r1_penalty(D, coords, real, weight=10.0, on_probability=on_probability)

    def total(y):
        with torch.no_grad():
            out = D(coords, y)
            return float((torch.sigmoid(out) if on_probability else out).sum())

    eps = 1e-6
    grad = torch.zeros_like(real)
    for idx in torch.cartesian_prod(*(torch.arange(n) for n in real.shape)):
        i = tuple(idx.tolist())
        up, down = real.clone(), real.clone()
        up[i] += eps
        down[i] -= eps
        grad[i] = (total(up) - total(down)) / (2 * eps)
    expected = 10.0 / 2 * grad.pow(2).sum(dim=(1, 2)).mean()
    assert float(expected) > 0
    torch.testing.assert_close(penalty, expected, rtol=1e-6, atol=0)
    with torch.no_grad():
        torch.testing.assert_close(logits, D(coords, real))


def test_r1_is_taken_of_the_probability_by_default_as_in_gasps_code():
    # the VAMoH paper's GASP numbers come from GASP's code, which penalises the gradient of sigmoid(D)
    assert GASPConfig().r1_on_probability and all(p.r1_on_probability for p in PRESETS.values())
    assert not tiny_gasp(r1_on_probability=False).config.r1_on_probability  # the logit (Mescheder et al.) stays a switch


def test_r1_on_probability_is_the_logit_penalty_scaled_by_sigmoid_prime_squared():
    # with running batch-norm statistics (eval) each sample's logit depends on its own features only, so
    # d sigmoid(l_b) / dy_b = sigmoid'(l_b) dl_b / dy_b and sample b's penalty scales by sigmoid'(l_b)^2 <= 1/16
    torch.manual_seed(0)
    D = tiny_gasp().double().discriminator.eval()
    with torch.no_grad():  # logits well away from 0, so that sigmoid' differs from 1/4 and between samples
        D.convs[-1].linear.weight.mul_(10.0)
    coords = grid_coordinates((8, 8)).double()[None].expand(3, -1, -1)
    real = torch.rand(3, 64, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 2 - 1
    per_sample = torch.stack([r1_penalty(D, coords[b : b + 1], real[b : b + 1], 10.0)[0] for b in range(3)])
    on_probability, logits = r1_penalty(D, coords, real, 10.0, on_probability=True)
    slope = torch.sigmoid(logits) * (1 - torch.sigmoid(logits))
    torch.testing.assert_close(on_probability, (per_sample * slope**2).mean(), rtol=1e-10, atol=0)
    assert on_probability <= per_sample.mean() / 16


def test_training_step_runs_d_then_g_with_the_r1_penalty_in_the_d_loss():
    model = tiny_gasp()
    opts = model.make_optimizers()
    assert opts["g"].defaults["betas"] == (0.5, 0.999) and opts["d"].defaults["betas"] == (0.5, 0.999)
    g_params = {id(p) for group in opts["g"].param_groups for p in group["params"]}
    d_params = {id(p) for group in opts["d"].param_groups for p in group["params"]}
    assert g_params == {id(p) for p in model.hypernet.parameters()}
    assert d_params == {id(p) for p in model.discriminator.parameters()}
    data = BlobImages(n=4, size=8)
    m = model.training_step(data.batch(torch.arange(4)), opts, step=0)
    assert m["loss"] == m["loss_g"] and m["r1"] > 0 and m["loss_d"] > m["r1"]
    no_r1 = tiny_gasp(r1_weight=0.0)
    assert no_r1.training_step(data.batch(torch.arange(4)), no_r1.make_optimizers(), step=0)["r1"] == 0.0


def test_paper_discriminator_stacks():
    # CelebA64 / ERA5: PC(4096,9,64) AP(1024,9) PC(1024,9,128) AP(256,9) PC(256,9,256) AP(64,9) PC(64,9,512) AP(16,9) PC(1,16,1)
    celeba = discriminator_of(PRESETS["celebahq64"])
    assert [(s.centroids, s.neighbours, s.out_channels, s.pool_centroids, s.pool_neighbours) for s in celeba.stages] == [
        (4096, 9, 64, 1024, 9), (1024, 9, 128, 256, 9), (256, 9, 256, 64, 9), (64, 9, 512, 16, 9), (1, 16, 1, None, None)]
    # batch norm after every PointConv but the last, and in every weight-net layer (hidden 16,16,16,16)
    assert [n.num_features for n in celeba.norms] == [64, 128, 256, 512]
    for conv in celeba.convs:
        assert [n.num_features for n in conv.weightnet.norms] == [16, 16, 16, 16]
    assert not hasattr(celeba, "head")
    coords = grid_coordinates((64, 64))[None].expand(2, -1, -1)
    assert celeba(coords, torch.rand(2, 4096, 3) * 2 - 1).shape == (2,)
    # voxels: PC(4096,8,32) PC(4096,27,64) AP(512,27) PC(512,27,128) AP(64,27) PC(64,27,256) AP(8,27) PC(1,8,1) on 4096 random voxels
    voxels = discriminator_of(PRESETS["shapenet"], coord_dim=3, feature_dim=1)
    assert [(s.centroids, s.neighbours, s.out_channels, s.pool_centroids) for s in voxels.stages] == [
        (4096, 8, 32, None), (4096, 27, 64, 512), (512, 27, 128, 64), (64, 27, 256, 8), (1, 8, 1, None)]
    pts = grid_coordinates((32, 32, 32))[torch.randperm(32**3, generator=torch.Generator().manual_seed(0))[:4096]]
    assert voxels(pts[None].expand(2, -1, -1), torch.rand(2, 4096, 1)).shape == (2,)
    # the derived PolyMNIST stack reduces its 784 pixels to the same final PC(1, 16, 1)
    poly = discriminator_of(PRESETS["polymnist"])
    assert poly(grid_coordinates((28, 28))[None].expand(2, -1, -1), torch.rand(2, 784, 3)).shape == (2,)


def test_discriminator_must_end_in_one_logit():
    with pytest.raises(ConfigError, match="1 centroid and 1 output channel"):
        build_model("gasp", IMAGE, "tiny", {"out_channels": [16, 2]})


def test_paper_generator_shapes():
    model = GASP(PRESETS["celebahq64"], DataInfo(2, 3, "discretized_logistic", (64, 64), "image"))
    # 256 RFF -> 128 -> 128 -> 128 -> 3, every weight and bias generated by 64 -> 256 -> 512 -> P
    expected = (256 * 128 + 128) + 2 * (128 * 128 + 128) + (128 * 3 + 3)
    assert model.layout.num_params == expected
    assert sum(p.numel() for p in model.hypernet.parameters()) == (64 * 256 + 256) + (256 * 512 + 512) + (512 * expected + expected)
    voxels = GASP(PRESETS["shapenet"], DataInfo(3, 1, "bernoulli", (32, 32, 32), "voxels"))
    assert voxels.rff is None and voxels.layout.dims[0] == 3  # raw coordinates for voxels


def test_samples_are_one_function_at_any_resolution_in_the_data_range():
    model = tiny_gasp()
    z = torch.randn(3, model.config.dim_z, generator=torch.Generator().manual_seed(0))
    coarse = model.sample(3, grid_coordinates((8, 8)), z=z)
    fine = model.sample(3, grid_coordinates((8, 8), upsample=2), z=z)  # 15 x 15 grid containing the 8 x 8 one
    assert coarse.shape == (3, 64, 3) and fine.shape == (3, 225, 3)
    torch.testing.assert_close(fine.reshape(3, 15, 15, 3)[:, ::2, ::2].reshape(3, 64, 3), coarse)
    with torch.no_grad():
        raw = model.generate(z, grid_coordinates((8, 8))[None])
    assert raw.min() >= -1 and raw.max() <= 1
    torch.testing.assert_close(coarse, (raw + 1) / 2)
    y = torch.rand(5)
    torch.testing.assert_close(to_data_range(to_discriminator_range(y)), y)
    assert to_discriminator_range(torch.tensor([0.0, 1.0])).tolist() == [-1.0, 1.0]


def test_reconstruct_raises_the_clear_error():
    model = tiny_gasp()
    assert GASP.can_reconstruct is False
    observed = PointCloudBatch(grid_coordinates((8, 8))[None], torch.rand(1, 64, 3), torch.ones(1, 64, dtype=torch.bool), (8, 8))
    with pytest.raises(CannotReconstructError, match="gasp cannot do inference"):
        model.reconstruct(observed, grid_coordinates((8, 8)))


def test_partially_observed_training_batch_is_refused():
    model = tiny_gasp()
    batch = BlobImages(n=2, size=8).batch(torch.arange(2))
    with pytest.raises(ValueError, match="fully observed"):
        model.training_step(batch.with_mask(torch.arange(64) < 32), model.make_optimizers(), step=0)
