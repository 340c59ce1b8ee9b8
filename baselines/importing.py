"""What both importers of published checkpoints share (``baselines.gasp.importer``, ``baselines.functa.importer``):
the data a published file is loaded for, the preset that supplies what the file does not hold, and the provenance
recorded in the suite checkpoint (``vamoh.train.save_as_suite_checkpoint`` writes it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vamoh.checks import ConfigError
from vamoh.interface import DataInfo, FunctionModel
from vamoh.io import sha256_file


def resolve_info(dataset: str | DataInfo) -> DataInfo:
    """A ``DataInfo`` as given, or the registered dataset's (``vamoh.data.registry``)."""
    if isinstance(dataset, DataInfo):
        return dataset
    from vamoh.data.registry import get_spec

    return get_spec(dataset).info


def preset_name(model: type[FunctionModel], dataset: str | DataInfo, preset: str | None) -> str:
    """The preset that supplies every setting the published file does not hold (training, discriminator, prior)."""
    name = preset if preset is not None else (dataset if isinstance(dataset, str) else None)
    if name is None or name not in model.presets:
        raise ConfigError(f"{model.model_name} import: preset={name!r} is not one of {sorted(model.presets)}; name one "
                          f"(it supplies the settings the published file does not hold)")
    return name


def imported_from(source: str, *paths: str | Path | None) -> dict[str, Any]:
    """Provenance recorded in the suite checkpoint: the source repository and each file's name and SHA-256."""
    files = [{"name": Path(p).name, "sha256": sha256_file(p)} for p in paths if p is not None]
    return {"source": source, "files": files}
