"""The paper's Tables 1-5, the reconstruction and mixture tables, regenerated from the suite's tidy table.

Every table puts the paper's value beside ours ("X (ours)" next to "X (paper)") and says, in the table
itself, which rows use stand-in data (dagger on the dataset) and which generation metrics use features
other than Inception (double dagger), plus the devices, sample counts and seeds behind our numbers.
Each table also carries the reference rows a number needs to be read at this scale: the floor
(held-out real images) and ceiling (noise) of generation, and the train-mean baseline of reconstruction;
a model outside them is flagged in the table.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..eval import keys
from ..eval.paper import PAPER_FUNCTA_FID_SOURCE, PAPER_TIMING_DEVICE
from ..eval.tidy import KIND_REFERENCE, read_tidy
from .labels import DATASET_ORDER, MODEL_ORDER, PAPER_TABLE3, dataset_name, ordered, paper_generation, paper_timing
from .render import ReportTable, write_table

DASH = "—"
STANDIN, NON_INCEPTION = "†", "‡"
CLEAR_MARGIN_DB = 1.0  # a model "beats" the train-mean baseline when its mean PSNR is at least this much higher


# ---------------------------------------------------------------------------------------------- statistics


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


def _stat(t: pd.DataFrame, dataset: str, model: str, metric: str) -> Stat | None:
    return combine(t[(t["dataset"] == dataset) & (t["model"] == model) & (t["metric"] == metric)])


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


def fmt_stat(st: Stat | None, decimals: int = 2) -> str:
    return fmt_pm(st.mean, st.std, decimals) if st else DASH


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
        model_rows = self.rows[self.rows["kind"] != KIND_REFERENCE]
        devices = sorted({x for x in model_rows["device"] if x})
        seeds = sorted({int(s) for s in pd.to_numeric(model_rows["seed"], errors="coerce") if _finite(s)})
        if devices or seeds:
            out.append(f"Ours computed on: {'; '.join(devices) or 'unknown device'}; seeds: {', '.join(map(str, seeds)) or 'unknown'}.")
        return out


def _datasets_with_numbers(rows: pd.DataFrame) -> list[str]:
    return ordered(rows[rows["mean"].notna()]["dataset"], DATASET_ORDER)


def _label_of(t: pd.DataFrame, model: str) -> str:
    labels = t[t["model"] == model]["label"]
    return labels.iloc[0] if len(labels) else model


def _models(t: pd.DataFrame, dataset: str, kind: str | None = None) -> list[str]:
    sel = t[(t["dataset"] == dataset) & t["mean"].notna()]
    if kind is not None:
        sel = sel[(sel["kind"] == KIND_REFERENCE) == (kind == KIND_REFERENCE)]
    return ordered(sel["model"], MODEL_ORDER)


# ---------------------------------------------------------------------------------------------- Tables 1 and 4

GENERATION_ORDER = ("celebahq64", "shapes3d", "polymnist")  # Tables 1 and 4 (PolyMNIST in the appendix)
_GEN_COLUMNS = ((keys.FID, "FID ↓", True), (keys.PRECISION, "Precision ↑", True), (keys.RECALL, "Recall ↑", True),
                (keys.DENSITY, "Density ↑", False), (keys.COVERAGE, "Coverage ↑", False), (keys.SPREAD, "Spread", False))
_GEN_REFERENCES = (keys.REF_HELDOUT, keys.REF_BLURRED, keys.REF_COLLAPSED, keys.REF_MEAN, keys.REF_NOISE)


def fid_order_check(t: pd.DataFrame, dataset: str, model: str, split: str) -> str:
    """"✓" when floor < the model's FID < noise and below every baseline generator (means), "✗ ..." naming the first
    row it fails otherwise."""
    key = f"{keys.FID}_{split}"
    own, floor, noise = (_stat(t, dataset, m, key) for m in (model, keys.REF_HELDOUT, keys.REF_NOISE))
    if own is None or floor is None or noise is None:
        return DASH
    if own.mean >= noise.mean:
        return "✗ at or above noise"
    if own.mean <= floor.mean:
        return "✗ below the real floor"
    for ref in keys.GENERATION_BASELINES:  # the baseline generators a learned model beats (noise is checked above)
        base = _stat(t, dataset, ref, key)
        if base is not None and own.mean >= base.mean:
            return f"✗ not below '{keys.REFERENCE_LABELS[ref]}'"
    return "✓"


def _generation_table(tidy: pd.DataFrame, name: str, splits: tuple[str, ...], title: str) -> ReportTable:
    t = read_tidy(tidy)
    metric_keys = tuple(f"{base}_{s}" for base, _, _ in _GEN_COLUMNS for s in splits)
    rows = t[t["metric"].isin(metric_keys)]
    datasets = ordered(_datasets_with_numbers(rows[rows["kind"] != KIND_REFERENCE]), GENERATION_ORDER)
    used = rows[rows["dataset"].isin(datasets) & rows["mean"].notna()]
    prov = Provenance(used, extractors=True)
    out, flagged = [], []
    for d in datasets:
        models = _models(used, d, "model") + [m for m in _GEN_REFERENCES if m in set(used[used["dataset"] == d]["model"])]
        for split in splits:
            for m in models:
                reference = m in keys.REFERENCE_MODELS
                cell: dict[str, str] = {"Dataset": prov.label(d), "Model": _label_of(used, m)}
                if len(splits) > 1:
                    cell["Embeddings"] = {"train": "tr", "test": "tst"}[split]
                counts = set()
                for base, head, in_paper in _GEN_COLUMNS:
                    key = f"{base}_{split}"
                    st = _stat(used, d, m, key)
                    cell[f"{head} (ours)"] = fmt_stat(st)
                    if in_paper:
                        cell[f"{head} (paper)"] = DASH if reference else fmt_pm(*paper_generation(d, m, key))
                    if st:
                        counts.add(st.n)
                ns = sorted({int(x) for x in used[(used["dataset"] == d) & (used["model"] == m) & (used["split"] == split)]["num_samples"] if _finite(x)})
                cell["Sets × samples"] = f"{'/'.join(map(str, sorted(counts)))} × {'/'.join(map(str, ns))}" if counts and ns else DASH
                cell["floor < FID < noise"] = DASH if reference else fid_order_check(used, d, m, split)
                if cell["floor < FID < noise"].startswith("✗"):
                    flagged.append(f"FID outside the [floor, noise] interval: {dataset_name(d)} {cell['Model']} ({split}): {cell['floor < FID < noise'][2:]}")
                out.append(cell)
    notes = [
        "Mean ± std (ddof=1) over independently generated sets; "
        + ("against real embeddings of the train split (the paper's 'tr')." if splits == ("train",)
           else "tr = against real embeddings of the train split, tst = of the test split."),
        f"Reference rows: {keys.REFERENCE_LABELS[keys.REF_HELDOUT]} = real images not in the real set, scored as if generated "
        f"(what a perfect generator scores at this sample size); {keys.REFERENCE_LABELS[keys.REF_NOISE]} = uniform noise images; "
        f"three generators that learned nothing worth comparing: {keys.REFERENCE_LABELS[keys.REF_MEAN]} (the train-mean image repeated), "
        f"{keys.REFERENCE_LABELS[keys.REF_COLLAPSED]} and {keys.REFERENCE_LABELS[keys.REF_BLURRED]} (Gaussian blur, sigma = 1/16 of the "
        "image side). A model's FID means something at this scale only above the floor and below all four "
        "(column 'floor < FID < noise'). Spread = the generated set's RMS feature distance to its mean over the real set's "
        "(1 = as diverse as the data, 0 = collapsed).",
        "Density and coverage (Naeem et al. 2020) use the same features and k as precision/recall; the paper does not report them.",
        *[f"{dataset_name(d)}: {n}." for d in datasets for n in sorted(set(used[(used["dataset"] == d) & (used["kind"] == KIND_REFERENCE)]["note"])) if n],
        "Paper: the paper's values (Inception features, the paper's data and training budget); "
        f"{DASH} = not reported / not applicable. {PAPER_FUNCTA_FID_SOURCE}.",
        *prov.notes(datasets),
    ]
    failing = [dataset_name(d) for d in datasets if any("FAILS" in n for n in used[(used["dataset"] == d)]["note"])]
    if failing:
        flagged.append(f"the feature extractor of {', '.join(failing)} fails its quality gate: these FIDs measure little")
    if flagged:
        notes.insert(0, "FLAGGED — " + "; ".join(flagged) + ".")
    return ReportTable(name, title, pd.DataFrame(out), notes)


def table1(tidy: pd.DataFrame) -> ReportTable:
    """Table 1: FID / precision / recall against train embeddings, per dataset and model."""
    return _generation_table(tidy, "table1", ("train",), "Table 1: image generation, FID / precision / recall (train embeddings)")


def table4(tidy: pd.DataFrame) -> ReportTable:
    """Table 4: as Table 1 with both test (tst) and train (tr) embeddings."""
    return _generation_table(tidy, "table4", ("test", "train"),
                             "Table 4: image generation, FID / precision / recall against test (tst) and train (tr) embeddings")


# ---------------------------------------------------------------------------------------------- Tables 2 and 5

PAPER_TIMING_LABELS = ("VAMoH", "Functa (3)", "Functa (10)")
TIMING_ORDER = ("vamoh", "functa", "functa10")  # the paper's column order


def _timing_cell(rows: pd.DataFrame) -> tuple[str, float | None]:
    """"median (q25–q75)" over the repeats (the median of the per-seed medians across seeds) and the median."""
    rows = rows[rows["mean"].notna()]
    if rows.empty:
        return DASH, None
    med = float(np.median(rows["mean"]))
    q = [v for v in rows["values"] if len(v) >= 3]
    if len(rows) == 1 and q:
        return f"{fmt_seconds(med)} ({fmt_seconds(q[0][0])}–{fmt_seconds(q[0][2])})", med
    return fmt_seconds(med), med


def _timing_table(tidy: pd.DataFrame, name: str, task: str, title: str) -> ReportTable:
    t = read_tidy(tidy)
    rows = t[t["metric"] == f"time_{task}"]
    datasets = _datasets_with_numbers(rows)
    used = rows[rows["dataset"].isin(datasets)]
    prov = Provenance(used, extractors=False)
    candidates = ordered(used["model"], TIMING_ORDER)
    labels = {c: _label_of(used, c) for c in candidates}
    reference = next((c for c in candidates if labels[c] == "VAMoH"), candidates[0] if candidates else None)
    out = []
    for d in datasets:
        sizes = sorted({int(b) for b in used[used["dataset"] == d]["batch_size"] if _finite(b)}) or [1]
        for bs in sizes:
            sel = used[(used["dataset"] == d) & (used["batch_size"] == bs)]
            cell = {"Dataset": prov.label(d), "Batch size": str(bs)}
            ours: dict[str, float | None] = {}
            for c in candidates:
                text, ours[c] = _timing_cell(sel[sel["model"] == c])
                cell[f"{labels[c]} (ours)"] = text
                if labels[c] in PAPER_TIMING_LABELS:
                    cell[f"{labels[c]} (paper)"] = fmt_seconds(paper_timing(task, d, labels[c]) if bs == 1 else None)
            for c in candidates:
                if c == reference:
                    continue
                cell[f"vs. {labels[c]} (ours)"] = fmt_speedup(ours[c], ours[reference])
                if labels[c] in PAPER_TIMING_LABELS:
                    cell[f"vs. {labels[c]} (paper)"] = fmt_speedup(paper_timing(task, d, labels[c]), paper_timing(task, d, "VAMoH")) if bs == 1 else DASH
            reps = sorted({int(n) for n in sel["n"] if _finite(n)})
            cell["Repeats"] = "/".join(map(str, reps)) if reps else DASH
            out.append(cell)
    what = "reconstruction" if task == keys.TIME_RECONSTRUCTION else "2x super-reconstruction"
    by_label: dict[str, set[str]] = {}
    for m, n in zip(used["model"], used["note"]):
        if n:
            by_label.setdefault(labels.get(m, m), set()).add(n)
    archs = [f"{lab}: {' / '.join(sorted(notes))}" for lab, notes in by_label.items()]
    notes = [
        f"Seconds per sample for {what}: median over the repeats (q25–q75 in brackets), median across seeds; "
        f"speed-up = the other model's time / {labels.get(reference, 'VAMoH')}'s, from the same row's numbers.",
        "Functa (3) and Functa (10): Functa meta-trained with 3 and with 10 inner steps (the paper's caption: "
        "'Functa (10) which is trained with 10 gradient steps'), each run with its own number of steps.",
        f"Paper: {PAPER_TIMING_DEVICE}, batch size not stated; shown beside our batch size 1 rows only.",
        *([f"Models timed — {'; '.join(archs)}."] if archs else []),
        *prov.notes(datasets),
    ]
    untimed = ordered(set(t[(t["metric"] == keys.PSNR) & t["mean"].notna() & (t["kind"] != KIND_REFERENCE)]["dataset"]) - set(datasets), DATASET_ORDER)
    if datasets and untimed:
        notes.append(f"Not timed in this run (eval.timing_datasets): {', '.join(dataset_name(d) for d in untimed)}.")
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

    ``summaries``: the train.json records of the run (every model; those of the entry ``vamoh`` are used, not an
    ablation variant's, the lowest seed of each dataset). Our cells that differ from the paper's are marked with " *".
    """
    # the entry "vamoh" itself (an ablation variant is another entry of the same model), its lowest seed per dataset
    entry = sorted((s for s in summaries if s.get("model", s.get("model_name")) == "vamoh"), key=lambda s: int(s.get("seed", 0)))
    vamoh: dict[str, dict[str, Any]] = {}
    for s in entry:
        vamoh.setdefault(s["dataset"], s)
    datasets = ordered(vamoh, DATASET_ORDER)
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
            cell[f"{head} (paper)"] = paper
        out.append(cell)
    notes = ["Ours: what each dataset's VAMoH checkpoint was trained with (read from its train.json: the resolved config and the "
             "budget actually run, in epochs and optimiser steps); paper: Table 3 of the paper."]
    if any_diff:
        notes.append("* our setting differs from the paper's (e.g. a shortened training budget or a shrunken model).")
    if prov is not None:
        notes += [n for n in prov.notes(datasets) if n.startswith(STANDIN)]
    return ReportTable("table3", "Table 3: implementation details of VAMoH (as trained vs the paper)", pd.DataFrame(out), notes)


