"""Importers of the baselines' published checkpoints (baselines/gasp/importer.py, baselines/functa/importer.py).

Each test writes a small file in the published format (key names, module paths, pickled classes and
parameter layouts of EmilienDupont/neural-function-distributions and google-deepmind/functa), imports
it, and compares the suite's model with a forward pass written here from the source's definitions,
on random coordinates and latents. Files in a wrong layout must fail with a CheckpointError naming
what was expected.
"""

from __future__ import annotations

import fractions
import math
import sys
import types

import dill
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from baselines.functa.importer import import_functa, read_functa_modulations
from baselines.functa.model import Functa
from baselines.gasp.importer import import_gasp, theta_permutation
from vamoh.train import save_as_suite_checkpoint
from baselines.gasp.model import GASP
from vamoh.checks import CheckpointError, ConfigError
from vamoh.interface import DataInfo
from vamoh.pointcloud import PointCloudBatch, grid_coordinates
from vamoh.train import load_model

IMAGE = DataInfo(coord_dim=2, feature_dim=3, likelihood="discretized_logistic", grid_shape=(6, 6))
VOXELS = DataInfo(coord_dim=3, feature_dim=1, likelihood="bernoulli", grid_shape=(4, 4, 4), kind="voxels")


def _register(monkeypatch, dotted: str, **attrs) -> None:
    """Make ``dotted`` (and its parents) importable for this test only, holding ``attrs`` (objects made for
    this test) under their names, so that pickle records them under the published module paths."""
    parts = dotted.split(".")
    for i in range(1, len(parts) + 1):
        module = types.ModuleType(".".join(parts[:i]))
        monkeypatch.setitem(sys.modules, module.__name__, module)
        if i > 1:  # the parent holds its child, as after a real import (dill looks it up that way)
            setattr(sys.modules[".".join(parts[:i - 1])], parts[i - 1], module)
    for name, obj in attrs.items():
        obj.__module__, obj.__qualname__ = dotted, name
        setattr(sys.modules[dotted], name, obj)


# ============================================================================= GASP


