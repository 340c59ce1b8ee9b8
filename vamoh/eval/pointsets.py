"""ShapeNet's 3-D generation protocol: COV, MMD and 1-NNA under the Chamfer distance between point clouds.

Every ShapeNet-chairs generation paper since PointFlow (Yang et al., ICCV 2019) reports these three
numbers on point clouds sampled from the shapes' surfaces. Here the shapes are occupancy grids, so:

1. ``voxel_surface_points``: each thresholded grid's surface (the faces of occupied voxels that touch an
   empty voxel or the grid's border) is sampled uniformly by area, in the suite's coordinates (voxel
   centres where ``grid_coordinates`` puts them, so a voxel of an S-grid has side 2 / (S - 1));
2. ``chamfer_distance`` / ``pairwise_chamfer``: PointFlow's convention, the mean squared nearest-neighbour
   distance from a to b plus the same from b to a (squared Euclidean, means not sums, no square root);
3. ``cov_mmd_1nna``: the three numbers from the generated-reference, generated-generated and
   reference-reference distance matrices.

Absolute MMD values depend on the point count and on the coordinate scale; they are comparable only
with numbers computed on the same scale (papers that normalise each shape to a unit box are not).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks import DataError, check
from .coverage import check_count
from .keys import COV, MMD, ONE_NNA

# Result keys of ``cov_mmd_1nna``.

# The 6 face directions of a voxel: (axis, sign).
_FACES = [(axis, sign) for axis in range(3) for sign in (-1, 1)]


# ----------------------------------------------------------------------------- surfaces of voxel grids


def _occupied(occupancy: Tensor | np.ndarray, threshold: float) -> tuple[Tensor, bool]:
    """(B, S1, S2, S3) bool occupancy (occupancy > threshold) and whether the input had a batch axis."""
    occ = torch.as_tensor(occupancy).detach()
    check(occ.dim() in (3, 4), f"occupancy: shape {tuple(occ.shape)}, expected (S, S, S) or (B, S, S, S)", DataError)
    batched = occ.dim() == 4
    occ = occ if batched else occ.unsqueeze(0)
    check(all(s >= 2 for s in occ.shape[1:]), f"occupancy: grid {tuple(occ.shape[1:])}, expected every side >= 2", DataError)
    check(not bool(torch.isnan(occ.float()).any()), "occupancy: contains NaN", DataError)
    return occ.float() > threshold, batched  # strict, as voxel IoU (recon.py) thresholds


def has_surface(occupancy: Tensor | np.ndarray, threshold: float = 0.5) -> Tensor:
    """Bool (B,) (or a 0-d bool for one grid): whether any voxel of the grid is above ``threshold``.

    A grid with no occupied voxel has no surface: ``voxel_surface_points`` refuses it. Use this to drop
    such samples before scoring, and report how many were dropped (a generator that emits empty shapes
    must not get a better COV/MMD/1-NNA by having them silently skipped).
    """
    occ, batched = _occupied(occupancy, threshold)
    any_occ = occ.flatten(1).any(dim=1)  # (B,)
    return any_occ if batched else any_occ[0]


def _exposed_faces(occ: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Exposed faces of one grid (S1, S2, S3) bool: voxel indices (F, 3), face axis (F,), face sign (F,)."""
    padded = F.pad(occ, (1, 1, 1, 1, 1, 1))  # empty outside the grid, so border faces are exposed
    inner = tuple(slice(1, -1) for _ in range(3))
    idx, axes, signs = [], [], []
    for axis, sign in _FACES:
        shifted = list(inner)
        shifted[axis] = slice(1 + sign, padded.shape[axis] - 1 + sign)  # the neighbour on that side
        exposed = occ & ~padded[tuple(shifted)]
        where = exposed.nonzero()  # (F_a, 3)
        idx.append(where)
        axes.append(torch.full((len(where),), axis, dtype=torch.long))
        signs.append(torch.full((len(where),), sign, dtype=torch.long))
    return torch.cat(idx), torch.cat(axes), torch.cat(signs)


