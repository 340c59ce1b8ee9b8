"""Matmul FLOPs of one training step (forward + backward) of VAMoH, GASP and Functa, counted from their configs.

What is counted is what ``torch.utils.flop_counter.FlopCounterMode`` counts: matrix products (aten.mm,
addmm, bmm, baddbmm), 2*M*N*K each, in the forward and in every backward the step runs. Backward is
counted node by node as autograd runs it: a product's backward computes the gradient of an operand
only when that operand needs one, so a layer whose input needs no gradient (the first layer of a
network on data, a product with the fixed Fourier features) costs 1x its forward in backward, every
other 2x; products that autograd records inside a backward (``create_graph=True``: GASP's R1 penalty,
Functa's second-order inner loop) are counted again when the outer backward differentiates them.
Tests (tests/test_flop_count.py) hold these counts equal to FlopCounterMode's on real steps.

Not counted (as FlopCounterMode does not): element-wise work (activations, likelihoods, batch norm,
the optimiser), matrix-vector products and dot products (aten.mv/dot: VAMoH's planar flow, about
6 * B * dim_z FLOPs per layer forward + backward, 31 kFLOP per sample at the CelebA-HQ preset), the
neighbourhood search (torch.cdist, under no_grad; cached across steps for farthest point sampling),
and the optimiser step.

Each function returns a ``StepFlops``: forward and backward FLOPs per named part ("encoder.linear",
"decoder.generators", ...); ``group("encoder")`` sums the parts under a prefix.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field


@dataclass
class StepFlops:
    """Forward and backward matmul FLOPs of one training step, per part (exact integers)."""

    forward: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    backward: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def product(self, part: str, flops: int, grads: int) -> None:
        """A matrix product of ``flops`` (2*M*N*K) FLOPs whose backward computes ``grads`` (0, 1 or 2) operand gradients."""
        self.forward[part] += flops
        self.backward[part] += grads * flops

    def backward_only(self, part: str, flops: int) -> None:
        """Products run only in a backward pass: an outer backward differentiating a recorded backward product."""
        self.backward[part] += flops

    def forward_only(self, part: str, flops: int) -> None:
        """Products run only in a forward pass (under no_grad, or inside a backward taken with autograd.grad)."""
        self.forward[part] += flops

    @property
    def parts(self) -> list[str]:
        return sorted(set(self.forward) | set(self.backward))

    def group(self, prefix: str = "") -> int:
        """Forward + backward FLOPs of the parts named ``prefix`` or ``prefix.*`` (all parts for "")."""
        def match(p: str) -> bool:
            return not prefix or p == prefix or p.startswith(prefix + ".")
        return sum(v for p, v in self.forward.items() if match(p)) + sum(v for p, v in self.backward.items() if match(p))

    @property
    def total(self) -> int:
        return self.group("")

    def scaled_add(self, other: "StepFlops", times: int = 1) -> None:
        for p, v in other.forward.items():
            self.forward[p] += times * v
        for p, v in other.backward.items():
            self.backward[p] += times * v

    def table(self) -> str:
        """One line per part: forward, backward and total GFLOP."""
        rows = [f"{'part':32s} {'fwd GFLOP':>11s} {'bwd GFLOP':>11s} {'total':>11s}"]
        for p in self.parts:
            f, b = self.forward.get(p, 0), self.backward.get(p, 0)
            rows.append(f"{p:32s} {f / 1e9:11.3f} {b / 1e9:11.3f} {(f + b) / 1e9:11.3f}")
        rows.append(f"{'total':32s} {sum(self.forward.values()) / 1e9:11.3f} {sum(self.backward.values()) / 1e9:11.3f} "
                    f"{self.total / 1e9:11.3f}")
        return "\n".join(rows)


def mlp_dims(first: int, hidden: list[int], last: int) -> list[tuple[int, int]]:
    dims = [first, *hidden, last]
    return list(zip(dims[:-1], dims[1:]))


def conv_stage_shapes(stages, num_points: int, in_channels: int) -> list[tuple[int, int, int, int]]:
    """(M centroids, k neighbours, C_in, C_out) of every PointConv of an encoder on ``num_points`` observed points.

    As ``PointConvEncoder._centroids``: a layer asking for at least as many centroids as there are
    points keeps every point; average pools change only the number of points the next layer sees.
    """
    out = []
    n, c_in = num_points, in_channels
    for s in stages:
        m = min(s.centroids, n)
        out.append((m, s.neighbours, c_in, s.out_channels))
        n = m if s.pool_centroids is None else min(s.pool_centroids, m)
        c_in = s.out_channels
    return out


def head_points(stages, num_points: int) -> int:
    n = num_points
    for s in stages:
        n = min(s.centroids, n)
        if s.pool_centroids is not None:
            n = min(s.pool_centroids, n)
    return n


# ----------------------------------------------------------------------------- VAMoH


def _vamoh_pass(c, coord_dim: int, feature_dim: int, b: int, D: int, shared: bool, uniform_prior: bool) -> StepFlops:
    """One forward + backward of the ELBO of ``b`` samples on D observed points each (one micro-batch)."""
    from vamoh.nn.pointconv import build_stages

    fl = StepFlops()
    m = c.rff_frequencies
    R = 2 * m
    rows = 1 if shared else b  # the Fourier features of shared coordinates are computed once
    # ---- encoder: PointConv stack (``PointConvEncoder._convs_shared`` / ``_convs_general``) and linear head
    stages = build_stages(c.centroids, c.neighbours, c.out_channels, c.pool_centroids, c.pool_neighbours)
    enc_c = coord_dim
    if c.neighbourhoods_in_fourier_space:
        # the encoder reads RFF(coords) of the whole batch (b, D, c) -> (b, D, m): no operand needs a gradient
        fl.forward_only("encoder.rff", 2 * b * D * coord_dim * m)
        enc_c = R
    W = c.weightnet_hidden[-1]
    for i, (M, k, c_in, c_out) in enumerate(conv_stage_shapes(stages, D, feature_dim)):
        wn_rows = M * k * (1 if shared else b)  # the weight-net runs once on shared neighbourhoods
        for j, (a, o) in enumerate(mlp_dims(enc_c, c.weightnet_hidden[:-1], W)):
            fl.product("encoder.weightnet", 2 * wn_rows * a * o, 1 if j == 0 else 2)  # offsets need no gradient
        # (C_in x k) @ (k x W) per sample and centroid: the stage-0 features are data (no gradient)
        fl.product("encoder.contraction", 2 * b * M * c_in * k * W, 1 if i == 0 else 2)
        fl.product("encoder.linear", 2 * b * M * c_in * W * c_out, 2)
    hp = head_points(stages, D)
    fl.product("encoder.head", 2 * b * hp * c.out_channels[-1] * 2 * c.dim_z, 2)
    # ---- decoder
    fl.forward_only("decoder.rff", 2 * rows * D * coord_dim * m)  # RFF(x) for the generators and categorical nets
    # K hypernetworks on z (which needs a gradient: it comes from the encoder), all layers 2x
    gen_dims = [R, *c.generator_hidden, feature_dim]
    P = sum(a * o + o for a, o in zip(gen_dims[:-1], gen_dims[1:]))
    for a, o in mlp_dims(c.dim_z, c.hypernet_hidden, P):
        fl.product("decoder.hypernet", 2 * c.K * b * a * o, 2)
    # b x K generators on D points; the first layer reads the fixed RFF (weight gradient only)
    for j, (a, o) in enumerate(zip(gen_dims[:-1], gen_dims[1:])):
        fl.product("decoder.generators", 2 * b * c.K * D * a * o, 1 if j == 0 else 2)
    # categorical nets: first layer split into RFF (shared rows), y (posterior only) and z parts
    nets = [feature_dim] + ([] if uniform_prior else [0])  # posterior's extra input, then the prior's
    for extra in nets:
        h1 = (c.categorical_hidden or [c.K])[0]
        fl.product("decoder.categorical", 2 * rows * D * R * h1, 1)  # RFF part: weight gradient only
        fl.product("decoder.categorical", 2 * b * c.dim_z * h1, 2)  # z part
        if extra:
            fl.product("decoder.categorical", 2 * b * D * extra * h1, 1)  # y part: data, weight gradient only
        for a, o in mlp_dims(h1, c.categorical_hidden[1:], c.K) if c.categorical_hidden else []:
            fl.product("decoder.categorical", 2 * b * D * a * o, 2)
    return fl


def vamoh_step_flops(config, info, batch_size: int, num_points: int, shared_coords: bool = True, epoch: int = 10**9) -> StepFlops:
    """Matmul FLOPs of one ``VAMoH.training_step`` on ``batch_size`` samples of ``num_points`` observed points each.

    ``num_points``: the points left after point dropout (the grid's size for an all-points step;
    dropout only shrinks D and, below a layer's centroid count, that layer's M). ``shared_coords``:
    every sample has the same coordinates (a grid, or the same random subset), as in the benchmarks;
    the Fourier features, the weight-nets and the RFF part of the categorical nets then run once
    per micro-batch instead of once per sample. Micro-batching (``config.microbatch_size``) repeats
    those shared products per micro-batch. ``epoch``: before ``frozen_uniform_categorical_prior_epochs``
    the prior categorical net does not run. The flow prior (on or off) adds no matrix products.
    """
    c = config
    uniform = epoch < c.frozen_uniform_categorical_prior_epochs
    size = c.microbatch_size or batch_size
    out = StepFlops()
    for start in range(0, batch_size, size):
        b = min(size, batch_size - start)
        out.scaled_add(_vamoh_pass(c, info.coord_dim, info.feature_dim, b, num_points, shared_coords, uniform))
    return out


# ----------------------------------------------------------------------------- GASP


def _generator(fl: StepFlops, c, coord_dim: int, feature_dim: int, B: int, D: int, shared: bool, grad: bool) -> None:
    """GASP's generator (hypernetwork on prior z, one MLP per sample) forward, and its backward when ``grad``."""
    rows = 1 if shared else B
    if c.fourier_features:
        fl.forward_only("generator.rff", 2 * rows * D * coord_dim * c.rff_frequencies)
        in_dim = 2 * c.rff_frequencies
    else:
        in_dim = coord_dim
    gen_dims = [in_dim, *c.function_hidden, feature_dim]
    P = sum(a * o + o for a, o in zip(gen_dims[:-1], gen_dims[1:]))
    for j, (a, o) in enumerate(mlp_dims(c.dim_z, c.hypernet_hidden, P)):
        fl.product("generator.hypernet", 2 * B * a * o, (1 if j == 0 else 2) if grad else 0)  # z ~ N(0, I): no gradient
    for j, (a, o) in enumerate(zip(gen_dims[:-1], gen_dims[1:])):
        fl.product("generator.function", 2 * B * D * a * o, (1 if j == 0 else 2) if grad else 0)


