"""Mixed precision (compute_dtype="bfloat16") and micro-batching (microbatch_size): the same model,
the same update, within the error the narrower dtype allows."""

import copy

import torch

from vamoh.nn.hyper import GeneratorLayout, HyperNetworks, run_generators

from .vamoh_fixtures import BlobImages, tiny_model

BF16_EPS = 2.0**-8  # bfloat16 keeps 8 significant bits: rounding error <= 2^-9 relative, spacing 2^-8


def relative_rms(a, b):
    a, b = a.detach(), b.detach()
    return float((a - b).pow(2).mean().sqrt() / b.pow(2).mean().sqrt())


def test_bf16_generators_match_float32_and_output_layer_stays_float32():
    torch.manual_seed(1)
    layout = GeneratorLayout([32, 16, 16, 3])
    hyper = HyperNetworks(3, 8, [32], layout.num_params, layout.last_layer_params)
    z, feats = torch.randn(5, 8), torch.randn(1, 50, 32)
    exact = run_generators(layout, hyper(z), feats)
    mixed = run_generators(layout, hyper(z, torch.bfloat16), feats, torch.bfloat16)
    assert mixed.dtype == torch.float32 and mixed.shape == exact.shape
    # five products run with bfloat16 inputs (two hypernetwork layers, the generators' hidden layers and
    # their inputs), each rounding to within 2^-9: the relative error stays within a few BF16_EPS
    err = relative_rms(mixed, exact)
    assert 0 < err < 4 * BF16_EPS, err
    # the output layer ran in float32: its values are not confined to the bfloat16 grid
    on_grid = mixed.to(torch.bfloat16).float() == mixed
    assert on_grid.float().mean() < 0.5


def test_hypernetwork_split_tail_is_one_layer():
    # the tail block is the same function as one wide layer: compare with the concatenated weights
    torch.manual_seed(2)
    split = HyperNetworks(2, 4, [6], 20, float32_tail=5)
    one = HyperNetworks(2, 4, [6], 20)
    with torch.no_grad():
        one.layers[0].weight.copy_(split.layers[0].weight)
        one.layers[0].bias.copy_(split.layers[0].bias)
        one.layers[1].weight.copy_(torch.cat([split.layers[1].weight, split.tail.weight], -1))
        one.layers[1].bias.copy_(torch.cat([split.layers[1].bias, split.tail.bias], -1))
    z = torch.randn(3, 4)
    assert torch.allclose(split(z), one(z), atol=1e-6)
    assert sum(p.numel() for p in split.parameters()) == sum(p.numel() for p in one.parameters())


def test_bf16_elbo_and_gradients_follow_float32():
    data = BlobImages(8, 16)
    batch = data.batch(torch.arange(8))
    exact = tiny_model(data)
    mixed = copy.deepcopy(exact)
    mixed.config.compute_dtype = "bfloat16"
    noise = torch.randn(8, exact.config.dim_z)
    grads = []
    for model in (exact, mixed):
        terms = model.elbo(batch, epoch=10, noise=noise)
        assert all(v.dtype == torch.float32 for v in terms.values())
        (-terms["elbo"].mean()).backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
        model.zero_grad()
    e, m = exact.elbo(batch, 10, noise=noise)["elbo"], mixed.elbo(batch, 10, noise=noise)["elbo"]
    assert not torch.equal(e, m)  # the bfloat16 path really ran
    assert relative_rms(m, e) < 4 * BF16_EPS, (e, m)
    cosine = torch.nn.functional.cosine_similarity(grads[0], grads[1], dim=0)
    assert cosine > 0.99, float(cosine)
    # every parameter still gets a float32 gradient
    assert all(p.grad is None or p.grad.dtype == torch.float32 for p in mixed.parameters())


def test_microbatches_give_the_whole_batch_update():
    data = BlobImages(16, 16)
    batch = data.batch(torch.arange(16))
    whole = tiny_model(data)
    parts = copy.deepcopy(whole)
    parts.config.microbatch_size = 5  # 5 + 5 + 5 + 1: an uneven split too
    outs = []
    for model in (whole, parts):
        opts = model.make_optimizers()
        torch.manual_seed(3)  # the same dropout mask and the same z noise for both
        outs.append(model.training_step(batch, opts, step=0, epoch=10))
    for k in ("loss", "elbo", "rec", "kl_z", "kl_c", "grad_norm"):
        assert abs(outs[0][k] - outs[1][k]) <= 1e-4 * max(1.0, abs(outs[0][k])), (k, outs)
    # the accumulated gradients (left on the parameters by the step) are the whole batch's; compared
    # before Adam, whose first step maps any tiny float-order difference in a near-zero gradient to +-lr
    for (name, p), q in zip(whole.named_parameters(), parts.parameters()):
        if p.grad is None:
            assert q.grad is None, name
            continue
        scale = float(p.grad.abs().max())
        assert torch.allclose(p.grad, q.grad, atol=1e-5 * max(scale, 1e-3), rtol=1e-4), name


def test_no_grad_weight_cast_is_reused_until_the_weights_change():
    data = BlobImages(2, 16)
    model = tiny_model(data, compute_dtype="bfloat16").eval()
    batch = data.batch(torch.arange(2))
    first = model.reconstruct(batch)
    layer = model.hypernets.layers[-1]
    cached = layer._cast[1]
    assert torch.equal(model.reconstruct(batch), first) and layer._cast[1] is cached  # reused, same result
    with torch.no_grad():
        layer.weight.mul_(0.5)  # an in-place update, as the optimiser makes
    changed = model.reconstruct(batch)
    assert layer._cast[1] is not cached and torch.equal(layer._cast[1], layer.weight.to(torch.bfloat16))
    assert not torch.equal(changed, first)
    # with autograd on (training) nothing is cached: the cast is part of the graph
    model.elbo(batch)["elbo"].sum().backward()
    assert layer._cast is None and layer.weight.grad is not None
