"""Tables 2 and 5: inference time per sample (reconstruction, 2x super-reconstruction) and the speed-ups.

Every speed-up divides another model's time by one reference model's, read from the same row's numbers; the
paper's times (on its own device) are printed beside ours only at batch size 1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...eval import keys
from ...eval.paper import PAPER_TIMING_DEVICE, PAPER_TIMING_ENTRIES, PAPER_TIMING_LABELS, PAPER_TIMING_REFERENCE
from ...eval.tidy import KIND_REFERENCE, read_tidy
from ..format import DASH, fmt_seconds, fmt_speedup
from ..labels import dataset_name, dataset_order, ordered, paper_timing
from ..pooled import finite
from ..render import ReportTable
from .provenance import Provenance
from .rows import datasets_with_numbers, label_of


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
    datasets = datasets_with_numbers(rows)
    used = rows[rows["dataset"].isin(datasets)]
    prov = Provenance(used, extractors=False)
    candidates = ordered(used["model"], PAPER_TIMING_ENTRIES)
    labels = {c: label_of(used, c) for c in candidates}
    reference = next((c for c in candidates if labels[c] == PAPER_TIMING_REFERENCE), candidates[0] if candidates else None)
    out = []
    for d in datasets:
        sizes = sorted({int(b) for b in used[used["dataset"] == d]["batch_size"] if finite(b)}) or [1]
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
                    cell[f"vs. {labels[c]} (paper)"] = (fmt_speedup(paper_timing(task, d, labels[c]), paper_timing(task, d, PAPER_TIMING_REFERENCE))
                                                        if bs == 1 else DASH)
            reps = sorted({int(n) for n in sel["n"] if finite(n)})
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
        f"speed-up = the other model's time / {labels.get(reference, PAPER_TIMING_REFERENCE)}'s, from the same row's numbers.",
        "Functa (3) and Functa (10): Functa meta-trained with 3 and with 10 inner steps (the paper's caption: "
        "'Functa (10) which is trained with 10 gradient steps'), each run with its own number of steps.",
        f"Paper: {PAPER_TIMING_DEVICE}, batch size not stated; shown beside our batch size 1 rows only.",
        *([f"Models timed — {'; '.join(archs)}."] if archs else []),
        *prov.notes(datasets),
    ]
    untimed = ordered(set(t[(t["metric"] == keys.PSNR) & t["mean"].notna() & (t["kind"] != KIND_REFERENCE)]["dataset"]) - set(datasets), dataset_order())
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
