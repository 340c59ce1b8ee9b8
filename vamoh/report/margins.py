"""What "beats a baseline" means, one definition for the tables' ✓/✗ marks and the summary's gates and verdicts.

A table that marks a model "✓ above the train mean" and a summary that lets the same model into a comparison
must draw the line at the same place: both read these values.
"""

from __future__ import annotations

from ..eval import keys

CLEAR_MARGIN_DB = 1.0  # a model "beats" the train-mean baseline when its mean PSNR is at least this much higher
# voxels: the occupancy IoU a reconstruction or completion must add over a baseline, the IoU counterpart of CLEAR_MARGIN_DB
# (IoU is on [0, 1]; 0.05 is a twentieth of its range)
CLEAR_MARGIN_IOU = 0.05
# the baselines a completion is scored against on the same samples and regions: the train split's mean inside the mask
# (a completion that ignored the observed part) and the sample's observed part's mean (one that used only its overall colour)
COMPLETION_BASELINES = (keys.REF_MEAN, keys.REF_OBSERVED_MEAN)