def voxel_surface_points(
    occupancy: Tensor | np.ndarray, n_points: int = 2048, threshold: float = 0.5, generator: torch.Generator | None = None
) -> Tensor:
    """Points sampled uniformly on the surface of thresholded occupancy grids.

    ``occupancy``: (S1, S2, S3) or (B, S1, S2, S3), values in [0, 1]; a voxel is occupied when its value
    is > ``threshold``. Voxel [i, j, k] is the cube of side h_a = 2 / (S_a - 1) per axis centred on
    ``grid_coordinates``' point (x_i, y_j, z_k), x_i = -1 + i h_0. The surface is the set of faces shared
    by an occupied voxel and an empty voxel or the outside; faces are drawn with probability proportional
    to their area (with replacement), then a point uniformly on the face.

    Returns float32 (n_points, 3) or (B, n_points, 3). Raises ``DataError`` naming the samples when a
    grid has no occupied voxel (no surface); filter with ``has_surface`` first.
    """
    check_count("n_points", n_points)
    occ, batched = _occupied(occupancy, threshold)
    empty = (~occ.flatten(1).any(dim=1)).nonzero().flatten().tolist()
    check(
        not empty,
        f"occupancy: sample(s) {empty[:10]}{' ...' if len(empty) > 10 else ''} ({len(empty)} of {len(occ)}) have no voxel "
        f"above threshold {threshold}: no surface to sample. Drop them with has_surface() and report the count.",
        DataError,
    )
    sizes = torch.tensor(occ.shape[1:], dtype=torch.float64)
    h = 2.0 / (sizes - 1.0)  # (3,) voxel side per axis
    face_area = torch.stack([h[1] * h[2], h[0] * h[2], h[0] * h[1]])  # (3,) area of a face normal to each axis
    clouds = []
    for grid in occ:
        voxels, axes, signs = _exposed_faces(grid)  # (F, 3), (F,), (F,)
        pick = torch.multinomial(face_area[axes], n_points, replacement=True, generator=generator)  # (n,)
        centre = -1.0 + voxels[pick].double() * h  # (n, 3)
        # Uniform offsets in the cube, then the face's own axis pinned to the face: centre +- h/2.
        offset = (torch.rand(n_points, 3, generator=generator, dtype=torch.float64) - 0.5) * h  # (n, 3)
        rows = torch.arange(n_points)
        offset[rows, axes[pick]] = signs[pick].double() * h[axes[pick]] / 2.0
        clouds.append((centre + offset).float())
    out = torch.stack(clouds)  # (B, n, 3)
    return out if batched else out[0]


# ----------------------------------------------------------------------------- Chamfer distance


def _as_clouds(x: Tensor | np.ndarray, name: str) -> Tensor:
    """(A, n, 3) floating tensor of finite points (float32 stays float32)."""
    t = torch.as_tensor(x).detach()
    t = t if t.is_floating_point() else t.double()
    check(t.dim() == 3 and t.shape[0] > 0 and t.shape[1] > 0, f"{name}: shape {tuple(t.shape)}, expected (clouds, points, dim)", DataError)
    check(bool(torch.isfinite(t).all()), f"{name}: contains NaN or infinite values", DataError)
    return t


def _chamfer_rows(a: Tensor, b: Tensor) -> Tensor:
    """Chamfer distances of aligned pairs: a (c, n, D), b (c, m, D) -> (c,)."""
    # Direct differences, not the |a|^2 + |b|^2 - 2ab expansion: a cloud is at distance exactly 0 from itself.
    sq = torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist").square()  # (c, n, m)
    return sq.min(dim=2).values.mean(dim=1) + sq.min(dim=1).values.mean(dim=1)


