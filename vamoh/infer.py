"""A trained model on a user's own data: read one sample (an image, an ERA5 field or a voxel grid), hide part of it,
reconstruct it at 1x and at a finer resolution, and save the results (``vamoh reconstruct``).

    sample = read_input("face.png", model.info)                    # (1, D, f) features on the model's grid
    mask = completion_mask("centre", model.info.grid_shape)       # (D,) True = observed
    out = reconstruct_sample(model, sample, mask, upsample=2)     # {"recon_1x", "recon_2x", ["entropy", "segmentation"]}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checks import ConfigError, DataError, check
from .interface import CannotReconstructError, DataInfo
from .pointcloud import PointCloudBatch, from_grid, query_grid

SPHERE_KIND = "field"  # the one kind whose coordinates live on the unit sphere (ERA5)
MASKS = ("none", "centre", "half", "outpaint")


def dataset_of(info: DataInfo):
    """The registered dataset whose data the model was built for (its grid, kind and likelihood)."""
    import dataclasses

    from .data import DATASETS

    bare = dataclasses.replace(info, train_points=None)
    spec = next((s for s in DATASETS.values() if s.info == bare), None)
    check(spec is not None, f"no registered dataset matches the model's data {info}", ConfigError)
    return spec


def read_input(path: str | Path, info: DataInfo) -> torch.Tensor:
    """One sample as features (1, D, f) in [0, 1] on the model's grid.

    images (.png, .jpg, ...): converted to RGB and resized to the grid (bicubic, antialiased) when needed;
    ERA5 fields (.npz with 'temperature' (46, 90) in kelvin, GASP's layout); voxels (.pt or .npy, an (S, S, S)
    occupancy grid).
    """
    path = Path(path)
    check(path.is_file(), f"--input {path}: file not found", DataError)
    grid = tuple(info.grid_shape)
    if info.kind == "image":
        from PIL import Image

        from .data.files import decode_image, to_unit

        pixels = decode_image(path, "--input")  # by bit depth, upright (EXIF orientation)
        h, w = pixels.shape[:2]
        check(h * grid[1] == w * grid[0], f"--input {path}: an image of {w}x{h} pixels, but the model's grid is {grid[1]}x{grid[0]}; "
                                          f"resizing would stretch it, so crop it to that aspect ratio first (the loaders centre-crop)", DataError)
        if (h, w) != grid[:2]:
            print(f"--input {path}: {w}x{h} pixels resized to the model's {grid[1]}x{grid[0]} grid (bicubic)"
                  + (": it is smaller, so its detail is interpolated" if h < grid[0] else ""))
            if pixels.dtype == np.uint8:
                pixels = np.asarray(Image.fromarray(pixels).resize((grid[1], grid[0]), Image.BICUBIC))
            else:  # 16-bit: each channel resized in float, kept in [0, 65535]
                chans = [np.asarray(Image.fromarray(pixels[..., c].astype(np.float32), "F").resize((grid[1], grid[0]), Image.BICUBIC))
                         for c in range(3)]
                pixels = np.clip(np.round(np.stack(chans, -1)), 0, 65535).astype(np.uint16)
        arr = torch.from_numpy(to_unit(pixels)).permute(2, 0, 1)[None]  # (1, 3, H, W)
        return from_grid(arr)
    if info.kind == SPHERE_KIND:
        from .data.era5 import check_t01, normalise, read_field_npz

        kelvin = read_field_npz(path, "--input")  # keys, GASP's grid (not flipped), finite, kelvin: as the loader reads it
        return torch.from_numpy(check_t01(f"--input {path} key 'temperature'", normalise(kelvin))).reshape(1, -1, 1)
    from .checks import check_finite
    from .data.files import load_npy, load_tensor

    check(path.suffix.lower() in (".pt", ".npy"), f"--input {path}: a {info.kind} model reads an {grid} occupancy grid from a .pt or "
                                                   f".npy file, not {path.suffix or 'a file without suffix'}", DataError)
    occ = torch.from_numpy(load_npy(path, "--input")) if path.suffix.lower() == ".npy" else load_tensor(path, "--input voxel grid")
    check(tuple(occ.shape) == grid, f"--input {path}: a grid of shape {tuple(occ.shape)}, expected {grid}", DataError)
    check_finite(f"--input {path}", occ, "finite occupancies")
    occ = occ.float()
    if occ.numel() and (occ.min() < 0 or occ.max() > 1):  # the ShapeNet loader's rule: occupancy in [0, 1], then > 0.5
        raise DataError(f"--input {path}: values in [{occ.min().item():.3g}, {occ.max().item():.3g}], expected occupancy in [0, 1]")
    return (occ > 0.5).float().reshape(1, -1, 1)


def completion_mask(mask: str, grid_shape: tuple[int, ...]) -> torch.Tensor:
    """(D,) bool, True = observed: 'none' (everything), 'centre' / 'half' / 'outpaint' (the evaluation's completion
    tasks), or the path of an .npy / image holding a boolean grid (non-zero = observed)."""
    from .eval.completion import observed_mask

    if mask == "none":
        return torch.ones(int(np.prod(grid_shape)), dtype=torch.bool)
    if mask in MASKS:
        return observed_mask(mask, tuple(grid_shape))
    path = Path(mask)
    check(path.is_file(), f"--mask {mask!r}: expected one of {list(MASKS)} or the path of a mask file", ConfigError)
    if path.suffix == ".npy":
        from .data.files import load_npy

        arr = load_npy(path, "--mask")  # numeric and finite: a NaN is not "observed"
    else:
        from .data.files import decode_image

        arr = decode_image(path, "--mask").any(axis=-1)  # upright, any bit depth
    check(tuple(arr.shape) == tuple(grid_shape), f"--mask {path}: shape {arr.shape}, expected {tuple(grid_shape)} (the model's grid)", DataError)
    out = torch.from_numpy(np.asarray(arr) != 0).reshape(-1)
    check(bool(out.any()), f"--mask {path}: no point is observed", DataError)
    return out


@torch.no_grad()
def reconstruct_sample(model: Any, features: torch.Tensor, mask: torch.Tensor, upsample: int = 2) -> dict[str, np.ndarray]:
    """Reconstructions of one sample from its observed points, at 1x and ``upsample``x; mixture maps when the model has them."""
    if not getattr(model, "can_reconstruct", False):
        raise CannotReconstructError(f"{model.model_name} cannot reconstruct: it has no encoder and no inner loop, only generation")
    check(isinstance(upsample, int) and upsample >= 1, f"--upsample {upsample}: expected an integer >= 1", ConfigError)
    info = model.info
    sphere = info.kind == SPHERE_KIND
    q1, s1 = query_grid(tuple(info.grid_shape), 1, sphere=sphere)
    qs, ss = query_grid(tuple(info.grid_shape), upsample, sphere=sphere)
    batch = PointCloudBatch(q1[None], features, mask[None], tuple(info.grid_shape)).to(model.device)
    out = {"input": features.reshape(*s1, -1).numpy(), "mask": mask.reshape(s1).numpy(),
           "recon_1x": model.reconstruct(batch, None)[0].cpu().reshape(*s1, -1).numpy()}
    out[f"recon_{upsample}x"] = model.reconstruct(batch, qs.to(model.device))[0].cpu().reshape(*ss, -1).numpy()
    if hasattr(model, "mixture_maps"):
        maps = model.mixture_maps(batch)
        K = int(model.num_components)
        out["entropy"] = (maps["entropy"][0].cpu() / np.log(K)).reshape(s1).numpy() if K > 1 else np.zeros(s1, np.float32)
        out["segmentation"] = maps["segmentation"][0].cpu().reshape(s1).numpy()
        out["num_components"] = np.array(K)
    return out


def save_result(out: dict[str, np.ndarray], path: str | Path, title: str) -> list[Path]:
    """What was written, by ``path``'s suffix: '.npz' -> the arrays there only; '.png' -> one figure at ``path`` (input
    with the hidden part grey, reconstructions, and the entropy / segmentation maps when present) and the arrays
    beside it as ``<path stem>.npz``. Any other suffix is refused before anything is written."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .io import atomic_write, atomic_write_npz
    from .report.pictures import MISSING_GREY, to_rgb

    path = Path(path)
    suffix = path.suffix.lower()
    check(suffix in (".png", ".npz"), f"--out {path}: unknown suffix {path.suffix or '(none)'!r}; expected '.png' (figure + .npz) or '.npz' (arrays)",
          ConfigError)
    npz = path if suffix == ".npz" else path.with_suffix(".npz")
    atomic_write_npz(npz, out)
    if suffix == ".npz":
        return [npz]
    kind = "voxels" if out["input"].ndim == 4 else ("image" if out["input"].shape[-1] == 3 else "field")
    shown = to_rgb(np.where(out["mask"][..., None], out["input"], 0) if kind == "voxels" else out["input"], kind).copy()
    if kind != "voxels":
        shown[~out["mask"]] = MISSING_GREY
    panels = [("observed input", shown)] + [(k.replace("_", " "), to_rgb(out[k], kind)) for k in out if k.startswith("recon_")]
    if "entropy" in out:
        panels.append(("entropy / ln K", None))
        panels.append(("most probable component", None))
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 3.0), squeeze=False)
    for ax, (name, pic) in zip(axes[0], panels):
        if name.startswith("entropy"):
            im = ax.imshow(out["entropy"] if out["entropy"].ndim == 2 else out["entropy"].max(0), cmap="viridis", vmin=0, vmax=1)
            fig.colorbar(im, ax=ax, fraction=0.046)
        elif name.startswith("most probable"):
            seg = out["segmentation"] if out["segmentation"].ndim == 2 else out["segmentation"].max(0)
            ax.imshow(seg, cmap="tab10", vmin=-0.5, vmax=9.5, interpolation="nearest")
        else:
            ax.imshow(pic, interpolation="nearest")
        ax.set_title(name, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=100)
    plt.close(fig)
    atomic_write(path, lambda f: f.write(png.getvalue()))
    return [path, npz]
