"""Table 3: what each dataset's VAMoH checkpoint was trained with (its train.json), beside the paper's settings."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ...eval.paper import PAPER_TABLE3_ENTRY
from ...eval.tidy import read_tidy
from ..format import DASH, STANDIN
from ..labels import PAPER_TABLE3, dataset_name, dataset_order, ordered
from ..render import ReportTable
from .provenance import Provenance


def _fmt_list(v: Any) -> str:
    if v is None:
        return "None"
    return "[" + ",".join("None" if x is None else str(x) for x in v) + "]"


def _fmt_lr(x: float) -> str:
    mantissa, exp = f"{x:.0e}".split("e")
    return f"{mantissa}e{int(exp)}" if float(f"{x:.0e}") == x else f"{x:g}"


def _fmt_epochs(s: dict[str, Any]) -> str:
    e = s["epochs"]
    return (f"{e:g}" if float(e).is_integer() else f"{e:.2f}") + f" ({s['steps']} steps)"


# (row label as in the paper, how ours is read from a train.json summary, how the paper's is read from Table 3)
TABLE3_ROWS: tuple[tuple[str, Any, Any], ...] = (
    ("dim_z", lambda s, c: str(c["dim_z"]), lambda p: str(p["dim_z"])),
    ("K", lambda s, c: str(c["K"]), lambda p: str(p["K"])),
    ("epochs", lambda s, c: _fmt_epochs(s), lambda p: str(p["epochs"])),
    ("bs", lambda s, c: str(s["batch_size"]), lambda p: str(p["batch_size"])),
    ("lr", lambda s, c: _fmt_lr(c["lr"]), lambda p: _fmt_lr(p["lr"])),
    ("warm-up epochs (N(0, I) prior)", lambda s, c: str(c["warmup_epochs"]) if c["flow_layers"] else "— (no flow)", lambda p: DASH),
    ("PointConv Encoder h_weights", lambda s, c: _fmt_list(c["weightnet_hidden"]), lambda p: _fmt_list(p["weightnet_hidden"])),
    ("neighbors", lambda s, c: _fmt_list(c["neighbours"]), lambda p: _fmt_list(p["neighbours"])),
    ("centroids", lambda s, c: _fmt_list(c["centroids"]), lambda p: _fmt_list(p["centroids"])),
    ("out_channels", lambda s, c: _fmt_list(c["out_channels"]), lambda p: _fmt_list(p["out_channels"])),
    ("avg_pooling_neighbors", lambda s, c: _fmt_list(c["pool_neighbours"]), lambda p: _fmt_list(p["pool_neighbours"])),
    ("avg_pooling_centroids", lambda s, c: _fmt_list(c["pool_centroids"]), lambda p: _fmt_list(p["pool_centroids"])),
    ("Categorical Encoder layers", lambda s, c: _fmt_list(c["categorical_hidden"]), lambda p: _fmt_list(p["categorical_hidden"])),
    ("Hypernetwork layers", lambda s, c: _fmt_list(c["hypernet_hidden"]), lambda p: _fmt_list(p["hypernet_hidden"])),
    ("Generator layers", lambda s, c: _fmt_list(c["generator_hidden"]), lambda p: _fmt_list(p["generator_hidden"])),
    ("RFF", lambda s, c: f"m={c['rff_frequencies']}, σ={c['rff_sigma']:g}", lambda p: f"m={p['rff_frequencies']}, σ={p['rff_sigma']:g}"),
    ("Flow T", lambda s, c: str(c["flow_layers"]), lambda p: str(p["flow_layers"])),
    ("parameters", lambda s, c: f"{s['parameters']['total']:,}", lambda p: DASH),
)
DIFFERS = " *"


def table3(summaries: list[dict[str, Any]], tidy: pd.DataFrame | None = None) -> ReportTable:
    """Table 3: what each dataset's VAMoH checkpoint was trained with (its train.json), beside the paper's.

    ``summaries``: the train.json records of the run (every model; those of the entry PAPER_TABLE3_ENTRY are used, not an
    ablation variant's, the lowest seed of each dataset). Our cells that differ from the paper's are marked with " *".
    """
    # the entry itself (an ablation variant is another entry of the same model), its lowest seed per dataset
    entry = sorted((s for s in summaries if s.get("model", s.get("model_name")) == PAPER_TABLE3_ENTRY), key=lambda s: int(s.get("seed", 0)))
    vamoh: dict[str, dict[str, Any]] = {}
    for s in entry:
        vamoh.setdefault(s["dataset"], s)
    datasets = ordered(vamoh, dataset_order())
    t = read_tidy(tidy) if tidy is not None else None
    prov = Provenance(t[t["dataset"].isin(datasets)], extractors=False) if t is not None else None
    out, any_diff = [], False
    for label, ours_of, paper_of in TABLE3_ROWS:
        cell = {"Setting": label}
        for d in datasets:
            s = vamoh[d]
            ours = ours_of(s, s["model_config"])
            pc = PAPER_TABLE3.get(d)
            paper = paper_of(pc) if pc is not None else DASH
            diff = pc is not None and paper != DASH and ours.split(" (")[0] != paper
            any_diff |= diff
            head = prov.label(d) if prov else dataset_name(d)
            cell[f"{head} (ours)"] = ours + (DIFFERS if diff else "")
            if pc is not None:  # a dataset the paper does not have (a plugin's) gets no empty paper column
                cell[f"{head} (paper)"] = paper
        out.append(cell)
    notes = ["Ours: what each dataset's VAMoH checkpoint was trained with (read from its train.json: the resolved config and the "
             "budget actually run, in epochs and optimiser steps); paper: Table 3 of the paper."]
    if any_diff:
        notes.append("* our setting differs from the paper's (e.g. a shortened training budget or a shrunken model).")
    if prov is not None:
        notes += [n for n in prov.notes(datasets) if n.startswith(STANDIN)]
    return ReportTable("table3", "Table 3: implementation details of VAMoH (as trained vs the paper)", pd.DataFrame(out), notes)