def chamfer_distance(a: Tensor | np.ndarray, b: Tensor | np.ndarray) -> float:
    """Chamfer distance between two clouds a (n, D) and b (m, D), PointFlow's convention:

    CD(a, b) = mean_{p in a} min_{q in b} |p - q|^2 + mean_{q in b} min_{p in a} |p - q|^2.
    Symmetric, 0 for a cloud with itself, in squared coordinate units.
    """
    ta, tb = torch.as_tensor(a), torch.as_tensor(b)
    check(ta.dim() == 2 and tb.dim() == 2 and ta.shape[1] == tb.shape[1], f"chamfer_distance: shapes {tuple(ta.shape)} and {tuple(tb.shape)}, expected (n, D) and (m, D)", DataError)
    ca, cb = _as_clouds(ta[None], "a"), _as_clouds(tb[None], "b")  # (1, n, D), (1, m, D)
    dtype = torch.promote_types(ca.dtype, cb.dtype)
    return float(_chamfer_rows(ca.to(dtype), cb.to(ca.device, dtype))[0])


def pairwise_chamfer(clouds_a: Tensor | np.ndarray, clouds_b: Tensor | np.ndarray | None = None, batch_size: int = 16) -> Tensor:
    """Chamfer distance between every cloud of ``clouds_a`` (A, n, D) and every cloud of ``clouds_b`` (B, m, D).

    Returns float64 (A, B) on the inputs' device; ``clouds_b=None`` means ``clouds_a`` against itself,
    (A, A), computing each unordered pair once. Memory: ``batch_size`` x n x m distances at a time
    (2048-point clouds: 16 MB per pair in float32), so it fits on a GPU for any A and B.
    """
    check_count("batch_size", batch_size)
    a = _as_clouds(clouds_a, "clouds_a")
    symmetric = clouds_b is None
    b = a if symmetric else _as_clouds(clouds_b, "clouds_b").to(a.device, a.dtype)
    check(a.shape[2] == b.shape[2], f"point dims differ: clouds_a {tuple(a.shape)}, clouds_b {tuple(b.shape)}", DataError)
    out = torch.zeros(a.shape[0], b.shape[0], dtype=torch.float64, device=a.device)
    for i in range(a.shape[0]):
        first = i if symmetric else 0  # the symmetric case fills j >= i, then mirrors
        for start in range(first, b.shape[0], batch_size):
            chunk = b[start : start + batch_size]  # (c, m, D)
            out[i, start : start + len(chunk)] = _chamfer_rows(a[i].expand(len(chunk), -1, -1), chunk).double()
    if symmetric:
        out = torch.triu(out) + torch.triu(out, diagonal=1).T
    return out


# ----------------------------------------------------------------------------- COV, MMD, 1-NNA


def cov_mmd_1nna_nothing_generated() -> dict[str, float]:
    """COV / MMD / 1-NNA when every generated shape is empty (no surface to sample): nothing covers a
    reference shape (COV 0), no generated shape matches one (MMD infinite), and every reference shape's
    nearest neighbour is another reference shape (1-NNA 1, the worst)."""
    return {COV: 0.0, MMD: float("inf"), ONE_NNA: 1.0}


