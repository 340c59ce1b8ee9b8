"""The speed claims of the paper's Tables 2 and 5: who is faster (a test on every measured call), and how much faster,
which is compared with the paper only on the paper's device."""

from __future__ import annotations

import math

import numpy as np

from ...eval import keys
from ...eval.paper import PAPER_MODEL_NAMES, PAPER_TIMING, PAPER_TIMING_DEVICE
from ...eval.tidy import CALLS_SUFFIX, TIMED_ARCHITECTURE
from ..labels import dataset_order, ordered, paper_key
from ..stats import faster_test
from .evidence import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    NOT_TESTABLE,
    REPRODUCED,
    Evidence,
    Verdict,
)

SPEED_P = 0.05  # one-sided Mann-Whitney p below which one model's calls are faster than the other's

SPEED_TABLES = ((keys.TIME_RECONSTRUCTION, "Table 2", "reconstruction"), (keys.TIME_SUPER_RECONSTRUCTION, "Table 5", "2x super-reconstruction"))


def _paper_ratio(task: str, d: str, other: str) -> float | None:
    row = PAPER_TIMING.get(task, {}).get(paper_key(d))
    if not row or PAPER_MODEL_NAMES[other] not in row:
        return None
    return row[PAPER_MODEL_NAMES[other]] / row["VAMoH"]


def speed_claims(ev: Evidence, datasets: list[str]) -> list[Verdict]:
    """Per dataset as the paper's Tables 2 and 5 print it: who is faster (tested on every measured call), and how
    much faster, which is compared with the paper's ratio only on the paper's device."""
    t = ev.t
    out = []
    timed = set(t[t["metric"].str.startswith("time_")]["dataset"])
    devices: set[str] = set()
    untimed: set[str] = set()
    for task, table, what in SPEED_TABLES:
        for other in ("functa", "functa10"):
            for d in datasets:
                ratio_paper = _paper_ratio(task, d, other)
                if ratio_paper is None:
                    continue
                claim = f"Speed ({what}): VAMoH faster than {PAPER_MODEL_NAMES[other]}"
                paper = f"{table}: × {ratio_paper:.2f} ({PAPER_TIMING_DEVICE})"
                rows = t[(t["dataset"] == d) & (t["metric"] == f"time_{task}{CALLS_SUFFIX}") & (t["batch_size"] == 1)]
                v, f = rows[rows["model"] == "vamoh"], rows[rows["model"] == other]
                if v.empty or f.empty:
                    if timed and d not in timed:
                        untimed.add(d)
                    else:
                        out.append(Verdict(claim, d, paper, "—", NOT_TESTABLE, f"no per-call timings of VAMoH and {PAPER_MODEL_NAMES[other]} at batch size 1"))
                    continue
                vt, ft = np.asarray(v["values"].iloc[0], np.float64), np.asarray(f["values"].iloc[0], np.float64)
                p_faster, p_slower = faster_test(vt, ft), faster_test(ft, vt)
                ratio = float(np.median(ft) / np.median(vt))
                devices.add(str(v["device"].iloc[0]))
                measured = (f"× {ratio:.2f} (median {PAPER_MODEL_NAMES[other]} / median VAMoH; range over all pairs of calls "
                            f"[{ft.min() / vt.max():.2f}, {ft.max() / vt.min():.2f}]) at batch size 1 ({v['note'].iloc[0]}; {v['device'].iloc[0]})")
                verdict = REPRODUCED if p_faster < SPEED_P else NOT_REPRODUCED if p_slower < SPEED_P else INCONCLUSIVE
                reason = (f"direction only: one-sided Mann-Whitney on the calls, p = {p_faster:.3g} (faster when p < {SPEED_P:g}; "
                          f"{min(len(vt), len(ft))} calls each can give at best {1 / math.comb(2 * min(len(vt), len(ft)), min(len(vt), len(ft))):.3g}); "
                          f"{timed_models(v['note'].iloc[0])}; the magnitude is not compared across devices")
                out.append(Verdict(claim, d, paper, measured, verdict, reason, f"n = {len(vt)} and {len(ft)} calls"))
    for d in ordered(untimed, dataset_order()):
        out.append(Verdict("Speed (Tables 2 and 5): VAMoH faster than Functa (3) and Functa (10)", d, "Tables 2 and 5", "—", NOT_TESTABLE,
                           "not timed in this run (eval.timing_datasets)"))
    if devices:
        on_paper_device = all("V100" in dev for dev in devices)
        for task, table, what in SPEED_TABLES:
            ratios = [r for other in ("functa", "functa10") for d in datasets if (r := _paper_ratio(task, d, other)) is not None]
            if not ratios:
                continue
            out.append(Verdict(f"Speed ({what}): how many times faster", "", f"{table}: × {min(ratios):.2f} to × {max(ratios):.2f} ({PAPER_TIMING_DEVICE})",
                               f"measured on {', '.join(sorted(devices))}; the ratios are in {table}", NOT_TESTABLE,
                               "the paper's device, but the paper states no margin for a magnitude: the table prints both" if on_paper_device else
                               f"a ratio of times depends on the device: this run's is not the paper's {PAPER_TIMING_DEVICE}"))
    return out


def timed_models(note: str) -> str:
    """What the timing rule timed, from its rows' note ("untrained, at the paper's architecture, ..." or "the trained
    model, ..."; ``vamoh.eval.tidy.rows_from_timing``)."""
    return ("untrained models at the paper's architecture" if str(note).startswith(TIMED_ARCHITECTURE["paper"])
            else "the trained models")
