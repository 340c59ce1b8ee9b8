"""The paper's own numbers, printed beside the suite's (REFERENCE.md section 5)."""

from __future__ import annotations

from . import keys

PAPER_TIMING_DEVICE = "NVIDIA V100 (paper)"

# Seconds per reconstruction (Table 2) and 2x super-reconstruction (Table 5): VAMoH, Functa(3), Functa(10).
PAPER_TIMING: dict[str, dict[str, dict[str, float]]] = {
    keys.TIME_RECONSTRUCTION: {
        "polymnist": {"vamoh": 0.00453, "functa3": 0.01648, "functa10": 0.05108},
        "shapes3d": {"vamoh": 0.00536, "functa3": 0.01759, "functa10": 0.05480},
        "celebahq": {"vamoh": 0.00757, "functa3": 0.01733, "functa10": 0.05381},
        "era5": {"vamoh": 0.00745, "functa3": 0.01899, "functa10": 0.05932},
        "shapenet": {"vamoh": 0.00689, "functa3": 0.02095, "functa10": 0.06576},
    },
    keys.TIME_SUPER_RECONSTRUCTION: {
        "polymnist": {"vamoh": 0.00455, "functa3": 0.01649, "functa10": 0.05109},
        "shapes3d": {"vamoh": 0.00544, "functa3": 0.01768, "functa10": 0.05489},
        "celebahq": {"vamoh": 0.00833, "functa3": 0.01729, "functa10": 0.05377},
        "era5": {"vamoh": 0.00790, "functa3": 0.01997, "functa10": 0.06030},
        "shapenet": {"vamoh": 0.01440, "functa3": 0.02089, "functa10": 0.06569},
    },
}

# Table 1 (train embeddings, Inception): FID / precision / recall; None = not reported.
PAPER_GENERATION: dict[str, dict[str, dict[str, float | None]]] = {
    "celebahq": {
        "gasp": {keys.FID_TRAIN: 14.01, keys.PRECISION_TRAIN: 0.81, keys.RECALL_TRAIN: 0.43},
        "functa": {keys.FID_TRAIN: 40.40, keys.PRECISION_TRAIN: None, keys.RECALL_TRAIN: None},
        "vamoh": {keys.FID_TRAIN: 66.27, keys.PRECISION_TRAIN: 0.65, keys.RECALL_TRAIN: 0.0},
    },
    "shapes3d": {
        "gasp": {keys.FID_TRAIN: 118.66, keys.PRECISION_TRAIN: 0.01, keys.RECALL_TRAIN: 0.16},
        "functa": {keys.FID_TRAIN: 57.81, keys.PRECISION_TRAIN: 0.06, keys.RECALL_TRAIN: 0.13},
        "vamoh": {keys.FID_TRAIN: 56.25, keys.PRECISION_TRAIN: 0.08, keys.RECALL_TRAIN: 0.64},
    },
}
