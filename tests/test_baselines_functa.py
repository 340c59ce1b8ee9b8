"""Functa: SIREN init, the Meta-SGD inner loop and its second-order gradients, reconstruction, functaset, flow prior."""

import json
import math

import numpy as np
import pytest
import torch

from baselines.functa import load_functaset, write_functaset
from baselines.functa.model import PRESETS, Functa, PriorNotFittedError
from baselines.functa.siren import ModulatedSiren
from vamoh.interface import DataInfo, build_model
from vamoh.pointcloud import grid_coordinates

from .vamoh_fixtures import BlobImages


@pytest.fixture(scope="module")
def data():
    return BlobImages(n=8, size=8, seed=2)


def tiny_functa(info, **overrides):
    torch.manual_seed(0)
    return build_model("functa", info, "tiny", overrides)


def test_paper_preset_architecture():
    c = PRESETS["celebahq64"]
    assert (c.width, c.depth, c.w0, c.latent_dim, c.inner_steps, c.lr, c.batch_size) == (512, 15, 30.0, 128, 3, 3e-6, 16)
    model = Functa(c, DataInfo(2, 3, "discretized_logistic", (64, 64), "image"))
    assert len(model.siren.sine_layers) == 14 and model.to_shifts.out_features == 14 * 512  # one linear map to all shifts
    assert model.inner_lrs.shape == (128,)


def test_siren_initialisation_ranges():
    torch.manual_seed(0)
    in_dim, width, w0 = 2, 256, 30.0
    siren = ModulatedSiren(in_dim, 3, width, depth=5, w0=w0)
    first, hidden = 1 / in_dim, math.sqrt(6 / width) / w0
    layers = [siren.sine_layers[0]] + list(siren.sine_layers[1:]) + [siren.output]
    bounds = [first] + [hidden] * (len(layers) - 1)
    for layer, bound in zip(layers, bounds):
        w = layer.weight.detach()
        assert w.abs().max() <= bound
        assert w.abs().max() > 0.95 * bound  # uniform over the whole range, not a narrower one
        if w.numel() > 1000:
            assert abs(float(w.std()) - bound / math.sqrt(3)) < 0.05 * bound  # std of U(-b, b)
    model = tiny_functa(DataInfo(2, 3, "discretized_logistic", (8, 8), "image"))
    lrs = model.inner_lrs.detach()
    assert lrs.min() >= 0.005 and lrs.max() <= 0.1 and lrs.std() > 0
    assert torch.equal(model.to_shifts.bias.detach(), torch.zeros_like(model.to_shifts.bias))


def test_coordinates_map_to_the_unit_interval_except_on_the_sphere():
    image = tiny_functa(DataInfo(2, 3, "discretized_logistic", (8, 8), "image"))
    grid = grid_coordinates((3, 3))
    mapped = image.map_coords(grid)
    assert mapped.min() == 0 and mapped.max() == 1 and mapped[4].tolist() == [0.5, 0.5]
    era5 = tiny_functa(DataInfo(3, 1, "continuous_bernoulli", (46, 90), "field"))
    xyz = torch.nn.functional.normalize(torch.randn(5, 3), dim=-1)
    assert torch.equal(era5.map_coords(xyz), xyz)


def test_inner_loop_lowers_every_per_sample_mse(data):
    model = tiny_functa(data.info)
    batch = data.batch(torch.arange(8))
    coords, y, w = model.observed(batch)
    mse = {steps: model.per_sample_mse(model.modulations(batch, steps), coords, y, w) for steps in (0, 3, 10)}
    # z = 0 is the unmodulated network: the same prediction for every sample
    z0 = model.modulations(batch, 0)
    assert torch.equal(z0, torch.zeros_like(z0))
    assert (mse[3] < mse[0]).all() and (mse[10] < mse[3]).all()


def outer_loss(model, batch, first_order):
    coords, y, w = model.observed(batch)
    z = model.inner_loop(coords, y, w, model.config.inner_steps, create_graph=not first_order)
    return model.per_sample_mse(z, coords, y, w).mean()


