"""The one-page summary's verdicts follow fixed rules on the numbers and their spread (synthetic tidy tables)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from vamoh.eval import keys
from vamoh.report.summary import INCONCLUSIVE, NOT_REPRODUCED, NOT_TESTABLE, REPRODUCED, build_summary, render_summary


def row(d, m, metric, values, bs=None, note="", label=None):
    values = [float(v) for v in values]
    return dict(dataset=d, model=m, label=label or m, kind="reference" if m in keys.REFERENCE_MODELS else "model", seed=0,
                metric=metric, split="", mean=float(np.mean(values)), std=0.0, n=len(values), values=json.dumps(values),
                batch_size=bs, is_standin=True, data_label=f"{d} (stand-in)", feature_extractor="suite", num_samples=0,
                device="cpu: test", note=note)


def tidy(vamoh_poly, functa_poly, base_poly=10.0):
    rng = np.random.default_rng(0)
    rows = []
    n = 200
    noise = rng.normal(0, 1.0, n)
    rows += [row("polymnist", "vamoh", keys.PSNR, vamoh_poly + noise), row("polymnist", "functa", keys.PSNR, functa_poly + noise + rng.normal(0, 0.1, n)),
             row("polymnist", keys.REF_MEAN, keys.PSNR, np.full(n, base_poly))]
    # ERA5: VAMoH clearly better than Functa
    rows += [row("era5", "vamoh", keys.PSNR, 30 + noise), row("era5", "functa", keys.PSNR, 27 + noise), row("era5", keys.REF_MEAN, keys.PSNR, np.full(n, 20.0))]
    # timing: [q25, median, q75, min, max] seconds per sample
    for d, f3, f10 in (("polymnist", 0.030, 0.10), ("era5", 0.012, 0.07)):
        rows.append(row(d, "vamoh", "time_reconstruction", [0.0095, 0.010, 0.0105, 0.009, 0.011], bs=1, note="untrained, at the paper's architecture"))
        rows.append(row(d, "functa", "time_reconstruction", [f3 * 0.95, f3, f3 * 1.05, f3 * 0.9, f3 * 1.1], bs=1))
        rows.append(row(d, "functa10", "time_reconstruction", [f10 * 0.95, f10, f10 * 1.05, f10 * 0.9, f10 * 1.1], bs=1))
    # segmentation: coherent and low-entropy on PolyMNIST
    rows += [row("polymnist", "vamoh", keys.SEGMENT_COHERENCE, 0.9 + rng.normal(0, 0.02, 50)),
             row("polymnist", "vamoh", keys.SEGMENT_CHANCE, 0.5 + rng.normal(0, 0.02, 50)),
             row("polymnist", "vamoh", keys.MIXTURE_ENTROPY, 0.2 + rng.normal(0, 0.02, 50))]
    # generation on CelebA-HQ: GASP < Functa < VAMoH in FID, all between the floor and noise; Shapes3D: VAMoH above noise
    for m, fid in (("gasp", 20), ("functa", 40), ("vamoh", 60), (keys.REF_HELDOUT, 5), (keys.REF_NOISE, 300)):
        rows.append(row("celebahq64", m, keys.FID_TRAIN, fid + rng.normal(0, 0.5, 5)))
    for m, fid in (("gasp", 100), ("functa", 50), ("vamoh", 400), (keys.REF_HELDOUT, 5), (keys.REF_NOISE, 300)):
        rows.append(row("shapes3d", m, keys.FID_TRAIN, fid + rng.normal(0, 0.5, 5)))
    return pd.DataFrame(rows)


def by(verdicts, claim_start, dataset):
    out = [v for v in verdicts if v.claim.startswith(claim_start) and v.dataset == dataset]
    assert len(out) >= 1, (claim_start, dataset, verdicts)
    return out


def test_verdicts_follow_the_rules():
    verdicts, context = build_summary(tidy(vamoh_poly=20.0, functa_poly=20.2))
    assert by(verdicts, "Reconstruction", "polymnist")[0].verdict == REPRODUCED  # -0.2 dB: comparable, tight interval
    era5 = {v.claim: v.verdict for v in by(verdicts, "Reconstruction", "era5")}
    assert set(era5.values()) == {REPRODUCED} and len(era5) == 2  # 3 dB better: comparable-or-better, and better
    speed = {(v.dataset, v.claim.split("than ")[1]): v.verdict for v in by(verdicts, "Speed (reconstruction)", "polymnist") + by(verdicts, "Speed (reconstruction)", "era5")}
    assert speed[("polymnist", "Functa (3)")] == REPRODUCED  # x3.0, bounded by the IQRs: [2.71, 3.32] > 2
    assert speed[("polymnist", "Functa (10)")] == REPRODUCED  # x10
    assert speed[("era5", "Functa (3)")] == NOT_REPRODUCED  # x1.2
    assert speed[("era5", "Functa (10)")] == INCONCLUSIVE  # x7.0, [6.33, 7.74] straddles 7
    assert by(verdicts, "Segmentation", "polymnist")[0].verdict == REPRODUCED
    celeba = {v.claim: v.verdict for v in by(verdicts, "Generation", "celebahq64")}
    assert set(celeba.values()) == {REPRODUCED}
    shapes = by(verdicts, "Generation", "shapes3d")
    assert any(v.verdict == NOT_TESTABLE and "outside [real floor" in v.reason for v in shapes)  # VAMoH's FID above noise
    assert "stand-in" in context[0].lower()
    page = render_summary(verdicts, context, "t")
    assert "**Tally:**" in page and page.count("| Reconstruction") == 6  # PolyMNIST, CelebA: 1 claim; ERA5, Shapes3D: 2
    # CelebA-HQ and Shapes3D have no reconstructions in this table: said so, not skipped
    assert by(verdicts, "Reconstruction", "shapes3d")[0].verdict == NOT_TESTABLE


def test_a_model_that_does_not_beat_the_train_mean_makes_the_claim_untestable():
    verdicts, _ = build_summary(tidy(vamoh_poly=10.5, functa_poly=10.4, base_poly=10.0))
    v = by(verdicts, "Reconstruction", "polymnist")[0]
    assert v.verdict == NOT_TESTABLE and "did not beat the train-mean baseline (10.00 dB)" in v.reason


def test_a_clearly_worse_vamoh_is_not_comparable_and_a_better_one_is():
    verdicts, _ = build_summary(tidy(vamoh_poly=18.0, functa_poly=20.0))
    assert by(verdicts, "Reconstruction", "polymnist")[0].verdict == NOT_REPRODUCED  # 2 dB worse
    verdicts, _ = build_summary(tidy(vamoh_poly=23.0, functa_poly=20.0))
    assert by(verdicts, "Reconstruction", "polymnist")[0].verdict == REPRODUCED  # better is comparable-or-better
    verdicts, _ = build_summary(tidy(vamoh_poly=19.0, functa_poly=20.0))
    assert by(verdicts, "Reconstruction", "polymnist")[0].verdict == INCONCLUSIVE  # -1 dB: on the threshold