def cov_mmd_1nna_from_distances(d_gen_ref: Tensor | np.ndarray, d_gen_gen: Tensor | np.ndarray, d_ref_ref: Tensor | np.ndarray) -> dict[str, float]:
    """COV, MMD and 1-NNA from distance matrices (G, R), (G, G), (R, R) (any distance; the protocol uses Chamfer).

    - COV: fraction of the R reference shapes that are the nearest reference of at least one generated
      shape (ties: the lowest reference index, as ``argmin``); 1 is best, but copies of a few reference
      shapes can reach it, so read it with MMD.
    - MMD (minimum matching distance): mean over reference shapes of the distance to the nearest
      generated shape; 0 is best.
    - 1-NNA: accuracy of the leave-one-out 1-nearest-neighbour classifier that tells generated from
      reference shapes in the union of both sets; 0.5 is ideal (the sets are indistinguishable), 1 means
      every shape's nearest neighbour is from its own set. It is the balanced accuracy, the mean of the
      generated shapes' and the reference shapes' accuracies: with G = R (the protocol) that is PointFlow's
      plain accuracy, and when G < R (empty generated shapes dropped) 0.5 stays the ideal, where the plain
      accuracy of two indistinguishable sets would be (G^2 + R^2) / (G + R)^2. A shape whose nearest distance is shared by
      several shapes counts as the fraction of those that are from its own set (a deterministic,
      order-independent tie rule; without exact ties it is PointFlow's ``knn`` with k = 1). A generated
      set that equals the reference set gives 0, not 0.5: each shape's nearest neighbour is its twin
      in the other set, which is what 1-NNA should say about a generator that returns the reference.
    """
    dgr = torch.as_tensor(d_gen_ref, dtype=torch.float64)
    dgg = torch.as_tensor(d_gen_gen, dtype=torch.float64).to(dgr.device)
    drr = torch.as_tensor(d_ref_ref, dtype=torch.float64).to(dgr.device)
    check(dgr.dim() == 2 and dgr.shape[0] > 0 and dgr.shape[1] > 0, f"d_gen_ref: shape {tuple(dgr.shape)}, expected (G, R) with G, R >= 1", DataError)
    G, R = dgr.shape
    check(tuple(dgg.shape) == (G, G), f"d_gen_gen: shape {tuple(dgg.shape)}, expected {(G, G)}", DataError)
    check(tuple(drr.shape) == (R, R), f"d_ref_ref: shape {tuple(drr.shape)}, expected {(R, R)}", DataError)
    for name, d in (("d_gen_ref", dgr), ("d_gen_gen", dgg), ("d_ref_ref", drr)):
        check(bool(torch.isfinite(d).all()), f"{name}: contains NaN or infinite values", DataError)

    cov = dgr.argmin(dim=1).unique().numel() / R
    mmd = float(dgr.min(dim=0).values.mean())

    # Leave-one-out 1-NN on the union, generated first: (G + R, G + R) with an infinite diagonal.
    union = torch.cat([torch.cat([dgg, dgr], dim=1), torch.cat([dgr.T, drr], dim=1)], dim=0)
    union.fill_diagonal_(float("inf"))
    is_ref = torch.cat([torch.zeros(G, dtype=torch.bool), torch.ones(R, dtype=torch.bool)]).to(dgr.device)  # (G + R,)
    nearest = union == union.min(dim=1, keepdim=True).values  # (G + R, G + R) the tied nearest neighbours
    same_set = nearest & (is_ref[None, :] == is_ref[:, None])
    correct = same_set.sum(dim=1).double() / nearest.sum(dim=1).double()  # (G + R,) in [0, 1]
    one_nna = (correct[:G].mean() + correct[G:].mean()) / 2  # balanced: each set weighs half whatever its size
    return {COV: cov, MMD: mmd, ONE_NNA: float(one_nna)}


def cov_mmd_1nna(generated: Tensor | np.ndarray, reference: Tensor | np.ndarray, batch_size: int = 16) -> dict[str, float]:
    """COV, MMD (Chamfer) and 1-NNA (Chamfer) of generated clouds (G, n, 3) against reference clouds (R, m, 3).

    Computes the three Chamfer matrices with ``pairwise_chamfer`` (G R + G (G + 1) / 2 + R (R + 1) / 2 cloud pairs) and
    returns ``{"cov", "mmd", "1nna"}`` from ``cov_mmd_1nna_from_distances``. The protocol draws as many
    generated shapes as there are reference shapes.
    """
    d_gr = pairwise_chamfer(generated, reference, batch_size)
    d_gg = pairwise_chamfer(generated, None, batch_size)
    d_rr = pairwise_chamfer(reference, None, batch_size)
    return cov_mmd_1nna_from_distances(d_gr, d_gg, d_rr)
