"""The suite's data layer: a registry of the five datasets, their real formats and offline stand-ins.

    cfg = DataConfig(name="polymnist")            # or make_config({...}) from YAML
    splits = load_dataset(cfg, cache_dir)         # {"train", "val", "test"}: FunctionDataset
    batch = splits["train"].batch([0, 1, 2])      # PointCloudBatch (B, D, c) / (B, D, f)

Stand-ins are labelled as such (``dataset.is_standin``, ``dataset.label``); see docs/datasets.md.
Real files that differ from the real dataset (another row count) raise a ``DataWarning``.
"""

from .cache import CACHE_VERSION, cache_path, load_dataset, load_prepared, prepare, read_meta, read_record
from .config import DataConfig, make_config
from .dataset import FunctionDataset
from .era5 import to_kelvin
from .export import write_real_format
from .files import DataWarning
from . import celeba, era5, polymnist, shapenet, shapes3d
from .registry import DATASETS, get_spec, register_dataset
from .spec import SPLITS, DatasetSpec, RawSplits

for _module in (celeba, shapes3d, polymnist, era5, shapenet):  # the registry's order: the paper's CelebA-HQ first
    register_dataset(_module)

__all__ = [
    "CACHE_VERSION",
    "DATASETS",
    "SPLITS",
    "DataConfig",
    "DataWarning",
    "DatasetSpec",
    "FunctionDataset",
    "RawSplits",
    "cache_path",
    "get_spec",
    "load_dataset",
    "load_prepared",
    "make_config",
    "prepare",
    "read_meta",
    "read_record",
    "register_dataset",
    "to_kelvin",
    "write_real_format",
]
