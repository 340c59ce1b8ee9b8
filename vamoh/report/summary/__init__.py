"""A one-page summary: each claim of the paper, its evidence, what this run measured, and a verdict.

Verdicts are rules on the numbers with their spread, never hand-written, so that a rerun on another machine
gives the same verdicts unless a number sits on a rule's boundary:

- reproduced: the measurement's 95% interval lies on the claim's side of its threshold;
- not reproduced: the interval lies on the other side;
- inconclusive: the interval straddles the threshold (or there is no interval: one unit);
- not testable at this scale: a precondition fails, with the reason.

Preconditions (the learned-gates): no comparison uses a model that has not learned what is compared.

- reconstruction: the model beats the train-mean baseline by CLEAR_MARGIN_DB;
- generation: its FID is below every baseline generator of the reference stage (the train-mean image
  repeated, one real image repeated, heavily blurred real images, uniform noise) and above the real floor; its
  samples are spread like the data (SPREAD_MIN of the real set's feature spread) and are not near-copies of the
  training set (MEMORISATION_CLOSE_MAX); an adversarial model's
  discriminator left chance (D_ACCURACY_MIN and D_GAP_MIN over the last 20% of training); the feature extractor passes its
  quality gate, and for precision/recall it also tells noise from data (NOISE_PRECISION_MAX).

Intervals (``vamoh.report.stats``): Student-t over training seeds' means when the run has two or more seeds
(so they include seed variance), else over test samples, generated sets or source clusters of one seed (said
so). ERA5 stand-in test fields are clustered by their real source field. Speed: who is faster is a one-sided
Mann-Whitney test on every measured call; how much faster is compared with the paper only on the paper's
device (a V100), never across devices.

The package: ``evidence`` (what a rule reads, the verdict words), ``gates`` (the learned-gates and their
thresholds), one module per family of claims (``reconstruction``, ``generation``, ``speed``, ``segmentation``),
and ``page`` (every rule run on a run's evidence, and the page that prints them). Below, its public face: the
page, the verdict words, and the thresholds the rules are stated in (the margins shared with the tables live in
vamoh.report.margins).
"""

from __future__ import annotations

from ..margins import CLEAR_MARGIN_DB, CLEAR_MARGIN_IOU
from .evidence import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    NOT_TESTABLE,
    REPRODUCED,
    VERDICTS,
    Evidence,
    Verdict,
)
from .gates import (
    D_ACCURACY_MIN,
    D_GAP_MIN,
    MEMORISATION_CLOSE_MAX,
    NOISE_PRECISION_MAX,
    SPREAD_MIN,
    TAIL,
)
from .generation import OVERFIT_MARGIN
from .page import build_summary, render_summary, source_clusters, write_summary
from .reconstruction import COMPARABLE_DB, COMPARABLE_IOU
from .segmentation import LOW_ENTROPY
from .speed import SPEED_P

__all__ = [
    # the page
    "build_summary", "render_summary", "source_clusters", "write_summary",
    # the verdicts
    "INCONCLUSIVE", "NOT_REPRODUCED", "NOT_TESTABLE", "REPRODUCED", "VERDICTS", "Evidence", "Verdict",
    # the thresholds the rules are stated in
    "CLEAR_MARGIN_DB", "CLEAR_MARGIN_IOU", "COMPARABLE_DB", "COMPARABLE_IOU", "D_ACCURACY_MIN", "D_GAP_MIN", "LOW_ENTROPY",
    "MEMORISATION_CLOSE_MAX", "NOISE_PRECISION_MAX", "OVERFIT_MARGIN", "SPEED_P", "SPREAD_MIN", "TAIL",
]
