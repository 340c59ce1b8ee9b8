"""The checks before any job (``check``, called by the workflow and by `vamoh check-config`): every typed config of the run built once, and what is knowable
before work checked, so that a bad key, value, size or missing file stops the workflow with the key named instead
of failing in a job hours later.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..checks import ConfigError, resolve_device
from ..eval.names import INCEPTION
from .configfile import check_dataset_keys

if TYPE_CHECKING:
    from .runconfig import RunConfig

GENERATION_SET_LIMIT = 64 * 1024**3  # bytes of one generated set an evaluation job may hold (float32 samples)
MAX_TRAINING_BYTES = 64 * 1024**3  # weights, gradients and Adam's two moments in float32: 16 bytes per parameter
SIZE_CHECK_FACTOR = 10  # a model config with a number this many times its presets' largest (K, a width) has its parameters counted


def check(rc: RunConfig) -> None:
    """Build every typed config once and check what is knowable before work: any bad key, value or missing file
    raises here, before a job runs, with the key named."""
    from ..interface import available_models

    raw = rc.raw
    unknown_models = set(raw["model_settings"]) - set(available_models())
    if unknown_models:
        raise ConfigError(f"model_settings has unknown model(s) {sorted(unknown_models)}; known: {available_models()}")
    for model, settings in raw["model_settings"].items():  # also for models this run does not train: a typo is a typo
        for key in ("per_dataset", "per_dataset_preset"):
            check_dataset_keys(f"model_settings.{model}.{key}", settings.get(key, {}))
    entries = rc.entries
    for dataset in set(raw["data"]["settings"]) - set(rc.datasets):
        rc.data_config(dataset)  # settings of a dataset this run skips are still checked: a typo is a typo
    _check_cache_dir(rc)
    for dataset, settings in raw["data"]["settings"].items():
        source = settings.get("source", raw["data"]["source"])
        if source == "standin" and settings.get("path") is not None:
            raise ConfigError(f"data.settings.{dataset}.path={settings['path']!r} is set but the data source is 'standin', so the "
                              f"file would be ignored; set data.source (or data.settings.{dataset}.source) to 'real', or remove the path")
    for dataset in rc.datasets:
        for name, e in entries.items():
            if not e.imported:
                check_model_size(f"model_settings.{e.model} (entry {name!r} on {dataset})", e.cls, rc.model_config(name, dataset)[0], dataset)
    for dataset in rc.datasets:
        data = rc.data_config(dataset)
        if data.source == "real":
            from ..checks import check_file

            check_file(data.path, f"{dataset} data", f"data.settings.{dataset}.path")  # before any job, not in prepare_data
        for name in entries:
            for seed in rc.seeds:
                rc.model_config(name, dataset, seed)
        _check_sizes(rc, dataset, data)
    for seed in rc.seeds:
        rc.train_config(seed)
    _check_imported(rc)
    budgets = raw["train"].get("max_steps_by_entry", {})
    for dataset, per_entry in budgets.items():
        if dataset not in rc.datasets:
            raise ConfigError(f"train.max_steps_by_entry names the dataset {dataset!r}, which this run does not have ({rc.datasets})")
        unknown = sorted(set(per_entry) - set(entries))
        if unknown:
            raise ConfigError(f"train.max_steps_by_entry.{dataset} names {unknown}, not model entries of this run ({sorted(entries)})")
    cfg = rc.eval_config()
    resolve_device(cfg.device, "eval.device")  # like `device`: a malformed name, or CUDA where there is none
    _check_extractor(rc, cfg)
    _check_generation_size(rc, cfg)
    extra = sorted(set(cfg.timing_datasets) - set(rc.datasets))
    if extra:
        raise ConfigError(f"eval.timing_datasets names {extra}, which this run does not have (datasets: {rc.datasets})")
    rc.tracking_uri  # noqa: B018 - resolved for its check: a relative sqlite path made absolute, a file store refused


def _check_cache_dir(rc: RunConfig) -> None:
    """data.cache_dir is a folder, or one that can be created."""
    cache_dir = rc.raw["data"]["cache_dir"]
    if cache_dir and Path(cache_dir).exists() and not Path(cache_dir).is_dir():
        raise ConfigError(f"data.cache_dir={cache_dir!r} is a file; expected a directory (or null: results/{rc.run}/data_cache)")
    blocking = next((q for q in Path(cache_dir).parents if q.exists() and not q.is_dir()), None) if cache_dir else None
    if blocking is not None:  # the folder can never be created
        raise ConfigError(f"data.cache_dir={cache_dir!r}: {blocking} is a file, so the folder cannot be created; expected a directory path")


def _check_imported(rc: RunConfig) -> None:
    """Every imported model has an importer, a dataset of this run, and its published files on disk."""
    from ..checks import check_file
    from ..interface import get_model_class

    for model, per_dataset in rc.imported().items():
        cls = get_model_class(model)
        if cls.importer is None:  # (FunctionModel.importer: the module that reads its published checkpoints)
            raise ConfigError(f"imported: {model} has no importer for published checkpoints")
        for dataset, files in per_dataset.items():
            if dataset not in rc.datasets:
                raise ConfigError(f"imported.{dataset}: this run does not have the dataset {dataset!r} ({rc.datasets})")
            for key in ("path", "modulations"):
                if files.get(key) is not None:
                    check_file(files[key], "published checkpoint file", f"imported.{dataset}.{model}.{key}")


def _check_generation_size(rc: RunConfig, cfg: Any) -> None:
    """Refuse, before any job, an eval.num_samples whose one generated set would not fit: the evaluation holds a
    set's samples at once (float32, every point and feature), and would otherwise die in the allocator."""
    from ..data import DATASETS

    for dataset in rc.datasets:
        info = DATASETS[dataset].info
        points = math.prod(info.grid_shape)
        size = cfg.num_samples * points * info.feature_dim * 4  # (python ints: no overflow)
        if size > GENERATION_SET_LIMIT:
            raise ConfigError(f"eval.num_samples={cfg.num_samples:,}: one generated set of {dataset} is {cfg.num_samples:,} x {points:,} points "
                              f"x {info.feature_dim} feature(s) = {size / 1024**3:,.1f} GiB of float32, more than the "
                              f"{GENERATION_SET_LIMIT // 1024**3} GiB an evaluation job may hold; lower eval.num_samples (the paper uses 10,000)")


