"""Names and orderings for the report, and lookups into the paper's numbers (``vamoh.eval.paper``).

``vamoh.eval.paper`` keys datasets by the paper's names ("celebahq"); the suite's names are
"celebahq64", ... ``paper_key`` maps one to the other. Models are shown by the display label each
evaluation recorded (the tidy table's ``label`` column: "VAMoH", "Functa (3)", "Functa (10)").
"""

from __future__ import annotations

from typing import Any

from ..eval.paper import PAPER_TABLE3, PAPER_TABLE4, PAPER_TIMING, _P

__all__ = ["PAPER_TABLE3", "PAPER_TABLE4", "PAPER_TIMING", "DATASET_ORDER", "MODEL_ORDER", "paper_key", "paper_generation",
           "dataset_name", "ordered"]

# Row order of the paper's Tables 2, 3 and 5 (datasets the suite does not know are appended after these).
DATASET_ORDER = ("polymnist", "shapes3d", "celebahq64", "era5", "shapenet")
DATASET_NAMES = {"polymnist": "PolyMNIST", "shapes3d": "Shapes3D", "celebahq64": "CelebA-HQ 64", "era5": "ERA5", "shapenet": "ShapeNet"}
# The paper lists models in this order (Tables 1 and 4); the reference rows come after the models.
MODEL_ORDER = ("gasp", "functa", "functa10", "vamoh", "real_heldout", "mean_image", "noise")

_PAPER_KEYS = {"celebahq64": "celebahq"}  # suite name -> key of vamoh.eval.paper (others are the same)


def paper_key(dataset: str) -> str:
    """The key of ``dataset`` in ``vamoh.eval.paper`` (e.g. "celebahq64" -> "celebahq")."""
    return _PAPER_KEYS.get(dataset, dataset)


def dataset_name(dataset: str) -> str:
    return DATASET_NAMES.get(dataset, dataset)


def ordered(names: Any, order: tuple[str, ...]) -> list[str]:
    """``names`` deduplicated, known ones in ``order`` first, the rest sorted after them."""
    names = set(names)
    return [n for n in order if n in names] + sorted(n for n in names if n not in order)


def paper_generation(dataset: str, model: str, metric: str) -> _P:
    """(mean, std) of the paper's Table 4 for a suite dataset name and model entry; (None, None) when not reported."""
    return PAPER_TABLE4.get(paper_key(dataset), {}).get(model, {}).get(metric, (None, None))


def paper_timing(task: str, dataset: str, label: str) -> float | None:
    """The paper's seconds (Tables 2/5) of the model shown as ``label`` ("VAMoH", "Functa (3)", "Functa (10)")."""
    return PAPER_TIMING.get(task, {}).get(paper_key(dataset), {}).get(label)
