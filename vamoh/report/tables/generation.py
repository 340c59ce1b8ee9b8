"""Tables 1 and 4: image generation, FID / precision / recall (and density, coverage, spread) beside the paper's.

Table 1 scores the generated sets against real embeddings of the train split (the paper's 'tr'), Table 4 against
both the test and the train split. Each dataset carries its reference rows (the real floor, three generators that
learned nothing, uniform noise), and a model whose FID is not between the floor and all of them is flagged.
"""

from __future__ import annotations

import pandas as pd

from ...eval import keys
from ...eval.paper import PAPER_FUNCTA_FID_SOURCE, PAPER_GENERATION_DATASETS
from ...eval.tidy import KIND_REFERENCE, read_tidy
from ..format import DASH, fmt_pm, fmt_stat
from ..labels import dataset_name, ordered, paper_generation
from ..pooled import finite, stat_of
from ..render import ReportTable
from .provenance import Provenance
from .rows import datasets_with_numbers, label_of, models

_GEN_COLUMNS = ((keys.FID, "FID ↓", True), (keys.PRECISION, "Precision ↑", True), (keys.RECALL, "Recall ↑", True),
                (keys.DENSITY, "Density ↑", False), (keys.COVERAGE, "Coverage ↑", False), (keys.SPREAD, "Spread", False))
_GEN_REFERENCES = (keys.REF_HELDOUT, keys.REF_BLURRED, keys.REF_COLLAPSED, keys.REF_MEAN, keys.REF_NOISE)


def fid_order_check(t: pd.DataFrame, dataset: str, model: str, split: str) -> str:
    """"✓" when floor < the model's FID < noise and below every baseline generator (means), "✗ ..." naming the first
    row it fails otherwise."""
    key = f"{keys.FID}_{split}"
    own, floor, noise = (stat_of(t, dataset, m, key) for m in (model, keys.REF_HELDOUT, keys.REF_NOISE))
    if own is None or floor is None or noise is None:
        return DASH
    if own.mean >= noise.mean:
        return "✗ at or above noise"
    if own.mean <= floor.mean:
        return "✗ below the real floor"
    for ref in keys.GENERATION_BASELINES:  # the baseline generators a learned model beats (noise is checked above)
        base = stat_of(t, dataset, ref, key)
        if base is not None and own.mean >= base.mean:
            return f"✗ not below '{keys.REFERENCE_LABELS[ref]}'"
    return "✓"


def _generation_table(tidy: pd.DataFrame, name: str, splits: tuple[str, ...], title: str) -> ReportTable:
    t = read_tidy(tidy)
    metric_keys = tuple(f"{base}_{s}" for base, _, _ in _GEN_COLUMNS for s in splits)
    rows = t[t["metric"].isin(metric_keys)]
    datasets = ordered(datasets_with_numbers(rows[rows["kind"] != KIND_REFERENCE]), PAPER_GENERATION_DATASETS)
    used = rows[rows["dataset"].isin(datasets) & rows["mean"].notna()]
    prov = Provenance(used, extractors=True)
    out, flagged = [], []
    for d in datasets:
        shown = models(used, d, "model") + [m for m in _GEN_REFERENCES if m in set(used[used["dataset"] == d]["model"])]
        for split in splits:
            for m in shown:
                reference = m in keys.REFERENCE_MODELS
                cell: dict[str, str] = {"Dataset": prov.label(d), "Model": label_of(used, m)}
                if len(splits) > 1:
                    cell["Embeddings"] = {"train": "tr", "test": "tst"}[split]
                counts = set()
                for base, head, in_paper in _GEN_COLUMNS:
                    key = f"{base}_{split}"
                    st = stat_of(used, d, m, key)
                    cell[f"{head} (ours)"] = fmt_stat(st)
                    if in_paper:
                        cell[f"{head} (paper)"] = DASH if reference else fmt_pm(*paper_generation(d, m, key))
                    if st:
                        counts.add(st.n)
                ns = sorted({int(x) for x in used[(used["dataset"] == d) & (used["model"] == m) & (used["split"] == split)]["num_samples"] if finite(x)})
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
