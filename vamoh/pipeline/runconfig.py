"""A run configuration (config/*.yaml, validated by workflow/schemas/) resolved into typed configs.

``RunConfig`` is what every stage and rule asks: the run's names and paths, its model entries and ablation
questions, and each job's typed configs. The modules beside it read it, and it imports none of them but the two it
is built from: ``configfile`` (the YAML file and its schema), ``entries`` (entries and ablation questions),
``fingerprints`` (the settings texts Snakemake reruns on) and ``preflight.check`` (which builds every typed config of
the run, so that a wrong key or value anywhere stops the workflow before any job starts, with the key named).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..checks import ConfigError
from ..config import from_dict
from .configfile import check_dataset_keys, load_yaml, validate_with_schema
from .entries import Ablation, build_ablations, build_entries, imported_by_model

# config key malloc: tuned. glibc then takes every tensor from its heap and keeps what is freed for the next one, where by
# default a tensor over its mmap threshold is mapped anew and page-faulted in each time (the demo: 13% less work, bitwise
# the same outputs, benchmarks/results/demo_dag.md)
TUNED_GLIBC = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736"


@dataclass
class RunConfig:
    """The validated config (``raw``, the schema's defaults filled in) and everything derived from it.

    ``raw`` is not changed after construction: the entries and ablation questions are built from it once, on first
    use, and kept.
    """

    raw: dict[str, Any]

    def __post_init__(self) -> None:
        # names that become path components are checked however the RunConfig was made (results/{run}/...)
        from ..checks import check_name

        check_name("run", self.raw.get("run"))
        for question, spec in (self.raw.get("ablations") or {}).items():
            check_name("ablations key", question)
            for variant in (spec or {}).get("variants") or {}:
                check_name(f"ablations.{question}.variants key", variant)

    @classmethod
    def from_file(cls, path: str | Path) -> RunConfig:
        return cls(validate_with_schema(load_yaml(path)))

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> RunConfig:
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

    def job_environment(self, environ: dict[str, str]) -> dict[str, str]:
        """The variables every job of this run starts with, beyond ``environ`` (config key malloc; a GLIBC_TUNABLES
        the user set is kept)."""
        if self.raw["malloc"] == "tuned" and "GLIBC_TUNABLES" not in environ:
            return {"GLIBC_TUNABLES": TUNED_GLIBC}
        return {}

    @property
    def seeds(self) -> list[int]:
        return list(self.raw["seeds"])

    @property
    def results(self) -> Path:
        return Path("results") / self.run

    @property
    def reports(self) -> Path:
        return Path("reports") / self.run

    @property
    def cache_dir(self) -> Path:
        return Path(self.raw["data"]["cache_dir"] or self.results / "data_cache")

    @property
    def tracking_uri(self) -> str:
        """The config's tracking URI through the tested resolver (a relative sqlite path made absolute, a
        file store refused), or the run's own SQLite store."""
        from .. import tracking

        try:
            return tracking.resolve_tracking_uri(self.run, self.raw["tracking"]["uri"])
        except ValueError as err:
            raise ConfigError(f"tracking.uri: {err}") from None

    @property
    def experiment(self) -> str:
        return self.raw["tracking"]["experiment"] or f"vamoh-suite-{self.run}"

    # ------------------------------------------------------------------ models and their entries
    @cached_property
    def entries(self) -> Mapping[str, Any]:
        """Entry name -> ``vamoh.interface.Entry`` (``vamoh.pipeline.entries.build_entries``): every configured model
        and the variants it declares (Functa -> "functa" and "functa10"), then one entry per ablation variant
        ("vamoh-mixture-K1", or the model's own entry for a variant without overrides), then "<model>-official" per
        imported model, each trained (or imported) and evaluated as a model of its own.

        Built and checked once, on first use; a read-only mapping of frozen entries, shared by every caller.
        """
        return MappingProxyType(build_entries(self.models, self._ablations, self.imported()))

    def imported(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Model -> dataset -> the published checkpoint's files (the ``imported`` section, regrouped by model).
        Each becomes the entry "<model>-official": imported, not trained, and evaluated like every model."""
        return imported_by_model(self.raw.get("imported", {}))

    def jobs(self) -> list[tuple[str, str]]:
        """Every (dataset, entry) of the run: trained entries on every dataset, imported ones where a file is given."""
        return [(d, name) for d in self.datasets for name, e in self.entries.items() if not e.imported or e.source(d) is not None]

    def entry(self, name: str):
        entries = self.entries
        if name not in entries:
            raise ConfigError(f"model entry {name!r} is not one of {sorted(entries)}")
        return entries[name]

    @cached_property
    def _ablations(self) -> dict[str, Ablation]:
        return build_ablations(self.raw.get("ablations", {}))

    def ablations(self, required: bool = False) -> dict[str, Ablation]:
        """Question name -> ``Ablation``: the ``ablations`` section, checked (``vamoh.pipeline.entries.build_ablations``),
        with every variant's entry name; ``required``: an empty section is an error saying which config has the questions.

        Built and checked once, on first use; each call returns a new dict of the same questions, which callers read and
        do not change."""
        if required and not self.raw.get("ablations"):
            raise ConfigError(f"run {self.run!r} has no `ablations` section, so there is nothing to ablate: use "
                              f"--configfile config/ablations.yaml, or add questions (config/README.md, 'Ablations')")
        return dict(self._ablations)

    # ------------------------------------------------------------------ typed configs
    def data_config(self, dataset: str):
        from ..data import make_config

        check_dataset_keys("data.settings", self.raw["data"]["settings"])
        settings = dict(self.raw["data"]["settings"].get(dataset, {}))
        settings.setdefault("source", self.raw["data"]["source"])
        try:
            return make_config({"name": dataset, **settings})
        except ConfigError as err:
            raise ConfigError(f"data.settings.{dataset}: {err}") from None

    def paper_config(self, entry: str, dataset: str, seed: int | None = None):
        """The paper's architecture of ``entry`` for ``dataset``: the dataset's preset with only the variant's own keys
        (Functa (10)'s inner steps) and the seed, none of the run's overrides (what Tables 2/5 time untrained)."""
        e = self.entry(entry)
        cls = e.cls
        if dataset not in cls.presets:
            raise ConfigError(f"{e.model} has no paper preset for {dataset!r} (has {sorted(cls.presets)})")
        overrides = dict(e.variant.override_dict())
        if seed is not None and "seed" in cls.config_class.__dataclass_fields__:
            overrides["seed"] = int(seed)
        return from_dict(cls.config_class, overrides, where=f"{e.model} (paper preset)", base=cls.presets[dataset])

    def model_config(self, entry: str, dataset: str, seed: int | None = None, preset: str | None = None):
        """The resolved config of ``entry`` (a model or one of its variants) for ``dataset``, and its preset name.

        Order: the preset (``model_settings.<model>.preset``, 'paper' = the dataset's), the overrides, the
        per-dataset overrides, then the variant's own keys. A model config with a ``seed`` field (the fixed
        Fourier frequencies) gets the run's ``seed`` unless the config sets it.
        """
        e = self.entry(entry)
        cls = e.cls
        settings = self.raw["model_settings"].get(e.model, {})
        for key in ("per_dataset", "per_dataset_preset"):
            check_dataset_keys(f"model_settings.{e.model}.{key}", settings.get(key, {}))
        preset = preset or settings.get("per_dataset_preset", {}).get(dataset) or settings.get("preset", "paper")
        preset_name = dataset if preset == "paper" else preset
        if preset_name not in cls.presets:
            raise ConfigError(f"model_settings.{e.model}.preset={preset!r}: {e.model} has no preset {preset_name!r} (has {sorted(cls.presets)})")
        overrides = {**settings.get("overrides", {}), **settings.get("per_dataset", {}).get(dataset, {}), **e.variant.override_dict()}
        return cls.config_from(preset_name, overrides, seed=seed, where=f"model_settings.{e.model}"), preset_name

    def train_config(self, seed: int, points_per_sample: int | None = None, dataset: str | None = None, entry: str | None = None):
        """The training config of one job: ``train.*``, with ``train.max_steps_by_entry[dataset][entry]`` as its
        max_steps when set."""
        from ..train import TrainConfig

        raw = {k: v for k, v in self.raw["train"].items() if k != "max_steps_by_entry"}
        steps = self.raw["train"].get("max_steps_by_entry", {}).get(dataset, {}).get(entry)
        if steps is not None:
            raw["max_steps"] = steps
        return from_dict(TrainConfig, {**raw, "seed": seed, "device": self.raw["device"],
                                       "points_per_sample": points_per_sample}, where="train")

    def eval_config(self):
        from ..eval.config import eval_config_from_dict

        return eval_config_from_dict({"device": self.raw["device"], **self.raw["eval"]})

    def resources(self, rule: str) -> dict[str, int]:
        return dict(self.raw["resources"].get(rule, {}))
