"""The original code's deviations (REFERENCE §1) as switches: each does what it names, and is off by default."""

import math

import torch

from vamoh.interface import build_model
from vamoh.model import PRESETS

from .vamoh_fixtures import BlobImages, tiny_model


def model_with(**switches):
    data = BlobImages(8, 16)
    torch.manual_seed(0)
    return build_model("vamoh", data.info, "tiny", switches), data


def test_switches_default_to_the_paper():
    for preset in PRESETS.values():
        assert preset.fixed_logistic_scale is None and not preset.tanh_categorical_logits
        assert not preset.neighbourhoods_in_fourier_space and not preset.flow_on_detached_posterior
        assert preset.frozen_uniform_categorical_prior_epochs == 0 and not preset.weightnet_linear
        assert preset.flow_activation == "leaky_relu"  # paper B.1 and the original code (tanh is the switch)


def test_fixed_logistic_scale():
    learnable, _ = model_with()
    fixed, _ = model_with(fixed_logistic_scale=0.1)
    assert any(n.startswith("likelihood.") for n, _ in learnable.named_parameters())
    assert not any(n.startswith("likelihood.") for n, _ in fixed.named_parameters())
    assert torch.allclose(fixed.likelihood.log_scale.exp(), torch.tensor(0.1))


def test_tanh_bounds_categorical_logits():
    model, data = model_with(tanh_categorical_logits=True)
    with torch.no_grad():
        for layer in model.prior_c.layers:  # huge weights: unbounded logits would saturate the softmax
            layer.weight.mul_(100)
    rff = model.rff(data.coords)[None]
    log_pi = model.prior_c(rff, torch.randn(4, model.config.dim_z))
    # logits in [-1, 1]: no probability ratio exceeds e^2, so each probability is at least 1 / (1 + (K-1) e^2)
    K = model.config.K
    assert (log_pi.exp() >= 1 / (1 + (K - 1) * math.e**2) - 1e-6).all()
    plain, _ = model_with()
    with torch.no_grad():
        for layer in plain.prior_c.layers:
            layer.weight.mul_(100)
    assert (plain.prior_c(rff, torch.randn(4, plain.config.dim_z)).exp() < 1e-3).any()


def test_neighbourhoods_in_fourier_space():
    model, data = model_with(neighbourhoods_in_fourier_space=True)
    first = model.encoder.convs[0].weightnet.layers[0]
    assert first.in_features == model.rff.out_dim  # offsets live in the 2m-d RFF space
    mean, _ = model.encode(data.batch(torch.arange(2)).coords, data.features[:2])
    assert torch.isfinite(mean).all()


def test_weightnet_linear_is_affine_in_the_offsets():
    model, _ = model_with(weightnet_linear=True, weightnet_hidden=[8, 8])
    wn = model.encoder.convs[0].weightnet
    a, b = torch.randn(5, 2), torch.randn(5, 2)
    assert torch.allclose(wn(a + b) - wn(b), wn(a) - wn(torch.zeros(5, 2)), atol=1e-6)
    nonlinear, _ = model_with(weightnet_hidden=[8, 8])
    wn = nonlinear.encoder.convs[0].weightnet
    assert not torch.allclose(wn(a + b) - wn(b), wn(a) - wn(torch.zeros(5, 2)), atol=1e-4)


def kl_z_grad_on_encoder(model, data, epoch):
    model.zero_grad()
    model.elbo(data.batch(torch.arange(4)), epoch=epoch)["kl_z"].sum().backward()
    return sum(float(p.grad.abs().sum()) for p in model.encoder.parameters() if p.grad is not None)


def test_flow_on_detached_posterior_cuts_the_encoders_kl_gradient():
    paper, data = model_with(warmup_epochs=1)
    original, _ = model_with(warmup_epochs=1, flow_on_detached_posterior=True)
    assert kl_z_grad_on_encoder(paper, data, epoch=5) > 0  # Monte Carlo KL trains the encoder
    assert kl_z_grad_on_encoder(original, data, epoch=5) == 0  # the flow's NLL of detached samples does not
    # ... but the flow itself is trained by it
    original.zero_grad()
    original.elbo(data.batch(torch.arange(4)), epoch=5)["kl_z"].sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in original.flow.parameters())


def test_frozen_uniform_categorical_prior():
    model, data = model_with(frozen_uniform_categorical_prior_epochs=3)
    batch = data.batch(torch.arange(4))
    model.zero_grad()
    terms = model.elbo(batch, epoch=1)
    terms["elbo"].sum().backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.prior_c.parameters())  # frozen
    # the categorical KL is against the uniform distribution: KL = sum_d (log K - H(q(c_d)))
    torch.manual_seed(1)
    with torch.no_grad():
        t = model.elbo(batch, epoch=1, sample_z=False)
        mean, _ = model.encode(batch.coords, batch.features)
        log_q = model.posterior_c(model._shared_rff(batch.coords), mean, batch.features)
        expected = (math.log(model.config.K) + (log_q.exp() * log_q).sum(-1)).sum(1)
    assert torch.allclose(t["kl_c"], expected, atol=1e-4)
    model.zero_grad()
    model.elbo(batch, epoch=3)["elbo"].sum().backward()  # after those epochs the prior net learns
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.prior_c.parameters())


def test_a_checkpoint_from_before_flow_activation_loads_with_tanh(tmp_path):
    """Checkpoints written before the key existed were trained with tanh planar layers: a missing key must not
    silently become the new default (LeakyReLU), which would change the density the weights define."""
    from vamoh.checkpoint import save_checkpoint
    from vamoh.config import to_dict
    from vamoh.train import load_model

    data = BlobImages(4, 16)
    model = tiny_model(data, flow_activation="tanh")
    config = to_dict(model.config)
    del config["flow_activation"]
    save_checkpoint(tmp_path / "old.pt", {"model_name": "vamoh", "model_config": config, "data_info": dict(coord_dim=2, feature_dim=3,
                    likelihood="discretized_logistic", grid_shape=[16, 16], kind="image"), "model_state": model.state_dict(), "step": 0})
    loaded, _ = load_model(tmp_path / "old.pt")
    assert loaded.config.flow_activation == "tanh"
