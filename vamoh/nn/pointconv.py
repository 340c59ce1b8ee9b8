"""PointConv (Wu et al., 2019) encoder over point clouds with a mask of observed points.

One layer: pick M centroids among the observed points, group each centroid's k nearest observed
neighbours, map their offsets (neighbour - centroid) through a weight-net of 1x1 layers to W
weights per neighbour, contract the grouped features with those weights (C_in x k) x (k x W), and
map the flattened (C_in * W) result to C_out channels with a linear layer. Average-pool layers
average features over the k nearest neighbours of their centroids.

Centroids come from farthest point sampling (deterministic start at the first observed point, as
in the original code) or, faster, from random or stratified sampling (the paper names slow
centroid selection as its encoder's limitation). Neighbourhoods use raw coordinates by default.

When every sample of a batch shares the same coordinates and mask (a grid, the same point
dropout), centroids and neighbours are the same for all samples: they are computed once and,
for farthest point sampling, cached across batches.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import ConfigError

CENTROID_METHODS = ("fps", "random", "stratified")


# ----------------------------------------------------------------------------- sampling & grouping


def farthest_point_sampling(coords: Tensor, m: int, mask: Tensor | None = None) -> Tensor:
    """Indices (B, m) of ``m`` farthest points of ``coords`` (B, N, c) among the observed ones.

    Starts at the first observed point of each sample; unobserved points are never picked.
    """
    B, N, _ = coords.shape
    device = coords.device
    if mask is None:
        mask = torch.ones(B, N, dtype=torch.bool, device=device)
    idx = torch.empty(B, m, dtype=torch.long, device=device)
    # distance to the chosen set; -1 marks points that can never be chosen
    dist = torch.where(mask, torch.full((B, N), float("inf"), device=device), torch.full((B, N), -1.0, device=device))
    current = mask.float().argmax(dim=1)  # first observed point
    batch = torch.arange(B, device=device)
    for i in range(m):
        idx[:, i] = current
        d = ((coords - coords[batch, current][:, None, :]) ** 2).sum(-1)  # (B, N)
        dist = torch.where(mask, torch.minimum(dist, d), dist)
        current = dist.argmax(dim=1)
    return idx


def random_sampling(coords: Tensor, m: int, mask: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
    """Indices (B, m) of ``m`` observed points drawn uniformly without replacement."""
    B, N, _ = coords.shape
    scores = torch.rand(B, N, generator=generator, device="cpu").to(coords.device, non_blocking=True)
    if mask is not None:
        scores = scores.masked_fill(~mask, -1.0)
    return scores.topk(m, dim=1).indices


def stratified_sampling(coords: Tensor, m: int, mask: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
    """One random observed point from each of ``m`` consecutive strata of the observed points.

    For row-major grids consecutive indices are spatially close, so this spreads centroids evenly
    at the cost of one sort, instead of FPS's m sequential passes.
    """
    B, N, _ = coords.shape
    if mask is None:
        mask = torch.ones(B, N, dtype=torch.bool, device=coords.device)
    n_obs = mask.sum(1)  # (B,)
    order = torch.sort((~mask).to(torch.int8), dim=1, stable=True).indices  # observed first, in index order
    u = torch.rand(B, m, generator=generator, device="cpu").to(coords.device, non_blocking=True)
    i = torch.arange(m + 1, device=coords.device)[None, :]
    edges = torch.div(i * n_obs[:, None], m, rounding_mode="floor")  # (B, m+1) integer stratum bounds, disjoint
    start, width = edges[:, :-1], (edges[:, 1:] - edges[:, :-1]).clamp(min=1)
    pos = (start + (u * width).long().clamp(max=width - 1)).clamp(max=N - 1)
    return torch.gather(order, 1, pos)


def knn(query: Tensor, points: Tensor, k: int, mask: Tensor | None = None, chunk: int = 1024) -> Tensor:
    """Indices (B, M, k) of the ``k`` nearest observed ``points`` (B, N, c) to each ``query`` (B, M, c)."""
    out = []
    for s in range(0, query.shape[1], chunk):
        d = torch.cdist(query[:, s : s + chunk], points)  # (B, m, N)
        if mask is not None:
            d = d.masked_fill(~mask[:, None, :], float("inf"))
        out.append(d.topk(k, dim=-1, largest=False).indices)
    return torch.cat(out, dim=1)


def gather_points(x: Tensor, idx: Tensor) -> Tensor:
    """x (B, N, C), idx (B, ...) -> (B, ..., C)."""
    B, N, C = x.shape
    flat = idx.reshape(B, -1)
    out = torch.gather(x, 1, flat[..., None].expand(-1, -1, C))
    return out.reshape(*idx.shape, C)


# ----------------------------------------------------------------------------- layers


@dataclass(frozen=True)
class StageSpec:
    """One stage of the encoder: a PointConv layer, optionally followed by an average pool."""

    centroids: int
    neighbours: int
    out_channels: int
    pool_centroids: int | None = None
    pool_neighbours: int | None = None


def build_stages(
    centroids: list[int], neighbours: list[int], out_channels: list[int],
    pool_centroids: list[int | None] | None = None, pool_neighbours: list[int | None] | None = None,
) -> list[StageSpec]:
    """Table 3's per-dataset lists into stage specs, checking that the lists agree."""
    n = len(centroids)
    if not (len(neighbours) == n and len(out_channels) == n):
        raise ConfigError(f"encoder lists differ in length: centroids {centroids}, neighbours {neighbours}, out_channels {out_channels}")
    pool_centroids = list(pool_centroids or [None] * n)
    pool_neighbours = list(pool_neighbours or [None] * n)
    if len(pool_centroids) != n or len(pool_neighbours) != n:
        raise ConfigError(f"avg-pool lists {pool_centroids}, {pool_neighbours} must have {n} entries (None where there is no pool)")
    for i in range(1, n):
        prev = pool_centroids[i - 1] or centroids[i - 1]
        if centroids[i] > prev:
            raise ConfigError(f"encoder stage {i}: centroids={centroids[i]} exceeds the {prev} points of the stage before")
    return [StageSpec(c, k, o, pc, pk) for c, k, o, pc, pk in zip(centroids, neighbours, out_channels, pool_centroids, pool_neighbours)]


