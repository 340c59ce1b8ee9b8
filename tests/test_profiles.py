"""The SLURM profiles and the paper config size jobs by rule name: every name must be a rule of the workflow
(a removed rule's entry is ignored silently by Snakemake), and every rule that runs a job must be sized."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
# targets that only collect inputs (no job of their own)
TARGET_RULES = {"all", "ablations"}


def workflow_rules() -> set[str]:
    files = [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]
    return {m.group(1) for f in files for m in re.finditer(r"^rule (\w+):", f.read_text(), re.M)}


def test_rules_are_found():
    rules = workflow_rules()
    assert {"train", "evaluate", "timing", "reference", "summary", "ablation_report"} <= rules


@pytest.mark.parametrize("profile", ["slurm", "slurm-gpu"])
def test_profile_sizes_exactly_the_workflow_rules(profile):
    sized = set(yaml.safe_load((ROOT / "profiles" / profile / "config.yaml").read_text())["set-resources"])
    rules = workflow_rules()
    assert sized - rules == set(), f"profiles/{profile} sizes rules the workflow does not have"
    assert rules - TARGET_RULES - sized == set(), f"profiles/{profile} leaves rules at the default size"


def test_paper_config_resources_name_rules():
    cfg = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    assert set(cfg["resources"]) - workflow_rules() == set()
