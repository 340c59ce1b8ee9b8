"""VAMoH building blocks against independent expectations (closed forms, autograd, explicit MLPs)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vamoh.model import categorical_kl, log_softmax_components_first
from vamoh.nn.flows import PlanarFlowPrior, gaussian_kl_standard, gaussian_log_prob, standard_normal_log_prob
from vamoh.nn.fourier import RandomFourierFeatures
from vamoh.nn.hyper import GeneratorLayout, HyperNetworks, run_generators
from vamoh.nn.likelihoods import Bernoulli, ContinuousBernoulli, DiscretizedLogistic, _DiscretizedLogisticLogProb


@pytest.mark.parametrize("scale", [0.02, 0.1, 0.7])
@pytest.mark.parametrize("mu_logit", [-4.0, -0.3, 0.0, 1.5, 6.0])
def test_discretized_logistic_pmf_sums_to_one(scale, mu_logit):
    lik = DiscretizedLogistic(feature_dim=1, init_scale=scale)
    y = (torch.arange(256, dtype=torch.float64) / 255).float()[:, None]  # every bin centre
    h = torch.full_like(y, mu_logit)
    total = lik.log_prob(h, y).double().exp().sum()
    assert total.item() == pytest.approx(1.0, abs=1e-4)


def test_discretized_logistic_matches_logistic_cdf_differences():
    # independent computation with numpy: P(bin) = sigmoid((y+h-mu)/s) - sigmoid((y-h-mu)/s), edges open
    lik = DiscretizedLogistic(feature_dim=1, init_scale=0.05)
    y = np.array([0.0, 10 / 255, 0.5, 200 / 255, 1.0])
    logit = 0.4
    mu = 1 / (1 + np.exp(-logit))
    sig = lambda v: 1 / (1 + np.exp(-v))
    half, s = 0.5 / 255, 0.05
    p = sig((y + half - mu) / s) - sig((y - half - mu) / s)
    p[0] = sig((y[0] + half - mu) / s)
    p[-1] = 1 - sig((y[-1] - half - mu) / s)
    got = lik.log_prob(torch.full((5, 1), logit), torch.tensor(y, dtype=torch.float32)[:, None]).exp().detach().numpy()
    np.testing.assert_allclose(got, p, rtol=1e-4)


def _textbook_discretized_logistic(h, y, log_scale):
    """log(sigmoid(u) - sigmoid(l)) per point, the edge bins open, summed over features: autograd differentiates it."""
    half = 0.5 / 255
    mu, inv_s = torch.sigmoid(h), torch.exp(-log_scale)
    u, l = (y + half - mu) * inv_s, (y - half - mu) * inv_s
    interior = torch.log(torch.sigmoid(u) - torch.sigmoid(l))
    return torch.where(y < half, F.logsigmoid(u), torch.where(y > 1 - half, F.logsigmoid(-l), interior)).sum(-1)


@pytest.mark.parametrize("layout", ["contiguous", "generator"])
def test_discretized_logistic_value_and_gradients_match_autograd_of_the_textbook_form(layout):
    # float64, away from the far tails where the textbook form loses precision: the written-out gradient (h and the
    # learnable log-scales) equals autograd's of log(sigmoid(u) - sigmoid(l)), in VAMoH's generator layout too (h a
    # permuted view with channels before points in memory, y broadcast over the K components), and passes gradcheck
    g = torch.Generator().manual_seed(0)
    B, D, K, f = 3, 40, 4, 3
    lik = DiscretizedLogistic(feature_dim=f).double()
    with torch.no_grad():
        lik.log_scale.copy_(torch.tensor([-2.5, -1.2, -3.0]))
    y_data = torch.randint(0, 256, (B, D, f), generator=g).double() / 255
    y_data[0, :6] = 0.0  # first bin
    y_data[1, :6] = 1.0  # last bin
    raw = torch.randn(B, K, f, D, generator=g, dtype=torch.float64)
    if layout == "generator":
        h = raw.permute(0, 3, 1, 2).detach().requires_grad_(True)  # (B, D, K, f), as run_generators returns it
    else:
        h = raw.permute(0, 3, 1, 2).contiguous().requires_grad_(True)
    y = y_data[:, :, None, :].expand(B, D, K, f)
    got = lik.log_prob(h, y)
    want = _textbook_discretized_logistic(h, y, lik.log_scale)
    assert got.shape == (B, D, K)
    # (the textbook form itself loses ~1e-9 relative to cancellation where both edges sit in one tail)
    torch.testing.assert_close(got, want, rtol=1e-7, atol=1e-10)
    weights = torch.randn(B, D, K, generator=g, dtype=torch.float64)
    got_grads = torch.autograd.grad((got * weights).sum(), [h, lik.log_scale])
    want_grads = torch.autograd.grad((want * weights).sum(), [h, lik.log_scale])
    for a, b in zip(got_grads, want_grads):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9)
    small_h = h[:2, :5].detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda hh, ls: _DiscretizedLogisticLogProb.apply(hh, y[:2, :5], ls),
                                    (small_h, lik.log_scale.detach().clone().requires_grad_(True)))


def test_discretized_logistic_far_tails_stay_finite_with_finite_gradients():
    # in float32 the textbook form gives log(0) = -inf when both edges sit in one tail (sigmoid(u) == sigmoid(l));
    # the likelihood keeps every log-probability and gradient finite, decreasing away from the observed bin
    lik = DiscretizedLogistic(feature_dim=1, init_scale=0.01)
    h = torch.tensor([[-12.0], [-6.0], [0.0], [6.0], [12.0]], requires_grad=True)
    y = torch.full((5, 1), 128 / 255)
    logp = lik.log_prob(h, y)
    assert torch.isfinite(logp).all()
    assert logp[2] > logp[1] > logp[0] and logp[2] > logp[3] > logp[4]
    grad_h, grad_s = torch.autograd.grad(logp.sum(), [h, lik.log_scale])
    assert torch.isfinite(grad_h).all() and torch.isfinite(grad_s).all()
    assert grad_h[0] > 0 and grad_h[4] < 0  # back towards the observed value


@pytest.mark.parametrize("K", [1, 3, 10])
def test_components_first_log_softmax_is_log_softmax(K):
    # the same log-probabilities as torch's log_softmax over the last dimension, as a (B, D, K) tensor whose
    # components lie outermost in memory; gradients agree too
    logits = (torch.randn(4, 50, K, dtype=torch.float64) * 3).requires_grad_(True)
    got = log_softmax_components_first(logits)
    want = F.log_softmax(logits, dim=-1)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    if K > 1:
        assert got.stride(-1) > got.stride(-2)  # components outermost of the last two dims
    weights = torch.randn_like(want)
    torch.testing.assert_close(torch.autograd.grad((got * weights).sum(), logits)[0],
                               torch.autograd.grad((want * weights).sum(), logits)[0], rtol=1e-12, atol=1e-12)


def test_fixed_logistic_scale_is_not_trained():
    lik = DiscretizedLogistic(feature_dim=3, fixed_scale=0.1)
    assert not list(lik.parameters())
    assert torch.allclose(lik.log_scale.exp(), torch.full((3,), 0.1))


def test_continuous_bernoulli_density_integrates_to_one_and_mean():
    cb = ContinuousBernoulli()
    y = torch.linspace(0, 1, 20001, dtype=torch.float64)[:, None].float()
    for logit in (-3.0, -0.5, 0.0, 1e-4, 2.0):
        h = torch.full_like(y, logit)
        dens = cb.log_prob(h, y).double().exp()
        integral = torch.trapezoid(dens, y.double().squeeze(1))
        assert integral.item() == pytest.approx(1.0, abs=1e-3)
        mean = torch.trapezoid(dens * y.double().squeeze(1), y.double().squeeze(1))
        assert cb.mean(torch.tensor([[logit]])).item() == pytest.approx(mean.item(), abs=1e-3)


def test_bernoulli_log_prob():
    b = Bernoulli()
    h = torch.tensor([[0.3], [-2.0]])
    y = torch.tensor([[1.0], [0.0]])
    expected = torch.tensor([math.log(1 / (1 + math.exp(-0.3))), math.log(1 - 1 / (1 + math.exp(2.0)))])
    assert torch.allclose(b.log_prob(h, y), expected, atol=1e-6)


def test_categorical_kl_closed_form():
    torch.manual_seed(0)
    q = torch.softmax(torch.randn(5, 7, 4, dtype=torch.float64), -1)
    p = torch.softmax(torch.randn(5, 7, 4, dtype=torch.float64), -1)
    expected = np.zeros((5, 7))
    qn, pn = q.numpy(), p.numpy()
    for i in range(5):
        for j in range(7):
            expected[i, j] = sum(qn[i, j, k] * math.log(qn[i, j, k] / pn[i, j, k]) for k in range(4))
    np.testing.assert_allclose(categorical_kl(q.log(), p.log()).numpy(), expected, rtol=1e-10)


def test_gaussian_kl_matches_monte_carlo():
    torch.manual_seed(1)
    mean = torch.randn(3, 6, dtype=torch.float64)
    logvar = torch.randn(3, 6, dtype=torch.float64) * 0.5
    z = mean + torch.randn(200_000, 3, 6, dtype=torch.float64) * torch.exp(0.5 * logvar)
    mc = (gaussian_log_prob(z, mean, logvar) - standard_normal_log_prob(z)).mean(0)
    assert torch.allclose(mc, gaussian_kl_standard(mean, logvar), atol=0.03)


@pytest.mark.parametrize("activation", ["leaky_relu", "tanh"])
def test_planar_flow_logdet_equals_autograd_jacobian(activation):
    torch.manual_seed(2)
    flow = PlanarFlowPrior(dim=5, num_layers=4, activation=activation).double()
    for layer in flow.layers:  # move away from the near-identity initialisation
        torch.nn.init.normal_(layer.u, std=1.0)
        torch.nn.init.normal_(layer.w, std=1.0)
        torch.nn.init.normal_(layer.b, std=0.5)
    z = torch.randn(6, 5, dtype=torch.float64)
    _, logdet = flow.to_base(z)
    for i in range(6):
        J = torch.autograd.functional.jacobian(lambda v: flow.to_base(v[None])[0][0], z[i])
        assert logdet[i].item() == pytest.approx(torch.linalg.slogdet(J).logabsdet.item(), abs=1e-9)


@pytest.mark.parametrize("activation", ["leaky_relu", "tanh"])
def test_planar_flow_inverse_and_density(activation):
    torch.manual_seed(3)
    flow = PlanarFlowPrior(dim=2, num_layers=3, activation=activation).double()
    for layer in flow.layers:
        torch.nn.init.normal_(layer.u, std=1.5)
        torch.nn.init.normal_(layer.w, std=1.5)
    x = torch.randn(50, 2, dtype=torch.float64)
    base, _ = flow.to_base(x)
    z = base
    for layer in reversed(flow.layers):
        z = layer.inverse(z)
    assert torch.allclose(z, x, atol=1e-8)
    # the density integrates to one (2-d grid quadrature). LeakyReLU layers are unbounded: a layer with
    # w.u_hat near -1 contracts its direction by 1 + w.u_hat, so p(z) spreads far (these: 19% beyond +-8)
    n = 2001
    g = torch.linspace(-40, 40, n, dtype=torch.float64)
    xx, yy = torch.meshgrid(g, g, indexing="ij")
    dens = flow.log_prob(torch.stack([xx.reshape(-1), yy.reshape(-1)], -1)).exp().reshape(n, n)
    assert torch.trapezoid(torch.trapezoid(dens, g), g).item() == pytest.approx(1.0, abs=2e-3)


def test_generator_from_hypernetwork_equals_explicit_mlp():
    torch.manual_seed(4)
    K, B, D, dz = 3, 2, 11, 5
    dims = [8, 6, 4, 3]
    layout = GeneratorLayout(dims)
    hyper = HyperNetworks(K, dz, [7], layout.num_params)
    z = torch.randn(B, dz)
    theta = hyper(z)  # (K, B, P)
    assert theta.shape == (K, B, layout.num_params)
    for shared in (True, False):
        feats = torch.randn(1 if shared else B, D, dims[0])
        out = run_generators(layout, theta, feats)  # (B, D, K, f)
        for b in range(B):
            for k in range(K):
                x = feats[0 if shared else b]
                flat = theta[k, b]
                offset = 0
                for li, (a, c) in enumerate(zip(dims[:-1], dims[1:])):
                    W = flat[offset : offset + a * c].reshape(c, a)  # out x in, row-major (nn.Linear's layout)
                    offset += a * c
                    bias = flat[offset : offset + c]
                    offset += c
                    layer = torch.nn.Linear(a, c)
                    with torch.no_grad():
                        layer.weight.copy_(W)
                        layer.bias.copy_(bias)
                    x = layer(x)
                    if li < len(dims) - 2:
                        x = F.leaky_relu(x, 0.1)
                assert torch.allclose(out[b, :, k], x, atol=1e-5)


def test_hypernetworks_are_separate():
    hyper = HyperNetworks(4, 3, [5], 9)
    z = torch.randn(2, 3)
    theta = hyper(z)
    # changing hypernetwork 1's weights changes only component 1's output
    with torch.no_grad():
        hyper.layers[0].weight[1] += 1.0
    theta2 = hyper(z)
    assert torch.equal(theta[0], theta2[0]) and torch.equal(theta[2], theta2[2])
    assert not torch.allclose(theta[1], theta2[1])


def test_fourier_features_fixed_and_shaped():
    rff = RandomFourierFeatures(2, 128, 2.0, seed=0)
    assert rff.out_dim == 256 and not list(rff.parameters())
    x = torch.rand(10, 2)
    f = rff(x)
    assert f.shape == (10, 256)
    assert torch.allclose(f[:, :128] ** 2 + f[:, 128:] ** 2, torch.ones(10, 128), atol=1e-6)
    assert abs(rff.B.std().item() - 2.0) < 0.3


def test_generator_gradients_match_finite_differences():
    # the generators run LeakyReLU in place on their largest activations: autograd must stay exact
    torch.manual_seed(5)
    layout = GeneratorLayout([8, 6, 5, 2])
    theta = torch.randn(3, 2, layout.num_params, dtype=torch.float64, requires_grad=True)
    for feats in (torch.randn(1, 7, 8, dtype=torch.float64), torch.randn(2, 7, 8, dtype=torch.float64)):
        assert torch.autograd.gradcheck(lambda t: run_generators(layout, t, feats), (theta,))
