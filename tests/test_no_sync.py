"""The GPU path reads nothing back per training step (issue 22), proven without a GPU.

On a CUDA device every read of a device value on the host (``.item()``, ``float()``, ``bool()`` of a tensor,
``.tolist()``, ``.cpu()``) waits for every queued kernel: one per step caps the GPU at the host's pace. The
'meta' device has no data at all, so each of those reads raises there. A training step that runs on 'meta'
therefore reads nothing back, whatever the device. Two torch limitations of 'meta', none of the code under
test: fused Adam's Python-side device check does not list 'meta' (its kernel has a meta implementation, and
that check is bypassed here), and autocast has no 'meta' backend (the models enter no autocast context in
full precision, so float32 steps need none).
"""

from __future__ import annotations

import dataclasses
import importlib
import math

import numpy as np
import pytest
import torch

from vamoh.checks import TrainingDivergedError
from vamoh.data.dataset import FunctionDataset
from vamoh.data.registry import get_spec
from vamoh.interface import available_models, build_model
from vamoh.train import TrainConfig, Trainer

from .vamoh_fixtures import BlobImages

META = torch.device("meta")


@pytest.fixture
def fused_on_meta(monkeypatch):
    monkeypatch.setattr(importlib.import_module("torch.optim.adam"), "_device_dtype_check_for_fused", lambda *a, **k: None)


def split(name: str, n: int = 8, seed: int = 0) -> FunctionDataset:
    """A real FunctionDataset of ``n`` random samples in the stored form of dataset ``name``."""
    spec = get_spec(name)
    rng = np.random.default_rng(seed)
    shape = (n, *spec.grid_shape) + ((spec.feature_dim,) if spec.feature_dim > 1 else ())
    high = 2 if spec.kind == "voxels" else 256
    return FunctionDataset(spec, rng.integers(0, high, size=shape, dtype=np.uint8), is_standin=True, label=f"{name} test", split="train")


def test_meta_tensors_refuse_every_read_back():
    """The premise: on 'meta' each way of reading a device value on the host raises."""
    t = torch.ones(3, device=META)
    for read in (lambda: t.sum().item(), lambda: float(t.sum()), lambda: bool(t.all()), lambda: int(t.sum()),
                 lambda: t.tolist(), lambda: t.cpu(), lambda: t.nonzero()):
        with pytest.raises((RuntimeError, NotImplementedError)):
            read()


@pytest.mark.parametrize("dataset", ["polymnist", "shapenet"])
def test_a_split_on_the_device_gives_promised_batches_without_reading_back(dataset):
    data = split(dataset)
    g = torch.Generator().manual_seed(0)
    on_cpu = data.train_batch(torch.tensor([3, 1]), g)
    moved = data.on(META)
    batch = moved.train_batch(torch.tensor([3, 1]), torch.Generator().manual_seed(0))
    assert batch.coords.device == batch.features.device == batch.mask.device == META
    assert batch.shared_coords and batch.all_observed
    assert batch.coords.shape == on_cpu.coords.shape and batch.features.shape == on_cpu.features.shape
    assert data.coords.device.type == "cpu"  # on() is a copy: the CPU split is untouched


@pytest.mark.parametrize("name", available_models())
@pytest.mark.parametrize("dataset", ["polymnist", "shapenet"])
def test_training_steps_read_nothing_back(name, dataset, fused_on_meta):
    data = split(dataset)
    torch.manual_seed(0)
    overrides = {"microbatch_size": 3} if name == "vamoh" else {}
    model = build_model(name, data.info, "tiny", overrides).to(META)
    opts = model.make_optimizers()
    on_device = data.on(META)
    g = torch.Generator().manual_seed(0)
    # VAMoH: warm-up epoch 0 (N(0, I) prior), then an epoch with the flow; point dropout on every step
    for step, epoch in enumerate((0, 0, 10**6)):
        out = model.training_step(on_device.train_batch(torch.arange(step, step + 5) % len(data), g), opts, step, epoch)
        assert "loss" in out
        for k, v in out.items():
            assert isinstance(v, torch.Tensor) and v.device == META and v.dim() == 0, (k, v)


def test_vamoh_point_dropout_keeps_the_promise_and_drops_points_not_mask_bits():
    data = BlobImages(8, 8)
    torch.manual_seed(0)
    model = build_model("vamoh", data.info, "tiny", {"point_dropout_alpha": 0.5})
    full = dataclasses.replace(data.batch(torch.arange(4)), shared_coords=True, all_observed=True)
    torch.manual_seed(5)
    dropped = model.point_dropout(full)
    torch.manual_seed(5)
    masked = model.point_dropout(data.batch(torch.arange(4)))  # no promise: the same draw marks the mask instead
    assert dropped.all_observed and bool(dropped.mask.all())
    kept = masked.mask[0]
    assert dropped.num_points == int(kept.sum()) < full.num_points
    assert torch.equal(dropped.features, full.features[:, kept]) and torch.equal(dropped.coords, full.coords[:, kept])


