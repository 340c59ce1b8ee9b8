"""The segmentation claim (Figures 10, 25): VAMoH's most probable component forms segmentation-like maps with low entropy."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...eval import keys
from ..stats import paired, seeded_interval
from .evidence import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    NOT_TESTABLE,
    REPRODUCED,
    Evidence,
    Verdict,
    side,
)

LOW_ENTROPY = 0.5  # "low entropy for most points": mean H / ln K below this


def segmentation_claims(t: pd.DataFrame, datasets: list[str], *, kappa_margin: float = 0.5, position_ari_max: float = 0.9,
                        low_entropy: float = LOW_ENTROPY) -> list[Verdict]:
    """Figures 10, 25: VAMoH's argmax component forms segmentation-like maps with low entropy.

    Reproduced only when every part of the claim holds on its 95% interval (over the training seeds' means with two
    or more seeds, else over the test samples; ``vamoh.report.stats.seeded_interval``):
    contiguous segments (segment_kappa above ``kappa_margin``: fewer than half the disagreeing neighbours of speckle
    with the same component shares), maps that follow the input (segment_position_ari below ``position_ari_max``:
    1 = the same partition of the grid for every input), low entropy (mixture_entropy below ``low_entropy``) and,
    where the data has true parts, segments closer to them than k-means on colour (the paired per-sample
    difference segment_parts_ari - segment_parts_ari_kmeans above 0). Any part on the wrong side: not reproduced;
    otherwise a straddling interval: inconclusive. A fixed partition by position is a measurement against the
    claim (maps that ignore the input are not segmentations of it), so it is "not reproduced", not "not testable";
    a run without the scores (evaluated before they existed) is not testable.
    """
    out = []
    claim = "Segmentation: the mixture's most probable component forms coherent regions that follow the input, with low entropy"
    paper = "Figures 10, 25: low entropy except at borders; segmentation-like maps"

    ev = Evidence(t)

    def per_seed(d: str, metric: str) -> dict[int, np.ndarray] | None:
        return ev.per_seed(d, "vamoh", metric) or None

    methods: list[str] = []

    def spread(v: dict[int, np.ndarray]) -> tuple[float, float, float]:
        finite = {s: x[np.isfinite(x)] for s, x in v.items() if np.isfinite(x).any()}
        iv = seeded_interval(finite)
        methods.append(f"n = {iv.n}: {iv.method}")
        allv = np.concatenate(list(finite.values())) if finite else np.array([])
        return (iv.mean,) * 3 if allv.size and np.ptp(allv) == 0 else (iv.mean, iv.low, iv.high)  # no spread: the interval is the value

    def combine(parts: list[tuple[str, str]]) -> tuple[str, list[str]]:
        verdicts = [v for v, _ in parts]
        verdict = REPRODUCED if all(v == REPRODUCED for v in verdicts) else NOT_REPRODUCED if NOT_REPRODUCED in verdicts else INCONCLUSIVE
        return verdict, [f"{what}: {v}" for v, what in parts if v != REPRODUCED]

    for d in datasets:
        methods.clear()
        coh, ent = (per_seed(d, k) for k in (keys.SEGMENT_COHERENCE, keys.MIXTURE_ENTROPY))
        if coh is None or ent is None:
            continue
        scored = t[(t["dataset"] == d) & (t["model"] == "vamoh") & (t["metric"] == keys.SEGMENT_KAPPA)]
        kappa, pos = (per_seed(d, k) for k in (keys.SEGMENT_KAPPA, keys.SEGMENT_POSITION_ARI))
        parts, km = (per_seed(d, k) for k in (keys.SEGMENT_PARTS_ARI, keys.SEGMENT_PARTS_ARI_KMEANS))
        if scored.empty or pos is None:
            out.append(Verdict(claim, d, paper, "—", NOT_TESTABLE, "the segmentation scores (contiguity κ, position ARI) were not computed: "
                               "the run was evaluated before they existed, or had fewer than 2 test samples"))
            continue
        em, elo, ehi = spread(ent)
        n = int(sum(np.isfinite(v).sum() for v in coh.values()))
        undefined = n - (0 if kappa is None else int(sum(np.isfinite(v).sum() for v in kappa.values())))
        if kappa is None or undefined * 2 > n:
            measured = f"κ undefined on {undefined} of {n} test samples; entropy / ln K = {em:.3f} [{elo:.3f}, {ehi:.3f}]"
            out.append(Verdict(claim, d, paper, measured, NOT_REPRODUCED,
                               "one component covers every point of most test samples (κ undefined: chance level 1): nothing is segmented"))
            continue
        km_, klo, khi = spread(kappa)
        pm, plo, phi = spread(pos)
        measured = (f"contiguity κ = {km_:.3f} [{klo:.3f}, {khi:.3f}]" + (f" (undefined on {undefined} of {n})" if undefined else "")
                    + f"; position ARI = {pm:.3f} [{plo:.3f}, {phi:.3f}]; entropy / ln K = {em:.3f} [{elo:.3f}, {ehi:.3f}]")
        checks = [(side(klo, khi, kappa_margin), f"κ above {kappa_margin:g}"),
                  (side(plo, phi, position_ari_max, above=False), f"position ARI below {position_ari_max:g}"),
                  (side(elo, ehi, low_entropy, above=False), f"entropy / ln K below {low_entropy:g}")]
        rule = (f"reproduced needs contiguous segments (κ above {kappa_margin:g}), maps that follow the input (position ARI below "
                f"{position_ari_max:g}; 1 = one partition of the grid for every input) and low entropy (below {low_entropy:g})")
        if parts is not None and km is not None:
            diff = paired(parts, km)
            if diff:
                dm, dlo, dhi = spread(diff)
            else:  # not paired: the difference of the means, without an interval
                dm = dlo = dhi = float(np.nanmean(np.concatenate(list(parts.values()))) - np.nanmean(np.concatenate(list(km.values()))))
            am, alo, ahi = spread(parts)
            bm, blo, bhi = spread(km)
            measured += (f"; true parts ARI = {am:.3f} [{alo:.3f}, {ahi:.3f}] vs k-means on colour {bm:.3f} [{blo:.3f}, {bhi:.3f}], "
                         f"difference {dm:+.3f} [{dlo:+.3f}, {dhi:+.3f}]")
            checks.append((side(dlo, dhi, 0.0), "parts ARI above the k-means baseline"))
            rule += "; with true parts, an ARI with them above k-means on colour's (paired difference above 0)"
        verdict, failing = combine(checks)
        if pm == 1.0 and plo == 1.0:
            failing.insert(0, "every map is the same partition of the grid: a partition by position, not a segmentation of the input")
        seeds = len(set(scored["seed"]))
        out.append(Verdict(claim, d, paper, measured, verdict, rule + (". Failing: " + "; ".join(failing) if failing else ""),
                           methods[0] if methods else f"n = {n} test samples over {seeds} seeds"))
    return out
