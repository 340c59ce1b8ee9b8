"""The paper's own numbers, printed beside the suite's (REFERENCE.md section 5): the one place they are
transcribed (seeds/001, Tables 2-5). Table 1 is Table 4's train-embedding means, so it is not kept twice.
Datasets are keyed by the paper's names ("celebahq"), except Table 3, keyed by the suite's."""

from __future__ import annotations

from typing import Any

from . import keys

PAPER_TIMING_DEVICE = "NVIDIA V100 (paper)"
# The paper's Table 1 Functa CelebA-HQ FID (40.40, no std) is the Functa paper's own number (Dupont et al.
# 2022), not a run of the VAMoH authors; tables say so beside it.
PAPER_FUNCTA_FID_SOURCE = "Functa CelebA-HQ FID 40.40 is the Functa paper's own number (Dupont et al. 2022), quoted by the VAMoH paper"

# Seconds per reconstruction (Table 2) and 2x super-reconstruction (Table 5), keyed by the models' display
# labels: VAMoH, Functa (3) (meta-trained with 3 inner steps) and Functa (10) (meta-trained with 10).
PAPER_TIMING: dict[str, dict[str, dict[str, float]]] = {
    keys.TIME_RECONSTRUCTION: {
        "polymnist": {"VAMoH": 0.00453, "Functa (3)": 0.01648, "Functa (10)": 0.05108},
        "shapes3d": {"VAMoH": 0.00536, "Functa (3)": 0.01759, "Functa (10)": 0.05480},
        "celebahq": {"VAMoH": 0.00757, "Functa (3)": 0.01733, "Functa (10)": 0.05381},
        "era5": {"VAMoH": 0.00745, "Functa (3)": 0.01899, "Functa (10)": 0.05932},
        "shapenet": {"VAMoH": 0.00689, "Functa (3)": 0.02095, "Functa (10)": 0.06576},
    },
    keys.TIME_SUPER_RECONSTRUCTION: {
        "polymnist": {"VAMoH": 0.00455, "Functa (3)": 0.01649, "Functa (10)": 0.05109},
        "shapes3d": {"VAMoH": 0.00544, "Functa (3)": 0.01768, "Functa (10)": 0.05489},
        "celebahq": {"VAMoH": 0.00833, "Functa (3)": 0.01729, "Functa (10)": 0.05377},
        "era5": {"VAMoH": 0.00790, "Functa (3)": 0.01997, "Functa (10)": 0.06030},
        "shapenet": {"VAMoH": 0.01440, "Functa (3)": 0.02089, "Functa (10)": 0.06569},
    },
}

# Table 4 of the paper: metric -> (mean, std); std None where the paper gives none, mean None = "-".
_P = tuple[float | None, float | None]
PAPER_TABLE4: dict[str, dict[str, dict[str, _P]]] = {
    "celebahq": {
        "gasp": {keys.FID_TRAIN: (14.01, 0.18), keys.PRECISION_TRAIN: (0.81, 0.0), keys.RECALL_TRAIN: (0.43, 0.01),
                 keys.FID_TEST: (17.8, 0.17), keys.PRECISION_TEST: (0.83, 0.0), keys.RECALL_TEST: (0.42, 0.01)},
        "functa": {keys.FID_TRAIN: (40.40, None), keys.PRECISION_TRAIN: (None, None), keys.RECALL_TRAIN: (None, None),
                   keys.FID_TEST: (None, None), keys.PRECISION_TEST: (None, None), keys.RECALL_TEST: (None, None)},
        "vamoh": {keys.FID_TRAIN: (66.27, 0.18), keys.PRECISION_TRAIN: (0.65, 0.0), keys.RECALL_TRAIN: (0.0, 0.0),
                  keys.FID_TEST: (72.14, 0.21), keys.PRECISION_TEST: (0.43, 0.01), keys.RECALL_TEST: (0.0, 0.0)},
    },
    "shapes3d": {
        "gasp": {keys.FID_TRAIN: (118.66, 0.64), keys.PRECISION_TRAIN: (0.01, 0.0), keys.RECALL_TRAIN: (0.16, 0.01),
                 keys.FID_TEST: (119.35, 0.66), keys.PRECISION_TEST: (0.01, 0.0), keys.RECALL_TEST: (0.16, 0.02)},
        "functa": {keys.FID_TRAIN: (57.81, 0.15), keys.PRECISION_TRAIN: (0.06, 0.0), keys.RECALL_TRAIN: (0.13, 0.0),
                   keys.FID_TEST: (58.3, 0.14), keys.PRECISION_TEST: (0.07, 0.0), keys.RECALL_TEST: (0.13, 0.0)},
        "vamoh": {keys.FID_TRAIN: (56.25, 0.57), keys.PRECISION_TRAIN: (0.08, 0.0), keys.RECALL_TRAIN: (0.64, 0.01),
                  keys.FID_TEST: (56.63, 0.58), keys.PRECISION_TEST: (0.09, 0.01), keys.RECALL_TEST: (0.63, 0.02)},
    },
}


