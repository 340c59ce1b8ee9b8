"""Import the published Functa weights and modulations into the suite's Functa.

Source: google-deepmind/functa. The released ``celeba_params_{L}_latents.npz`` and
``celeba_modulations_{L}_latents.npz`` are, despite the extension, ``dill`` pickles (the repository's
colab and modulation_dataset_writer.py read them with ``dill.load``):

    params file       {"params": haiku params, "config": {"model": {...}, "dataset": {...}, "training": {...},
                                                           "opt_inner": {...}, ...}}
    modulations file  {"train": {"modulation": (N, L), "psnr": (N,)}, "test": {...}}

The haiku params of ``LatentModulatedSiren`` (function_reps.py; haiku names a module made in a
parent's constructor ``parent/~/child``, one made in its ``__call__`` ``parent/child``):

    latent_modulated_siren/~/meta_sgd_lrs                          meta_sgd_lrs (L,)   Meta-SGD rates
    latent_modulated_siren/~/latent_vector                         latent_vector (L,)  the inner loop's start z0
    latent_modulated_siren/~/latent_to_modulation/~/mlp/~/linear_0 w (L, (depth-1) width), b   latent -> shifts
    latent_modulated_siren/modulated_siren_layer{,_1,...}/linear   w (in, out), b (out,)       the SIREN

The source's function, and how it maps onto the suite's Functa (``baselines/functa/siren.py``):
- Layer i < depth-1: h <- sin(w0 (h w_i + b_i + s_i)), with the shifts s = (z w_mod + b_mod) cut into
  depth-1 consecutive blocks of width; output h w_L + b_L + 0.5. The suite's ``ModulatedSiren`` and
  ``to_shifts`` are the same up to transposes (haiku stores w as (in, out)).
- The inner loop starts at ``latent_vector`` z0 (zero in the published config, latent_init_scale 0);
  the suite's starts at z = 0, so z0 is folded into the shift bias (b_mod + z0 w_mod) and the
  imported modulations are returned as z - z0.
- Meta-SGD: helpers.inner_loop steps z <- z - lrs * grad MSE with the raw ``meta_sgd_lrs`` (not
  clipped; MSE = mean over pixels and channels). The suite clips its rates to ``inner_lr_clip``, so the
  clip is set wide enough to be a no-op; a negative rate cannot be represented and is an error.
  Without meta-SGD every rate is ``opt_inner.lr``. The step count is ``training.inner_steps``.
- Coordinates: the source evaluates pixel centres, (i + 1/2) / R on a R x R grid
  (get_coordinate_grid, centered=True); the suite maps its [-1, 1] grid to [0, 1] by (x + 1) / 2,
  which puts pixel i at i / (R - 1). With ``pixel_centers=True`` (default) the affine map between the
  two, c = u (R - 1) / R + 1 / (2R) per axis, is folded into the first layer, so the suite's pixel i
  sees exactly the source's pixel i (and super-resolution queries interpolate between source pixel
  centres). The data's grid must then be R x R.
Anything the suite cannot represent (scale modulations, a latent-to-modulation MLP with hidden
layers, an L2 penalty or noise on the modulations) is a ``CheckpointError`` naming it.

Reading: a restricted unpickler. It builds numpy arrays and plain containers itself and resolves
the few reconstructors a dill/haiku/jax pickle names (dill's ``_create_array``, haiku's
``FlatMapping``/``frozendict``, jax's array reconstructors) to stand-ins that return numpy arrays and
dicts, so neither dill, haiku nor jax needs to be installed and nothing in the file runs code. Any
other global is a ``CheckpointError`` naming it; ``trust_pickle=True`` lets the pickle import it (the
pickle may then run code: only for a file from a source you trust).
"""

from __future__ import annotations

import importlib
import pickle
import re
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vamoh.checks import CheckpointError, check_file
from vamoh.config import from_dict
from vamoh.interface import DataInfo