# ---------------------------------------------------------------------------------------------- reconstruction (Figure 7)

_RECON_COLUMNS = ((keys.PSNR, "PSNR, paper protocol (dB)", 2), (keys.PSNR_LEAK_FREE, "PSNR, leak-free (dB)", 2),
                  (keys.VOXEL_IOU, "Voxel IoU, paper protocol", 3), (keys.VOXEL_IOU_LEAK_FREE, "Voxel IoU, leak-free", 3),
                  (keys.VOXEL_ACCURACY, "Voxel accuracy, paper protocol", 3), (keys.VOXEL_ACCURACY_LEAK_FREE, "Voxel accuracy, leak-free", 3))
PROTOCOL_NOTE = ("Two protocols (docs/evaluation.md, 'Two reconstruction protocols'). Paper: VAMoH's mixture weights at an observed "
                 "point are the posterior q(c | x, y, z), computed with that point's own value y (eq. 5, as the original code): a "
                 "best-of-K choice made with the answer. Leak-free: the prior p(c | x, z) at every point, so no point's weights read "
                 "its own value. In both, the global latent (VAMoH's z, Functa's modulations) is fitted to every observed point. "
                 "Functa's prediction reads the data only through its modulations, so its two columns are one computation.")


CLEAR_MARGIN_IOU = 0.05  # voxels: the occupancy IoU a reconstruction must add over the train mean (vamoh.report.summary)