class WeightNet(nn.Module):
    """1x1 layers on neighbour offsets: (..., c) -> (..., hidden[-1]) weights per neighbour."""

    def __init__(self, in_dim: int, hidden: list[int], linear: bool = False) -> None:
        super().__init__()
        dims = [in_dim, *hidden]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.linear = linear  # original-code quirk: no non-linearity inside the weight-net

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if not self.linear and i < len(self.layers) - 1:
                x = F.leaky_relu(x, 0.2)
        return x


class PointConvLayer(nn.Module):
    """Grouped features (B, M, k, C_in) weighted by WeightNet(offsets) (B, M, k, W) -> (B, M, C_out)."""

    def __init__(self, in_channels: int, out_channels: int, coord_dim: int, weightnet_hidden: list[int], weightnet_linear: bool = False) -> None:
        super().__init__()
        self.weightnet = WeightNet(coord_dim, weightnet_hidden, linear=weightnet_linear)
        self.linear = nn.Linear(in_channels * weightnet_hidden[-1], out_channels)

    def forward(self, offsets: Tensor, grouped: Tensor) -> Tensor:
        w = self.weightnet(offsets)  # (B, M, k, W)
        B, M, k, C = grouped.shape
        mixed = grouped.transpose(-1, -2) @ w  # (B, M, C_in, W)
        return self.linear(mixed.reshape(B, M, -1))

    def forward_shared(self, offsets: Tensor, grouped: Tensor) -> Tensor:
        """The same function when every sample has the same neighbourhoods: offsets (1, M, k, c).

        The weight-net then runs once, not B times, and the contraction is M products of
        (B*C_in, k) @ (k, W) instead of B*M tiny ones.
        """
        w = self.weightnet(offsets)[0]  # (M, k, W)
        B, M, k, C = grouped.shape
        g = grouped.permute(1, 0, 3, 2).reshape(M, B * C, k)  # (M, B*C_in, k)
        mixed = torch.bmm(g, w).reshape(M, B, -1).transpose(0, 1)  # (B, M, C_in*W), c-major like forward()
        return self.linear(mixed)