class SourceFourierFeatures(nn.Module):
    """The attributes of models.function_representation.FourierFeatures (B as a buffer)."""

    def __init__(self, B: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("frequency_matrix", B)
        self.learnable_features = False
        self.num_frequencies, self.coordinate_dim = B.shape
        self.feature_dim = 2 * B.shape[0]


def _source_mlp(dims: list[int], act: nn.Module, final: nn.Module | None = None) -> nn.Sequential:
    """forward_layers as the source builds them: Linear, act, ..., Linear[, final]."""
    layers: list[nn.Module] = []
    for a, b in zip(dims[:-2], dims[1:-1]):
        layers += [nn.Linear(a, b), act]
    layers.append(nn.Linear(dims[-2], dims[-1]))
    if final is not None:
        layers.append(final)
    return nn.Sequential(*layers)


@pytest.fixture
def gasp_file(tmp_path, monkeypatch):
    """Writer of a published GASP file: FunctionDistribution.save_model's dict, FourierFeatures pickled
    under its original path. Returns (path, config, state_dict)."""
    fourier_features = type("FourierFeatures", (SourceFourierFeatures,), {})  # pickled as models.function_representation.FourierFeatures
    _register(monkeypatch, "models.function_representation", FourierFeatures=fourier_features)

    def write(name="gasp.pt", coord_dim=2, feature_dim=3, num_frequencies=5, hyper_hidden=(7, 9), function_hidden=(6, 4),
              dim_z=3, act=None, final=None, dim_keys=("coordinate_dim", "feature_dim"), extra_config=None, seed=0):
        torch.manual_seed(seed)
        act = nn.LeakyReLU(0.1) if act is None else act
        final = nn.Tanh() if final is None else final
        encoding = fourier_features(2.0 * torch.randn(num_frequencies, coord_dim)) if num_frequencies else nn.Identity()
        fdims = [2 * num_frequencies if num_frequencies else coord_dim, *function_hidden, feature_dim]
        num_params = sum(a * b + b for a, b in zip(fdims[:-1], fdims[1:]))
        rep = nn.Module()  # FunctionRepresentation's attributes, in its order
        rep.encoding, rep.non_linearity, rep.forward_layers = encoding, act, _source_mlp(fdims, act, final)
        hyper = nn.Module()  # HyperNetwork's
        hyper.function_representation, hyper.non_linearity = rep, act
        hyper.forward_layers = _source_mlp([dim_z, *hyper_hidden, num_params], act)
        dist = nn.Module()  # FunctionDistribution's
        dist.hypernetwork = hyper
        config = {"hypernetwork": {"latent_dim": dim_z, "layer_sizes": list(hyper_hidden), "non_linearity": act},
                  "function_representation": {dim_keys[0]: coord_dim, dim_keys[1]: feature_dim, "layer_sizes": list(function_hidden),
                                              "encoding": encoding, "non_linearity": act, "final_non_linearity": final},
                  **(extra_config or {})}
        path = tmp_path / name
        torch.save({"config": config, "state_dict": dist.state_dict()}, path)
        return path, config, dist.state_dict()

    return write


def source_gasp_forward(config: dict, state: dict, z: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """FunctionDistribution._stateless_forward: latents (B, L), coordinates (N, c) -> features (B, N, f) in [-1, 1].

    Hypernetwork output = all weight matrices (out, in) row-major, then all biases; Fourier features
    [cos 2 pi xB^T, sin 2 pi xB^T]; LeakyReLU(0.1) between layers, tanh at the end.
    """
    index = sorted({int(k.split(".")[2]) for k in state if k.startswith("hypernetwork.forward_layers.")})
    h = z
    for j, i in enumerate(index):
        h = F.linear(h, state[f"hypernetwork.forward_layers.{i}.weight"], state[f"hypernetwork.forward_layers.{i}.bias"])
        h = F.leaky_relu(h, 0.1) if j < len(index) - 1 else h
    rep = config["function_representation"]
    B = state.get("hypernetwork.function_representation.encoding.frequency_matrix")
    if B is not None:
        proj = coords @ B.T
        inputs = torch.cat([torch.cos(2 * math.pi * proj), torch.sin(2 * math.pi * proj)], dim=-1)
    else:
        inputs = coords
    dims = [inputs.shape[-1], *rep["layer_sizes"], rep.get("feature_dim", rep.get("output_dim"))]
    shapes = list(zip(dims[1:], dims[:-1]))
    out = []
    for theta in h:
        at, weights = 0, []
        for o, i in shapes:
            weights.append(theta[at:at + o * i].view(o, i))
            at += o * i
        biases = []
        for o, _ in shapes:
            biases.append(theta[at:at + o])
            at += o
        x = inputs
        for k, (W, b) in enumerate(zip(weights, biases)):
            x = F.linear(x, W, b)
            x = torch.tanh(x) if k == len(shapes) - 1 else F.leaky_relu(x, 0.1)
        out.append(x)
    return torch.stack(out)


@pytest.mark.parametrize("kind", ["fourier", "raw_coordinates", "loader_key_names"])
def test_gasp_import_computes_the_source_function(gasp_file, kind):
    info = VOXELS if kind == "raw_coordinates" else IMAGE
    kwargs = {"fourier": {}, "raw_coordinates": dict(coord_dim=3, feature_dim=1, num_frequencies=0),
              "loader_key_names": dict(dim_keys=("input_dim", "output_dim"))}[kind]
    path, config, state = gasp_file(**kwargs)
    model = import_gasp(path, info, preset="tiny")
    assert isinstance(model, GASP) and model.config.fourier_features == (kind != "raw_coordinates")
    g = torch.Generator().manual_seed(1)
    z = torch.randn(4, 3, generator=g)
    coords = torch.rand(50, info.coord_dim, generator=g) * 2 - 1
    expected = source_gasp_forward(config, state, z, coords)
    with torch.no_grad():
        got = model.generate(z, coords[None])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    # sample() is the source's data-range output, (f + 1) / 2 (GridDataConverter.to_data)
    torch.testing.assert_close(model.sample(4, coords, z=z), (expected + 1) / 2, atol=1e-5, rtol=1e-5)
    assert got.std() > 1e-3  # a non-trivial function, so the comparison can fail


def test_gasp_theta_permutation_interleaves_the_sources_weights_then_biases():
    # layers 2 -> 3 -> 1: source [W0 (6) | W1 (3) | b0 (3) | b1 (1)], suite [W0 | b0 | W1 | b1]
    expected = [0, 1, 2, 3, 4, 5, 9, 10, 11, 6, 7, 8, 12]
    assert theta_permutation([2, 3, 1]).tolist() == expected


def test_gasp_trusted_load_equals_the_allowlisted_load(gasp_file):
    path, _, _ = gasp_file()
    safe, trusted = import_gasp(path, IMAGE, preset="tiny"), import_gasp(path, IMAGE, preset="tiny", trust_pickle=True)
    for (name, a), (_, b) in zip(safe.state_dict().items(), trusted.state_dict().items()):
        if not name.startswith("discriminator"):  # initialised at random, not imported
            assert torch.equal(a, b), name


def test_gasp_unknown_global_needs_trust(gasp_file):
    path, config, state = gasp_file(extra_config={"notes": fractions.Fraction(1, 3)})
    with pytest.raises(CheckpointError, match=r"fractions\.Fraction.*trust_pickle=True"):
        import_gasp(path, IMAGE, preset="tiny")
    model = import_gasp(path, IMAGE, preset="tiny", trust_pickle=True)
    z, coords = torch.randn(2, 3), torch.rand(20, 2) * 2 - 1
    torch.testing.assert_close(model.generate(z, coords[None]).detach(), source_gasp_forward(config, state, z, coords), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    (dict(act=nn.ReLU()), r"\['hypernetwork'\]\['non_linearity'\] is ReLU\(\).*LeakyReLU\(0\.1\)"),
    (dict(act=nn.LeakyReLU(0.2)), r"non_linearity'\] is LeakyReLU\(negative_slope=0\.2\)"),
    (dict(final=nn.Sigmoid()), r"final_non_linearity'\] is Sigmoid\(\).*tanh"),
])
def test_gasp_unrepresentable_architecture_is_named(gasp_file, kwargs, message):
    path, _, _ = gasp_file(**kwargs)
    with pytest.raises(CheckpointError, match=message):
        import_gasp(path, IMAGE, preset="tiny")


def test_gasp_wrong_layouts_are_named(gasp_file, tmp_path):
    path, config, state = gasp_file()
    torch.save({"state_dict": state}, tmp_path / "no_config.pt")
    with pytest.raises(CheckpointError, match=r"expected a dict with keys 'config' and 'state_dict'.*found \['state_dict'\]"):
        import_gasp(tmp_path / "no_config.pt", IMAGE, preset="tiny")
    config["hypernetwork"]["layer_sizes"] = [7, 8]
    torch.save({"config": config, "state_dict": state}, tmp_path / "hidden.pt")
    with pytest.raises(CheckpointError, match=r"hypernetwork\.forward_layers hold .*hidden \[7, 8\]"):
        import_gasp(tmp_path / "hidden.pt", IMAGE, preset="tiny")
    with pytest.raises(CheckpointError, match=r"2-d coordinates to 3 features.*coord_dim=3, feature_dim=1"):
        import_gasp(path, VOXELS, preset="tiny")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match=r"not a readable torch\.save file"):
        import_gasp(tmp_path / "text.pt", IMAGE, preset="tiny")