def baseline_check(t: pd.DataFrame, dataset: str, model: str, metric: str = keys.PSNR) -> str:
    """"+x.xx dB ✓" when the model's mean ``metric`` beats the train-mean baseline's PSNR by CLEAR_MARGIN_DB, else "✗";
    on voxels (where PSNR is mostly empty space) the occupancy IoU of the same protocol against CLEAR_MARGIN_IOU."""
    if _stat(t, dataset, keys.REF_MEAN, keys.VOXEL_IOU) is not None:
        iou = keys.VOXEL_IOU_LEAK_FREE if metric == keys.PSNR_LEAK_FREE else keys.VOXEL_IOU
        own, base = _stat(t, dataset, model, iou), _stat(t, dataset, keys.REF_MEAN, keys.VOXEL_IOU)
        if own is None or base is None:
            return DASH
        margin = own.mean - base.mean
        return f"{margin:+.3f} IoU " + ("✓" if margin >= CLEAR_MARGIN_IOU else "✗")
    own, base = _stat(t, dataset, model, metric), _stat(t, dataset, keys.REF_MEAN, keys.PSNR)
    if own is None or base is None:
        return DASH
    margin = own.mean - base.mean
    return f"{margin:+.2f} dB " + ("✓" if margin >= CLEAR_MARGIN_DB else "✗")


