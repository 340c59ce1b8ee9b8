"""Import a published GASP checkpoint into the suite's GASP, to score it with the suite's evaluator.

Source: EmilienDupont/neural-function-distributions, ``FunctionDistribution.save_model`` and
``load_function_distribution`` (models/function_distribution.py). The file is

    torch.save({"config": {"hypernetwork": {"latent_dim", "layer_sizes", "non_linearity"},
                           "function_representation": {"coordinate_dim" | "input_dim", "feature_dim" | "output_dim",
                                                       "layer_sizes", "encoding", "non_linearity",
                                                       "final_non_linearity"}},
                "state_dict": FunctionDistribution.state_dict()}, path)

where the config's activations are pickled ``torch.nn`` modules and ``encoding`` is a pickled
``models.function_representation.FourierFeatures`` module (or ``nn.Identity`` for voxels) holding
the random frequency matrix B (num_frequencies, coordinate_dim). The state dict holds

    hypernetwork.forward_layers.{0,2,4,...}.{weight (out, in), bias (out,)}   z -> theta, activation between
    hypernetwork.function_representation.encoding.frequency_matrix             B (absent for nn.Identity)
    hypernetwork.function_representation.forward_layers.{0,2,...}.weight       unused placeholders, read for shapes

How the source computes a function, and how it maps onto the suite's GASP:
- Fourier features: [cos 2 pi B x, sin 2 pi B x] on coordinates in [-1, 1] (row-major grid,
  2*(i/(n-1) - 0.5)): the suite's ``RandomFourierFeatures`` and grid exactly, so B is copied as is.
- Hypernetwork: Linear layers with the config's activation between them (LeakyReLU(0.1) in GASP's
  main.py), the suite's ``HyperNetworks`` with K = 1; nn.Linear's (out, in) weights are stored (in, out).
- The hypernetwork's output vector: every layer's weight matrix first (row-major (out, in)), then
  every bias; the suite's ``GeneratorLayout`` interleaves them (W_0, b_0, W_1, b_1, ...). The last
  layer's output units are permuted accordingly, so theta is the same vector rearranged.
- Function MLP: LeakyReLU(0.1) between layers and a final tanh, features in [-1, 1]; ``GASP.sample``
  returns (tanh + 1) / 2, as the source's ``to_data`` does.
Anything else (another activation or slope, another final non-linearity) cannot be represented by
the suite's GASP and is a ``CheckpointError`` naming it.

Loading: by default ``torch.load(weights_only=True)`` with an allowlist: the few ``torch.nn``
activation classes and a stand-in for ``FourierFeatures``, registered under the original class's
path for this one load only. Nothing in the file runs code. ``trust_pickle=True`` instead loads with
``weights_only=False`` (the pickle may run code: only for a file from a source you trust), still
resolving ``FourierFeatures`` to the stand-in, for a file that holds some other global.
The discriminator is not part of the published file: the imported model's discriminator keeps its
initialisation from the preset, and nothing in sampling or evaluation uses it.
"""

from __future__ import annotations

import math
import pickle
import re
import types
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from vamoh.checks import CheckpointError, check_file
from vamoh.config import from_dict
from vamoh.interface import DataInfo

from ..importing import imported_from, preset_name, resolve_info

from .model import GASP, PRESETS

SOURCE = "EmilienDupont/neural-function-distributions"
FOURIER_FEATURES_PATH = ("models.function_representation", "FourierFeatures")
_HYPER = re.compile(r"^hypernetwork\.forward_layers\.(\d+)\.(weight|bias)$")
_FUNCTION = re.compile(r"^hypernetwork\.function_representation\.forward_layers\.(\d+)\.weight$")
FREQUENCY_KEY = "hypernetwork.function_representation.encoding.frequency_matrix"
_ACTIVATIONS = (nn.LeakyReLU, nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Identity)  # read, so that a wrong one gets a clear error
SLOPE = 0.1  # LeakyReLU slope of the suite's hypernetwork and function MLP (vamoh.nn.hyper)


class FourierFeaturesRecord:
    """Stand-in for the pickled ``models.function_representation.FourierFeatures`` module.

    Unpickling calls ``__setstate__`` with the module's ``__dict__`` (``_buffers``, ``_parameters``,
    ``num_frequencies``, ...); the record keeps it and exposes the frequency matrix B.
    """

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.state = state

    @property
    def frequency_matrix(self) -> Tensor | None:
        """B (num_frequencies, coordinate_dim): a buffer, or a parameter when the source learned it."""
        for where in ("_buffers", "_parameters"):
            value = self.state.get(where, {}).get("frequency_matrix")
            if value is not None:
                return value.detach()
        return None