def test_gasp_preset_comes_from_the_dataset_name(gasp_file):
    path, _, _ = gasp_file()
    model = import_gasp(path, "polymnist")
    assert model.config.centroids == GASP.presets["polymnist"].centroids and model.info.grid_shape == (28, 28)
    with pytest.raises(ConfigError, match=r"preset=None is not one of"):
        import_gasp(path, IMAGE)


def test_gasp_suite_checkpoint_round_trip(gasp_file, tmp_path):
    path, _, _ = gasp_file()
    model = import_gasp(path, IMAGE, preset="tiny")
    out = save_as_suite_checkpoint(model, tmp_path / "suite" / "checkpoint.pt")
    payload = torch.load(out, weights_only=True)  # only tensors and plain data
    assert payload["imported_from"]["source"] == "EmilienDupont/neural-function-distributions"
    assert payload["imported_from"]["files"][0]["name"] == "gasp.pt" and len(payload["imported_from"]["files"][0]["sha256"]) == 64
    loaded, _ = load_model(out)
    z, coords = torch.randn(3, 3), torch.rand(30, 2) * 2 - 1
    torch.testing.assert_close(loaded.sample(3, coords, z=z), model.sample(3, coords, z=z), atol=0, rtol=0)


# ============================================================================= Functa

ROOT = "latent_modulated_siren"  # haiku's name of the LatentModulatedSiren module
W0, RES = 30.0, 6