def _psnr_ranges(datasets: list[str]) -> str:
    from ..data import DATASETS

    return "; ".join(sorted({"images on 0..255 values (R = 255)" if DATASETS[d].kind == "image" else f"{dataset_name(d)} on [0, 1] (R = 1)"
                             for d in datasets if d in DATASETS}))


def reconstruction_table(tidy: pd.DataFrame) -> ReportTable:
    """Reconstruction quality on the test set under both protocols: PSNR, voxel IoU/accuracy (mean ± std over samples),
    each model against the train-mean baseline, and what the paper protocol's read of y adds."""
    t = read_tidy(tidy)
    rows = t[t["metric"].isin(tuple(k for k, _, _ in _RECON_COLUMNS))]
    datasets = _datasets_with_numbers(rows[rows["kind"] != KIND_REFERENCE])
    used = rows[rows["dataset"].isin(datasets) & rows["mean"].notna()]
    prov = Provenance(used, extractors=False)
    out, flagged = [], []
    for d in datasets:
        for m in _models(used, d):
            cell = {"Dataset": prov.label(d), "Model": _label_of(used, m)}
            ns = set()
            for key, head, dec in _RECON_COLUMNS:
                st = _stat(used, d, m, key) if m != keys.REF_MEAN or key in (keys.PSNR, keys.VOXEL_IOU, keys.VOXEL_ACCURACY) else None
                if m == keys.REF_MEAN and key in keys.LEAK_FREE_KEYS.values():  # the baseline reads no value: one number
                    st = _stat(used, d, m, next(k for k, v in keys.LEAK_FREE_KEYS.items() if v == key))
                cell[head] = fmt_stat(st, dec)
                if st and key == keys.PSNR:
                    ns.add(st.n)
            paper, free = _stat(used, d, m, keys.PSNR), _stat(used, d, m, keys.PSNR_LEAK_FREE)
            cell["Paper − leak-free (dB)"] = f"{paper.mean - free.mean:+.2f}" if paper and free and m != keys.REF_MEAN else DASH
            for proto, key in (("paper", keys.PSNR), ("leak-free", keys.PSNR_LEAK_FREE)):
                cell[f"vs train mean, {proto}"] = DASH if m == keys.REF_MEAN else baseline_check(used, d, m, key)
                if cell[f"vs train mean, {proto}"].endswith("✗"):
                    flagged.append(f"{dataset_name(d)} {cell['Model']} ({proto})")
            cell["Test samples"] = "/".join(map(str, sorted(ns))) if ns else DASH
            out.append(cell)
    frame = pd.DataFrame(out)
    if not frame.empty:  # drop metric columns no row has (e.g. voxel columns without ShapeNet)
        frame = frame[[c for c in frame.columns if (frame[c] != DASH).any() or c in ("Dataset", "Model")]]
    notes = [
        "Mean ± std over test samples (pooled over seeds). PSNR = 20 log10(R / RMSE) in the paper's convention (eq. 19): the squared "
        "error summed over a point's channels and averaged over points (scikit-image's per-channel average reads 4.77 dB higher on "
        "RGB); " + _psnr_ranges(datasets) + ".",
        PROTOCOL_NOTE,
        f"{keys.REFERENCE_LABELS[keys.REF_MEAN]}: every test sample predicted by the mean of the train split (it reads no value, so "
        f"one number under both protocols). 'vs train mean' marks ✓ a model at least {CLEAR_MARGIN_DB:g} dB above it (voxels: "
        f"occupancy IoU at least {CLEAR_MARGIN_IOU:g} above it, since PSNR there is mostly empty space).",
        "Completion and super-resolution have their own tables (completion_scores, superresolution).",
        "Paper: these appear only as plots (Figure 7), with no numbers to print beside ours.",
        *prov.notes(datasets),
    ]
    if flagged:
        notes.insert(0, f"FLAGGED — not clearly above the train-mean baseline (< {CLEAR_MARGIN_DB:g} dB): " + "; ".join(flagged) + ".")
    return ReportTable("reconstruction", "Reconstruction quality on the test set under both protocols (Figure 7 numbers)", frame, notes)


