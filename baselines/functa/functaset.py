"""The functaset stage: every sample's modulation, written to one inspectable file.

``write_functaset(model, {"train": ds, "test": ds2}, "functaset.npz")`` writes
    functaset.npz   arrays  <split> (N, L) float32 modulations, <split>_psnr (N,) fit quality in dB (paper eq. 19)
    functaset.json  metadata: latent size, inner steps, split sizes, mean PSNR, the model config
Both are written atomically; ``load_functaset`` reads the arrays back. The flow prior is then fitted
with ``model.fit_prior("functaset.npz")``.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vamoh.checks import DataError, check, check_file
from vamoh.config import to_dict
from vamoh.interface import FunctionModel
from vamoh.io import atomic_write, atomic_write_json

FORMAT = "functaset-v1"


def metadata_path(path: str | Path) -> Path:
    return Path(path).with_suffix(".json")


@torch.no_grad()
def write_functaset(model: FunctionModel, datasets: dict[str, Any], path: str | Path, batch_size: int = 64, steps: int | None = None) -> dict[str, Any]:
    """Fit a modulation to every sample of every split and write them to ``path`` (.npz) and its .json.

    datasets: split name -> a dataset with ``len()`` and ``batch(indices)`` (every point observed,
    as vamoh.data's FunctionDataset gives). steps: inner-loop steps (default: the meta-trained number).
    Returns the metadata written beside the arrays.
    """
    check(len(datasets) > 0, "write_functaset: no datasets given (expected e.g. {'train': ..., 'test': ...})")
    steps = model.config.inner_steps if steps is None else steps
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {"format": FORMAT, "latent_dim": model.config.latent_dim, "inner_steps": steps,
                            "model": model.model_name, "model_config": to_dict(model.config), "splits": {}}
    for split, ds in datasets.items():
        check(split.isidentifier() and not split.endswith("_psnr"), f"write_functaset: split name {split!r} must be an identifier not ending in _psnr")
        n = len(ds)
        check(n > 0, f"write_functaset: split {split!r} is empty")
        mods, psnrs = [], []
        for s in range(0, n, batch_size):
            batch = ds.batch(torch.arange(s, min(s + batch_size, n))).to(model.device)
            z = model.modulations(batch, steps)  # (b, L)
            coords, y, w = model.observed(batch)
            mse = model.per_sample_mse(z, coords, y, w)  # (b,)
            mods.append(z.cpu())
            psnrs.append(model.psnr_of_mse(mse).cpu())  # the paper's convention (eq. 19)
        arrays[split] = torch.cat(mods).numpy().astype(np.float32)  # (N, L)
        arrays[f"{split}_psnr"] = torch.cat(psnrs).numpy().astype(np.float32)  # (N,)
        meta["splits"][split] = {"size": n, "mean_psnr_db": float(arrays[f"{split}_psnr"].mean())}
        if not np.isfinite(arrays[split]).all():
            raise DataError(f"write_functaset: split {split!r} has non-finite modulations; the meta-trained model diverged")
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write(path, lambda f: f.write(buf.getbuffer()))
    atomic_write_json(metadata_path(path), meta)
    return meta


def load_functaset(path: str | Path) -> dict[str, np.ndarray]:
    """Arrays of a functaset file: split -> (N, L) modulations and split_psnr -> (N,)."""
    p = check_file(path, "functaset")
    try:
        with np.load(p) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as err:  # numpy raises several types for damaged archives
        raise DataError(f"functaset {p} is truncated or not an .npz file ({type(err).__name__}: {err})") from None
    if "train" not in arrays:
        raise DataError(f"functaset {p} has no 'train' array (found {sorted(arrays)}); was it written by write_functaset?")
    bad = [k for k, v in arrays.items() if not k.endswith("_psnr") and (v.ndim != 2 or not math.isfinite(float(np.abs(v).sum())))]
    if bad:
        raise DataError(f"functaset {p}: arrays {bad} are not finite (N, L) modulations")
    return arrays
