"""The package as it is installed: names spelled once (the config schema's enums are the registries'), and the
config schema shipped inside the wheel, so an installed package validates configs without a checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_schema_enums_are_the_registries():
    from vamoh.data import DATASETS
    from vamoh.interface import available_models
    from vamoh.pipeline.configfile import SCHEMA

    schema = yaml.safe_load(SCHEMA.read_text())
    assert sorted(schema["properties"]["datasets"]["items"]["enum"]) == sorted(DATASETS)
    assert sorted(schema["properties"]["models"]["items"]["enum"]) == available_models()
    # the workflow's schema path is the package's file, not a copy
    assert (ROOT / "workflow" / "schemas" / "config.schema.yaml").resolve() == SCHEMA.resolve()


@pytest.mark.slow
def test_the_wheel_carries_the_config_schema(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    wheel = next(tmp_path.glob("vamoh-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        assert "vamoh/pipeline/config.schema.yaml" in names
        schema = yaml.safe_load(z.read("vamoh/pipeline/config.schema.yaml"))
    assert "datasets" in schema["properties"]