# ---------------------------------------------------------------------------------------------- completion

COMPLETION_MASKS = (("centre", "centre box hidden", keys.PSNR_COMPLETION_CENTRE, keys.VOXEL_IOU_COMPLETION_CENTRE),
                    ("half", "right half hidden", keys.PSNR_COMPLETION_HALF, keys.VOXEL_IOU_COMPLETION_HALF),
                    ("outpaint", "all but the centre box hidden", keys.PSNR_COMPLETION_OUTPAINT, keys.VOXEL_IOU_COMPLETION_OUTPAINT))
COMPLETION_BASELINES = (keys.REF_MEAN, keys.REF_OBSERVED_MEAN)


def completion_margin(t: pd.DataFrame, dataset: str, model: str, metric: str) -> tuple[float, str] | None:
    """(the model's mean minus the better baseline's, that baseline) on ``metric``, or None without numbers."""
    own = _stat(t, dataset, model, metric)
    bases = [(b, _stat(t, dataset, b, metric)) for b in COMPLETION_BASELINES]
    bases = [(b, st) for b, st in bases if st is not None]
    if own is None or not bases:
        return None
    best, st = max(bases, key=lambda x: x[1].mean)
    return own.mean - st.mean, best


def completion_table(tidy: pd.DataFrame) -> ReportTable:
    """Completion against the truth: scores on the hidden region only, per mask, each model beside two baselines (the
    train mean inside the mask, the observed part's mean); voxels by IoU of the hidden part."""
    from ..data import DATASETS

    t = read_tidy(tidy)
    metric_keys = tuple(k for _, _, p, v in COMPLETION_MASKS for k in (p, v))
    rows = t[t["metric"].isin(metric_keys) & t["mean"].notna()]
    datasets = _datasets_with_numbers(rows[rows["kind"] != KIND_REFERENCE])
    used = rows[rows["dataset"].isin(datasets)]
    prov = Provenance(used, extractors=False)
    out = []
    for d in datasets:
        voxels = d in DATASETS and DATASETS[d].kind == "voxels"
        for m in _models(used, d):
            cell = {"Dataset": prov.label(d), "Model": _label_of(used, m)}
            for task, what, psnr_key, iou_key in COMPLETION_MASKS:
                key = iou_key if voxels else psnr_key
                st = _stat(used, d, m, key)
                cell[f"{task.capitalize()} ({what})"] = fmt_stat(st, 3 if voxels else 2)
                margin = None if m in COMPLETION_BASELINES else completion_margin(used, d, m, key)
                unit = "" if voxels else " dB"
                cell[f"{task.capitalize()} vs best baseline"] = DASH if margin is None else f"{margin[0]:+.{3 if voxels else 2}f}{unit}"
            cell["Score"] = "IoU of the hidden voxels" if voxels else "PSNR on the hidden region (dB)"
            ns = {st.n for st in (_stat(used, d, m, k) for _, _, k, _ in COMPLETION_MASKS) if st}
            cell["Test samples"] = "/".join(map(str, sorted(ns))) if ns else DASH
            out.append(cell)
    notes = [
        "Each test sample is given with one region hidden (centre: the centred box of half the side on every axis; half: the "
        "last axis from its middle on, the right half of an image; outpaint: everything but the centred box), and scored on the "
        "hidden region only. Images and fields: PSNR in the paper's convention (eq. 19), " + _psnr_ranges(datasets) + ". Voxels: "
        "the IoU of occupancy (threshold 0.5) inside the hidden region, since PSNR there is mostly empty space. Mean ± std over "
        "the first eval.completion_samples test samples (pooled over seeds).",
        f"Baselines, scored on the same samples and regions: {keys.REFERENCE_LABELS[keys.REF_MEAN]} (the train split's mean inside "
        f"the mask: a completion that ignored the observed part) and {keys.REFERENCE_LABELS[keys.REF_OBSERVED_MEAN]} (every hidden "
        "point given the mean of the sample's observed points: a completion that used only the sample's overall colour). "
        "'vs best baseline' is the model's mean minus the better of the two.",
        "The completion of a hidden point reads no value at that point, so both reconstruction protocols give the same completion.",
        "Paper: completions are shown only as pictures (Figures 9, 19, 20), with no numbers to print beside ours.",
        *prov.notes(datasets),
    ]
    return ReportTable("completion_scores", "Completion against the truth: the hidden region only, beside two baselines", pd.DataFrame(out), notes)


