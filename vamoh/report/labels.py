"""Names and orderings for the report, and lookups into the paper's numbers (``vamoh.eval.paper``).

``vamoh.eval.paper`` keys datasets by the paper's names ("celebahq"); the suite's names are
"celebahq64", ... ``paper_key`` maps one to the other. Models are shown by the display label each
evaluation recorded (the tidy table's ``label`` column: "VAMoH", "Functa (3)", "Functa (10)").
"""

from __future__ import annotations

from typing import Any

from ..data import DATASETS
from ..eval import keys
from ..eval.paper import _P, PAPER_TABLE3, PAPER_TABLE4, PAPER_TIMING
from ..interface import entry_order

__all__ = ["PAPER_TABLE3", "PAPER_TABLE4", "PAPER_TIMING", "dataset_order", "model_order", "paper_key", "paper_generation",
           "dataset_name", "ordered"]

# Every name below comes from a registry: the dataset specs (``vamoh.data``: display name, paper order, paper key) and
# the model classes (``vamoh.interface``: paper order, variants); a dataset or model added there is named and ordered here.
# Read when asked, never at import: a plugin may register after this module was imported (the warm server imports it
# before a job loads the run's plugins).


def dataset_order() -> tuple[str, ...]:
    """Row order of the paper's Tables 2, 3 and 5: the registered datasets by their specs' paper order."""
    return tuple(sorted(DATASETS, key=lambda d: (DATASETS[d].paper_order, d)))


def model_order() -> tuple[str, ...]:
    """The paper's model order (Tables 1 and 4): every registered model's entries, then the reference rows."""
    return (*entry_order(), keys.REF_HELDOUT, keys.REF_MEAN, keys.REF_NOISE)


def paper_key(dataset: str) -> str:
    """The key of ``dataset`` in ``vamoh.eval.paper`` (e.g. "celebahq64" -> "celebahq")."""
    spec = DATASETS.get(dataset)
    return (spec.paper_key or dataset) if spec is not None else dataset


def dataset_name(dataset: str) -> str:
    spec = DATASETS.get(dataset)
    return spec.display_name if spec is not None else dataset


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