from ..importing import imported_from, preset_name, resolve_info
from .model import PRESETS, Functa

__all__ = ["import_functa", "read_functa_modulations", "read_functa_pickle", "source_architecture"]

SOURCE = "google-deepmind/functa"
_SIREN_LAYER = re.compile(r"(?:^|/)modulated_siren_layer(?:_(\d+))?/linear$")
_TO_SHIFTS = re.compile(r"(?:^|/)latent_to_modulation/~/mlp/~/linear_(\d+)$")
_LATENT = re.compile(r"(?:^|/)latent_vector$")
_LRS = re.compile(r"(?:^|/)meta_sgd_lrs$")


# ----------------------------------------------------------------------------- reading the pickles


def _array_from_reduce(fun: Any, args: tuple, state: tuple, extra: Any = None) -> np.ndarray:
    """An ndarray from its own ``__reduce__`` parts: dill's ``_create_array(f, args, state, npdict)`` and
    jax's ``_reconstruct_array(fun, args, arr_state, aval_state)`` both carry them (jax's extra is its
    aval, dill's a subclass's ``__dict__``, which a plain ndarray has not)."""
    if fun is not _NUMPY_RECONSTRUCT:
        raise CheckpointError(f"an array reconstructor in the file calls {fun!r}, expected numpy's _reconstruct")
    array = fun(*args)
    array.__setstate__(state)
    if isinstance(extra, dict) and extra and "weak_type" not in extra:
        raise CheckpointError(f"an array in the file carries attributes {sorted(extra)} (an ndarray subclass); expected plain arrays")
    return array


def _plain_mapping(data: Mapping[str, Any]) -> dict[str, Any]:
    """haiku's FlatMapping / frozendict reduce to ``(cls, (mapping,))``; a dict holds the same."""
    return dict(data)


def _numpy_multiarray() -> Any:
    try:  # numpy >= 2; the files name numpy.core.multiarray (numpy 1), a deprecated alias there
        return importlib.import_module("numpy._core.multiarray")
    except ImportError:
        return importlib.import_module("numpy.core.multiarray")


