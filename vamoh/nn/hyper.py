"""K hypernetworks z -> all weights of a generator MLP, and the K x B generators they define.

Nothing here loops over K or over samples in Python: the K hypernetworks are one stack of batched
linear layers (K, in, out), and the K x B generators run as batched matrix products in a
channels-first layout (N, h, D), so the Fourier features of the coordinates (shared by all
components, and by all samples on a common grid) are read in place, never copied per generator.

Mixed precision (``dtype=torch.bfloat16``): the hypernetworks' products and every generator layer but
the last run in bfloat16, with the float32 parameters cast on the way in (so gradients, and the
optimiser, stay float32). The generators' last layer, which produces the likelihood's parameters,
runs in float32 with float32 weights: its hypernetwork outputs (the last ``float32_tail`` entries of
theta, ``HyperNetworks.tail``) are computed in float32. bfloat16 keeps 8 significant bits (spacing
1/128 to 1/256 relative), coarser than the 1/255 bins of the discretized logistic, so the output
layer must not be rounded to it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class BatchedLinear(nn.Module):
    """K independent linear layers applied together: x (K, B, in) -> (K, B, out).

    Each of the K layers gets PyTorch's default nn.Linear initialisation.
    """

    def __init__(self, num: int, in_features: int, out_features: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(num, in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(num, 1, out_features).uniform_(-bound, bound))
        self._cast: tuple[tuple, Tensor, Tensor] | None = None  # (key, weight, bias) in a narrower dtype

    def _narrow(self, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """The parameters cast to ``dtype``. Without autograd (sampling, reconstruction) the copies are
        kept until the parameters change (their version counters move) or the dtype does: a
        single-sample call then reads half the bytes instead of casting the weights again (CelebA-HQ:
        254 MB instead of 511 + 254 MB)."""
        if torch.is_grad_enabled():
            self._cast = None
            return self.weight.to(dtype), self.bias.to(dtype)
        key = (dtype, self.weight.device, self.weight._version, self.bias._version, self.weight.data_ptr())
        if self._cast is None or self._cast[0] != key:
            self._cast = (key, self.weight.to(dtype), self.bias.to(dtype))
        return self._cast[1], self._cast[2]

    def forward(self, x: Tensor) -> Tensor:
        """x (K, B, in) in the parameters' dtype, or in a narrower one: the parameters are then cast to
        it (autograd casts their gradients back)."""
        if x.dtype != self.weight.dtype:
            weight, bias = self._narrow(x.dtype)
            return torch.baddbmm(bias, x, weight)
        return torch.baddbmm(self.bias, x, self.weight)


class GeneratorLayout:
    """Where each weight and bias of a generator MLP sits in the flat parameter vector theta.

    Layer l maps dims[l] -> dims[l+1]; theta holds, per layer, W (dims[l+1] x dims[l], row-major,
    so that y = W x + b, nn.Linear's convention) followed by b (dims[l+1]). Out-by-in is also the
    layout the channels-first products want: the forward reads W as stored, and the backward's
    W^T @ grad reads a transposed view, the form BLAS handles fast even when the output layer is
    3 wide (stored in-by-out, that one product took 10x longer on CPU).
    """

    def __init__(self, dims: list[int]) -> None:
        self.dims = list(dims)
        self.slices: list[tuple[slice, slice]] = []
        offset = 0
        for a, b in zip(dims[:-1], dims[1:]):
            w = slice(offset, offset + a * b)
            offset += a * b
            bias = slice(offset, offset + b)
            offset += b
            self.slices.append((w, bias))
        self.num_params = offset
        self.last_layer_params = offset - self.slices[-1][0].start  # W and b of the last layer, at the end of theta

    def unflatten(self, theta: Tensor) -> list[tuple[Tensor, Tensor]]:
        """theta (N, P) -> [(W (N, out, in), b (N, out))] per layer."""
        out = []
        for (ws, bs), a, b in zip(self.slices, self.dims[:-1], self.dims[1:]):
            out.append((theta[:, ws].reshape(-1, b, a), theta[:, bs]))
        return out


class HyperNetworks(nn.Module):
    """K separate MLPs z (B, dim_z) -> theta (K, B, P), LeakyReLU(0.1) between layers.

    With ``float32_tail`` > 0 the last layer is held as two blocks of output columns, ``layers[-1]``
    (the first P - float32_tail entries of theta) and ``tail`` (the last float32_tail): the same
    function and initialisation as one layer, but in mixed precision the tail (the generators' output
    layer) is computed in float32, and neither block's gradient needs a full-size scatter.
    """

    def __init__(self, num: int, dim_z: int, hidden: list[int], num_params: int, float32_tail: int = 0) -> None:
        super().__init__()
        dims = [dim_z, *hidden, num_params - float32_tail]
        self.num = num
        self.layers = nn.ModuleList(BatchedLinear(num, a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.tail = BatchedLinear(num, dims[-2], float32_tail) if float32_tail else None

    def forward(self, z: Tensor, dtype: torch.dtype | None = None) -> Tensor:
        """theta (K, B, P) in z's dtype, computed in ``dtype`` (default: z's) except the tail."""
        h = z.unsqueeze(0).expand(self.num, -1, -1)  # (K, B, dim_z)
        if dtype is not None:
            h = h.to(dtype)
        for layer in self.layers[:-1]:
            h = F.leaky_relu(layer(h), 0.1)
        head = self.layers[-1](h).to(z.dtype)
        if self.tail is None:
            return head
        return torch.cat([head, self.tail(h.to(z.dtype))], dim=-1)


class _WideOutputLayer(torch.autograd.Function):
    """out = W h + b in W's (wide) dtype from activations h held in a narrower dtype.

    The forward upcasts h only transiently; the backward runs in h's dtype, so no wide copy of the
    largest activations is kept for it (at the CelebA-HQ preset that copy is 671 MB). The weight
    gradient comes from a narrow-dtype matmul (float32 accumulation, narrow result), then is cast to
    W's dtype, as under autocast.
    """

    @staticmethod
    def forward(ctx, h: Tensor, W: Tensor, b: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(h, W)
        return torch.baddbmm(b[:, :, None], W, h.to(W.dtype))

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:  # type: ignore[override]
        h, W = ctx.saved_tensors
        g_low = g.to(h.dtype)
        grad_h = torch.bmm(W.to(h.dtype).transpose(1, 2), g_low) if ctx.needs_input_grad[0] else None
        grad_W = torch.bmm(g_low, h.transpose(1, 2)).to(W.dtype) if ctx.needs_input_grad[1] else None
        grad_b = g.sum(-1) if ctx.needs_input_grad[2] else None
        return grad_h, grad_W, grad_b


def run_generators(layout: GeneratorLayout, theta: Tensor, features: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """Evaluate B x K generators on their inputs.

    theta: (K, B, P) generator parameters; features: (B, D, F) or (1, D, F) inputs (the Fourier
    features of the coordinates; (1, D, F) when all samples share them).
    Returns raw outputs (B, D, K, f_out) in theta's dtype. LeakyReLU(0.1) between layers, none after
    the last (the likelihood applies its own link: sigmoid mean, logits). Every layer but the last runs
    in ``dtype`` (default: theta's); the last runs in theta's dtype (module docstring).
    """
    dtype = theta.dtype if dtype is None else dtype
    K, B, _ = theta.shape
    params = layout.unflatten(theta.transpose(0, 1).reshape(B * K, -1))  # layers of (B*K, out, in), (B*K, out)
    last = len(params) - 1
    params = [(W.to(dtype), b.to(dtype)) if i < last else (W, b) for i, (W, b) in enumerate(params)]
    features = features.to(dtype if last > 0 else theta.dtype)
    W1, b1 = params[0]  # (B*K, h1, F)
    D = features.shape[1]
    h1 = W1.shape[1]
    if features.shape[0] == 1:
        # one GEMM for all B*K generators: (B*K*h1, F) @ (F, D)
        h = (W1.reshape(B * K * h1, -1) @ features[0].T).reshape(B * K, h1, D)
    else:
        h = torch.bmm(W1.reshape(B, K * h1, -1), features.transpose(1, 2)).reshape(B * K, h1, D)
    h = h + b1[:, :, None]
    for W, b in params[1:]:
        # in place: these (B*K, h, D) activations are the largest tensors of a step, and autograd
        # can differentiate leaky_relu from its output (the slope is positive, so signs survive)
        h = F.leaky_relu_(h, 0.1)
        if h.dtype != W.dtype:  # the last layer, in mixed precision
            h = _WideOutputLayer.apply(h, W, b)
        else:
            h = torch.baddbmm(b[:, :, None], W, h)  # (B*K, out, D)
    f_out = h.shape[1]
    return h.reshape(B, K, f_out, D).permute(0, 3, 1, 2)  # (B, D, K, f)