# ---------------------------------------------------------------------------------------------- super-resolution


def _own_1x_gap(t: pd.DataFrame, dataset: str, model: str, key_2x: str, key_1x: str) -> float | None:
    """Mean over seeds of (the model's 2x score minus its own leak-free 1x reconstruction score) on the same test samples
    (the 2x samples are the first of the test split, whose per-sample 1x values are in the same order); None without both."""
    gaps = []
    for seed, rows in t[(t["dataset"] == dataset) & (t["model"] == model)].groupby("seed"):
        two, one = rows[rows["metric"] == key_2x], rows[rows["metric"] == key_1x]
        if two.empty or one.empty:
            continue
        v2, v1 = np.asarray(two["values"].iloc[0], float), np.asarray(one["values"].iloc[0], float)
        if not v2.size or v1.size < v2.size:
            continue
        pair = np.isfinite(v2) & np.isfinite(v1[: v2.size])
        if pair.any():
            gaps.append(float((v2[pair] - v1[: v2.size][pair]).mean()))
    return float(np.mean(gaps)) if gaps else None


def superres_table(tidy: pd.DataFrame) -> ReportTable:
    """Super-resolution against ground truth: each model's 2x reconstruction scored against the stand-in's own 2x render,
    beside the model-free upsampling; datasets that cannot render 2x are listed with the reason."""
    t = read_tidy(tidy)
    rows = t[t["metric"].isin(keys.SUPERRES_KEYS)]
    with_numbers = rows[rows["mean"].notna()]
    datasets = _datasets_with_numbers(with_numbers[with_numbers["kind"] != KIND_REFERENCE])
    used = with_numbers[with_numbers["dataset"].isin(datasets)]
    prov = Provenance(used, extractors=False)
    out = []
    for d in datasets:
        for m in _models(used, d):
            key = keys.PSNR_SUPERRES if _stat(used, d, m, keys.PSNR_SUPERRES) else keys.VOXEL_IOU_SUPERRES
            st, base = _stat(used, d, m, key), _stat(used, d, keys.REF_UPSAMPLED, key)
            image = key == keys.PSNR_SUPERRES
            own = _own_1x_gap(t, d, m, key, keys.PSNR_LEAK_FREE if image else keys.VOXEL_IOU_LEAK_FREE)
            out.append({"Dataset": prov.label(d), "Model": _label_of(used, m),
                        "Score at 2x": ("PSNR (dB) " if image else "IoU ") + fmt_stat(st, 2 if image else 3),
                        "vs 1x upsampled": DASH if m == keys.REF_UPSAMPLED or not (st and base) else
                        (f"{st.mean - base.mean:+.2f} dB" if image else f"{st.mean - base.mean:+.3f}"),
                        "2x − own 1x, same samples": DASH if own is None else (f"{own:+.2f} dB" if image else f"{own:+.3f}"),
                        "Test samples": str(st.n) if st else DASH})
    unavailable = rows[rows["mean"].isna() & (rows["kind"] == KIND_REFERENCE) & (rows["note"] != "")]
    notes = [
        "Each of the first eval.superres_samples test samples is reconstructed from all its 1x points at the centres of a 2x finer "
        "cell grid and scored against the stand-in's own render of the same sample at 2x (faces drawn at 128x128; Shapes3D scenes "
        "rendered from the same factors; voxel chairs built from the same boxes at 2x per axis). Images: PSNR in the paper's "
        "convention (eq. 19) on 0..255 values; voxels: occupancy IoU at threshold 0.5. Mean ± std over samples (pooled over seeds).",
        f"{keys.REFERENCE_LABELS[keys.REF_UPSAMPLED]}: the 1x sample upsampled without a model, bicubic for images (Pillow), nearest "
        "for voxels. A model that does not beat it adds nothing at 2x that interpolation would not.",
        "'2x − own 1x, same samples': the model's 2x score minus its own leak-free 1x reconstruction score on the same test samples "
        "(mean over seeds): near 0 means the 2x quality is the model's 1x fit carried over, strongly negative that it loses "
        "quality between the 1x points.",
        "No query point is a 1x point, so VAMoH's weights are its prior at every point (one rule, no lattice); the paper's own "
        "Figure 6 grid (127 points for 64, every other one a 1x point) is in the reconstruction figure.",
        "Paper: super-resolution is shown only as pictures (Figures 6, 21, 23) and timed (Table 5); it has no quality number.",
    ]
    for d in ordered(unavailable["dataset"], DATASET_ORDER):
        if d not in datasets:
            notes.append(f"{dataset_name(d)}: no 2x truth — {unavailable[unavailable['dataset'] == d]['note'].iloc[0]}")
    notes += prov.notes(datasets)
    return ReportTable("superresolution", "Super-resolution against a true 2x render (stand-ins that can draw one)", pd.DataFrame(out), notes)