_MULTIARRAY = _numpy_multiarray()
_NUMPY_RECONSTRUCT = _MULTIARRAY._reconstruct
# (module, name) in the pickle -> what it is resolved to, without importing the module it names
_STAND_INS: dict[tuple[str, str], Any] = {
    ("dill._dill", "_create_array"): _array_from_reduce,
    ("jax._src.array", "_reconstruct_array"): _array_from_reduce,
    ("jax._src.device_array", "reconstruct_device_array"): _array_from_reduce,
    ("haiku._src.data_structures", "FlatMapping"): _plain_mapping,
    ("haiku._src.data_structures", "frozendict"): _plain_mapping,
}
_ALLOWED: dict[tuple[str, str], Any] = {
    **{(m, "_reconstruct"): _NUMPY_RECONSTRUCT for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(m, "scalar"): _MULTIARRAY.scalar for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("collections", "OrderedDict"): OrderedDict,
}


class _FunctaUnpickler(pickle.Unpickler):
    """Resolves the stand-ins; otherwise only numpy's array and dtype constructors, unless ``trusted``."""

    def __init__(self, file: Any, path: Path, trusted: bool) -> None:
        super().__init__(file)
        self.path, self.trusted = path, trusted

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key in _STAND_INS:
            return _STAND_INS[key]
        if key in _ALLOWED:
            return _ALLOWED[key]
        if self.trusted:
            return super().find_class(module, name)
        raise CheckpointError(f"Functa file {self.path} holds the global {module}.{name}; a published Functa file holds only "
                              f"dicts of numpy (or jax) arrays and plain values. If the file comes from a source you trust, "
                              f"pass trust_pickle=True (the pickle may then import {module} and run code)")


def read_functa_pickle(path: str | Path, what: str, trust_pickle: bool = False) -> Any:
    """The object in a published Functa file (a dill pickle), arrays as numpy, haiku mappings as dicts."""
    path = check_file(path, f"Functa {what} file")
    with open(path, "rb") as f:
        if f.read(4) == b"PK\x03\x04":  # the published .npz names suggest numpy's zip format, which they are not
            raise CheckpointError(f"Functa {what} file {path} is a zip archive (numpy .npz); the published files are dill "
                                  f"pickles despite their .npz name (as published by {SOURCE})")
        f.seek(0)
        try:
            return _FunctaUnpickler(f, path, trust_pickle).load()
        except CheckpointError:
            raise
        except Exception as err:  # pickle raises several types for damaged or foreign files
            reason = " ".join(f"{type(err).__name__}: {err}".split())
            raise CheckpointError(f"Functa {what} file {path} is not a readable pickle ({reason}); "
                                  f"expected a dill pickle as published by {SOURCE}") from None


# ----------------------------------------------------------------------------- the source's architecture


def _entry(tree: Any, keys: tuple[str, ...], path: Path, expected: str) -> Any:
    value = tree
    for k in keys:
        if not isinstance(value, Mapping) or k not in value:
            where = "".join(f"[{x!r}]" for x in keys)
            raise CheckpointError(f"Functa params file {path}: no {where} (expected {expected})")
        value = value[k]
    return value


def _array(module: Mapping[str, Any], name: str, module_name: str, path: Path) -> np.ndarray:
    if name not in module:
        raise CheckpointError(f"Functa params file {path}: module {module_name!r} has no parameter {name!r} (found {sorted(module)})")
    return np.asarray(module[name], dtype=np.float64)


def _require(condition: bool, path: Path, message: str) -> None:
    if not condition:
        raise CheckpointError(f"Functa params file {path}: {message}")


def _model_config(config: Mapping[str, Any], path: Path) -> Mapping[str, Any]:
    """The published model config, checked for what the suite's Functa can represent."""
    model = _entry(config, ("model",), path, "the experiment config's model section")
    _require(model.get("type") == "latent_modulated_siren", path,
             f"config['model']['type']={model.get('type')!r}; only 'latent_modulated_siren' (shared weights, per-sample latent) is supported")
    _require(not model.get("modulate_scale", False) and model.get("modulate_shift", True), path,
             f"modulate_scale={model.get('modulate_scale')!r}, modulate_shift={model.get('modulate_shift')!r}: "
             f"the suite's Functa has shift-only modulations (modulate_scale=False, modulate_shift=True)")
    _require(tuple(model.get("layer_sizes", ())) == (), path,
             f"config['model']['layer_sizes']={model.get('layer_sizes')!r}: a latent-to-modulation MLP with hidden layers; "
             f"the suite's Functa maps the latent to the shifts by one linear layer (layer_sizes=())")
    for key in ("l2_weight", "noise_std"):
        _require(float(model.get(key, 0.0)) == 0.0, path,
                 f"config['model'][{key!r}]={model.get(key)!r}: the suite's inner loop has no {key.replace('_', ' ')} on the modulations (expected 0)")
    return model


def _siren_layers(params: Mapping[str, Any], path: Path) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[str]]:
    found = sorted(((int(m.group(1) or 0), name) for name in params if (m := _SIREN_LAYER.search(name))))
    _require(len(found) >= 2, path, "expected at least two '.../modulated_siren_layer{,_1,...}/linear' modules (sine layers and the "
             f"output layer) in params; found modules {sorted(params)}")
    _require([i for i, _ in found] == list(range(len(found))), path, f"the SIREN layers are not numbered 0..{len(found) - 1}: {[n for _, n in found]}")
    layers = [(_array(params[n], "w", n, path), _array(params[n], "b", n, path)) for _, n in found]
    return layers, [n for _, n in found]