def _disc_products(c, coord_dim: int, feature_dim: int, B: int, D: int) -> list[tuple[str, int, int, int]]:
    """(part, FLOPs, stage, layer) of every product in one discriminator forward; layer -1 for the contraction, -2 the linear."""
    from vamoh.nn.pointconv import build_stages

    stages = build_stages(c.centroids, c.neighbours, c.out_channels, c.pool_centroids, c.pool_neighbours)
    W = c.weightnet_hidden[-1]
    out = []
    for i, (M, k, c_in, c_out) in enumerate(conv_stage_shapes(stages, D, feature_dim)):
        # GASP's discriminator runs its weight-nets per sample (PointConvLayer.forward on the expanded plan)
        for j, (a, o) in enumerate(mlp_dims(coord_dim, c.weightnet_hidden[:-1], W)):
            out.append(("discriminator.weightnet", 2 * B * M * k * a * o, i, j))
        out.append(("discriminator.contraction", 2 * B * M * c_in * k * W, i, -1))
        out.append(("discriminator.linear", 2 * B * M * c_in * W * c_out, i, -2))
    return out


def gasp_step_flops(config, info, batch_size: int, num_points: int, shared_coords: bool = True) -> StepFlops:
    """Matmul FLOPs of one ``GASP.training_step`` (one D step with R1, one G step) on B samples of D points.

    D step: fakes generated under no_grad; D(real) with real features that need a gradient (R1);
    the R1 gradient taken with ``create_graph=True`` computes, for every product on the path from the
    features to the logit, the input gradient only (contraction and linear layers, not the weight-nets),
    and records those products; ``loss_d.backward()`` then differentiates D(real) (every operand,
    the real features included: they are a leaf that requires grad), the recorded R1 products (both
    operands; the last linear's incoming gradient is a constant when R1 is on the logit), and D(fake).
    G step: new fakes with gradient, D with its parameters frozen: D's backward computes input
    gradients only (weight-nets not at all); the generator's first layers read data (z, RFF).
    """
    c = config
    B, D = batch_size, num_points
    f, cd = info.feature_dim, info.coord_dim
    fl = StepFlops()
    disc = _disc_products(c, cd, f, B, D)
    last_stage = max(i for _, _, i, _ in disc)
    r1 = c.r1_weight > 0
    # ---- D step
    _generator(fl, c, cd, f, B, D, shared_coords, grad=False)
    for part, flops, i, j in disc:  # D(real)
        if j >= 0:
            grads = 1 if j == 0 else 2  # weight-net: offsets need no gradient
        elif j == -1:
            grads = 2 if (i > 0 or r1) else 1  # stage 0 reads the real features: a gradient only with R1
        else:
            grads = 2
        fl.product(part, flops, grads)
        if r1 and j < 0:
            fl.forward_only("discriminator.r1", flops)  # autograd.grad(create_graph=True): input gradient only
            constant = j == -2 and i == last_stage and not c.r1_on_probability
            fl.backward_only("discriminator.r1", flops * (1 if constant else 2))
    for part, flops, i, j in disc:  # D(fake): fakes carry no gradient
        fl.product(part, flops, 1 if (j == 0 or (j == -1 and i == 0)) else 2)
    # ---- G step: D's parameters need no gradient; its products pass the input gradient back
    _generator(fl, c, cd, f, B, D, shared_coords, grad=True)
    for part, flops, i, j in disc:
        fl.product(part, flops, 0 if j >= 0 else 1)
    return fl