def functa_checkpoint(width=8, depth=3, latent=4, channels=3, z0_scale=0.3, lrs=(0.5, 1.5), meta_sgd=True, seed=0, **model_overrides):
    """{"params", "config"} as released: haiku module names, w (in, out), the experiment config's sections."""
    rng = np.random.default_rng(seed)
    dims = [2] + [width] * (depth - 1) + [channels]
    params: dict = {}
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        bound = 1 / a if i == 0 else math.sqrt(6 / a) / W0  # SIREN init, as ModulatedSirenLayer
        params[f"{ROOT}/modulated_siren_layer{f'_{i}' if i else ''}/linear"] = {
            "w": rng.uniform(-bound, bound, (a, b)).astype(np.float32), "b": rng.normal(0, 0.05, b).astype(np.float32)}
    params[f"{ROOT}/~/latent_to_modulation/~/mlp/~/linear_0"] = {
        "w": rng.normal(0, 0.05, (latent, (depth - 1) * width)).astype(np.float32), "b": rng.normal(0, 0.02, (depth - 1) * width).astype(np.float32)}
    params[f"{ROOT}/~/latent_vector"] = {"latent_vector": rng.normal(0, z0_scale, latent).astype(np.float32)}
    if meta_sgd:
        params[f"{ROOT}/~/meta_sgd_lrs"] = {"meta_sgd_lrs": rng.uniform(*lrs, latent).astype(np.float32)}
    model = {"type": "latent_modulated_siren", "w0": W0, "width": width, "depth": depth, "modulate_scale": False, "modulate_shift": True,
             "l2_weight": 0.0, "noise_std": 0.0, "latent_dim": latent, "layer_sizes": (), "latent_init_scale": 0.0,
             "use_meta_sgd": meta_sgd, "meta_sgd_init_range": (0.005, 0.1), "meta_sgd_clip_range": (0.0, 1.0), **model_overrides}
    config = {"model": model, "dataset": {"name": "celeb_a_hq_custom", "num_channels": channels, "resolution": RES, "type": "image"},
              "training": {"per_device_batch_size": 16, "inner_steps": 3}, "opt_inner": {"lr": 0.01}, "opt_outer": {"lr": 3e-6}}
    return {"params": params, "config": config}


def dill_dump(obj, path):
    with open(path, "wb") as f:
        dill.dump(obj, f)
    return path


def source_siren(ckpt: dict, latent: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """LatentModulatedSiren.__call__ with latent (L,) in place of latent_vector, at source coordinates (N, 2)."""
    p, m = ckpt["params"], ckpt["config"]["model"]
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float64)  # noqa: E731
    mod = p[f"{ROOT}/~/latent_to_modulation/~/mlp/~/linear_0"]
    shifts = latent @ t(mod["w"]) + t(mod["b"])
    x = coords
    for i in range(m["depth"]):
        layer = p[f"{ROOT}/modulated_siren_layer{f'_{i}' if i else ''}/linear"]
        x = x @ t(layer["w"]) + t(layer["b"])
        if i < m["depth"] - 1:
            x = torch.sin(m["w0"] * (x + shifts[i * m["width"]:(i + 1) * m["width"]]))
    return x + 0.5


def source_pixel_centres(res: int) -> torch.Tensor:
    """get_coordinate_grid(res, centered=True), flattened (res*res, 2) row-major."""
    c = torch.linspace(1 / (2 * res), 1 - 1 / (2 * res), res, dtype=torch.float64)
    return torch.stack(torch.meshgrid(c, c, indexing="ij"), dim=-1).reshape(-1, 2)