# ----------------------------------------------------------------------------- reading the file


class _StandInUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves the original FourierFeatures class to the stand-in."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == FOURIER_FEATURES_PATH:
            return FourierFeaturesRecord
        return super().find_class(module, name)


def _trusting_load(file: Any, **kwargs: Any) -> Any:
    return _StandInUnpickler(file, **kwargs).load()


# what torch.load needs of a pickle module: its name, an Unpickler class and load()
_STAND_IN_PICKLE = types.SimpleNamespace(__name__="gasp_import_pickle", Unpickler=_StandInUnpickler, load=_trusting_load)


def read_gasp_file(path: str | Path, trust_pickle: bool = False) -> dict[str, Any]:
    """The published file's dict ({"config", "state_dict"}), FourierFeatures as a ``FourierFeaturesRecord``."""
    path = check_file(path, "GASP checkpoint")
    try:
        if trust_pickle:
            raw = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_STAND_IN_PICKLE)
        else:
            allowed = [(FourierFeaturesRecord, ".".join(FOURIER_FEATURES_PATH)), *_ACTIVATIONS]
            with torch.serialization.safe_globals(allowed):
                raw = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if not trust_pickle and "Unsupported global" in str(err):  # torch's weights_only refusal
            raise CheckpointError(_unknown_globals_message(path, err)) from None
        raise CheckpointError(f"GASP checkpoint {path} is not a readable torch.save file ({_reason(err)})") from None
    except Exception as err:  # torch raises several types for damaged or foreign archives
        raise CheckpointError(f"GASP checkpoint {path} is not a readable torch.save file ({_reason(err)})") from None
    if not isinstance(raw, dict) or not {"config", "state_dict"} <= set(raw):
        found = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise CheckpointError(f"GASP checkpoint {path}: expected a dict with keys 'config' and 'state_dict' "
                              f"(FunctionDistribution.save_model of {SOURCE}), found {found}")
    return raw


def _reason(err: Exception) -> str:
    """The informative part of a torch.load error: a weights_only refusal wraps it in advice about torch.load."""
    text = str(err)
    if "WeightsUnpickler error:" in text:
        text = text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation of torch.load", 1)[0]
    return f"{type(err).__name__}: {' '.join(text.split())}"


def _unknown_globals_message(path: Path, err: Exception) -> str:
    try:
        unknown = sorted(set(torch.serialization.get_unsafe_globals_in_checkpoint(path))
                         - {".".join(FOURIER_FEATURES_PATH)} - {f"{c.__module__}.{c.__qualname__}" for c in _ACTIVATIONS})
    except Exception:  # not a zip archive: the loader's own message names the global
        unknown = []
    named = f"the globals {unknown}" if unknown else f"a global outside the allowlist ({_reason(err)})"
    return (f"GASP checkpoint {path} holds {named}; a published GASP file holds only tensors, torch.nn activations "
            f"and {'.'.join(FOURIER_FEATURES_PATH)}. If the file comes from a source you trust, pass trust_pickle=True "
            f"(loads with weights_only=False: the pickle may run code)")


# ----------------------------------------------------------------------------- the source's architecture