class PointConvEncoder(nn.Module):
    """Point cloud (coords, features, mask) -> (mean, logvar) of q(z | X, Y), each (B, dim_z).

    Head: the last stage's points x channels, flattened, one linear layer to 2 * dim_z.
    """

    def __init__(
        self, stages: list[StageSpec], in_channels: int, coord_dim: int, weightnet_hidden: list[int], dim_z: int,
        centroid_method: str = "fps", weightnet_linear: bool = False, cache_size: int = 16,
    ) -> None:
        super().__init__()
        if centroid_method not in CENTROID_METHODS:
            raise ConfigError(f"centroid_method={centroid_method!r} is not one of {list(CENTROID_METHODS)}")
        self.stages = stages
        self.centroid_method = centroid_method
        chans = [in_channels] + [s.out_channels for s in stages]
        self.convs = nn.ModuleList(
            PointConvLayer(chans[i], chans[i + 1], coord_dim, weightnet_hidden, weightnet_linear) for i in range(len(stages))
        )
        last = stages[-1]
        self.head_points = last.pool_centroids or last.centroids
        self.head = nn.Linear(self.head_points * last.out_channels, 2 * dim_z)
        self._cache: OrderedDict[str, list[tuple[Tensor, Tensor]]] = OrderedDict()
        self._cache_size = cache_size

    # -- neighbourhood plan: for every stage the (centroid idx, neighbour idx) of the conv and of the pool
    def _centroids(self, coords: Tensor, m: int, mask: Tensor | None) -> Tensor:
        B, N, _ = coords.shape
        if mask is None:  # every point observed: the counts are known without reading the mask
            n_min, equal = N, True
        else:
            counts = mask.sum(1)
            n_min = int(counts.min())
            equal = bool((counts == n_min).all())
        if m >= n_min and equal:
            # at least as many centroids as observed points: every observed point is a centroid, in index order
            if mask is None:
                return torch.arange(N, device=coords.device)[None].expand(B, -1)
            return torch.sort((~mask).to(torch.int8), dim=1, stable=True).indices[:, :n_min]
        m = min(m, n_min)
        if self.centroid_method == "fps":
            return farthest_point_sampling(coords, m, mask)
        if self.centroid_method == "random":
            return random_sampling(coords, m, mask)
        return stratified_sampling(coords, m, mask)

    def plan(self, coords: Tensor, mask: Tensor | None) -> list[tuple[Tensor, Tensor]]:
        """Index plan for every conv and pool: a list of (centroid idx (B, M), neighbour idx (B, M, k))."""
        steps: list[tuple[Tensor, Tensor]] = []
        for s in self.stages:
            for m, k in ((s.centroids, s.neighbours), (s.pool_centroids, s.pool_neighbours)):
                if m is None:
                    continue
                n_avail = coords.shape[1] if mask is None else int(mask.sum(1).min())
                if n_avail < k:
                    raise ValueError(f"encoder needs at least {k} observed points for a {k}-neighbourhood, found {n_avail}")
                cidx = self._centroids(coords, m, mask)
                centres = gather_points(coords, cidx)
                nidx = knn(centres, coords, k, mask)
                steps.append((cidx, nidx))
                coords, mask = centres, None
        return steps

    def _shared_plan0(self, coords: Tensor, mask: Tensor | None) -> list[tuple[Tensor, Tensor]]:
        """Plan of sample 0 (indices (1, M), (1, M, k)); cached when the selection is deterministic (FPS)."""
        c0 = coords[:1]
        m0 = None if mask is None else mask[:1]
        key = None
        # the key hashes the coordinates, which on an accelerator means reading them back: a training step there
        # recomputes the plan instead (point dropout changes the points every step anyway)
        if self.centroid_method == "fps" and (c0.device.type == "cpu" or not self.training):
            h = hashlib.sha1(c0.detach().cpu().numpy().tobytes())
            if m0 is not None:
                h.update(m0.cpu().numpy().tobytes())
            key = h.hexdigest()
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        plan = self.plan(c0, m0)
        if key is not None:
            self._cache[key] = plan
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return plan

    def _shared_plan(self, coords: Tensor, mask: Tensor | None) -> list[tuple[Tensor, Tensor]]:
        """Sample 0's plan expanded to the whole batch."""
        B = coords.shape[0]
        return [(c.expand(B, *c.shape[1:]), n.expand(B, *n.shape[1:])) for c, n in self._shared_plan0(coords, mask)]

    def forward(self, coords: Tensor, features: Tensor, mask: Tensor | None = None,
                dtype: torch.dtype | None = None, shared: bool | None = None) -> tuple[Tensor, Tensor]:
        """coords (B, N, c), features (B, N, C_in), mask (B, N) bool or None -> mean, logvar (B, dim_z).

        ``dtype`` (e.g. torch.bfloat16): the conv stack's products run under autocast in that dtype
        (mixed precision); the head, and so the posterior's mean and log-variance, stay float32.
        """
        if shared is None or mask is not None:  # unknown (or a mask that may differ across samples): ask the data
            with torch.no_grad():
                shared = bool((coords == coords[:1]).all()) and (mask is None or bool((mask == mask[:1]).all()))
        low = dtype is not None and dtype != features.dtype
        # no autocast context at all in full precision (the 'meta' device, used to prove a step reads nothing back, has none)
        with torch.autocast(features.device.type, dtype=dtype) if low else contextlib.nullcontext():
            if shared:
                x = self._convs_shared(coords[:1], features, mask)
            else:
                x = self._convs_general(coords, features, mask)
        out = self.head(x.to(features.dtype).reshape(x.shape[0], -1))
        mean, logvar = out.chunk(2, dim=-1)
        return mean, logvar

    def _convs_general(self, coords: Tensor, features: Tensor, mask: Tensor | None) -> Tensor:
        """The conv stack with a plan per sample (coordinates or masks differ across the batch) -> (B, M, C)."""
        with torch.no_grad():
            plan = self.plan(coords, mask)
        x = features
        steps = iter(plan)
        for s, conv in zip(self.stages, self.convs):
            cidx, nidx = next(steps)
            centres = gather_points(coords, cidx)  # (B, M, c)
            offsets = gather_points(coords, nidx) - centres[:, :, None, :]  # (B, M, k, c)
            x = F.leaky_relu(conv(offsets, gather_points(x, nidx)), 0.2)  # (B, M, C_out)
            coords = centres
            if s.pool_centroids is not None:
                cidx, nidx = next(steps)
                x = gather_points(x, nidx).mean(dim=2)  # (B, M', C)
                coords = gather_points(coords, cidx)
        return x

    def _convs_shared(self, coords0: Tensor, features: Tensor, mask: Tensor | None) -> Tensor:
        """The conv stack when every sample shares coordinates and mask: coords0 (1, N, c) -> (B, M, C)."""
        B = features.shape[0]
        with torch.no_grad():
            steps = iter(self._shared_plan0(coords0, None if mask is None else mask[:1]))
        x = features
        for s, conv in zip(self.stages, self.convs):
            cidx, nidx = next(steps)  # (1, M), (1, M, k)
            M, k = nidx.shape[1:]
            centres = gather_points(coords0, cidx)  # (1, M, c)
            offsets = gather_points(coords0, nidx) - centres[:, :, None, :]  # (1, M, k, c)
            grouped = x.index_select(1, nidx.reshape(-1)).reshape(B, M, k, x.shape[-1])  # (B, M, k, C_in)
            x = F.leaky_relu(conv.forward_shared(offsets, grouped), 0.2)  # (B, M, C_out)
            coords0 = centres
            if s.pool_centroids is not None:
                cidx, nidx = next(steps)
                M, k = nidx.shape[1:]
                x = x.index_select(1, nidx.reshape(-1)).reshape(B, M, k, x.shape[-1]).mean(dim=2)
                coords0 = gather_points(coords0, cidx)
        return x
