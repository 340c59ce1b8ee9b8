"""GASP's PointConv discriminator: the suite's PointConv pieces with batch normalisation.

GASP's discriminator differs from VAMoH's encoder in three ways (REFERENCE §2): every weight-net
layer is 1x1 + BatchNorm + LeakyReLU(0.2); every PointConv but the last is followed by BatchNorm +
LeakyReLU(0.2) on the features; and the last PointConv reduces the cloud to one point with one
channel, the real/fake logit, so there is no linear head. Centroid selection, neighbourhoods and
the plan cache are inherited unchanged from ``vamoh.nn.pointconv.PointConvEncoder``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vamoh.checks import ConfigError
from vamoh.nn.pointconv import PointConvEncoder, PointConvLayer, StageSpec, gather_points


def batch_norm_last(bn: nn.BatchNorm1d, x: Tensor) -> Tensor:
    """BatchNorm over the channel (last) axis of x (..., C): statistics over every other axis."""
    return bn(x.reshape(-1, x.shape[-1])).reshape(x.shape)


class NormedWeightNet(nn.Module):
    """Offsets (..., c) -> weights (..., hidden[-1]); each layer 1x1 + BatchNorm + LeakyReLU(0.2), the last included."""

    def __init__(self, in_dim: int, hidden: list[int]) -> None:
        super().__init__()
        dims = [in_dim, *hidden]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(b) for b in hidden)

    def forward(self, x: Tensor) -> Tensor:
        for layer, norm in zip(self.layers, self.norms):
            x = F.leaky_relu(batch_norm_last(norm, layer(x)), 0.2)
        return x


class NormedPointConvLayer(PointConvLayer):
    """``PointConvLayer`` whose weight-net is a ``NormedWeightNet``; the contraction is inherited."""

    def __init__(self, in_channels: int, out_channels: int, coord_dim: int, weightnet_hidden: list[int]) -> None:
        super().__init__(in_channels, out_channels, coord_dim, weightnet_hidden)
        self.weightnet = NormedWeightNet(coord_dim, weightnet_hidden)


class PointConvDiscriminator(PointConvEncoder):
    """Point cloud (coords (B, N, c), features (B, N, f)) -> real/fake logits (B,).

    ``stages`` must end in a single centroid with one output channel and no pool (GASP's final
    PC(1, k, 1)); its one value per sample is the logit.
    """

    def __init__(self, stages: list[StageSpec], in_channels: int, coord_dim: int, weightnet_hidden: list[int],
                 centroid_method: str = "fps") -> None:
        last = stages[-1]
        if (last.centroids, last.out_channels, last.pool_centroids) != (1, 1, None):
            raise ConfigError(f"gasp discriminator: the last stage is {last}; expected one centroid, one output channel "
                              "and no pool (the logit)")
        super().__init__(stages, in_channels, coord_dim, weightnet_hidden, dim_z=1, centroid_method=centroid_method)
        # the parent's plain layers and linear head are replaced: the last PointConv already gives the logit
        chans = [in_channels] + [s.out_channels for s in stages]
        self.convs = nn.ModuleList(NormedPointConvLayer(chans[i], chans[i + 1], coord_dim, weightnet_hidden) for i in range(len(stages)))
        self.norms = nn.ModuleList(nn.BatchNorm1d(c) for c in chans[1:-1])
        del self.head

    def forward(self, coords: Tensor, features: Tensor, mask: Tensor | None = None, shared: bool | None = None) -> Tensor:  # type: ignore[override]
        """coords (B, N, c), features (B, N, f) -> logits (B,). Every point is observed (``mask`` must be None).
        ``shared``: True when every sample is known to have the same coordinates (None: read them to find out)."""
        if mask is not None:
            raise ValueError("gasp discriminator: expected fully observed point clouds (mask=None)")
        B = coords.shape[0]
        with torch.no_grad():
            if shared is None:
                shared = bool((coords == coords[:1]).all())
            plan = self._shared_plan(coords, None) if shared else self.plan(coords, None)
        steps = iter(plan)
        x = features
        for i, (s, conv) in enumerate(zip(self.stages, self.convs)):
            cidx, nidx = next(steps)
            centres = gather_points(coords, cidx)  # (B, M, c)
            offsets = gather_points(coords, nidx) - centres[:, :, None, :]  # (B, M, k, c)
            x = conv(offsets, gather_points(x, nidx))  # (B, M, C_out)
            if i < len(self.norms):
                x = F.leaky_relu(batch_norm_last(self.norms[i], x), 0.2)
            coords = centres
            if s.pool_centroids is not None:
                cidx, nidx = next(steps)
                x = gather_points(x, nidx).mean(dim=2)  # (B, M', C)
                coords = gather_points(coords, cidx)
        return x.reshape(B)  # one point, one channel
