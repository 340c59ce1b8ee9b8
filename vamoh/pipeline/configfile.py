"""A run config file (config/*.yaml) read and checked against the package's JSON schema, before any typed config.

What is checked here is the file's shape: YAML that is a mapping with every key once, the schema's keys and types
(defaults filled in, as Snakemake's ``validate`` does), and per-dataset sections keyed by registered datasets. The
values' meaning is checked by the typed configs ``vamoh.pipeline.runconfig.RunConfig`` builds.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from ..checks import ConfigError

SCHEMA = Path(__file__).resolve().parent / "config.schema.yaml"  # inside the package: found from a wheel too


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:  # an unhashable key: PyYAML's own error follows
                continue
            if first != key_node.start_mark.line + 1:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r} (first on line {first}); give each key once",
                                                        key_node.start_mark)
        return super().construct_mapping(node, deep)


def load_yaml(path: str | Path) -> dict[str, Any]:
    from ..checks import check_input_file

    path = check_input_file(path, "config file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not a UTF-8 text file (byte {err.start}: {err.reason}); expected a YAML run config") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: not valid YAML ({getattr(err, 'problem', None) or err})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, found {type(data).__name__}")
    return data


def validate_with_schema(config: dict[str, Any]) -> dict[str, Any]:
    """Validate against the JSON schema and fill defaults (what snakemake's validate does), quoting the bad value."""
    import jsonschema

    from ..checks import check_name, check_seed

    schema = registry_names(yaml.safe_load(SCHEMA.read_text()), config.get("plugins"))
    config = copy.deepcopy(config)
    if "run" in config:  # before the schema, whose pattern message does not say why
        check_name("config key run", config["run"])
    if isinstance(config.get("seeds"), list):
        for i, seed in enumerate(config["seeds"]):
            if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0:  # the schema names the other errors
                check_seed(f"config key seeds.{i}", seed)

    def fill(instance: Any, sch: dict[str, Any]) -> None:
        if isinstance(instance, dict):
            for key, sub in sch.get("properties", {}).items():
                if key not in instance and "default" in sub:
                    instance[key] = copy.deepcopy(sub["default"])
                if key in instance:
                    fill(instance[key], sub)

    fill(config, schema)
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        where = ".".join(str(p) for p in e.path) or "(top level)"
        raise ConfigError(f"config key {where}: {e.message}")
    return config


def registry_names(schema: dict[str, Any], plugins: Any = None) -> dict[str, Any]:
    """``schema`` with its dataset and model enums set to the names the registries hold, after importing the config's
    ``plugins`` (which register theirs). The schema file lists the built-in names for its readers (a test keeps the two
    equal); the registries are what a run is checked against."""
    from ..data import DATASETS
    from ..interface import available_models
    from ..plugins import load_plugins

    if plugins is not None:
        if not isinstance(plugins, list):
            raise ConfigError(f"config key plugins: {plugins!r} is not a list of module names")
        load_plugins(plugins)
    props, models = schema["properties"], available_models()
    for where, names in ((props["datasets"]["items"], list(DATASETS)), (props["models"]["items"], models),
                         (props["ablations"]["additionalProperties"]["properties"]["model"], models)):
        listed = [n for n in where["enum"] if n in names]  # the file's order first: messages name them as the file does
        where["enum"] = listed + [n for n in names if n not in listed]
    return schema


def check_dataset_keys(where: str, mapping: dict[str, Any]) -> None:
    """The one rule for per-dataset sections (data.settings, model_settings.<model>.per_dataset and per_dataset_preset):
    every key is a registered dataset name, so a misspelt one (polymnst) is refused rather than silently ignored.
    Datasets the run does not have are allowed (a config can carry settings for a dataset it runs elsewhere)."""
    from ..data import DATASETS

    unknown = set(mapping) - set(DATASETS)
    if unknown:
        raise ConfigError(f"{where} has unknown dataset(s) {sorted(unknown)}; known: {sorted(DATASETS)}")
