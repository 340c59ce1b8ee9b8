"""Training loop shared by every model in the registry.

Seed first, build second: ``seed_everything(seed)`` before the model is built makes its initialisation a
function of the seed, so the same config and seed give bitwise the same checkpoint on one machine.
Deterministic data order (a function of seed and epoch), atomic checkpoints holding the model and
optimizer states, the resolved config, the step and all RNG states, so that resuming from a
checkpoint on CPU gives exactly the run that was never interrupted. A checkpoint is resumed only by
the run it belongs to (the same model config, data, seed and batch size: its ``identity``); a
non-finite loss stops the run with a clear error and leaves the last good checkpoint in place.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm.auto import tqdm

from .checkpoint import load_checkpoint, remove_checkpoint, rng_state, save_checkpoint, set_rng_state
from .checks import CheckpointError, ConfigError, TrainingDivergedError, resolve_device
from .config import to_dict
from .interface import DataInfo, FunctionModel, get_model_class
from .io import atomic_write_text
from .pointcloud import PointCloudBatch


# config keys a resumed run may change: the budget, and the micro-batch size (the update is the same)
RESUMABLE_KEYS = frozenset({"epochs", "microbatch_size"})


class BatchSource(Protocol):
    """What the trainer needs from a dataset (vamoh.data's FunctionDataset satisfies it)."""

    def __len__(self) -> int: ...

    def batch(self, indices: torch.Tensor, points: int | None = None, generator: torch.Generator | None = None) -> PointCloudBatch: ...


@dataclass
class TrainConfig:
    """How long and where to train; the model's own config holds its optimisation hyperparameters."""

    epochs: int | None = None  # None: the model config's epochs
    max_steps: int | None = None  # stop after this many steps in total (overrides epochs when smaller)
    batch_size: int | None = None  # None: the model config's batch_size
    points_per_sample: int | None = None  # random subset of points per batch (voxels: 4096); None: all
    seed: int = 0
    device: str = "auto"  # "auto" (CUDA when available), "cpu", "cuda", "cuda:1", ...
    checkpoint_every: int = 200  # steps between checkpoints (and at the end)
    log_every: int = 10  # steps between history rows
    progress: bool = True  # tqdm progress bar
    # CUDA only: float32 matmuls and convolutions on TF32 tensor cores (products with a 10-bit mantissa, float32
    # accumulation; about 1e-3 relative error per product, well inside the run-to-run spread of these models)
    tf32: bool = True

    def validate(self) -> None:
        for name in ("epochs", "max_steps", "batch_size", "points_per_sample"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v <= 0):
                raise ConfigError(f"train.{name}={v!r}: expected a positive integer or null")
        if self.checkpoint_every <= 0 or self.log_every <= 0:
            raise ConfigError("train.checkpoint_every and train.log_every must be positive")
        resolve_device(self.device, "train.device")


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy and Python's RNGs: call before building a model."""
    import numpy as np

    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The sample order of one epoch: a permutation that depends only on (seed, epoch)."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


def checkpoint_payload(model: FunctionModel, optimizers: dict[str, torch.optim.Optimizer], step: int, extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "model_name": model.model_name,
        "model_config": to_dict(model.config),
        "data_info": asdict(model.info),
        "model_state": model.state_dict(),
        "optimizer_states": {k: o.state_dict() for k, o in optimizers.items()},
        "step": step,
        "rng": rng_state(),
        **extra,
    }


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[FunctionModel, dict[str, Any]]:
    """Rebuild a model from a checkpoint alone (config and data info are inside)."""
    from .config import from_dict

    import dataclasses

    payload = load_checkpoint(path)
    cls = get_model_class(payload["model_name"])
    info = payload["data_info"]
    fields = {f.name for f in dataclasses.fields(DataInfo)}
    required = {f.name for f in dataclasses.fields(DataInfo) if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    if not required <= set(info) <= fields:
        raise CheckpointError(f"checkpoint {path}: data_info has keys {sorted(info)}, expected {sorted(required)} "
                              f"(and optionally {sorted(fields - required)})")
    try:
        info = DataInfo(**{**info, "grid_shape": tuple(info["grid_shape"])})
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"checkpoint {path}: data_info {payload['data_info']} is not a DataInfo ({err})") from None
    saved = {**cls.saved_config_defaults(), **payload["model_config"]}
    model = cls(from_dict(cls.config_class, saved, where=f"{path}:model_config"), info)
    check_state(path, payload["model_state"], model.state_dict())
    try:
        model.load_state_dict(payload["model_state"])
    except RuntimeError as err:
        raise CheckpointError(f"checkpoint {path} does not match its model config: {' '.join(str(err).split())}") from None
    return model.to(device), payload


def check_state(path: str | Path, state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    """Refuse what ``load_state_dict`` would take silently: a tensor of another dtype (cast on copy: float16 weights
    lose precision, integer ones are truncated) and non-finite weights (every sample would be NaN); each error names
    the checkpoint, the tensor, what was found and what was expected."""
    for name, t in state.items():
        want = expected.get(name)
        if want is None:
            continue  # unexpected keys: load_state_dict names them
        if t.dtype != want.dtype:
            others = sum(1 for k, v in state.items() if k in expected and v.dtype != expected[k].dtype)
            raise CheckpointError(f"checkpoint {path}: model_state[{name!r}] is {t.dtype}, expected {want.dtype} ({others} tensor(s) "
                                  f"of another dtype; the model is not cast silently)")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise CheckpointError(f"checkpoint {path}: model_state[{name!r}] holds {bad} NaN/inf value(s) of {t.numel()}, expected finite weights")


class Trainer:
    """Train ``model`` on ``data``, checkpointing to ``checkpoint_path``; resumes when that file exists.

    ``identity``: what makes a checkpoint this run's (e.g. the dataset, its checksum, the seed); stored in
    the checkpoint together with the model config, seed and batch size. A checkpoint of another run is
    refused with the keys that differ, or, with ``restart_on_mismatch``, set aside and training starts over.
    """

    def __init__(self, model: FunctionModel, data: BatchSource, config: TrainConfig, checkpoint_path: str | Path,
                 on_log: Callable[[int, dict[str, float]], None] | None = None, identity: dict[str, Any] | None = None,
                 restart_on_mismatch: bool = False) -> None:
        config.validate()
        self.config = config
        self.device = resolve_device(config.device, "train.device")
        self.model = model.to(self.device)
        self.data = data
        self.path = Path(checkpoint_path)
        self.on_log = on_log
        n = len(data)
        if n == 0:
            raise ConfigError(f"{model.model_name}: the training split is empty; nothing to train on")
        self.batch_size = config.batch_size or getattr(model.config, "batch_size", 32)
        if self.batch_size > n:
            raise ConfigError(f"{model.model_name}: batch size {self.batch_size} is larger than the {n} training samples; "
                              "lower train.batch_size (or the model's batch_size) or use more training data (data n_train)")
        self.steps_per_epoch = max(1, n // self.batch_size)
        epochs = config.epochs or getattr(model.config, "epochs", 1)
        self.total_steps = epochs * self.steps_per_epoch
        if config.max_steps is not None:
            self.total_steps = min(self.total_steps, config.max_steps) if config.epochs else config.max_steps
        self.optimizers = model.make_optimizers()
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.last_good_step: int | None = None
        self.identity = {"model_name": model.model_name, "seed": config.seed, "batch_size": self.batch_size,
                         "points_per_sample": config.points_per_sample, "num_train": n, **(identity or {})}
        self.restart_on_mismatch = restart_on_mismatch
        self.resumed_from: int | None = None

    def _mismatch(self, payload: dict[str, Any]) -> list[str]:
        """What differs between this run and the checkpoint's: config keys (the budget may change) and identity."""
        now = {k: v for k, v in to_dict(self.model.config).items() if k not in RESUMABLE_KEYS}
        then = {k: v for k, v in payload["model_config"].items() if k not in RESUMABLE_KEYS}
        diffs = [f"model config {k}: checkpoint {then.get(k)!r}, now {now.get(k)!r}" for k in sorted(now.keys() | then.keys()) if now.get(k) != then.get(k)]
        saved = payload.get("identity", {})
        diffs += [f"{k}: checkpoint {saved.get(k)!r}, now {v!r}" for k, v in self.identity.items() if saved.get(k) != v]
        if int(payload["step"]) > self.total_steps:
            diffs.append(f"budget: the checkpoint is at step {int(payload['step'])}, beyond this run's {self.total_steps} steps")
        return diffs

    def _resume(self) -> bool:
        payload = load_checkpoint(self.path, map_location=self.device)
        if payload["model_name"] != self.model.model_name:
            diffs = [f"model: checkpoint {payload['model_name']!r}, now {self.model.model_name!r}"]
        else:
            diffs = self._mismatch(payload)
        if diffs:
            if self.restart_on_mismatch:
                print(f"{self.model.model_name}: {self.path} belongs to another run ({'; '.join(diffs)}); starting over", flush=True)
                remove_checkpoint(self.path)  # with its sidecar
                return False
            raise CheckpointError(f"{self.path} belongs to another run, so it is not resumed: {'; '.join(diffs)}. "
                                  "Delete it or write to another path to train anew, or restore the old settings to resume")
        check_state(self.path, payload["model_state"], self.model.state_dict())
        self.model.load_state_dict(payload["model_state"])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(payload["optimizer_states"][name])
        self.step = int(payload["step"])
        self.history = list(payload.get("history", []))
        set_rng_state(payload["rng"])
        self.last_good_step = self.resumed_from = self.step
        print(f"{self.model.model_name}: resuming from {self.path} at step {self.step} of {self.total_steps}", flush=True)
        return True

    def recorded_config(self) -> dict[str, Any]:
        """The training config as run: ``device`` is the device used (config ``auto`` resolved), ``device_requested`` the
        config's value."""
        return {**asdict(self.config), "device": str(self.device), "device_requested": self.config.device}

    def save(self) -> None:
        save_checkpoint(self.path, checkpoint_payload(self.model, self.optimizers, self.step,
                                                      {"history": self.history, "train_config": self.recorded_config(), "identity": self.identity}))
        self.last_good_step = self.step

    def batch_for_step(self, step: int) -> tuple[PointCloudBatch, int]:
        epoch, i = divmod(step, self.steps_per_epoch)
        order = epoch_order(len(self.data), self.config.seed, epoch)
        idx = order[i * self.batch_size : (i + 1) * self.batch_size]
        g = torch.Generator().manual_seed(self.config.seed * 7_919 + step)
        return self.data.batch(idx, self.config.points_per_sample, g), epoch

    def check_writable(self) -> None:
        """Fail now, not at the first checkpoint after the steps ran, when the checkpoint cannot be written."""
        parent = self.path.parent
        if self.path.is_dir():
            raise ConfigError(f"checkpoint path {self.path} is a directory; name a file, e.g. {self.path / 'checkpoint.pt'}")
        existing = next((p for p in [parent, *parent.parents] if p.exists()), None)
        if existing is not None and not existing.is_dir():
            raise ConfigError(f"checkpoint path {self.path}: {existing} is a file, not a directory")
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(f"checkpoint path {self.path}: cannot create {parent} ({err.strerror})") from None
        if not os.access(parent, os.W_OK):
            raise ConfigError(f"checkpoint path {self.path}: the directory {parent} is not writable")

    def _read_back(self, pending: list[tuple[int, int, dict[str, Any]]]) -> dict[str, float]:
        """The diagnostics of the steps since the last read-back, brought to the host in one transfer (the one
        synchronisation of a logging interval on an accelerator); stops on the first step with a non-finite
        value, naming it. Returns the last step's values as floats."""
        tensors = [v.detach().reshape(()).to(torch.float64) for _, _, m in pending for v in m.values() if isinstance(v, torch.Tensor)]
        host = iter(torch.stack(tensors).tolist() if tensors else [])
        rows = [(step, epoch, {k: next(host) if isinstance(v, torch.Tensor) else float(v) for k, v in m.items()}) for step, epoch, m in pending]
        for step, epoch, values in rows:
            bad = {k: v for k, v in values.items() if not math.isfinite(v)}
            if bad:
                kept = (f"the last good checkpoint {self.path} (step {self.last_good_step}) is kept" if self.last_good_step is not None
                        else "no checkpoint was written yet")
                raise TrainingDivergedError(f"{self.model.model_name}: non-finite {bad} at step {step} (epoch {epoch}); "
                                            f"stopped without saving; {kept}")
        return rows[-1][2]

    def fit(self) -> list[dict[str, float]]:
        self.check_writable()
        if not (self.path.exists() and self._resume()):
            # the model was built by the caller (seeded there: seed_everything); seed what training draws
            seed_everything(self.config.seed)
        self.model.train()
        if self.device.type != "cpu" and hasattr(self.data, "on"):
            self.data = self.data.on(self.device)  # the training split sits on the device: no copy per step
        if self.device.type == "cuda":
            saved_tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = self.config.tf32
            try:
                return self._fit()
            finally:
                torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved_tf32
        return self._fit()

    def _fit(self) -> list[dict[str, float]]:
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not self.config.progress,
                   desc=f"{self.model.model_name}", dynamic_ncols=True)
        t0 = time.perf_counter()
        # steps since the last read-back: their diagnostics stay on the device until a logging or checkpoint step
        pending: list[tuple[int, int, dict[str, Any]]] = []
        try:
            while self.step < self.total_steps:
                batch, epoch = self.batch_for_step(self.step)
                pending.append((self.step, epoch, self.model.training_step(batch.to(self.device), self.optimizers, self.step, epoch)))
                self.step += 1
                log_now = self.step % self.config.log_every == 0 or self.step == self.total_steps
                save_now = self.step % self.config.checkpoint_every == 0 or self.step == self.total_steps
                if log_now or save_now:
                    metrics = self._read_back(pending)  # raises on a non-finite step: nothing after it is saved
                    pending.clear()
                    if log_now:
                        row = {"step": self.step, "epoch": epoch, "seconds": time.perf_counter() - t0, **metrics}
                        self.history.append(row)
                        if self.on_log:
                            self.on_log(self.step, metrics)
                        bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items() if k in ("loss", "elbo_per_point", "rec", "kl_z", "kl_c", "loss_d", "loss_g", "mse")}, refresh=False)
                bar.update(1)
                if save_now:
                    self.save()
        finally:
            bar.close()
        if not self.path.exists():
            self.save()
        return self.history