# ---------------------------------------------------------------------------------------------- mixture


def mixture_table(tidy: pd.DataFrame) -> ReportTable:
    """The mixture's segmentations (paper Figures 10, 25): mean normalised entropy, segment coherence vs chance,
    contiguity normalised for balance (kappa), dependence on the input (mean ARI with the other inputs' maps), and,
    where the data has true parts, agreement with them (ARI) beside a k-means-on-colour baseline."""
    t = read_tidy(tidy)
    rows = t[t["metric"].isin(keys.MIXTURE_KEYS) & t["mean"].notna()]
    datasets = _datasets_with_numbers(rows)
    prov = Provenance(rows, extractors=False)
    out = []
    undefined_kappa = False
    for d in datasets:
        for m in _models(rows, d):
            ent, coh, chance, kappa, pos, parts, km = (_stat(rows, d, m, k) for k in (
                keys.MIXTURE_ENTROPY, keys.SEGMENT_COHERENCE, keys.SEGMENT_CHANCE, keys.SEGMENT_KAPPA, keys.SEGMENT_POSITION_ARI,
                keys.SEGMENT_PARTS_ARI, keys.SEGMENT_PARTS_ARI_KMEANS))
            kappa_cell = fmt_stat(kappa, 3)
            scored = bool(((t["dataset"] == d) & (t["model"] == m) & (t["metric"] == keys.SEGMENT_KAPPA)).any())  # runs before κ have no row
            if coh and scored and (kappa is None or kappa.n < coh.n):  # samples where one component covers everything: κ undefined
                undefined_kappa = True
                kappa_cell = "undefined" if kappa is None else f"{kappa_cell} ({coh.n - kappa.n} of {coh.n} undefined)"
            out.append({"Dataset": prov.label(d), "Model": _label_of(rows, m), "Entropy / ln K": fmt_stat(ent, 3),
                        "Segment coherence": fmt_stat(coh, 3), "Chance level": fmt_stat(chance, 3), "Contiguity κ": kappa_cell,
                        "Position ARI": fmt_stat(pos, 3), "Parts ARI": fmt_stat(parts, 3), "k-means ARI (baseline)": fmt_stat(km, 3),
                        "Test samples": str(coh.n) if coh else DASH})
    notes = [
        "Entropy / ln K: the mixture weights' entropy per point, divided by its maximum ln K (0 = one component owns the point, "
        "1 = all K equally likely), averaged over the test points (ShapeNet: occupied voxels only).",
        "Segment coherence: the share of neighbouring grid points (4 per pixel, 6 per voxel; longitude wraps on ERA5) whose most "
        "probable component agrees. Chance level: what a segmentation with the same component shares but no spatial "
        "structure scores (sum_k p_k^2 per sample). Coherence minus chance is bounded by 1 − chance, so it rewards balanced "
        "components: read contiguity from κ.",
        "Contiguity κ = (coherence − chance) / (1 − chance) per sample (Cohen's kappa of a point's component and its neighbour's): "
        "0 = speckle with the same component shares, negative = more disagreeing neighbours than chance, 1 = no disagreeing "
        "neighbours; a contiguous map scores 1 minus its border pairs over speckle's. Undefined where one component covers "
        "every point (chance 1: nothing is segmented, e.g. K = 1); such samples are left out and counted.",
        "Position ARI: per sample, the mean adjusted Rand index of its map with the maps of the next 32 test samples (all "
        "others in a smaller test set) on the points valid in both. 1 = the same partition of the grid whatever the input "
        "(a partition by position, not a segmentation of the image); lower = the map follows the input.",
        "Parts ARI: the adjusted Rand index of the map with the true parts the stand-in renders (Shapes3D: wall, floor, object; "
        "faces: background, clothes, hair, face; chairs: seat, back, legs, arms); k-means ARI: the same for k-means on the sample's colours (voxels: the "
        "occupied voxels' coordinates) with k = the number of true parts, the baseline a segmentation should beat. "
        f"{DASH}: the data has no true parts (real data, PolyMNIST, ERA5).",
        *prov.notes(datasets),
    ]
    frame = pd.DataFrame(out)
    if not undefined_kappa:
        notes[2] = notes[2].replace("; such samples are left out and counted", "")
    return ReportTable("mixture", "Mixture segmentations: entropy, contiguity, input dependence and true parts (Figures 10, 25 as numbers)",
                       frame, notes)


