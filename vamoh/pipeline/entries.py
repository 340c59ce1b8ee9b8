"""The models a run trains or imports, by entry name: the configured models with the variants they declare, the
ablation questions' variants, and the published checkpoints of the ``imported`` section.

``RunConfig`` builds these once (``RunConfig.entries``, ``RunConfig.ablations``); the functions here take the
config's sections, not the ``RunConfig``, so the rules for entry names live in one place.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any

from ..checks import ConfigError


@dataclass(frozen=True)
class Ablation:
    """One question of the ``ablations`` section: variants of one model, each compared with the default."""

    name: str  # the question's key, e.g. "mixture" (part of its entries' names)
    model: str  # registry model the variants are built from
    question: str  # the question in words (the report's heading); the key when the config gives none
    variants: dict[str, dict[str, Any]]  # variant name -> model config overrides on top of the model's settings
    default: str  # the variant every other is compared with
    generation: bool  # whether the question needs generation metrics (FID); False skips them for its entries
    metrics: list[str]  # what the report shows (vamoh.eval.ablation_metrics.METRICS keys); [] = its standard set
    entries: dict[str, str]  # variant name -> entry name ("vamoh-mixture-K1"; the model's own entry when no overrides)


def build_ablations(sections: dict[str, Any]) -> dict[str, Ablation]:
    """Question name -> ``Ablation`` for the config's ``ablations`` section, checked, with every variant's entry name.

    Each variant's keys and value types are checked against the model's config class here, so a misspelt key or a
    wrong type is refused naming ``ablations.<question>.variants.<variant>``; values are checked when
    ``preflight.check`` builds every entry's config for every dataset.
    """
    from ..config import _type_ok
    from ..eval.ablation_metrics import METRICS
    from ..interface import get_model_class

    out: dict[str, Ablation] = {}
    for question, spec in sections.items():
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


def imported_by_model(sections: dict[str, dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Model -> dataset -> the published checkpoint's files: the ``imported`` section (dataset -> model -> files),
    regrouped by model."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for dataset, per_model in sections.items():
        for model, files in per_model.items():
            out.setdefault(model, {})[dataset] = dict(files)
    return out


def build_entries(models: list[str], ablations: dict[str, Ablation], imported: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Entry name -> ``vamoh.interface.Entry``: every configured model and the variants it declares (Functa ->
    "functa" and "functa10"), then one entry per ablation variant, then one per imported model ("<model>-official").

    An ablation variant with overrides is the entry "<model>-<question>-<variant>" (e.g. "vamoh-mixture-K1"); one
    without overrides is the model as configured and shares the model's own entry, trained once for every question
    that compares against it (and evaluated for generation when any of those questions needs it).
    """
    from ..interface import Entry, Variant, model_entries

    entries = model_entries(models)
    for ab in ablations.values():
        for variant, name in ab.entries.items():
            overrides = ab.variants[variant]
            if name in entries:  # the model as configured: already an entry (or shared by an earlier question)
                if not entries[name].generation and ab.generation:
                    entries[name] = Entry(name, ab.model, Variant(entries[name].variant.suffix, entries[name].variant.overrides, True))
                continue
            entries[name] = Entry(name, ab.model, Variant(name[len(ab.model):], tuple(overrides.items()), ab.generation))
    for model, per_dataset in imported.items():
        name = f"{model}-official"
        sources = tuple((d, tuple(sorted(files.items()))) for d, files in per_dataset.items())
        entries[name] = Entry(name, model, Variant("-official", (), True), imported=sources)
    return entries
