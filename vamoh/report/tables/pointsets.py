"""Generation beyond the paper's tables: ShapeNet's COV / MMD / 1-NNA (Chamfer) and every image dataset's memorisation check."""

from __future__ import annotations

import pandas as pd

from ...eval import keys
from ...eval.tidy import KIND_REFERENCE, read_tidy
from ..format import fmt_stat
from ..labels import dataset_order, ordered
from ..pooled import scaled, stat_of
from ..render import ReportTable
from .provenance import Provenance
from .rows import datasets_with_numbers, label_of, models


def pointsets_table(tidy: pd.DataFrame) -> ReportTable:
    """ShapeNet's generation in the field's protocol (COV / MMD / 1-NNA, Chamfer) and every image dataset's memorisation
    check: numbers the evaluation computes that the paper's tables have no place for."""
    t = read_tidy(tidy)
    rows = t[t["metric"].isin(keys.POINTSET_KEYS + keys.MEMORISATION_KEYS) & t["mean"].notna() & (t["kind"] != KIND_REFERENCE)]
    datasets = ordered(datasets_with_numbers(rows), dataset_order())
    prov = Provenance(rows, extractors=True)
    out = []
    for d in datasets:
        for m in models(rows, d, "model"):
            cells = {k: stat_of(rows, d, m, k) for k in keys.POINTSET_KEYS + keys.MEMORISATION_KEYS}
            if not any(cells.values()):
                continue
            empty = rows[(rows["dataset"] == d) & (rows["model"] == m) & (rows["metric"] == keys.NNA_CD)]
            out.append({"Dataset": prov.label(d), "Model": label_of(rows, m), "COV ↑": fmt_stat(cells[keys.COV_CD], 3),
                        "MMD ↓ (×10³)": fmt_stat(scaled(cells[keys.MMD_CD], 1e3), 3),
                        "1-NNA (0.5 ideal)": fmt_stat(cells[keys.NNA_CD], 3),
                        "Memorisation ratio (1 = held-out-like)": fmt_stat(cells[keys.MEMORISATION_RATIO], 3),
                        "Closer than the test set's 5th percentile": fmt_stat(cells[keys.MEMORISATION_CLOSE], 3),
                        "Seeds": str(len(set(empty["seed"]))) if not empty.empty else str(len(set(rows[(rows["dataset"] == d) & (rows["model"] == m)]["seed"])))})
    notes = [
        "ShapeNet: coverage (COV), minimum matching distance (MMD) and 1-nearest-neighbour accuracy (1-NNA) of generated shapes "
        "against the test split's, under the Chamfer distance between point clouds sampled from the thresholded voxel surfaces "
        "(PointFlow's protocol; eval.pointcloud_points points per cloud). 1-NNA is 0.5 for a generator indistinguishable from "
        "the data and 1.0 for one that is always told apart; it is the balanced accuracy (the mean of the generated and the "
        "reference shapes' accuracies), so 0.5 stays the ideal when empty generated shapes were dropped. The paper reports no "
        "ShapeNet generation numbers.",
        "Memorisation (image datasets): the median distance of generated samples to their nearest training example over the "
        "test split's own median nearest-training distance, in the generation metrics' feature space (about 1 = like held-out "
        "data, near 0 = copies of training examples), and the share of generated samples closer than the test split's 5th "
        "percentile (about 0.05 expected).",
        *prov.notes(datasets),
    ]
    return ReportTable("pointsets", "Generation beyond the paper's tables: ShapeNet COV / MMD / 1-NNA and the memorisation check",
                       pd.DataFrame(out), notes)