# ---------------------------------------------------------------------------------------------- point sets, memorisation


def _scaled(st: Stat | None, factor: float) -> Stat | None:
    if st is None:
        return None
    return Stat(None if st.mean is None else st.mean * factor, None if st.std is None else st.std * factor, st.n)


def pointsets_table(tidy: pd.DataFrame) -> ReportTable:
    """ShapeNet's generation in the field's protocol (COV / MMD / 1-NNA, Chamfer) and every image dataset's memorisation
    check: numbers the evaluation computes that the paper's tables have no place for."""
    t = read_tidy(tidy)
    rows = t[t["metric"].isin(keys.POINTSET_KEYS + keys.MEMORISATION_KEYS) & t["mean"].notna() & (t["kind"] != KIND_REFERENCE)]
    datasets = ordered(_datasets_with_numbers(rows), DATASET_ORDER)
    prov = Provenance(rows, extractors=True)
    out = []
    for d in datasets:
        for m in _models(rows, d, "model"):
            cells = {k: _stat(rows, d, m, k) for k in keys.POINTSET_KEYS + keys.MEMORISATION_KEYS}
            if not any(cells.values()):
                continue
            empty = rows[(rows["dataset"] == d) & (rows["model"] == m) & (rows["metric"] == keys.NNA_CD)]
            out.append({"Dataset": prov.label(d), "Model": _label_of(rows, m), "COV ↑": fmt_stat(cells[keys.COV_CD], 3),
                        "MMD ↓ (×10³)": fmt_stat(_scaled(cells[keys.MMD_CD], 1e3), 3),
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


# ---------------------------------------------------------------------------------------------- all of them


def build_tables(tidy: pd.DataFrame | str | Path, summaries: list[dict[str, Any]]) -> list[ReportTable]:
    t = read_tidy(tidy)
    return [table1(t), table2(t), table3(summaries, t), table4(t), table5(t), reconstruction_table(t), completion_table(t), superres_table(t),
            mixture_table(t), pointsets_table(t)]


def write_tables(tidy: pd.DataFrame | str | Path, summaries: list[dict[str, Any]], out_dir: str | Path) -> list[Path]:
    """table{1..5}, reconstruction, completion_scores, superresolution, mixture and pointsets .{csv,md,tex,html} in ``out_dir``;
    returns the paths."""
    paths: list[Path] = []
    for t in build_tables(tidy, summaries):
        paths += write_table(t, out_dir)
    return paths