@pytest.mark.parametrize("name", available_models())
def test_promised_and_unpromised_batches_train_alike(name):
    """The promise only saves reading the batch: the step's result is the same as checking the data."""
    data = BlobImages(8, 8)
    outs, weights = [], []
    for promise in (False, True):
        torch.manual_seed(0)
        model = build_model(name, data.info, "tiny")
        opts = model.make_optimizers()
        batch = data.batch(torch.arange(4))
        if promise:
            batch = dataclasses.replace(batch, shared_coords=True, all_observed=True)
        torch.manual_seed(1)
        outs.append({k: float(v) for k, v in model.training_step(batch, opts, 0, 10**6).items()})
        weights.append([p.detach().clone() for p in model.parameters()])
    assert outs[0] == outs[1]
    assert all(torch.equal(a, b) for a, b in zip(*weights))


def test_trainer_reads_back_once_per_logging_interval(monkeypatch, tmp_path, fused_on_meta):
    """The whole loop (batching on the device, the step, the bookkeeping) on 'meta': the diagnostics are read
    back only at the logging steps, each time for the steps since the last one."""
    data = split("polymnist", n=16)
    torch.manual_seed(0)
    model = build_model("vamoh", data.info, "tiny", {"epochs": 3})
    monkeypatch.setattr("vamoh.train.resolve_device", lambda *a, **k: META)
    reads: list[list[int]] = []

    def read_back(self, pending):
        reads.append([step for step, _, _ in pending])
        assert all(v.device == META for _, _, m in pending for v in m.values())
        return {k: 0.0 for k in pending[-1][2]}

    monkeypatch.setattr(Trainer, "_read_back", read_back)
    monkeypatch.setattr(Trainer, "save", lambda self: None)  # a meta model has no values to save
    trainer = Trainer(model, data, TrainConfig(progress=False, batch_size=4, log_every=5, checkpoint_every=10), tmp_path / "ck.pt")
    trainer.fit()
    assert trainer.total_steps == 12 and trainer.data.coords.device == META
    assert reads == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11]]


@pytest.mark.parametrize("name", available_models())
def test_a_non_finite_step_found_at_the_read_back_is_named_and_nothing_after_it_is_kept(name, tmp_path, monkeypatch):
    data = BlobImages(32, 8)
    torch.manual_seed(0)
    model = build_model(name, data.info, "tiny")
    real_step = model.training_step
    weights = {}

    def step(batch, opts, i, epoch=0):
        if i != 6:
            return real_step(batch, opts, i, epoch)
        # the third step of the second logging interval: its batch is poisoned
        weights["before"] = {k: p.detach().clone() for k, p in model.named_parameters()}
        out = real_step(dataclasses.replace(batch, features=torch.full_like(batch.features, math.nan)), opts, i, epoch)
        weights["after"] = {k: p.detach().clone() for k, p in model.named_parameters()}
        return out

    monkeypatch.setattr(model, "training_step", step)
    path = tmp_path / "ck.pt"
    trainer = Trainer(model, data, TrainConfig(progress=False, epochs=2, batch_size=4, log_every=4, checkpoint_every=4), path)
    with pytest.raises(TrainingDivergedError, match=r"non-finite \{.*'loss': nan.*\} at step 6 \(epoch 0\); stopped without saving; "
                                                      r"the last good checkpoint .* \(step 4\) is kept"):
        trainer.fit()
    assert trainer.step == 8  # step 7 ran before the read-back at step 8 found step 6
    assert torch.load(path, weights_only=False)["step"] == 4
    # the poisoned step left every weight as it was (each optimizer skipped it on the device, no read-back)
    for k, before in weights["before"].items():
        assert torch.equal(weights["after"][k], before), k
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_step_skipping_decides_on_the_device_only_with_a_fused_optimizer():
    from vamoh.interface import step_skipping

    for fused in (True, False):  # on the CPU both skip a non-finite step and take a finite one
        w = torch.nn.Parameter(torch.ones(3))
        opt = torch.optim.Adam([w], lr=0.1, fused=fused)
        w.grad = torch.ones(3)
        step_skipping(opt, torch.tensor(True))
        state = opt.state.get(w, {})  # fused Adam creates its state lazily: zero moments at step 0
        assert torch.equal(w.detach(), torch.ones(3)) and all(float(v.abs().sum()) == 0 for v in state.values())
        step_skipping(opt, torch.tensor(False))
        assert torch.allclose(w.detach(), torch.full((3,), 0.9)) and not hasattr(opt, "found_inf")
    # off the CPU a non-fused optimizer would have to read the flag back every step: refused
    w = torch.nn.Parameter(torch.ones(3, device=META))
    with pytest.raises(TypeError, match="not fused"):
        step_skipping(torch.optim.Adam([w], fused=False), torch.tensor(True, device=META))
