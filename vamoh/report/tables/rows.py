"""Which rows of the tidy table a table shows: its datasets, its models and their labels, in the paper's order.

Shared by every table builder so that each orders datasets and models one way and names a model by the label
the tidy table carries for it.
"""

from __future__ import annotations

import pandas as pd

from ...eval.tidy import KIND_REFERENCE
from ..labels import dataset_name, dataset_order, model_order, ordered


def datasets_with_numbers(rows: pd.DataFrame) -> list[str]:
    """The datasets with at least one measured value among ``rows``, in the paper's order."""
    return ordered(rows[rows["mean"].notna()]["dataset"], dataset_order())


def label_of(t: pd.DataFrame, model: str) -> str:
    """The display label the tidy rows give ``model`` (the model's own name when it has no row)."""
    labels = t[t["model"] == model]["label"]
    return labels.iloc[0] if len(labels) else model


def models(t: pd.DataFrame, dataset: str, kind: str | None = None) -> list[str]:
    """The models with a measured value on ``dataset`` (``kind``: only the reference rows, or only the others)."""
    sel = t[(t["dataset"] == dataset) & t["mean"].notna()]
    if kind is not None:
        sel = sel[(sel["kind"] == KIND_REFERENCE) == (kind == KIND_REFERENCE)]
    return ordered(sel["model"], model_order())


def psnr_ranges(datasets: list[str]) -> str:
    """The value range R of the PSNR of each kind of dataset, for a table's note."""
    from ...data import DATASETS

    return "; ".join(sorted({"images on 0..255 values (R = 255)" if DATASETS[d].kind == "image" else f"{dataset_name(d)} on [0, 1] (R = 1)"
                             for d in datasets if d in DATASETS}))
