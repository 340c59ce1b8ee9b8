"""The paper's Tables 1-5 and the reconstruction summary, regenerated from the suite's tidy table.

Every table puts the paper's value beside ours ("X (ours)" next to "X (paper)") and says, in the
table itself, which rows use stand-in data (dagger on the dataset) and which generation metrics use
features other than Inception (double dagger), plus the devices and sample counts behind our numbers.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..eval import keys
from ..eval.paper import PAPER_TIMING, PAPER_TIMING_DEVICE
from .reference import (DATASET_ORDER, MODEL_ORDER, PAPER_TABLE3, TIMING_CANDIDATES, dataset_name, model_name, ordered,
                        paper_generation, paper_key)
from .render import ReportTable, write_table

TIDY_REQUIRED = ("dataset", "model", "seed", "metric", "split", "mean", "std", "n", "values", "batch_size", "is_standin",
                 "data_label", "feature_extractor", "num_samples", "device")
DASH = "—"
STANDIN, NON_INCEPTION = "†", "‡"


# ---------------------------------------------------------------------------------------------- tidy input


def _as_list(v: Any, where: str) -> list[float]:
    if isinstance(v, (list, tuple, np.ndarray)):
        return [float(x) for x in v]
    if v is None or (isinstance(v, float) and math.isnan(v)) or v == "":
        return []
    try:
        parsed = json.loads(v)
    except (TypeError, ValueError):
        raise ValueError(f"tidy table, {where}: column 'values' holds {v!r}, expected a JSON list of numbers") from None
    return [float(x) for x in (parsed or []) if x is not None]


def _as_bool(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes")
    return bool(v) and not (isinstance(v, float) and math.isnan(v))


def normalise_tidy(tidy: pd.DataFrame) -> pd.DataFrame:
    """The tidy table as written by ``vamoh.pipeline.stages.aggregate`` or read back from its CSV, with
    ``values`` as lists, ``is_standin`` as bool, numbers as floats (null -> NaN) and text as str."""
    missing = [c for c in TIDY_REQUIRED if c not in tidy.columns]
    if missing:
        raise ValueError(f"tidy table lacks columns {missing} (has {list(tidy.columns)})")
    t = tidy.copy()
    t["values"] = [_as_list(v, f"row {i} ({d}/{m}/{k})") for i, (v, d, m, k) in enumerate(zip(t["values"], t["dataset"], t["model"], t["metric"]))]
    t["is_standin"] = [_as_bool(v) for v in t["is_standin"]]
    for c in ("mean", "std", "n", "batch_size", "num_samples"):
        t[c] = pd.to_numeric(t[c], errors="coerce").astype(float)
    for c in ("dataset", "model", "metric", "split", "data_label", "feature_extractor", "device"):
        t[c] = t[c].fillna("").astype(str)
    return t


@dataclasses.dataclass
class Stat:
    mean: float | None
    std: float | None
    n: int  # number of values behind mean (sets for generation, samples for reconstruction, runs for timing)


def _finite(x: Any) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def combine(rows: pd.DataFrame) -> Stat | None:
    """One mean +- std from the rows of one (dataset, model, metric), possibly several seeds.

    Per-set/per-sample ``values`` are pooled when present (std with ddof=1, as vamoh.eval writes it);
    otherwise the rows' means and stds are pooled weighting by n. None when no row has a mean.
    """
    rows = rows[rows["mean"].notna()]
    if rows.empty:
        return None
    vals = [x for v in rows["values"] for x in v]
    if vals and len(vals) >= len(rows):
        arr = np.asarray(vals, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            return Stat(float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0, int(arr.size))
    if len(rows) == 1:
        r = rows.iloc[0]
        return Stat(float(r["mean"]), float(r["std"]) if _finite(r["std"]) else None, int(r["n"]) if _finite(r["n"]) else 1)
    n = np.array([r if _finite(r) and r > 0 else 1.0 for r in rows["n"]])
    m = rows["mean"].to_numpy(float)
    s = np.array([x if _finite(x) else 0.0 for x in rows["std"]])
    total = n.sum()
    mu = float((n * m).sum() / total)
    with np.errstate(invalid="ignore"):
        var = float(((n - 1) * s**2 + n * (m - mu) ** 2).sum() / max(total - 1, 1))
    return Stat(mu, math.sqrt(var) if math.isfinite(var) else None, int(total))


# ---------------------------------------------------------------------------------------------- formatting


def fmt_num(x: float | None, decimals: int = 2) -> str:
    if not _finite(x):
        return DASH
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.{decimals}f}"


def fmt_pm(mean: float | None, std: float | None, decimals: int = 2) -> str:
    """"66.27 ± 0.18"; the mean alone when there is no std; a dash when there is no mean."""
    if not _finite(mean):
        return DASH
    if not _finite(std) or math.isinf(mean):
        return fmt_num(mean, decimals)
    return f"{fmt_num(mean, decimals)} ± {fmt_num(std, decimals)}"


def fmt_seconds(x: float | None) -> str:
    if not _finite(x):
        return DASH
    return f"{x:.5f}" if x < 1 else f"{x:.3f}"


def fmt_speedup(functa: float | None, vamoh: float | None) -> str:
    if not (_finite(functa) and _finite(vamoh)) or vamoh <= 0:
        return DASH
    return f"× {functa / vamoh:.2f}"


# ---------------------------------------------------------------------------------------------- provenance


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
        devices = sorted({x for x in self.rows["device"] if x})
        seeds = sorted({int(s) for s in pd.to_numeric(self.rows["seed"], errors="coerce") if _finite(s)})
        if devices or seeds:
            out.append(f"Ours computed on: {', '.join(devices) or 'unknown device'}; seeds: {', '.join(map(str, seeds)) or 'unknown'}.")
        return out


def _metric_rows(t: pd.DataFrame, metric_keys: tuple[str, ...]) -> pd.DataFrame:
    return t[t["metric"].isin(metric_keys)]


def _datasets_with_numbers(rows: pd.DataFrame) -> list[str]:
    have = rows[rows["mean"].notna()]["dataset"]
    return ordered(have, DATASET_ORDER)


# ---------------------------------------------------------------------------------------------- Tables 1 and 4

GENERATION_ORDER = ("celebahq64", "shapes3d", "polymnist")  # Tables 1 and 4 (PolyMNIST in the appendix)
_GEN_COLUMNS = ((keys.FID, "FID ↓"), (keys.PRECISION, "Precision ↑"), (keys.RECALL, "Recall ↑"))


def _generation_table(tidy: pd.DataFrame, name: str, splits: tuple[str, ...], title: str) -> ReportTable:
    t = normalise_tidy(tidy)
    metric_keys = tuple(f"{base}_{s}" for base, _ in _GEN_COLUMNS for s in splits)
    rows = _metric_rows(t, metric_keys)
    datasets = ordered(_datasets_with_numbers(rows), GENERATION_ORDER)
    used = rows[rows["dataset"].isin(datasets) & rows["mean"].notna()]
    prov = Provenance(used, extractors=True)
    out = []
    for d in datasets:
        models = ordered(list(rows[rows["dataset"] == d]["model"]), MODEL_ORDER)
        for split in splits:
            for m in models:
                cell: dict[str, str] = {"Dataset": prov.label(d), "Model": model_name(m)}
                if len(splits) > 1:
                    cell["Embeddings"] = {"train": "tr", "test": "tst"}[split]
                counts = set()
                for base, head in _GEN_COLUMNS:
                    key = f"{base}_{split}"
                    sel = rows[(rows["dataset"] == d) & (rows["model"] == m) & (rows["metric"] == key)]
                    st = combine(sel)
                    cell[f"{head} (ours)"] = fmt_pm(st.mean, st.std) if st else DASH
                    cell[f"{head} (paper)"] = fmt_pm(*paper_generation(d, m, key))
                    if st:
                        counts.add(st.n)
                ns = sorted({int(x) for x in rows[(rows["dataset"] == d) & (rows["model"] == m)]["num_samples"] if _finite(x)})
                cell["Sets × samples"] = (f"{'/'.join(map(str, sorted(counts)))} × {'/'.join(map(str, ns))}" if counts and ns else DASH)
                out.append(cell)
    notes = [
        "Mean ± std (ddof=1) over independently generated sets; "
        + ("against real embeddings of the train split (the paper's 'tr')." if splits == ("train",)
           else "tr = against real embeddings of the train split, tst = of the test split."),
        "Paper: the paper's values (Inception features, the paper's data and training budget); "
        f"{DASH} = not reported / not applicable.",
        *prov.notes(datasets),
    ]
    return ReportTable(name, title, pd.DataFrame(out), notes)


def table1(tidy: pd.DataFrame) -> ReportTable:
    """Table 1: FID / precision / recall against train embeddings, per dataset and model."""
    return _generation_table(tidy, "table1", ("train",), "Table 1: image generation, FID / precision / recall (train embeddings)")


def table4(tidy: pd.DataFrame) -> ReportTable:
    """Table 4: as Table 1 with both test (tst) and train (tr) embeddings."""
    return _generation_table(tidy, "table4", ("test", "train"),
                             "Table 4: image generation, FID / precision / recall against test (tst) and train (tr) embeddings")


# ---------------------------------------------------------------------------------------------- Tables 2 and 5


def _timing_table(tidy: pd.DataFrame, name: str, task: str, title: str) -> ReportTable:
    t = normalise_tidy(tidy)
    rows = t[t["metric"] == f"time_{task}"]
    datasets = _datasets_with_numbers(rows)
    used = rows[rows["dataset"].isin(datasets)]
    prov = Provenance(used, extractors=False)
    paper = PAPER_TIMING[task]
    out = []
    for d in datasets:
        sizes = sorted({int(b) for b in used[used["dataset"] == d]["batch_size"] if _finite(b)}) or [1]
        for bs in sizes:
            sel = used[(used["dataset"] == d) & (used["batch_size"] == bs)]
            # median seconds per sample; across seeds, the median of the per-seed medians
            ours = {c: (float(np.median(sel[sel["model"] == c]["mean"].dropna())) if sel[sel["model"] == c]["mean"].notna().any() else None)
                    for c in TIMING_CANDIDATES}
            pp = paper.get(paper_key(d), {}) if bs == 1 else {}
            cell = {"Dataset": prov.label(d), "Batch size": str(bs)}
            for c in TIMING_CANDIDATES:
                cell[f"{model_name(c)} (ours)"] = fmt_seconds(ours[c])
                cell[f"{model_name(c)} (paper)"] = fmt_seconds(pp.get(c))
            for c in TIMING_CANDIDATES[1:]:
                cell[f"vs. {model_name(c)} (ours)"] = fmt_speedup(ours[c], ours["vamoh"])
                cell[f"vs. {model_name(c)} (paper)"] = fmt_speedup(pp.get(c), pp.get("vamoh"))
            reps = sorted({int(n) for n in sel["n"] if _finite(n)})
            cell["Repeats"] = "/".join(map(str, reps)) if reps else DASH
            out.append(cell)
    what = "reconstruction" if task == keys.TIME_RECONSTRUCTION else "2x super-reconstruction"
    notes = [
        f"Seconds per sample for {what} (ours: median over the repeats, median across seeds); "
        "speed-up = Functa time / VAMoH time, from the same row's numbers.",
        f"Paper: {PAPER_TIMING_DEVICE}, batch size not stated; shown beside our batch size 1 rows only.",
        *prov.notes(datasets),
    ]
    return ReportTable(name, title, pd.DataFrame(out), notes)


def table2(tidy: pd.DataFrame) -> ReportTable:
    """Table 2: reconstruction time per sample, VAMoH vs Functa (3) / Functa (10), and the speed-ups."""
    return _timing_table(tidy, "table2", keys.TIME_RECONSTRUCTION, "Table 2: inference time (seconds per sample), reconstruction")


def table5(tidy: pd.DataFrame) -> ReportTable:
    """Table 5: as Table 2 for 2x super-reconstruction."""
    return _timing_table(tidy, "table5", keys.TIME_SUPER_RECONSTRUCTION,
                         "Table 5: inference time (seconds per sample), super-reconstruction (2x)")


# ---------------------------------------------------------------------------------------------- Table 3


def _fmt_list(v: Any) -> str:
    if v is None:
        return "None"
    return "[" + ",".join("None" if x is None else str(x) for x in v) + "]"


def _fmt_lr(x: float) -> str:
    mantissa, exp = f"{x:.0e}".split("e")
    return f"{mantissa}e{int(exp)}" if float(f"{x:.0e}") == x else f"{x:g}"


# (row label as in the paper, VAMoHConfig fields it needs, formatter)
TABLE3_ROWS: tuple[tuple[str, tuple[str, ...], Any], ...] = (
    ("dim_z", ("dim_z",), str),
    ("K", ("K",), str),
    ("epochs", ("epochs",), str),
    ("bs", ("batch_size",), str),
    ("lr", ("lr",), _fmt_lr),
    ("PointConv Encoder h_weights", ("weightnet_hidden",), _fmt_list),
    ("neighbors", ("neighbours",), _fmt_list),
    ("centroids", ("centroids",), _fmt_list),
    ("out_channels", ("out_channels",), _fmt_list),
    ("avg_pooling_neighbors", ("pool_neighbours",), _fmt_list),
    ("avg_pooling_centroids", ("pool_centroids",), _fmt_list),
    ("Categorical Encoder layers", ("categorical_hidden",), _fmt_list),
    ("Hypernetwork layers", ("hypernet_hidden",), _fmt_list),
    ("Generator layers", ("generator_hidden",), _fmt_list),
    ("RFF", ("rff_frequencies", "rff_sigma"), lambda m, s: f"m={m}, σ={s:g}"),
    ("Flow T", ("flow_layers",), str),
)
DIFFERS = " *"


def _config_dict(dataset: str, cfg: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(cfg):
        return dataclasses.asdict(cfg)
    if not isinstance(cfg, dict):
        raise ValueError(f"table3_configs[{dataset!r}] is a {type(cfg).__name__}, expected a dict of VAMoHConfig fields")
    return cfg


def table3(table3_configs: dict[str, Any], tidy: pd.DataFrame | None = None) -> ReportTable:
    """Table 3: the VAMoH settings actually used per dataset, beside the paper's.

    ``table3_configs``: dataset -> resolved VAMoHConfig (a dict of its fields, or the dataclass).
    Our cells that differ from the paper's are marked with " *".
    """
    datasets = ordered(table3_configs, DATASET_ORDER)
    prov = Provenance(normalise_tidy(tidy)[lambda f: f["dataset"].isin(datasets)] if tidy is not None
                      else pd.DataFrame(columns=list(TIDY_REQUIRED)).astype({"is_standin": bool}), extractors=False)
    configs = {d: _config_dict(d, table3_configs[d]) for d in datasets}
    out = []
    any_diff = False
    for label, fields, fmt in TABLE3_ROWS:
        cell = {"Setting": label}
        for d in datasets:
            missing = [f for f in fields if f not in configs[d]]
            if missing:
                raise ValueError(f"table3_configs[{d!r}] lacks {missing} (expected the fields of VAMoHConfig)")
            ours = fmt(*(configs[d][f] for f in fields))
            pc = PAPER_TABLE3.get(d)
            paper = fmt(*(pc[f] for f in fields)) if pc is not None else DASH
            diff = pc is not None and ours != paper
            any_diff |= diff
            cell[f"{prov.label(d)} (ours)"] = ours + (DIFFERS if diff else "")
            cell[f"{prov.label(d)} (paper)"] = paper
        out.append(cell)
    notes = ["Ours: the resolved VAMoH configuration each dataset was trained with; paper: Table 3 of the paper."]
    if any_diff:
        notes.append("* our setting differs from the paper's (e.g. a shortened training budget or a shrunken model).")
    if tidy is not None:
        notes += [n for n in prov.notes(datasets) if n.startswith(STANDIN)]
    return ReportTable("table3", "Table 3: implementation details of VAMoH (as run vs the paper)", pd.DataFrame(out), notes)


# ---------------------------------------------------------------------------------------------- reconstruction (Figure 7)

_RECON_COLUMNS = ((keys.PSNR, "PSNR (dB)", 2), (keys.PSNR_COMPLETION_CENTRE, "Completion centre PSNR", 2),
                  (keys.PSNR_COMPLETION_HALF, "Completion half PSNR", 2), (keys.PSNR_COMPLETION_OUTPAINT, "Outpainting PSNR", 2),
                  (keys.VOXEL_IOU, "Voxel IoU", 3), (keys.VOXEL_ACCURACY, "Voxel accuracy", 3))


def reconstruction_table(tidy: pd.DataFrame) -> ReportTable:
    """Reconstruction quality on the test set: PSNR, completion PSNR, voxel IoU/accuracy (mean ± std over samples)."""
    t = normalise_tidy(tidy)
    rows = _metric_rows(t, tuple(k for k, _, _ in _RECON_COLUMNS))
    datasets = _datasets_with_numbers(rows)
    used = rows[rows["dataset"].isin(datasets) & rows["mean"].notna()]
    prov = Provenance(used, extractors=False)
    out = []
    for d in datasets:
        for m in ordered(list(used[used["dataset"] == d]["model"]), MODEL_ORDER):
            cell = {"Dataset": prov.label(d), "Model": model_name(m)}
            ns = set()
            for key, head, dec in _RECON_COLUMNS:
                st = combine(used[(used["dataset"] == d) & (used["model"] == m) & (used["metric"] == key)])
                cell[head] = fmt_pm(st.mean, st.std, dec) if st else DASH
                if st and key == keys.PSNR:
                    ns.add(st.n)
            cell["Test samples"] = "/".join(map(str, sorted(ns))) if ns else DASH
            out.append(cell)
    frame = pd.DataFrame(out)
    if not frame.empty:  # drop metric columns no row has (e.g. voxel columns without ShapeNet)
        frame = frame[[c for c in frame.columns if (frame[c] != DASH).any() or c in ("Dataset", "Model")]]
    notes = [
        "Mean ± std over test samples; PSNR = 20 log10(255 / RMSE) on 0..255 values; completion PSNR on the missing region.",
        "Paper: these appear only as plots (Figure 7, completion figures), with no numbers to print beside ours.",
        *prov.notes(datasets),
    ]
    return ReportTable("reconstruction", "Reconstruction quality on the test set (Figure 7 numbers)", frame, notes)


# ---------------------------------------------------------------------------------------------- all of them


def build_tables(tidy: pd.DataFrame, table3_configs: dict[str, Any]) -> list[ReportTable]:
    return [table1(tidy), table2(tidy), table3(table3_configs, tidy), table4(tidy), table5(tidy), reconstruction_table(tidy)]


def write_tables(tidy: pd.DataFrame, table3_configs: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """table{1..5}.{csv,md,tex,html} and reconstruction.{csv,md,tex,html} in ``out_dir``; returns the paths."""
    paths: list[Path] = []
    for t in build_tables(tidy, table3_configs):
        paths += write_table(t, out_dir)
    return paths