# Table 3 of the paper in VAMoHConfig's field names (keyed by the suite's dataset names).
def _t3(dim_z, K, epochs, bs, lr, h, nb, ce, oc, categorical, hyper, gen, T, pool_nb=None, pool_ce=None) -> dict[str, Any]:
    return {"dim_z": dim_z, "K": K, "epochs": epochs, "batch_size": bs, "lr": lr, "weightnet_hidden": h, "neighbours": nb,
            "centroids": ce, "out_channels": oc, "pool_neighbours": pool_nb, "pool_centroids": pool_ce,
            "categorical_hidden": categorical, "hypernet_hidden": hyper, "generator_hidden": gen,
            "rff_frequencies": 128, "rff_sigma": 2.0, "flow_layers": T}


PAPER_TABLE3: dict[str, dict[str, Any]] = {
    "celebahq64": _t3(64, 10, 1000, 64, 1e-4, [16, 16, 16, 16], [9, 9, 9, 9, 9], [4096, 1024, 256, 64, 1], [64, 128, 256, 512, 512],
                      [64, 32], [256, 512], [64, 64, 64], 80, pool_nb=[9, 9, 9, 9, None], pool_ce=[1024, 256, 64, 16, None]),
    "shapes3d": _t3(32, 5, 600, 64, 1e-4, [16, 16], [16, 16, 16], [1024, 256, 64], [32, 64, 256], [32, 32], [128, 256], [32, 32], 20),
    "polymnist": _t3(16, 4, 600, 256, 1e-3, [16, 16], [9, 9, 9], [196, 49, 25], [32, 32, 32], [32, 32], [16, 32], [4, 4, 4], 3),
    "shapenet": _t3(32, 3, 500, 22, 1e-3, [16, 16, 16, 16], [8, 27, 27, 27, 8], [4096, 512, 64, 16, 16], [32, 64, 128, 256, 16],
                    [32, 32], [256, 512], [64, 64, 64], 40),
    "era5": _t3(32, 3, 600, 64, 1e-4, [16, 16, 16, 16], [9, 9, 9, 9, 9], [1024, 256, 64, 32, 16], [32, 64, 256, 512, 32],
                [32, 32], [256, 512], [64, 64, 64], 10),
}


# ----------------------------------------------------------------------------- the claims of the experiments section
# What the summary's verdicts test (``vamoh.report.summary``), in the paper's own terms, keyed by the suite's entry and
# dataset names.

# The names the paper gives the compared models (its Functa is meta-trained with 3 inner steps, Functa (10) with 10).
PAPER_MODEL_NAMES = {"gasp": "GASP", "functa": "Functa (3)", "functa10": "Functa (10)", "vamoh": "VAMoH"}
# Tables 1 and 4: (better, worse) pairs by FID per dataset, and by recall with the paper's values.
PAPER_FID_ORDER = {"celebahq64": (("gasp", "functa"), ("functa", "vamoh")), "shapes3d": (("vamoh", "functa"), ("vamoh", "gasp"), ("functa", "gasp"))}
PAPER_RECALL_ORDER = {"celebahq64": (("gasp", "vamoh", "0.43 vs 0.00"),), "shapes3d": (("vamoh", "functa", "0.64 vs 0.13"), ("vamoh", "gasp", "0.64 vs 0.16"))}
# §4.2 / Figure 7: VAMoH's reconstruction against Functa (3), per dataset: "comparable" or "better".
PAPER_RECONSTRUCTION_CLAIMS = {"polymnist": "comparable", "celebahq64": "comparable", "era5": "better", "shapes3d": "better"}

# The layout of the paper's tables, which the suite's tables follow.
PAPER_GENERATION_DATASETS = ("celebahq64", "shapes3d", "polymnist")  # Tables 1 and 4's row order (PolyMNIST in the appendix)
PAPER_TIMING_ENTRIES = ("vamoh", "functa", "functa10")  # Tables 2 and 5's columns, in order
PAPER_TIMING_REFERENCE = "VAMoH"  # the model every speed-up of Tables 2 and 5 divides by (its display label)
PAPER_TIMING_LABELS = (PAPER_TIMING_REFERENCE, "Functa (3)", "Functa (10)")  # Tables 2 and 5's columns: the keys of PAPER_TIMING's rows
PAPER_TABLE3_ENTRY = "vamoh"  # Table 3 lists this entry's hyperparameters (the entry itself, not an ablation variant)
