"""The learned-gates: no comparison uses a model that has not learned what is compared.

Each gate returns why a model (or a dataset's feature extractor) cannot enter a verdict, or nothing when it can;
a claim rule that finds a reason says "not testable at this scale" with it. The margins a reconstruction must
clear are shared with the tables' marks (vamoh.report.margins).
"""

from __future__ import annotations

from ...eval import keys
from ...eval.paper import PAPER_MODEL_NAMES
from ..margins import CLEAR_MARGIN_DB, CLEAR_MARGIN_IOU
from .evidence import Evidence

SPREAD_MIN = 0.5  # diverse samples: the generated set's feature spread at least half the real set's (collapse = 0)
# An adversarial model's discriminator left chance (accuracy 0.5, D(real) = D(fake)) when, over the last TAIL of
# training, it classifies at least this share of its batches right AND its mean D(real) - D(fake) is at least
# D_GAP_MIN. GASP's unlearnt "tiny" demo measured 0.57 / 0.017 there (with windows up to 0.66 in accuracy, hence
# both), the learning "demo" preset 0.68-0.82 / 0.15-0.42 (docs/baselines.md, "GASP at demo scale").
D_ACCURACY_MIN = 0.65
D_GAP_MIN = 0.1
# memorisation: the share of generated samples nearer a training example than the test split's own 5th percentile
# of nearest-training distances (eval.memorisation_quantile) is about 5% for a generator that does not copy; three
# times that is a generator whose samples are near-copies
MEMORISATION_CLOSE_MAX = 0.15
NOISE_PRECISION_MAX = 0.1  # precision/recall mean something only when uniform noise gets (almost) no precision
TAIL = 0.2  # the share of the last training steps a training diagnostic is averaged over


def reconstruction_gate(ev: Evidence, d: str, model: str, metric: str = keys.PSNR) -> str | None:
    """None when ``model`` reconstructs ``d``'s test split clearly better than the train mean, else why not: PSNR
    CLEAR_MARGIN_DB above it, or on voxels (where PSNR is mostly empty space) occupancy IoU CLEAR_MARGIN_IOU above it;
    under the protocol ``metric`` names (keys.PSNR the paper's, keys.PSNR_LEAK_FREE the leak-free one)."""
    proto = " (leak-free)" if metric == keys.PSNR_LEAK_FREE else ""
    iou_key = keys.VOXEL_IOU_LEAK_FREE if metric == keys.PSNR_LEAK_FREE else keys.VOXEL_IOU
    voxels = ev.mean(d, keys.REF_MEAN, keys.VOXEL_IOU) is not None
    key, base_key, margin, unit, dec = ((iou_key, keys.VOXEL_IOU, CLEAR_MARGIN_IOU, " IoU", 3) if voxels
                                        else (metric, keys.PSNR, CLEAR_MARGIN_DB, " dB", 2))
    own, base = ev.mean(d, model, key), ev.mean(d, keys.REF_MEAN, base_key)
    if own is None or base is None:
        return f"{PAPER_MODEL_NAMES.get(model, model)}{proto} or the train-mean baseline was not evaluated"
    if own < base + margin:
        return (f"{PAPER_MODEL_NAMES.get(model, model)}{proto} did not beat the train-mean baseline ({base:.{dec}f}{unit}) by {margin:g}{unit} "
                f"({own:.{dec}f}{unit})")
    return None


def discriminator_accuracy(ev: Evidence, d: str, model: str) -> list[tuple[str, float, float]]:
    """Per seed of an adversarial model: (what, value, threshold) of its discriminator over the last TAIL of training."""
    out = []
    for rec in ev.trained:
        if rec.get("dataset") != d or rec.get("model") != model:
            continue
        tail = rec.get("tail_means") or {}
        if "d_acc" in tail:
            out.append(("discriminator accuracy", float(tail["d_acc"]), D_ACCURACY_MIN))
        if "d_real" in tail and "d_fake" in tail:
            out.append(("mean D(real) - D(fake)", float(tail["d_real"]) - float(tail["d_fake"]), D_GAP_MIN))
    return out


def generation_gate(ev: Evidence, d: str, model: str, split: str = "train") -> list[str]:
    """Why ``model``'s samples on ``d`` cannot enter a generation verdict (empty: it has learned)."""
    name = PAPER_MODEL_NAMES.get(model, model)
    fid = ev.mean(d, model, f"{keys.FID}_{split}")
    if fid is None:
        return [f"{name} was not evaluated"]
    reasons = []
    floor = ev.mean(d, keys.REF_HELDOUT, f"{keys.FID}_{split}")
    if floor is not None and fid <= floor:
        reasons.append(f"{name}'s FID {fid:.2f} is at or below the real floor {floor:.2f}")
    for ref in keys.GENERATION_BASELINES:
        base = ev.mean(d, ref, f"{keys.FID}_{split}")
        if base is not None and fid >= base:
            reasons.append(f"{name}'s FID {fid:.2f} is not below '{keys.REFERENCE_LABELS[ref]}' ({base:.2f})")
    spread = ev.mean(d, model, f"{keys.SPREAD}_{split}")
    if spread is not None and spread < SPREAD_MIN:
        reasons.append(f"{name}'s samples are not diverse: feature spread {spread:.2f} of the real set's (< {SPREAD_MIN:g})")
    close = ev.mean(d, model, keys.MEMORISATION_CLOSE)
    if close is not None and close > MEMORISATION_CLOSE_MAX:
        reasons.append(f"{name} copies its training set: {close:.1%} of its samples are closer to a training example than the test "
                       f"set's 5th percentile (about 5% expected; gate {MEMORISATION_CLOSE_MAX:.0%})")
    for what, value, threshold in discriminator_accuracy(ev, d, model):
        if value < threshold:
            reasons.append(f"{name}'s discriminator stayed at chance ({what} {value:.2f} < {threshold:g} over the last {TAIL:.0%} of training)")
            break
    return reasons


def extractor_gate(ev: Evidence, d: str, precision_recall: bool = False) -> str | None:
    ext = (ev.references.get(d) or {}).get("extractor") or {}
    q = ext.get("quality") or {}
    if q.get("passes") is False:
        return "the feature extractor fails its quality gate"
    if precision_recall:
        p = ev.mean(d, keys.REF_NOISE, keys.PRECISION_TRAIN)
        if p is not None and p > NOISE_PRECISION_MAX:
            return (f"the feature extractor does not tell noise from data: uniform noise gets precision {p:.2f} "
                    f"(> {NOISE_PRECISION_MAX:g}), so precision/recall say nothing here")
    return None