# ----------------------------------------------------------------------------- Functa


def functa_step_flops(config, info, batch_size: int, num_points: int, shared_coords: bool = True) -> StepFlops:
    """Matmul FLOPs of one ``Functa.training_step``: T inner Meta-SGD steps, the outer loss, its backward.

    Parts of one decode: ``to_shifts`` (z -> all shifts), the first sine layer (on the coordinates:
    once when they are shared, it depends on no latent), the other sine layers, the output layer.
    Inner step t: forward, then autograd.grad(loss, z_t) through the path to z_t (every layer but the
    first, input gradients only). Second order (``create_graph``): the outer backward differentiates
    every inner step's forward products (the leaf z_0 = 0 requires grad, so to_shifts' input gradient
    is taken even at t = 0) and the recorded input-gradient products (both operands). First order:
    the outer backward reaches only the last decode (the z_t are linked by z - rates * grad alone).
    """
    c = config
    B, D, Wd, L = batch_size, num_points, c.width, c.latent_dim
    rows = 1 if shared_coords else B
    S = (c.depth - 1) * Wd
    shifts = 2 * B * L * S
    first = 2 * rows * D * info.coord_dim * Wd
    hidden = (c.depth - 2) * 2 * B * D * Wd * Wd
    output = 2 * B * D * Wd * info.feature_dim
    fl = StepFlops()
    T = c.inner_steps
    second_order = not c.first_order

    def decode(tag: str, backward: bool) -> None:
        g = 2 if backward else 0
        fl.product(f"{tag}.to_shifts", shifts, g)
        fl.product(f"{tag}.first_layer", first, 1 if backward else 0)
        fl.product(f"{tag}.hidden_layers", hidden, g)
        fl.product(f"{tag}.output_layer", output, g)

    for _ in range(T):
        decode("inner", backward=second_order)
        for name, flops in (("to_shifts", shifts), ("hidden_layers", hidden), ("output_layer", output)):
            fl.forward_only(f"inner.grad_z.{name}", flops)
            if second_order:
                fl.backward_only(f"inner.grad_z.{name}", 2 * flops)
    decode("outer", backward=True)
    return fl