def source_inner_loop(ckpt: dict, image: torch.Tensor, steps: int) -> torch.Tensor:
    """helpers.inner_loop with meta-SGD: z <- z - meta_sgd_lrs * grad mean((f - image)^2), from latent_vector."""
    p = ckpt["params"]
    z = torch.as_tensor(p[f"{ROOT}/~/latent_vector"]["latent_vector"], dtype=torch.float64)
    lrs = torch.as_tensor(p[f"{ROOT}/~/meta_sgd_lrs"]["meta_sgd_lrs"], dtype=torch.float64)
    coords = source_pixel_centres(RES)
    for _ in range(steps):
        z = z.detach().requires_grad_(True)
        loss = (source_siren(ckpt, z, coords) - image).pow(2).mean()
        (grad,) = torch.autograd.grad(loss, z)
        z = z - lrs * grad
    return z.detach()


def _z0(ckpt: dict) -> np.ndarray:
    return ckpt["params"][f"{ROOT}/~/latent_vector"]["latent_vector"]


def test_functa_import_computes_the_source_function_at_pixel_centres(tmp_path):
    ckpt = functa_checkpoint()
    model, mods = import_functa(dill_dump(ckpt, tmp_path / "celeba_params_4_latents.npz"), IMAGE, preset="tiny")
    assert isinstance(model, Functa) and mods is None
    assert (model.config.width, model.config.depth, model.config.latent_dim, model.config.w0, model.config.inner_steps) == (8, 3, 4, W0, 3)
    g = torch.Generator().manual_seed(2)
    latents = torch.randn(5, 4, generator=g, dtype=torch.float64)
    expected = torch.stack([source_siren(ckpt, z, source_pixel_centres(RES)) for z in latents])
    suite_z = (latents - torch.as_tensor(_z0(ckpt), dtype=torch.float64)).float()  # the suite's latents start at 0
    with torch.no_grad():
        got = model.decode(suite_z, grid_coordinates((RES, RES))[None])
    torch.testing.assert_close(got.double(), expected, atol=2e-5, rtol=1e-4)
    assert expected.std() > 1e-2
    # pixel_centers=False: the source evaluated where the suite maps its grid, (x + 1) / 2, with no fold
    plain, _ = import_functa(tmp_path / "celeba_params_4_latents.npz", IMAGE, preset="tiny", pixel_centers=False)
    coords = torch.rand(40, 2, generator=g) * 2 - 1
    expected = torch.stack([source_siren(ckpt, z, (coords.double() + 1) / 2) for z in latents])
    with torch.no_grad():
        torch.testing.assert_close(plain.decode(suite_z, coords[None]).double(), expected, atol=2e-5, rtol=1e-4)


def test_functa_inner_loop_matches_the_sources_meta_sgd(tmp_path):
    ckpt = functa_checkpoint(lrs=(0.5, 3.0))  # rates above the suite's default clip of 1: the source does not clip
    model, _ = import_functa(dill_dump(ckpt, tmp_path / "params.npz"), IMAGE, preset="tiny")
    g = torch.Generator().manual_seed(3)
    images = torch.rand(3, RES * RES, 3, generator=g)
    batch = PointCloudBatch(grid_coordinates((RES, RES)).expand(3, -1, -1), images, torch.ones(3, RES * RES, dtype=torch.bool), (RES, RES))
    got = model.modulations(batch).double() + torch.as_tensor(_z0(ckpt), dtype=torch.float64)
    expected = torch.stack([source_inner_loop(ckpt, img.double(), steps=3) for img in images])
    assert (expected - torch.as_tensor(_z0(ckpt), dtype=torch.float64)).abs().max() > 1e-2  # the loop moved the latents
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_functa_modulations_file_gives_the_suites_latents(tmp_path):
    ckpt = functa_checkpoint()
    rng = np.random.default_rng(4)
    published = {split: {"modulation": rng.normal(0, 1, (n, 4)).astype(np.float32), "psnr": rng.uniform(20, 30, n).astype(np.float32)}
                 for split, n in (("train", 12), ("test", 5))}
    model, mods = import_functa(dill_dump(ckpt, tmp_path / "params.npz"), IMAGE, dill_dump(published, tmp_path / "mods.npz"), preset="tiny")
    assert sorted(mods) == ["test", "test_psnr", "train", "train_psnr"] and mods["train"].shape == (12, 4) and mods["train"].dtype == np.float32
    np.testing.assert_array_equal(mods["test_psnr"], published["test"]["psnr"])
    # the suite's latent decodes to the source's image of the published modulation
    with torch.no_grad():
        got = model.decode(torch.as_tensor(mods["test"]), grid_coordinates((RES, RES))[None])
    expected = torch.stack([source_siren(ckpt, torch.as_tensor(z, dtype=torch.float64), source_pixel_centres(RES)) for z in published["test"]["modulation"]])
    torch.testing.assert_close(got.double(), expected, atol=2e-5, rtol=1e-4)
    stats = model.fit_prior(mods["train"], epochs=1, batch_size=4)
    assert stats["num_modulations"] == 12.0