def source_architecture(ckpt: Any, path: str | Path = "<file>") -> dict[str, Any]:
    """The published model read from its params file; every part the suite cannot represent is an error.

    Returns {"w0", "resolution" (int or None), "inner_steps", "layers" [(w (in, out), b (out,))],
    "to_shifts" (w (L, (depth-1) width), b), "z0" (L,), "lrs" (L,)}, arrays float64.
    """
    path = Path(path)
    params = _entry(ckpt, ("params",), path, "the haiku parameters of LatentModulatedSiren")
    config = _entry(ckpt, ("config",), path, "the experiment config")
    model = _model_config(config, path)
    layers, layer_names = _siren_layers(params, path)
    width = layers[0][0].shape[1]
    for (w, b), name in zip(layers, layer_names):
        _require(w.ndim == 2 and b.shape == (w.shape[1],), path, f"{name}: w {w.shape} and b {b.shape}, expected w (in, out) and b (out,)")
    _require(all(w.shape == (width, width) for w, _ in layers[1:-1]) and layers[-1][0].shape[0] == width, path,
             f"SIREN weight shapes {[w.shape for w, _ in layers]} are not (in, {width}), ({width}, {width})..., ({width}, out)")
    shift_names = [n for n in params if _TO_SHIFTS.search(n)]
    _require(len(shift_names) == 1, path, f"expected one latent_to_modulation linear layer, found {shift_names}")
    w_mod, b_mod = _array(params[shift_names[0]], "w", shift_names[0], path), _array(params[shift_names[0]], "b", shift_names[0], path)
    depth = len(layers)
    _require(w_mod.ndim == 2 and w_mod.shape[1] == (depth - 1) * width and b_mod.shape == (w_mod.shape[1],), path,
             f"{shift_names[0]}: w {w_mod.shape}, b {b_mod.shape}; expected (L, {(depth - 1) * width}) shifts for {depth - 1} layers of width {width}")
    latent_dim = w_mod.shape[0]
    for key in ("width", "depth", "latent_dim"):
        value = {"width": width, "depth": depth, "latent_dim": latent_dim}[key]
        _require(model.get(key, value) == value, path, f"config['model'][{key!r}]={model.get(key)!r} but the parameters have {value}")
    z0 = _single(params, _LATENT, "latent_vector", path)
    lrs = _single(params, _LRS, "meta_sgd_lrs", path, required=False)
    if lrs is None:
        lrs = np.full(latent_dim, float(_entry(config, ("opt_inner", "lr"), path, "the inner SGD learning rate (no meta-SGD rates in params)")))
    _require(z0.shape == (latent_dim,) and lrs.shape == (latent_dim,), path,
             f"latent_vector {z0.shape} and meta_sgd_lrs {lrs.shape}, expected ({latent_dim},) each")
    _require(bool((lrs >= 0).all()), path, f"{int((lrs < 0).sum())} negative Meta-SGD rates (min {lrs.min():.3g}); the suite's "
             f"rates are clipped to inner_lr_clip with a lower bound >= 0, so they cannot be represented")
    known = set(layer_names) | set(shift_names) | {n for n in params if _LATENT.search(n) or _LRS.search(n)}
    _require(known == set(params), path, f"unexpected modules {sorted(set(params) - known)} (a FiLM/ModulatedSiren model?)")
    dataset = config.get("dataset", {}) if isinstance(config, Mapping) else {}
    _require(dataset.get("num_channels", layers[-1][0].shape[1]) == layers[-1][0].shape[1], path,
             f"config['dataset']['num_channels']={dataset.get('num_channels')!r} but the output layer has {layers[-1][0].shape[1]}")
    resolution = dataset.get("resolution")
    return {"w0": float(_entry(config, ("model", "w0"), path, "the SIREN frequency w0")),
            "resolution": int(resolution) if resolution is not None else None,
            "inner_steps": int(_entry(config, ("training", "inner_steps"), path, "the meta-trained number of inner steps")),
            "layers": layers, "to_shifts": (w_mod, b_mod), "z0": z0, "lrs": lrs}