def step_flops(name: str, config, info, batch_size: int, num_points: int, shared_coords: bool = True) -> StepFlops:
    """The count for model ``name`` ("vamoh", "gasp", "functa")."""
    fn = {"vamoh": vamoh_step_flops, "gasp": gasp_step_flops, "functa": functa_step_flops}[name]
    return fn(config, info, batch_size, num_points, shared_coords=shared_coords)


# ----------------------------------------------------------------------------- torch's own count


class _GlobalOnly:
    """Stands in for FlopCounterMode's module tracker, whose module hooks make ``torch.autograd.grad`` on a leaf
    fail inside the mode (pytorch/pytorch#131753: GASP's R1 penalty and Functa's inner loop take such
    gradients). Everything is counted under "Global", which is all ``get_total_flops`` reads."""

    parents = {"Global"}

    def __enter__(self) -> "_GlobalOnly":
        return self

    def __exit__(self, *exc) -> None:
        return None


def counted_flops(fn) -> tuple[int, dict[str, int]]:
    """Run ``fn()`` under ``torch.utils.flop_counter.FlopCounterMode``: its total FLOPs and FLOPs per aten op."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _GlobalOnly()
    with counter:
        fn()
    per_op = {str(k): int(v) for k, v in counter.get_flop_counts().get("Global", {}).items()}
    return counter.get_total_flops(), per_op


def functa_reconstruction_flops(config, info, num_points: int, steps: int, query_points: int | None = None) -> StepFlops:
    """Matmul FLOPs of ``Functa.reconstruct`` of one sample: ``steps`` first-order inner steps on ``num_points``
    observed points (forward, then the input gradients back to z), then one decode at the query points (forward)."""
    c = config
    Wd, L, S = c.width, c.latent_dim, (c.depth - 1) * c.width
    fl = StepFlops()

    def decode(tag: str, D: int) -> None:
        fl.forward_only(f"{tag}.to_shifts", 2 * L * S)
        fl.forward_only(f"{tag}.first_layer", 2 * D * info.coord_dim * Wd)
        fl.forward_only(f"{tag}.hidden_layers", (c.depth - 2) * 2 * D * Wd * Wd)
        fl.forward_only(f"{tag}.output_layer", 2 * D * Wd * info.feature_dim)

    for _ in range(steps):
        decode("inner", num_points)
        fl.forward_only("inner.grad_z.to_shifts", 2 * L * S)
        fl.forward_only("inner.grad_z.hidden_layers", (c.depth - 2) * 2 * num_points * Wd * Wd)
        fl.forward_only("inner.grad_z.output_layer", 2 * num_points * Wd * info.feature_dim)
    decode("decode", num_points if query_points is None else query_points)
    return fl
