"""What the report needs from the paper beyond ``vamoh.eval.paper``: names, Table 4 and Table 3.

``vamoh.eval.paper`` keys datasets by the paper's names ("celebahq"); the suite's names are
"celebahq64", ... ``paper_key`` maps one to the other. Table 4 (train and test embeddings, with the
paper's std over five sets) and Table 3 (implementation details) are transcribed from the paper
(seeds/001, Tables 3 and 4); a test checks that the train means agree with ``vamoh.eval.paper``.
"""

from __future__ import annotations

from typing import Any

from ..eval import keys

# Row order of the paper's Tables 2, 3 and 5 (datasets the suite does not know are appended after these).
DATASET_ORDER = ("polymnist", "shapes3d", "celebahq64", "era5", "shapenet")
DATASET_NAMES = {"polymnist": "PolyMNIST", "shapes3d": "Shapes3D", "celebahq64": "CelebA-HQ 64", "era5": "ERA5", "shapenet": "ShapeNet"}
# The paper lists models in this order (Tables 1 and 4); timing candidates as in Tables 2 and 5.
MODEL_ORDER = ("gasp", "functa", "vamoh")
TIMING_CANDIDATES = ("vamoh", "functa3", "functa10")
MODEL_NAMES = {"vamoh": "VAMoH", "gasp": "GASP", "functa": "Functa", "functa3": "Functa (3)", "functa10": "Functa (10)"}

_PAPER_KEYS = {"celebahq64": "celebahq"}  # suite name -> key of vamoh.eval.paper (others are the same)


def paper_key(dataset: str) -> str:
    """The key of ``dataset`` in ``vamoh.eval.paper`` (e.g. "celebahq64" -> "celebahq")."""
    return _PAPER_KEYS.get(dataset, dataset)


def dataset_name(dataset: str) -> str:
    return DATASET_NAMES.get(dataset, dataset)


def model_name(model: str) -> str:
    return MODEL_NAMES.get(model, model)


def ordered(names: Any, order: tuple[str, ...]) -> list[str]:
    """``names`` deduplicated, known ones in ``order`` first, the rest sorted after them."""
    names = set(names)
    return [n for n in order if n in names] + sorted(n for n in names if n not in order)


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


def paper_generation(dataset: str, model: str, metric: str) -> _P:
    """(mean, std) of the paper's Table 4 for a suite dataset name; (None, None) when not reported."""
    return PAPER_TABLE4.get(paper_key(dataset), {}).get(model, {}).get(metric, (None, None))


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