def _single(params: Mapping[str, Any], pattern: re.Pattern[str], name: str, path: Path, required: bool = True) -> np.ndarray | None:
    modules = [n for n in params if pattern.search(n)]
    _require(len(modules) <= 1 and (modules or not required), path, f"expected one '.../{name}' module, found {modules}")
    return _array(params[modules[0]], name, modules[0], path) if modules else None


# ----------------------------------------------------------------------------- the suite's model


def pixel_centre_map(resolution: int, coord_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(a, o) per axis with source coordinate c = a * u + o for the suite's u = (x + 1) / 2 in [0, 1].

    The suite's pixel i sits at u = i / (R - 1), the source's at (i + 1/2) / R.
    """
    a = np.full(coord_dim, (resolution - 1) / resolution)
    o = np.full(coord_dim, 1 / (2 * resolution))
    return a, o


def import_functa(params_path: str | Path, dataset: str | DataInfo, modulations_path: str | Path | None = None,
                  preset: str | None = None, pixel_centers: bool = True, trust_pickle: bool = False) -> tuple[Functa, dict[str, np.ndarray] | None]:
    """The published Functa as the suite's ``Functa`` for data ``dataset`` (a registry name or a DataInfo),
    and, when ``modulations_path`` is given, its modulations in the suite's functaset layout.

    The network, the Meta-SGD rates and the inner-step count come from the file; the flow prior and
    training settings from ``preset`` (default: the dataset's name). Modulations: {"<split>": (N, L)
    float32 (z - z0, the suite's latents), "<split>_psnr": (N,)}; pass ``mods["train"]`` to
    ``model.fit_prior`` (or ``np.savez`` them and pass the path). ``model.decode(z, coords)`` at the
    suite's grid equals the source's output at its pixel centres (``pixel_centers=False``: at
    (x + 1) / 2 as the suite maps coordinates, no fold).
    """
    params_path = Path(params_path)
    info = resolve_info(dataset)
    arch = source_architecture(read_functa_pickle(params_path, "params", trust_pickle), params_path)
    layers = arch["layers"]
    coord_dim, out_dim = layers[0][0].shape[0], layers[-1][0].shape[1]
    where = f"Functa params file {params_path}"
    if (coord_dim, out_dim) != (info.coord_dim, info.feature_dim):
        raise CheckpointError(f"{where} maps {coord_dim}-d coordinates to {out_dim} features; the data has "
                              f"coord_dim={info.coord_dim}, feature_dim={info.feature_dim}")
    if info.kind == "field":
        raise CheckpointError(f"{where}: Functa's networks read [0, 1] grid coordinates; the data ({info.kind}) lives on the sphere")
    fold = None
    if pixel_centers:
        R = arch["resolution"]
        if R is None or tuple(info.grid_shape) != (R,) * coord_dim:
            raise CheckpointError(f"{where}: trained at resolution {R!r} per axis (config['dataset']['resolution']), the data's grid is "
                                  f"{tuple(info.grid_shape)}; pixel centres only correspond on the same grid (or pass pixel_centers=False)")
        fold = pixel_centre_map(R, coord_dim)
    lrs = arch["lrs"]
    overrides = {"width": layers[0][0].shape[1], "depth": len(layers), "w0": arch["w0"], "latent_dim": lrs.shape[0],
                 "inner_steps": arch["inner_steps"], "coordinate_map": "unit_interval",
                 # the source uses its rates unclipped: a clip range that holds every rate is a no-op
                 "inner_lr_clip": (0.0, max(1.0, float(lrs.max())))}
    base = PRESETS[preset_name(Functa, dataset, preset)]
    model = Functa(from_dict(type(base), overrides, where=f"functa import of {params_path}", base=base), info)
    _load_network(model, arch, fold)
    model.imported_from = imported_from(SOURCE, params_path, modulations_path)  # recorded by save_as_suite_checkpoint
    mods = read_functa_modulations(modulations_path, arch["z0"], trust_pickle) if modulations_path is not None else None
    if mods is not None:
        bad = {k: v.shape for k, v in mods.items() if not k.endswith("_psnr") and v.shape[1] != lrs.shape[0]}
        if bad:
            raise CheckpointError(f"Functa modulations file {modulations_path}: modulations {bad} do not match the model's latent size {lrs.shape[0]}")
    return model.eval(), mods


@torch.no_grad()
def _load_network(model: Functa, arch: dict[str, Any], fold: tuple[np.ndarray, np.ndarray] | None) -> None:
    """Copy the source's arrays into the suite's modules (float64 arithmetic, stored float32)."""

    def put(param: torch.nn.Parameter, value: np.ndarray) -> None:
        param.copy_(torch.from_numpy(np.ascontiguousarray(value)).to(param.dtype))

    layers = arch["layers"]
    w_first, b_first = layers[0]
    if fold is not None:
        a, o = fold  # x w + b at x = a u + o  ==  u (a w) + (o w + b)
        w_first, b_first = a[:, None] * w_first, b_first + o @ w_first
    modules = [*model.siren.sine_layers, model.siren.output]
    for module, (w, b) in zip(modules, [(w_first, b_first), *layers[1:]]):
        put(module.weight, w.T)  # haiku (in, out) -> torch (out, in)
        put(module.bias, b)
    w_mod, b_mod = arch["to_shifts"]
    put(model.to_shifts.weight, w_mod.T)
    put(model.to_shifts.bias, b_mod + arch["z0"] @ w_mod)  # the inner loop's start z0 folded in: the suite starts at 0
    put(model.inner_lrs, arch["lrs"])


def read_functa_modulations(path: str | Path, latent_offset: np.ndarray | None = None, trust_pickle: bool = False) -> dict[str, np.ndarray]:
    """A published modulations file as the suite's functaset arrays: "<split>" (N, L) float32, "<split>_psnr" (N,).

    ``latent_offset`` (L,): the source's inner-loop start z0, subtracted so the arrays are the suite's latents.
    """
    path = Path(path)
    data = read_functa_pickle(path, "modulations", trust_pickle)
    if not isinstance(data, Mapping) or not data or not all(isinstance(v, Mapping) and "modulation" in v for v in data.values()):
        shown = {k: sorted(v) if isinstance(v, Mapping) else type(v).__name__ for k, v in data.items()} if isinstance(data, Mapping) else type(data).__name__
        raise CheckpointError(f"Functa modulations file {path}: expected {{split: {{'modulation': (N, L), 'psnr': (N,)}}}} "
                              f"(modulation_dataset_writer.py of {SOURCE}), found {shown}")
    out: dict[str, np.ndarray] = {}
    for split, entry in data.items():
        mods = np.asarray(entry["modulation"], dtype=np.float64)
        if mods.ndim != 2 or (latent_offset is not None and mods.shape[1] != latent_offset.shape[0]):
            raise CheckpointError(f"Functa modulations file {path}: {split!r} modulations of shape {mods.shape}, expected (N, "
                                  f"{latent_offset.shape[0] if latent_offset is not None else 'L'})")
        out[split] = (mods - (latent_offset if latent_offset is not None else 0.0)).astype(np.float32)
        if "psnr" in entry:
            out[f"{split}_psnr"] = np.asarray(entry["psnr"], dtype=np.float32).reshape(-1)
    return out


def import_published(source: dict[str, Any], info: DataInfo, preset: str | None = None, seed: int = 0) -> Functa:
    """The registry's entry point (``Functa.importer``): ``source["path"]``, DeepMind's ``celeba_params_*_latents.npz``;
    ``source["modulations"]``, the released modulations, on which the flow prior is fitted (from ``seed``) for generation."""
    model, mods = import_functa(source["path"], info, modulations_path=source.get("modulations"), preset=preset,
                                trust_pickle=bool(source.get("trust_pickle", False)))
    if mods is not None:
        model.fit_prior(mods["train"], seed=seed)
    return model