def _check_sizes(rc: RunConfig, dataset: str, data: Any) -> None:
    """Split sizes known before the data is read (stand-ins, or n_train/n_test set for real data)."""
    from ..data import DATASETS

    spec = DATASETS[dataset]
    default = dict(zip(("train", "val", "test"), spec.standin_sizes)) if data.source == "standin" else {}
    n_train = data.n_train if data.n_train is not None else default.get("train")
    n_test = data.n_test if data.n_test is not None else default.get("test")
    batch = rc.raw["train"].get("batch_size")
    if n_train is not None and batch is not None and batch > n_train:
        raise ConfigError(f"train.batch_size={batch} is larger than the {n_train} training samples of {dataset} "
                          f"(data.settings.{dataset}.n_train); lower the batch size or use more data")
    k = rc.raw["eval"].get("prc_neighborhood", 3)
    if spec.kind == "image":
        for split, n in (("train", n_train), ("test", n_test)):
            if n is not None and n <= k:
                raise ConfigError(f"data.settings.{dataset}.n_{split}={n}: precision/recall with k={k} (eval.prc_neighborhood) "
                                  f"needs more than {k} {split} images")


def _check_extractor(rc: RunConfig, cfg: Any) -> None:
    """The feature extractor's weights file exists before any training (image datasets only: the others have none)."""
    from ..data import DATASETS

    if not any(DATASETS[d].kind == "image" for d in rc.datasets):
        return
    if cfg.feature_extractor == INCEPTION:
        from ..eval.fid import inception_spec

        inception_spec(cfg.inception_weights, verify_hash=False)  # the weights file must exist before any training
    elif cfg.suite_extractor_weights is not None:
        from ..checks import check_file

        check_file(cfg.suite_extractor_weights, "suite feature-extractor weights", "eval.suite_extractor_weights")


def check_model_size(where: str, cls: Any, config: Any, dataset: str) -> None:
    """Refuse, before any job, a model whose training state alone exceeds ``MAX_TRAINING_BYTES`` (e.g. K: 10000000),
    counting its parameters on PyTorch's meta device (no memory is allocated). Counting costs seconds (the meta
    device's first use imports PyTorch's reference operators), so only a config with a value more than
    ``SIZE_CHECK_FACTOR`` times the largest of that key in any of the model's presets (K, a width; seeds aside) is
    counted: the presets and the configs built on them cost nothing here.
    A model that cannot be built on the meta device is left to its own checks."""
    import torch

    from ..config import to_dict
    from ..data import DATASETS

    def numbers(value: Any) -> list[float]:
        if isinstance(value, bool):
            return []
        if isinstance(value, (int, float)):
            return [value]
        if isinstance(value, (list, tuple)):
            return [x for v in value for x in numbers(v)]
        return []

    largest: dict[str, float] = {}  # per key, the largest number of any of the model's presets
    for preset in cls.presets.values():
        for k, v in to_dict(preset).items():
            largest[k] = max([largest.get(k, 0), *numbers(v)])
    beyond = [k for k, v in to_dict(config).items() if k != "seed" and any(x > SIZE_CHECK_FACTOR * max(largest.get(k, 0), 1) for x in numbers(v))]
    if not beyond:
        return

    try:
        with torch.device("meta"):
            model = cls(config, DATASETS[dataset].info)
        n = sum(p.numel() for p in model.parameters())
    except Exception:  # noqa: BLE001 - an operator without a meta implementation: no estimate
        return
    size = 16 * n
    if size > MAX_TRAINING_BYTES:
        raise ConfigError(f"{where}: {n:,} parameters, about {size / 1024**3:,.0f} GiB to train (weights, gradients and Adam's two "
                          f"moments in float32: 16 bytes a parameter), more than the {MAX_TRAINING_BYTES / 1024**3:.0f} GiB this suite "
                          f"allows; lower K or the widths")
