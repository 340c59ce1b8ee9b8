"""A run configuration (config/*.yaml, validated by workflow/schemas/) resolved into typed configs.

``RunConfig.check()`` builds every typed config of the run, so a wrong key or value anywhere stops
the workflow before any job starts, with the key named.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..checks import ConfigError
from ..config import from_dict
from ..interface import get_model_class

SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, found {type(data).__name__}")
    return data


def validate_with_schema(config: dict[str, Any]) -> dict[str, Any]:
    """Validate against the JSON schema and fill defaults (what snakemake's validate does), quoting the bad value."""
    import jsonschema

    schema = yaml.safe_load(SCHEMA.read_text())
    config = copy.deepcopy(config)

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


@dataclass
class RunConfig:
    raw: dict[str, Any]

    @classmethod
    def from_file(cls, path: str | Path) -> "RunConfig":
        return cls(validate_with_schema(load_yaml(path)))

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> "RunConfig":
        return cls(validate_with_schema(config))

    # ------------------------------------------------------------------ names and paths
    @property
    def run(self) -> str:
        return self.raw["run"]

    @property
    def datasets(self) -> list[str]:
        return list(self.raw["datasets"])

    @property
    def models(self) -> list[str]:
        return list(self.raw["models"])

    @property
    def seeds(self) -> list[int]:
        return list(self.raw["seeds"])

    @property
    def results(self) -> Path:
        return Path("results") / self.run

    @property
    def reports(self) -> Path:
        return Path("reports") / self.run

    def job_dir(self, dataset: str, model: str, seed: int | str) -> Path:
        return self.results / dataset / model / f"seed{seed}"

    @property
    def cache_dir(self) -> Path:
        return Path(self.raw["data"]["cache_dir"] or self.results / "data_cache")

    @property
    def tracking_uri(self) -> str:
        uri = self.raw["tracking"]["uri"]
        return uri or f"sqlite:///{(self.results / 'mlflow.db').resolve()}"

    @property
    def experiment(self) -> str:
        return self.raw["tracking"]["experiment"] or f"vamoh-suite-{self.run}"

    # ------------------------------------------------------------------ typed configs
    def data_config(self, dataset: str):
        from ..data import make_config

        settings = dict(self.raw["data"]["settings"].get(dataset, {}))
        unknown = set(self.raw["data"]["settings"]) - set(self.datasets) - {"celebahq64", "shapes3d", "polymnist", "era5", "shapenet"}
        if unknown:
            raise ConfigError(f"data.settings has unknown dataset(s) {sorted(unknown)}")
        settings.setdefault("source", self.raw["data"]["source"])
        try:
            return make_config({"name": dataset, **settings})
        except ConfigError as err:
            raise ConfigError(f"data.settings.{dataset}: {err}") from None

    def model_config(self, model: str, dataset: str):
        cls = get_model_class(model)
        settings = self.raw["model_settings"].get(model, {})
        preset = settings.get("preset", "paper")
        preset_name = dataset if preset == "paper" else preset
        if preset_name not in cls.presets:
            raise ConfigError(f"model_settings.{model}.preset={preset!r}: {model} has no preset {preset_name!r} (has {sorted(cls.presets)})")
        overrides = {**settings.get("overrides", {}), **settings.get("per_dataset", {}).get(dataset, {})}
        config = from_dict(cls.config_class, overrides, where=f"model_settings.{model}", base=cls.presets[preset_name])
        return config, preset_name

    def train_config(self, seed: int, points_per_sample: int | None = None):
        from ..train import TrainConfig

        return from_dict(TrainConfig, {**self.raw["train"], "seed": seed, "device": self.raw["device"],
                                       "points_per_sample": points_per_sample}, where="train")

    def eval_config(self):
        from ..eval.config import eval_config_from_dict

        raw = {"cache_root": str(self.results / "eval_cache"), "device": self.raw["device"], **self.raw["eval"]}
        return eval_config_from_dict(raw)

    def resources(self, rule: str) -> dict[str, int]:
        return dict(self.raw["resources"].get(rule, {}))

    def check(self) -> None:
        """Build every typed config once: any bad key or value raises here, before a job runs."""
        for model in self.models:
            get_model_class(model)
        unknown_models = set(self.raw["model_settings"]) - set(self.models) - {"vamoh", "gasp", "functa"}
        if unknown_models:
            raise ConfigError(f"model_settings has unknown model(s) {sorted(unknown_models)}")
        for dataset in self.datasets:
            self.data_config(dataset)
            for model in self.models:
                self.model_config(model, dataset)
        for seed in self.seeds:
            self.train_config(seed)
        self.eval_config()