def test_second_order_gradients_are_the_true_gradients_and_differ_from_first_order(data):
    torch.manual_seed(0)
    model = build_model("functa", data.info, "tiny", {"width": 16, "latent_dim": 4}).double()
    batch = data.batch(torch.arange(2))
    batch.coords, batch.features = batch.coords.double(), batch.features.double()
    shared = {"hidden weight": model.siren.sine_layers[1].weight, "shift map": model.to_shifts.weight,
              "first layer": model.siren.sine_layers[0].weight}
    second = torch.autograd.grad(outer_loss(model, batch, False), list(shared.values()))
    first = torch.autograd.grad(outer_loss(model, batch, True), list(shared.values()))
    eps = 1e-6
    for (name, p), g2, g1 in zip(shared.items(), second, first):
        assert g2.abs().sum() > 0, f"no gradient reaches the {name}"
        # central finite differences of the whole procedure (inner loop + outer loss) at three entries
        for idx in [(0, 0), (1, 1), (3, 0)]:
            old = float(p[idx].detach())
            values = []
            for shifted in (old + eps, old - eps, old):
                with torch.no_grad():
                    p[idx] = shifted
                values.append(float(outer_loss(model, batch, True).detach()))
            fd = (values[0] - values[1]) / (2 * eps)
            assert g2[idx].item() == pytest.approx(fd, rel=1e-5, abs=1e-10), name
        assert not torch.allclose(g1, g2, rtol=1e-2, atol=0), f"first- and second-order gradients agree on the {name}"


def test_meta_sgd_rates_are_trained(data):
    model = tiny_functa(data.info)
    loss = outer_loss(model, data.batch(torch.arange(4)), first_order=False)
    (g,) = torch.autograd.grad(loss, [model.inner_lrs])
    assert (g != 0).all()


def test_reconstruction_uses_only_observed_points_and_works_under_no_grad(data):
    model = tiny_functa(data.info)
    batch = data.batch(torch.arange(3))
    keep = torch.arange(64) % 3 == 0
    observed = batch.with_mask(keep)
    query = grid_coordinates((8, 8), upsample=2)
    with torch.no_grad():
        out3 = model.reconstruct(observed, query)
        out10 = model.reconstruct(observed, query, steps=10)
        own = model.reconstruct(observed)
    assert out3.shape == (3, 225, 3) and own.shape == (3, 64, 3)
    assert not torch.equal(out3, out10)
    # changing the features at unobserved points changes nothing
    hidden = observed.with_mask(keep)
    hidden.features = torch.where(keep[None, :, None], batch.features, torch.rand_like(batch.features))
    torch.testing.assert_close(model.reconstruct(hidden, query), out3)
    # the super-resolution grid contains the original one: the same function at the shared points
    torch.testing.assert_close(out3.reshape(3, 15, 15, 3)[:, ::2, ::2].reshape(3, 64, 3), own)
    # more steps fit the observed points better
    coords, y, w = model.observed(observed)
    assert (model.per_sample_mse(model.modulations(observed, 10), coords, y, w)
            < model.per_sample_mse(model.modulations(observed, 3), coords, y, w)).all()
    with pytest.raises(ValueError, match="steps=-1"):
        model.reconstruct(observed, steps=-1)


def test_functaset_file_holds_every_modulation(data, tmp_path):
    model = tiny_functa(data.info)
    test_split = BlobImages(n=5, size=8, seed=9)
    path = tmp_path / "functaset.npz"
    meta = write_functaset(model, {"train": data, "test": test_split}, path, batch_size=3)
    arrays = load_functaset(path)
    assert arrays["train"].shape == (8, 16) and arrays["test"].shape == (5, 16) and arrays["test_psnr"].shape == (5,)
    expected = model.modulations(test_split.batch(torch.arange(5))).numpy()
    np.testing.assert_allclose(arrays["test"], expected, rtol=1e-5, atol=1e-6)  # batching does not change a sample's latent
    on_disk = json.loads(path.with_suffix(".json").read_text())
    assert on_disk == meta and on_disk["splits"]["train"]["size"] == 8 and on_disk["inner_steps"] == 3
    result = model.fit_prior(path, epochs=2)
    assert result["num_modulations"] == 8 and math.isfinite(result["prior_nll"])


def test_sampling_needs_the_fitted_prior(data):
    model = tiny_functa(data.info)
    with pytest.raises(PriorNotFittedError, match="fit_prior"):
        model.sample(2, grid_coordinates((8, 8)))