def save_as_suite_checkpoint(model: FunctionModel, out_path: str | Path) -> Path:
    """Write ``model`` in the suite's checkpoint format (``vamoh.train.load_model`` reads it back).

    The payload is the trainer's (``checkpoint_payload``) at step 0 with no optimizer state, less the
    RNG state (an imported model has none, and numpy's is an array, not plain data), plus
    ``imported_from`` (source repository, files and SHA-256, as the importer recorded them on the
    model): only tensors and plain data, so it loads with ``torch.load(weights_only=True)``.
    Used by both importers (GASP and Functa); call it after ``fit_prior`` to keep a fitted flow.
    """
    payload = checkpoint_payload(model, {}, 0, {"history": [], "imported_from": getattr(model, "imported_from", {})})
    payload.pop("rng", None)
    return save_checkpoint(out_path, payload)


def training_summary(net: Any, trainer: Any, dataset: str, entry: str, label: str, seed: int, record: dict[str, Any],
                     seconds: float) -> dict[str, Any]:
    """What was trained (train.json): the resolved config, the budget actually run and the architecture sizes.

    Table 3 and the summary are built from these, so they describe the checkpoints, not today's config.
    """
    cfg = to_dict(net.config)
    steps = trainer.step
    return {
        "dataset": dataset, "model": entry, "model_name": net.model_name, "label": label, "seed": seed,
        "model_config": cfg,
        "train_config": trainer.recorded_config(),
        "batch_size": trainer.batch_size,
        "steps": steps,
        "steps_per_epoch": trainer.steps_per_epoch,
        "epochs": steps / trainer.steps_per_epoch,
        "num_train": len(trainer.data),
        "points_per_sample": trainer.config.points_per_sample,
        "parameters": net.parameter_counts(),
        "seconds": seconds,
        "resumed_from_step": trainer.resumed_from,
        "samples_per_second": steps * trainer.batch_size / seconds if seconds > 0 else None,
        "device": str(trainer.device),
        "data_label": record["label"],
        "data_sha256": record["sha256"],
        "final": trainer.history[-1] if trainer.history else {},
        "tail_means": tail_means(trainer.history),
    }


def tail_means(history: list[dict[str, float]], share: float = 0.2) -> dict[str, float]:
    """The mean of every numeric history column over the last ``share`` of the logged steps (at least one row):
    what a learned-gate reads (e.g. a discriminator's accuracy at the end of training), less noisy than one row."""
    if not history:
        return {}
    tail = history[-max(1, int(round(len(history) * share))):]
    out = {}
    for k in tail[-1]:
        vals = [float(r[k]) for r in tail if isinstance(r.get(k), (int, float)) and math.isfinite(float(r[k]))]
        if vals:
            out[k] = sum(vals) / len(vals)
    return out


def write_history(history: list[dict[str, float]], path: str | Path) -> None:
    """The training curve as CSV (one row per logged step), atomically."""
    import pandas as pd

    atomic_write_text(path, pd.DataFrame(history).to_csv(index=False))