def test_functa_reads_haiku_and_jax_pickles_without_them(tmp_path, monkeypatch):
    """Haiku FlatMapping and jax arrays pickle as (haiku._src.data_structures.FlatMapping, (dict,)) and
    (jax._src.array._reconstruct_array, (fun, args, arr_state, aval_state)); reading them needs none of
    haiku, jax or dill."""

    def FlatMapping(data):  # stands for haiku's class at pickling time only
        return dict(data)

    def _reconstruct_array(fun, args, arr_state, aval_state):  # stands for jax's at pickling time only
        raise AssertionError("never called: the importer resolves this name to its own stand-in")

    class HaikuMap(dict):
        def __reduce__(self):
            return FlatMapping, (dict(self),)

    class JaxArray:
        def __init__(self, value):
            self.value = value

        def __reduce__(self):
            fun, args, state = self.value.__reduce__()
            return _reconstruct_array, (fun, args, state, {"weak_type": False})

    class Blocked:  # an import system without these packages
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("haiku", "jax", "dill"):
                raise ImportError(f"{name} is blocked in this test")

    _register(monkeypatch, "haiku._src.data_structures", FlatMapping=FlatMapping)
    _register(monkeypatch, "jax._src.array", _reconstruct_array=_reconstruct_array)
    ckpt = functa_checkpoint()
    wrapped = {"params": HaikuMap({k: HaikuMap({n: JaxArray(v) for n, v in m.items()}) for k, m in ckpt["params"].items()}),
               "config": ckpt["config"]}
    path, plain_path = dill_dump(wrapped, tmp_path / "params.npz"), dill_dump(ckpt, tmp_path / "plain.npz")
    assert b"haiku._src.data_structures" in path.read_bytes() and b"_reconstruct_array" in path.read_bytes()
    for name in [m for m in sys.modules if m.split(".")[0] in ("haiku", "jax", "dill")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [Blocked(), *sys.meta_path])
    wrapped_model, _ = import_functa(path, IMAGE, preset="tiny")
    plain, _ = import_functa(plain_path, IMAGE, preset="tiny")
    for (name, a), (_, b) in zip(plain.state_dict().items(), wrapped_model.state_dict().items()):
        if not name.startswith("flow"):  # the flow is initialised at random, not imported
            assert torch.equal(a, b), name


@pytest.mark.parametrize("change, message", [
    (dict(model_overrides=dict(modulate_scale=True)), r"modulate_scale=True.*shift-only"),
    (dict(model_overrides=dict(layer_sizes=(16,))), r"layer_sizes'\]=\(16,\).*one linear layer"),
    (dict(model_overrides=dict(l2_weight=0.1)), r"'l2_weight'\]=0\.1"),
    (dict(model_overrides=dict(type="modulated_siren")), r"only 'latent_modulated_siren'"),
    (dict(lrs=(-0.1, -0.01)), r"4 negative Meta-SGD rates"),
])
def test_functa_unrepresentable_models_are_named(tmp_path, change, message):
    change = dict(change)
    overrides = change.pop("model_overrides", {})
    path = dill_dump(functa_checkpoint(**change, **overrides), tmp_path / "params.npz")
    with pytest.raises(CheckpointError, match=message):
        import_functa(path, IMAGE, preset="tiny")


