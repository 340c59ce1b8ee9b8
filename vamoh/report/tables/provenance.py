"""What a table says about where its numbers come from: the dataset marks and the notes under the table.

Every table marks the datasets whose rows use stand-in data (STANDIN) and, for generation, features other than
Inception (NON_INCEPTION), and closes with the devices and seeds behind our numbers; all of it read from the tidy
rows the table was built from, so a table cannot claim a provenance its numbers do not have.
"""

from __future__ import annotations

import pandas as pd

from ...eval.tidy import KIND_REFERENCE
from ..format import NON_INCEPTION, STANDIN
from ..labels import dataset_name
from ..pooled import finite


class Provenance:
    """Markers and notes for the datasets of one table, from the tidy rows it was built from."""

    def __init__(self, rows: pd.DataFrame, extractors: bool) -> None:
        self.rows, self.extractors = rows, extractors

    def _of(self, dataset: str) -> pd.DataFrame:
        return self.rows[self.rows["dataset"] == dataset]

    def standin(self, dataset: str) -> bool:
        return bool(self._of(dataset)["is_standin"].any())

    def non_inception(self, dataset: str) -> list[str]:
        fx = self._of(dataset)["feature_extractor"]
        return sorted({f for f in fx if f and not f.lower().startswith("inception")}) if self.extractors else []

    def label(self, dataset: str) -> str:
        """Dataset cell: the paper's name with its markers, e.g. "PolyMNIST†‡"."""
        return dataset_name(dataset) + (STANDIN if self.standin(dataset) else "") + (NON_INCEPTION if self.non_inception(dataset) else "")

    def notes(self, datasets: list[str]) -> list[str]:
        out = []
        for d in datasets:
            if self.standin(d):
                labels = sorted({x for x in self._of(d)["data_label"] if x}) or [d]
                out.append(f"{STANDIN} {dataset_name(d)}: stand-in data, not the paper's dataset — {'; '.join(labels)}.")
        for d in datasets:
            fx = self.non_inception(d)
            if fx:
                out.append(f"{NON_INCEPTION} {dataset_name(d)}: feature extractor {'; '.join(fx)} (not the paper's Inception): "
                           "FID/precision/recall compare our models with each other only, not with the paper's values.")
        model_rows = self.rows[self.rows["kind"] != KIND_REFERENCE]
        devices = sorted({x for x in model_rows["device"] if x})
        seeds = sorted({int(s) for s in pd.to_numeric(model_rows["seed"], errors="coerce") if finite(s)})
        if devices or seeds:
            out.append(f"Ours computed on: {'; '.join(devices) or 'unknown device'}; seeds: {', '.join(map(str, seeds)) or 'unknown'}.")
        return out