def test_prior_log_prob_is_the_change_of_variables_density():
    """log p(z) against log N(T(u); 0, I) + log|det dT(u)/dz| with the Jacobian from autograd, not from zuko."""
    info = DataInfo(2, 1, "continuous_bernoulli", (4, 4), "field")
    model = tiny_functa(info, latent_dim=3).double()
    g = torch.Generator().manual_seed(0)
    mods = torch.randn(200, 3, generator=g, dtype=torch.float64) @ torch.tensor([[2.0, 0, 0], [0.5, 1, 0], [0, -0.3, 0.2]], dtype=torch.float64) + 3
    model.fit_prior(mods, epochs=3)
    base = model.flow().base
    assert torch.equal(base.mean, torch.zeros(3, dtype=torch.float64)) and torch.equal(base.stddev, torch.ones(3, dtype=torch.float64))

    def to_noise(z):
        return model.flow().transform((z - model.mod_mean) / model.mod_std)

    for z in mods[:5]:
        J = torch.autograd.functional.jacobian(to_noise, z)
        eps = to_noise(z)
        expected = -0.5 * (eps @ eps) - 1.5 * math.log(2 * math.pi) + torch.linalg.slogdet(J).logabsdet
        torch.testing.assert_close(model.prior_log_prob(z[None])[0].detach(), expected, rtol=1e-9, atol=1e-9)


def test_flow_prior_recovers_a_gaussian_density():
    """Fitted to samples of N(mu, Sigma), the flow's log-density matches the closed form on fresh points."""
    info = DataInfo(2, 1, "continuous_bernoulli", (4, 4), "field")
    model = tiny_functa(info, latent_dim=2)
    mu = torch.tensor([1.5, -2.0])
    L = torch.tensor([[0.8, 0.0], [0.6, 0.5]])
    gaussian = torch.distributions.MultivariateNormal(mu, scale_tril=L)
    torch.manual_seed(1)
    train, fresh = gaussian.sample((1500,)), gaussian.sample((500,))
    model.fit_prior(train, epochs=20, lr=3e-3, batch_size=128)
    with torch.no_grad():
        got, want = model.prior_log_prob(fresh), gaussian.log_prob(fresh)
    assert abs(float(got.mean() - want.mean())) < 0.05  # nats: the fitted density's cross-entropy is the true entropy
    assert float((got - want).abs().median()) < 0.1
    z = model.sample_modulations(4000, torch.Generator().manual_seed(0))
    torch.testing.assert_close(z.mean(0), mu, atol=0.1, rtol=0)
    torch.testing.assert_close(torch.cov(z.T), L @ L.T, atol=0.1, rtol=0)


def test_inference_in_place_and_chunked_sampling_are_bitwise_the_grad_path():
    """Without autograd the SIREN computes in place and sample() decodes 16 functions at a time; every value is
    the one the differentiable, whole-batch computation gives (the same operations in the same order). One thread,
    as every workflow job by default: a process's first multi-threaded element-wise call may split the work at
    other places than later ones, and the scalar tail of each part rounds sin in its own way."""
    from baselines.functa.model import DECODE_CHUNK

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _inference_is_the_grad_path(DECODE_CHUNK)
    finally:
        torch.set_num_threads(threads)


def _inference_is_the_grad_path(DECODE_CHUNK):
    info = DataInfo(2, 3, "discretized_logistic", (16, 16), "image")
    model = tiny_functa(info, width=24, depth=4, latent_dim=5)
    coords = grid_coordinates((16, 16))
    z = torch.randn(2 * DECODE_CHUNK + 3, 5, generator=torch.Generator().manual_seed(0))
    with torch.enable_grad():
        differentiable = model.decode(z, coords[None])
    assert differentiable.requires_grad
    with torch.no_grad():
        assert torch.equal(model.decode(z, coords[None]), differentiable)
        per_sample = model.decode(z, coords[None].expand(len(z), -1, -1))  # coordinates per sample: the same values
        assert torch.equal(per_sample, differentiable)
    mods = torch.randn(200, 5, generator=torch.Generator().manual_seed(1))
    model.fit_prior(mods, epochs=1)
    n = 2 * DECODE_CHUNK + 3  # chunks of 16, 16 and 3
    sampled = model.sample(n, coords, generator=torch.Generator().manual_seed(2))
    again = model.sample_modulations(n, torch.Generator().manual_seed(2))
    with torch.enable_grad():
        assert torch.equal(sampled, model.decode(again, coords[None]).clamp(0.0, 1.0).detach())