def test_functa_wrong_layouts_are_named(tmp_path):
    ckpt = functa_checkpoint()
    with pytest.raises(CheckpointError, match=r"no \['params'\] \(expected the haiku parameters of LatentModulatedSiren\)"):
        import_functa(dill_dump({"config": ckpt["config"]}, tmp_path / "a.npz"), IMAGE, preset="tiny")
    renamed = {"params": {k.replace("modulated_siren_layer", "siren_layer"): v for k, v in ckpt["params"].items()}, "config": ckpt["config"]}
    with pytest.raises(CheckpointError, match=r"expected at least two '\.\.\./modulated_siren_layer\{,_1,\.\.\.\}/linear' modules"):
        import_functa(dill_dump(renamed, tmp_path / "b.npz"), IMAGE, preset="tiny")
    path = dill_dump(ckpt, tmp_path / "c.npz")
    with pytest.raises(CheckpointError, match=r"trained at resolution 6 per axis.*\(28, 28\)"):
        import_functa(path, "polymnist")
    with pytest.raises(CheckpointError, match=r"expected \{split: \{'modulation'.*found \{'train': \['mods'\]\}"):
        read_functa_modulations(dill_dump({"train": {"mods": np.zeros((2, 4))}}, tmp_path / "d.npz"))
    with pytest.raises(CheckpointError, match=r"modulations of shape \(2, 5\), expected \(N, 4\)"):
        import_functa(path, IMAGE, dill_dump({"train": {"modulation": np.zeros((2, 5))}}, tmp_path / "e.npz"), preset="tiny")
    np.savez(tmp_path / "f.npz", params=np.zeros(3))
    with pytest.raises(CheckpointError, match=r"is a zip archive \(numpy \.npz\); the published files are dill pickles"):
        import_functa(tmp_path / "f.npz", IMAGE, preset="tiny")
    dill_path = dill_dump(ckpt, tmp_path / "g.npz")
    dill_path.write_bytes(dill_path.read_bytes()[:200])  # truncated
    with pytest.raises(CheckpointError, match=r"g\.npz is not a readable pickle \(.*\); expected a dill pickle"):
        import_functa(dill_path, IMAGE, preset="tiny")


def test_functa_unknown_global_needs_trust(tmp_path):
    ckpt = functa_checkpoint()
    ckpt["config"]["notes"] = fractions.Fraction(1, 3)
    path = dill_dump(ckpt, tmp_path / "params.npz")
    with pytest.raises(CheckpointError, match=r"holds the global fractions\.Fraction.*trust_pickle=True"):
        import_functa(path, IMAGE, preset="tiny")
    model, _ = import_functa(path, IMAGE, preset="tiny", trust_pickle=True)
    assert model.config.latent_dim == 4


def test_functa_suite_checkpoint_round_trip(tmp_path):
    ckpt = functa_checkpoint()
    rng = np.random.default_rng(5)
    published = {"train": {"modulation": rng.normal(0, 1, (16, 4)).astype(np.float32), "psnr": np.zeros(16, np.float32)}}
    model, mods = import_functa(dill_dump(ckpt, tmp_path / "params.npz"), IMAGE, dill_dump(published, tmp_path / "mods.npz"), preset="tiny")
    model.fit_prior(mods["train"], epochs=2, batch_size=8)
    out = save_as_suite_checkpoint(model, tmp_path / "functa.pt")
    payload = torch.load(out, weights_only=True)
    assert payload["imported_from"]["source"] == "google-deepmind/functa"
    assert [f["name"] for f in payload["imported_from"]["files"]] == ["params.npz", "mods.npz"]
    loaded, _ = load_model(out)
    coords = grid_coordinates((RES, RES))
    torch.testing.assert_close(loaded.sample(3, coords, torch.Generator().manual_seed(0)), model.sample(3, coords, torch.Generator().manual_seed(0)))
