"""A run configuration (config/*.yaml, validated by workflow/schemas/) resolved into typed configs.

``RunConfig.check()`` builds every typed config of the run, so a wrong key or value anywhere stops
the workflow before any job starts, with the key named.
"""

from __future__ import annotations

import copy
import math
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..checks import ConfigError, resolve_device
from ..config import from_dict
from ..interface import FunctionModel as FunctionModelBase

SCHEMA = Path(__file__).resolve().parent / "config.schema.yaml"  # inside the package: found from a wheel too
# config key malloc: tuned. glibc then takes every tensor from its heap and keeps what is freed for the next one, where by
# default a tensor over its mmap threshold is mapped anew and page-faulted in each time (the demo: 13% less work, bitwise
# the same outputs, benchmarks/results/demo_dag.md)
TUNED_GLIBC = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736"


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

    schema = yaml.safe_load(SCHEMA.read_text())
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


@dataclass
class RunConfig:
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
    @property
    def entries(self) -> dict[str, Any]:
        """Entry name -> ``vamoh.interface.Entry``: every configured model and the variants it declares
        (Functa -> "functa" and "functa10"), then one entry per ablation variant (``ablations``), each
        trained and evaluated as a model of its own.

        An ablation variant with overrides is the entry "<model>-<question>-<variant>" (e.g.
        "vamoh-mixture-K1"); one without overrides is the model as configured and shares the model's
        own entry, trained once for every question that compares against it.
        """
        from ..interface import Entry, Variant, model_entries

        entries = model_entries(self.models)
        for ab in self.ablations().values():
            for variant, name in ab.entries.items():
                overrides = ab.variants[variant]
                if name in entries:  # the model as configured: already an entry (or shared by an earlier question)
                    if not entries[name].generation and ab.generation:
                        entries[name] = Entry(name, ab.model, Variant(entries[name].variant.suffix, entries[name].variant.overrides, True))
                    continue
                entries[name] = Entry(name, ab.model, Variant(name[len(ab.model):], tuple(overrides.items()), ab.generation))
        for model, per_dataset in self.imported().items():
            name = f"{model}-official"
            sources = tuple((d, tuple(sorted(files.items()))) for d, files in per_dataset.items())
            entries[name] = Entry(name, model, Variant("-official", (), True), imported=sources)
        return entries

    def imported(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Model -> dataset -> the published checkpoint's files (the ``imported`` section, regrouped by model).
        Each becomes the entry "<model>-official": imported, not trained, and evaluated like every model."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for dataset, per_model in self.raw.get("imported", {}).items():
            for model, files in per_model.items():
                out.setdefault(model, {})[dataset] = dict(files)
        return out

    def jobs(self) -> list[tuple[str, str]]:
        """Every (dataset, entry) of the run: trained entries on every dataset, imported ones where a file is given."""
        return [(d, name) for d in self.datasets for name, e in self.entries.items() if not e.imported or e.source(d) is not None]

    def entry(self, name: str):
        entries = self.entries
        if name not in entries:
            raise ConfigError(f"model entry {name!r} is not one of {sorted(entries)}")
        return entries[name]

    def ablations(self, required: bool = False) -> dict[str, "Ablation"]:
        """Question name -> ``Ablation``: the ``ablations`` section, checked, with every variant's entry name;
        ``required``: an empty section is an error saying which config has the questions.

        Each variant's keys and value types are checked against the model's config class here, so a misspelt
        key or a wrong type is refused naming ``ablations.<question>.variants.<variant>``; values are checked
        when ``check`` builds every entry's config for every dataset.
        """
        from ..config import _type_ok
        from ..interface import get_model_class
        from ..report.ablations import METRICS

        if required and not self.raw.get("ablations"):
            raise ConfigError(f"run {self.run!r} has no `ablations` section, so there is nothing to ablate: use "
                              f"--configfile config/ablations.yaml, or add questions (config/README.md, 'Ablations')")
        out: dict[str, Ablation] = {}
        for question, spec in self.raw.get("ablations", {}).items():
            where = f"ablations.{question}"
            try:
                cls = get_model_class(spec["model"])
            except ConfigError as err:
                raise ConfigError(f"{where}.model: {err}") from None
            variants = {v: dict(o or {}) for v, o in spec["variants"].items()}
            if spec["default"] not in variants:
                raise ConfigError(f"{where}.default={spec['default']!r} is not one of its variants {list(variants)}")
            hints = typing.get_type_hints(cls.config_class)
            for variant, overrides in variants.items():
                at = f"{where}.variants.{variant}"
                unknown = sorted(set(overrides) - set(hints) | set(overrides) & {"seed"})
                if unknown:
                    raise ConfigError(f"{at}: unknown or not settable key(s) {unknown} ('seed' comes from the run's seeds); "
                                      f"allowed: the {spec['model']} config keys {sorted(set(hints) - {'seed'})}")
                for key, value in overrides.items():
                    if not _type_ok(value, hints[key]):
                        raise ConfigError(f"{at}.{key}={value!r}: expected a value of type {getattr(hints[key], '__name__', hints[key])}")
            entries = {v: spec["model"] if not o else f"{spec['model']}-{question}-{v}" for v, o in variants.items()}
            plain = [v for v, o in variants.items() if not o]
            if len(plain) > 1:
                raise ConfigError(f"{where}.variants: {plain} all set nothing (each is the model as configured); keep one")
            metrics = list(spec.get("metrics") or [])
            unknown = [m for m in metrics if m not in METRICS]
            if unknown:
                raise ConfigError(f"{where}.metrics: unknown {unknown}; known: {sorted(METRICS)}")
            out[question] = Ablation(question, spec["model"], spec.get("question") or question, variants, spec["default"],
                                     bool(spec.get("generation", True)), metrics, entries)
        return out

    # ------------------------------------------------------------------ typed configs
    def data_config(self, dataset: str):
        from ..data import DATASETS, make_config

        _check_dataset_keys("data.settings", self.raw["data"]["settings"])
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
            _check_dataset_keys(f"model_settings.{e.model}.{key}", settings.get(key, {}))
        preset = preset or settings.get("per_dataset_preset", {}).get(dataset) or settings.get("preset", "paper")
        preset_name = dataset if preset == "paper" else preset
        if preset_name not in cls.presets:
            raise ConfigError(f"model_settings.{e.model}.preset={preset!r}: {e.model} has no preset {preset_name!r} (has {sorted(cls.presets)})")
        overrides = {**settings.get("overrides", {}), **settings.get("per_dataset", {}).get(dataset, {})}
        if seed is not None and "seed" in cls.config_class.__dataclass_fields__ and "seed" not in overrides:
            overrides["seed"] = int(seed)
        overrides.update(e.variant.override_dict())
        config = from_dict(cls.config_class, overrides, where=f"model_settings.{e.model}", base=cls.presets[preset_name])
        return config, preset_name

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

    # ------------------------------------------------------------------ what each job's output depends on
    # Snakemake compares these (rule params) with what the last run used: an edited setting reruns exactly
    # the jobs it reaches, and their descendants. Keys that change no output (device, progress bars,
    # logging and checkpoint intervals) are left out, so editing them reruns nothing.
    def data_settings(self, dataset: str) -> str:
        from ..config import to_dict

        return _canonical({k: v for k, v in to_dict(self.data_config(dataset)).items() if k != "train_points"})

    def train_settings(self, dataset: str, entry: str, seed: int) -> str:
        from ..config import to_dict

        config, preset = self.model_config(entry, dataset, seed)
        train = {k: v for k, v in self.raw["train"].items() if k not in ("progress", "log_every", "checkpoint_every", "max_steps_by_entry", "tf32")}
        train["max_steps"] = self.train_config(seed, None, dataset, entry).max_steps  # this job's own budget only
        return _canonical({"model": to_dict(config), "preset": preset, "train": train, "seed": seed,
                           "train_points": self.data_config(dataset).train_points})

    def reference_settings(self) -> str:
        cfg = self.raw["eval"]
        keys = ("feature_extractor", "inception_weights", "suite_extractor_weights", "num_samples", "num_sets", "max_real", "batch_size",
                "kid_subset_size", "kid_subsets", "prc_neighborhood", "prc_match_sizes", "extractor_epochs", "extractor_feature_dim", "extractor_seed",
                "completion_samples", "superres_samples")  # the last two: how many test samples the completion and 2x baselines score
        return _canonical({k: cfg.get(k) for k in keys})

    def eval_settings(self) -> str:
        cfg = {k: v for k, v in self.raw["eval"].items() if not k.startswith("timing_") and k != "device"}
        return _canonical({"eval": cfg, "figures": self.raw["figures"]})

    def timing_settings(self) -> str:
        cfg = {k: v for k, v in self.raw["eval"].items() if k.startswith("timing_") or k == "extra_inference_steps"}
        return _canonical(cfg)

    # ------------------------------------------------------------------ checks before any job
    def check(self) -> None:
        """Build every typed config once and check what is knowable before work: any bad key, value or
        missing file raises here, before a job runs, with the key named."""
        from ..interface import available_models

        unknown_models = set(self.raw["model_settings"]) - set(available_models())
        if unknown_models:
            raise ConfigError(f"model_settings has unknown model(s) {sorted(unknown_models)}; known: {available_models()}")
        for model, settings in self.raw["model_settings"].items():  # also for models this run does not train: a typo is a typo
            for key in ("per_dataset", "per_dataset_preset"):
                _check_dataset_keys(f"model_settings.{model}.{key}", settings.get(key, {}))
        entries = self.entries
        for dataset in set(self.raw["data"]["settings"]) - set(self.datasets):
            self.data_config(dataset)  # settings of a dataset this run skips are still checked: a typo is a typo
        cache_dir = self.raw["data"]["cache_dir"]
        if cache_dir and Path(cache_dir).exists() and not Path(cache_dir).is_dir():
            raise ConfigError(f"data.cache_dir={cache_dir!r} is a file; expected a directory (or null: results/{self.run}/data_cache)")
        blocking = next((q for q in Path(cache_dir).parents if q.exists() and not q.is_dir()), None) if cache_dir else None
        if blocking is not None:  # the folder can never be created
            raise ConfigError(f"data.cache_dir={cache_dir!r}: {blocking} is a file, so the folder cannot be created; expected a directory path")
        for dataset, settings in self.raw["data"]["settings"].items():
            source = settings.get("source", self.raw["data"]["source"])
            if source == "standin" and settings.get("path") is not None:
                raise ConfigError(f"data.settings.{dataset}.path={settings['path']!r} is set but the data source is 'standin', so the "
                                  f"file would be ignored; set data.source (or data.settings.{dataset}.source) to 'real', or remove the path")
        for dataset in self.datasets:
            for name, e in entries.items():
                if not e.imported:
                    _check_model_size(f"model_settings.{e.model} (entry {name!r} on {dataset})", e.cls, self.model_config(name, dataset)[0], dataset)
        for dataset in self.datasets:
            data = self.data_config(dataset)
            if data.source == "real":
                from ..checks import check_file

                check_file(data.path, f"{dataset} data", f"data.settings.{dataset}.path")  # before any job, not in prepare_data
            for name in entries:
                for seed in self.seeds:
                    self.model_config(name, dataset, seed)
            self._check_sizes(dataset, data)
        for seed in self.seeds:
            self.train_config(seed)
        from ..interface import get_model_class

        for model, per_dataset in self.imported().items():
            cls = get_model_class(model)
            if cls.import_published.__func__ is FunctionModelBase.import_published.__func__:
                raise ConfigError(f"imported: {model} has no importer for published checkpoints")
            for dataset, files in per_dataset.items():
                if dataset not in self.datasets:
                    raise ConfigError(f"imported.{dataset}: this run does not have the dataset {dataset!r} ({self.datasets})")
                for key in ("path", "modulations"):
                    if files.get(key) is not None:
                        from ..checks import check_file

                        check_file(files[key], "published checkpoint file", f"imported.{dataset}.{model}.{key}")
        budgets = self.raw["train"].get("max_steps_by_entry", {})
        for dataset, per_entry in budgets.items():
            if dataset not in self.datasets:
                raise ConfigError(f"train.max_steps_by_entry names the dataset {dataset!r}, which this run does not have ({self.datasets})")
            unknown = sorted(set(per_entry) - set(entries))
            if unknown:
                raise ConfigError(f"train.max_steps_by_entry.{dataset} names {unknown}, not model entries of this run ({sorted(entries)})")
        cfg = self.eval_config()
        resolve_device(cfg.device, "eval.device")  # like `device`: a malformed name, or CUDA where there is none
        self._check_extractor(cfg)
        self._check_generation_size(cfg)
        extra = sorted(set(cfg.timing_datasets) - set(self.datasets))
        if extra:
            raise ConfigError(f"eval.timing_datasets names {extra}, which this run does not have (datasets: {self.datasets})")
        from .. import tracking

        try:
            tracking.resolve_tracking_uri(self.run, self.raw["tracking"]["uri"])
        except ValueError as err:
            raise ConfigError(f"tracking.uri: {err}") from None

    def _check_generation_size(self, cfg) -> None:
        """Refuse, before any job, an eval.num_samples whose one generated set would not fit: the evaluation holds a
        set's samples at once (float32, every point and feature), and would otherwise die in the allocator."""
        from ..data import DATASETS

        for dataset in self.datasets:
            info = DATASETS[dataset].info
            points = math.prod(info.grid_shape)
            size = cfg.num_samples * points * info.feature_dim * 4  # (python ints: no overflow)
            if size > GENERATION_SET_LIMIT:
                raise ConfigError(f"eval.num_samples={cfg.num_samples:,}: one generated set of {dataset} is {cfg.num_samples:,} x {points:,} points "
                                  f"x {info.feature_dim} feature(s) = {size / 1024**3:,.1f} GiB of float32, more than the "
                                  f"{GENERATION_SET_LIMIT // 1024**3} GiB an evaluation job may hold; lower eval.num_samples (the paper uses 10,000)")

    def _check_sizes(self, dataset: str, data) -> None:
        """Split sizes known before the data is read (stand-ins, or n_train/n_test set for real data)."""
        from ..data import DATASETS

        spec = DATASETS[dataset]
        default = dict(zip(("train", "val", "test"), spec.standin_sizes)) if data.source == "standin" else {}
        n_train = data.n_train if data.n_train is not None else default.get("train")
        n_test = data.n_test if data.n_test is not None else default.get("test")
        batch = self.raw["train"].get("batch_size")
        if n_train is not None and batch is not None and batch > n_train:
            raise ConfigError(f"train.batch_size={batch} is larger than the {n_train} training samples of {dataset} "
                              f"(data.settings.{dataset}.n_train); lower the batch size or use more data")
        k = self.raw["eval"].get("prc_neighborhood", 3)
        if spec.kind == "image":
            for split, n in (("train", n_train), ("test", n_test)):
                if n is not None and n <= k:
                    raise ConfigError(f"data.settings.{dataset}.n_{split}={n}: precision/recall with k={k} (eval.prc_neighborhood) "
                                      f"needs more than {k} {split} images")

    def _check_extractor(self, cfg) -> None:
        from ..data import DATASETS

        if not any(DATASETS[d].kind == "image" for d in self.datasets):
            return
        if cfg.feature_extractor == "inception-v3-compat":
            from ..eval.fid import inception_spec

            inception_spec(cfg.inception_weights, verify_hash=False)  # the weights file must exist before any training
        elif cfg.suite_extractor_weights is not None:
            from ..checks import check_file

            check_file(cfg.suite_extractor_weights, "suite feature-extractor weights", "eval.suite_extractor_weights")


@dataclass(frozen=True)
class Ablation:
    """One question of the ``ablations`` section: variants of one model, each compared with the default."""

    name: str  # the question's key, e.g. "mixture" (part of its entries' names)
    model: str  # registry model the variants are built from
    question: str  # the question in words (the report's heading); the key when the config gives none
    variants: dict[str, dict[str, Any]]  # variant name -> model config overrides on top of the model's settings
    default: str  # the variant every other is compared with
    generation: bool  # whether the question needs generation metrics (FID); False skips them for its entries
    metrics: list[str]  # what the report shows (vamoh.report.ablations.METRICS keys); [] = its standard set
    entries: dict[str, str]  # variant name -> entry name ("vamoh-mixture-K1"; the model's own entry when no overrides)


GENERATION_SET_LIMIT = 64 * 1024**3  # bytes of one generated set an evaluation job may hold (float32 samples)
MAX_TRAINING_BYTES = 64 * 1024**3  # weights, gradients and Adam's two moments in float32: 16 bytes per parameter
SIZE_CHECK_FACTOR = 10  # a model config with a number this many times its presets' largest (K, a width) has its parameters counted


def _check_model_size(where: str, cls: Any, config: Any, dataset: str) -> None:
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


def _check_dataset_keys(where: str, mapping: dict[str, Any]) -> None:
    """The one rule for per-dataset sections (data.settings, model_settings.<model>.per_dataset and per_dataset_preset):
    every key is a registered dataset name, so a misspelt one (polymnst) is refused rather than silently ignored.
    Datasets the run does not have are allowed (a config can carry settings for a dataset it runs elsewhere)."""
    from ..data import DATASETS

    unknown = set(mapping) - set(DATASETS)
    if unknown:
        raise ConfigError(f"{where} has unknown dataset(s) {sorted(unknown)}; known: {sorted(DATASETS)}")


def _canonical(obj: Any) -> str:
    """A stable text of a settings dict (sorted keys), what Snakemake stores and compares."""
    import json

    return json.dumps(obj, sort_keys=True, default=str)