def _sub(config: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    value = config.get(key) if isinstance(config, dict) else None
    if not isinstance(value, dict):
        raise CheckpointError(f"GASP checkpoint {path}: config[{key!r}] missing or not a dict (expected the {key} config of {SOURCE})")
    return value


def _either(rep: dict[str, Any], names: tuple[str, str], path: Path) -> int:
    """``coordinate_dim`` (what _get_config writes) or ``input_dim`` (what load_function_distribution reads)."""
    for name in names:
        if name in rep:
            return int(rep[name])
    raise CheckpointError(f"GASP checkpoint {path}: config['function_representation'] has neither {names[0]!r} nor {names[1]!r}")


def _check_leaky(where: str, module: Any, path: Path) -> None:
    ok = isinstance(module, nn.LeakyReLU) and math.isclose(float(module.negative_slope), SLOPE, abs_tol=1e-12)
    if not ok:
        raise CheckpointError(f"GASP checkpoint {path}: {where} is {module!r}; the suite's GASP uses LeakyReLU({SLOPE}) "
                              f"(vamoh.nn.hyper), so this file cannot be represented")


def _indexed(state: dict[str, Tensor], pattern: re.Pattern[str]) -> list[tuple[re.Match[str], Tensor]]:
    """(match, value) of the state-dict keys that match ``pattern``, by the layer index in group 1."""
    rows = [(m, v) for k, v in state.items() if (m := pattern.match(k))]
    return sorted(rows, key=lambda r: (int(r[0].group(1)), r[0].string))


def source_architecture(raw: dict[str, Any], path: str | Path = "<file>") -> dict[str, Any]:
    """The source model read from its file: dims, hypernetwork layers, B; every activation checked.

    Returns {"dim_z", "coord_dim", "feature_dim", "function_dims" [in, hidden..., out],
    "hyper_layers" [(W (out, in), b (out,))], "frequency_matrix" (m, c) or None}.
    """
    path = Path(path)
    config, state = raw["config"], raw["state_dict"]
    hyp, rep = _sub(config, "hypernetwork", path), _sub(config, "function_representation", path)
    _check_leaky("config['hypernetwork']['non_linearity']", hyp.get("non_linearity"), path)
    _check_leaky("config['function_representation']['non_linearity']", rep.get("non_linearity"), path)
    if not isinstance(rep.get("final_non_linearity"), nn.Tanh):
        raise CheckpointError(f"GASP checkpoint {path}: config['function_representation']['final_non_linearity'] is "
                              f"{rep.get('final_non_linearity')!r}; the suite's GASP ends in tanh (features in [-1, 1])")
    coord_dim = _either(rep, ("coordinate_dim", "input_dim"), path)
    feature_dim = _either(rep, ("feature_dim", "output_dim"), path)
    encoding = rep.get("encoding")
    B = state.get(FREQUENCY_KEY)
    if isinstance(encoding, FourierFeaturesRecord):
        pickled = encoding.frequency_matrix
        B = pickled if B is None else B
        if pickled is not None and not torch.equal(pickled, B):
            raise CheckpointError(f"GASP checkpoint {path}: the pickled FourierFeatures' frequency matrix differs from state_dict[{FREQUENCY_KEY!r}]")
        if B is None:
            raise CheckpointError(f"GASP checkpoint {path}: FourierFeatures without a frequency matrix (expected a buffer 'frequency_matrix')")
    elif not isinstance(encoding, nn.Identity):
        raise CheckpointError(f"GASP checkpoint {path}: config['function_representation']['encoding'] is {type(encoding).__name__}; "
                              f"expected {'.'.join(FOURIER_FEATURES_PATH)} or torch.nn.Identity")
    if B is not None and (B.dim() != 2 or B.shape[1] != coord_dim):
        raise CheckpointError(f"GASP checkpoint {path}: frequency matrix of shape {tuple(B.shape)}, expected (num_frequencies, {coord_dim})")
    in_dim = 2 * B.shape[0] if B is not None else coord_dim
    hidden = [int(h) for h in rep.get("layer_sizes", [])]
    function_dims = [in_dim, *hidden, feature_dim]
    placeholders = [tuple(w.shape) for _, w in _indexed(state, _FUNCTION)]
    expected = [(b, a) for a, b in zip(function_dims[:-1], function_dims[1:])]
    if placeholders != expected:
        raise CheckpointError(f"GASP checkpoint {path}: function MLP weights {placeholders} do not match the config's layers "
                              f"{function_dims} (expected weight shapes {expected})")
    if "latent_dim" not in hyp:
        raise CheckpointError(f"GASP checkpoint {path}: config['hypernetwork'] has no 'latent_dim'")
    dim_z = int(hyp["latent_dim"])
    hyper_layers = _hyper_layers(state, dim_z, [int(h) for h in hyp.get("layer_sizes", [])], function_dims, path)
    return {"dim_z": dim_z, "coord_dim": coord_dim, "feature_dim": feature_dim, "function_dims": function_dims,
            "hyper_layers": hyper_layers, "frequency_matrix": B}


def _hyper_layers(state: dict[str, Tensor], dim_z: int, hidden: list[int], function_dims: list[int], path: Path) -> list[tuple[Tensor, Tensor]]:
    by_index: dict[int, dict[str, Tensor]] = {}
    for m, v in _indexed(state, _HYPER):
        by_index.setdefault(int(m.group(1)), {})[m.group(2)] = v
    layers = [(p.get("weight"), p.get("bias")) for _, p in sorted(by_index.items())]
    num_params = sum(a * b + b for a, b in zip(function_dims[:-1], function_dims[1:]))
    dims = [dim_z, *hidden, num_params]
    expected = [((b, a), (b,)) for a, b in zip(dims[:-1], dims[1:])]
    found = [(tuple(w.shape) if w is not None else None, tuple(b.shape) if b is not None else None) for w, b in layers]
    if found != expected:
        raise CheckpointError(f"GASP checkpoint {path}: hypernetwork.forward_layers hold (weight, bias) shapes {found}; "
                              f"the config (latent {dim_z}, hidden {hidden}, {num_params} function parameters) needs {expected}")
    return [(w.float(), b.float()) for w, b in layers]


def theta_permutation(function_dims: list[int]) -> Tensor:
    """Index p (P,) with theta_suite = theta_source[p].

    Source order: W_0, W_1, ..., W_L (each (out, in) row-major), then b_0, ..., b_L. Suite order
    (``GeneratorLayout``): W_0, b_0, W_1, b_1, ...; both store W as (out, in) row-major.
    """
    shapes = list(zip(function_dims[1:], function_dims[:-1]))  # (out, in) per layer
    weights_end = sum(o * i for o, i in shapes)
    parts, w_at, b_at = [], 0, weights_end
    for o, i in shapes:
        parts += [torch.arange(w_at, w_at + o * i), torch.arange(b_at, b_at + o)]
        w_at, b_at = w_at + o * i, b_at + o
    return torch.cat(parts)


# ----------------------------------------------------------------------------- the suite's model


def import_gasp(path: str | Path, dataset: str | DataInfo, preset: str | None = None, trust_pickle: bool = False) -> GASP:
    """The published GASP at ``path`` as the suite's ``GASP``, for data ``dataset`` (a registry name or a DataInfo).

    The generator (latent size, hypernetwork, function MLP, Fourier features) comes from the file;
    everything else (discriminator, optimiser settings) from ``preset`` (default: the dataset's name).
    The result computes the source's function: ``model.generate(z, coords)`` equals the source's
    ``_stateless_forward(coords, z)`` and ``model.sample(n, coords, z=z)`` its data-range output.
    """
    path = Path(path)
    info = resolve_info(dataset)
    arch = source_architecture(read_gasp_file(path, trust_pickle), path)
    if (arch["coord_dim"], arch["feature_dim"]) != (info.coord_dim, info.feature_dim):
        raise CheckpointError(f"GASP checkpoint {path} maps {arch['coord_dim']}-d coordinates to {arch['feature_dim']} features; "
                              f"the data has coord_dim={info.coord_dim}, feature_dim={info.feature_dim}")
    B = arch["frequency_matrix"]
    generator = {"dim_z": arch["dim_z"], "hypernet_hidden": [w.shape[0] for w, _ in arch["hyper_layers"][:-1]],
                 "function_hidden": arch["function_dims"][1:-1], "fourier_features": B is not None}
    if B is not None:
        # the file holds B, not the sigma it was drawn with; its RMS is recorded for information (B itself is loaded)
        generator.update(rff_frequencies=int(B.shape[0]), rff_sigma=float(B.float().pow(2).mean().sqrt()))
    base = PRESETS[preset_name(GASP, dataset, preset)]
    model = GASP(from_dict(type(base), generator, where=f"gasp import of {path}", base=base), info)
    _load_generator(model, arch)
    model.imported_from = imported_from(SOURCE, path)  # recorded by save_as_suite_checkpoint
    return model.eval()


@torch.no_grad()
def _load_generator(model: GASP, arch: dict[str, Any]) -> None:
    layers = arch["hyper_layers"]
    perm = theta_permutation(arch["function_dims"])
    for i, (ours, (W, b)) in enumerate(zip(model.hypernet.layers, layers)):
        if i == len(layers) - 1:  # output units reordered from the source's layout to the suite's
            W, b = W[perm], b[perm]
        ours.weight.copy_(W.T[None])  # (1, in, out)
        ours.bias.copy_(b[None, None])  # (1, 1, out)
    if model.rff is not None:
        model.rff.B.copy_(arch["frequency_matrix"].float())


def import_published(source: dict[str, Any], info: DataInfo, preset: str | None = None, seed: int = 0) -> GASP:
    """The registry's entry point (``GASP.importer``): ``source["path"]``, the ``torch.load`` dict of GASP's repository."""
    return import_gasp(source["path"], info, preset=preset, trust_pickle=bool(source.get("trust_pickle", False)))
