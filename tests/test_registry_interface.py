"""Every registered model passes the same interface tests (VAMoH, GASP, Functa, and any later one)."""

import math

import pytest
import torch

from vamoh.checkpoint import save_checkpoint
from vamoh.interface import CannotReconstructError, FunctionModel, available_models, build_model, get_model_class
from vamoh.pointcloud import grid_coordinates
from vamoh.train import TrainConfig, Trainer, checkpoint_payload, load_model

from .vamoh_fixtures import BlobImages

MODELS = available_models()
DATASET_PRESETS = ("celebahq64", "shapes3d", "polymnist", "era5", "shapenet")


@pytest.fixture(scope="module")
def data():
    return BlobImages(n=8, size=8, seed=1)  # 64 points per sample: the smallest cloud every tiny preset accepts


def tiny(name, data):
    torch.manual_seed(0)
    return build_model(name, data.info, "tiny")


def params(model):
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def test_registry_holds_the_three_models():
    assert {"vamoh", "gasp", "functa"} <= set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_builds_from_every_preset_config(name, data):
    cls = get_model_class(name)
    assert set(DATASET_PRESETS) | {"tiny"} <= set(cls.presets)
    for preset in cls.presets.values():
        preset.validate()
    model = tiny(name, data)
    assert isinstance(model, FunctionModel) and model.model_name == name
    assert isinstance(model.config, cls.config_class)


@pytest.mark.parametrize("name", MODELS)
def test_sample_shapes_range_and_determinism(name, data):
    model = tiny(name, data)
    model.fit_prior([data.batch(torch.arange(8))])  # Functa's generative stage; a no-op for the others
    for shape in ((8, 8), (5, 7)):
        coords = grid_coordinates(shape)
        s = model.sample(3, coords, generator=torch.Generator().manual_seed(4))
        assert s.shape == (3, math.prod(shape), 3)
        assert torch.isfinite(s).all() and s.min() >= 0 and s.max() <= 1
    again = model.sample(3, coords, generator=torch.Generator().manual_seed(4))
    assert torch.equal(s, again)
    other = model.sample(3, coords, generator=torch.Generator().manual_seed(5))
    assert not torch.equal(s, other)


@pytest.mark.parametrize("name", MODELS)
def test_one_training_step_changes_the_weights_of_every_optimizer(name, data):
    model = tiny(name, data)
    opts = model.make_optimizers()
    before = params(model)
    metrics = model.training_step(data.batch(torch.arange(4)), opts, step=0)
    assert "loss" in metrics and all(math.isfinite(v) for v in metrics.values())
    after = dict(model.named_parameters())
    names = {id(p): k for k, p in after.items()}
    for opt_name, opt in opts.items():
        owned = [names[id(p)] for group in opt.param_groups for p in group["params"]]
        changed = [k for k in owned if not torch.equal(before[k], after[k].detach())]
        assert changed, f"optimizer {opt_name!r} changed none of its parameters"


@pytest.mark.parametrize("name", MODELS)
def test_non_finite_loss_is_returned_before_any_optimizer_step(name, data):
    model = tiny(name, data)
    opts = model.make_optimizers()
    batch = data.batch(torch.arange(4))
    batch.features = batch.features.clone()
    batch.features[0, :, 0] = float("nan")  # every point, so no subsampling or point dropout can skip it
    before = params(model)
    metrics = model.training_step(batch, opts, step=0)
    assert not math.isfinite(metrics["loss"])
    for k, p in model.named_parameters():
        assert torch.equal(before[k], p.detach()), f"{k} changed on a non-finite loss"


@pytest.mark.parametrize("name", MODELS)
def test_save_load_round_trip_gives_identical_outputs(name, data, tmp_path):
    model = tiny(name, data)
    opts = model.make_optimizers()
    model.training_step(data.batch(torch.arange(4)), opts, step=0)
    model.fit_prior([data.batch(torch.arange(8))])
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, checkpoint_payload(model, opts, 1, {}))
    loaded, payload = load_model(path)
    assert type(loaded) is type(model) and payload["step"] == 1
    ref, new = model.state_dict(), loaded.state_dict()
    assert ref.keys() == new.keys()
    for k in ref:
        assert torch.equal(ref[k], new[k]), k
    coords = grid_coordinates((6, 6))
    a = model.sample(2, coords, generator=torch.Generator().manual_seed(0))
    b = loaded.sample(2, coords, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    if model.can_reconstruct:
        observed = data.batch(torch.arange(2))
        assert torch.equal(model.reconstruct(observed, coords), loaded.reconstruct(observed, coords))


@pytest.mark.parametrize("name", MODELS)
def test_resume_equals_uninterrupted_training(name, data, tmp_path):
    def run(path, steps):
        cfg = TrainConfig(max_steps=steps, batch_size=4, seed=3, device="cpu", progress=False, checkpoint_every=100, log_every=1)
        trainer = Trainer(tiny(name, data), data, cfg, path)
        trainer.fit()
        return trainer.model

    straight = run(tmp_path / "straight.pt", 6)
    run(tmp_path / "resumed.pt", 3)
    resumed = run(tmp_path / "resumed.pt", 6)
    a, b = straight.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after resume"
    # and training did move the weights away from the initial ones
    init = tiny(name, data).state_dict()
    assert any(not torch.equal(init[k], a[k]) for k, _ in straight.named_parameters())


def test_a_checkpoint_records_the_device_it_was_trained_on(data, tmp_path):
    """config device 'auto' is resolved: the checkpoint says which device ran the steps, and what was asked for."""
    from vamoh.checkpoint import load_checkpoint
    from vamoh.checks import resolve_device

    cfg = TrainConfig(max_steps=1, batch_size=4, seed=0, device="auto", progress=False, checkpoint_every=100, log_every=1)
    Trainer(tiny("vamoh", data), data, cfg, tmp_path / "c.pt").fit()
    recorded = load_checkpoint(tmp_path / "c.pt")["train_config"]
    assert recorded["device"] == str(resolve_device("auto")) != "auto" and recorded["device_requested"] == "auto"


@pytest.mark.parametrize("name", MODELS)
def test_reconstruct_works_or_raises_a_clear_error(name, data):
    model = tiny(name, data)
    observed = data.batch(torch.arange(3))
    keep = torch.zeros(64, dtype=torch.bool)
    keep[::2] = True  # half of the points observed: completion
    observed = observed.with_mask(keep)
    query = grid_coordinates((8, 8), upsample=2)  # 15 x 15: super-resolution
    if not model.can_reconstruct:
        with pytest.raises(CannotReconstructError, match=f"{name} cannot do inference"):
            model.reconstruct(observed, query)
        return
    with torch.no_grad():
        out = model.reconstruct(observed, query)
        own = model.reconstruct(observed, None)
    assert out.shape == (3, 225, 3) and own.shape == (3, 64, 3)
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
