"""Metric keys: the one spelling of every number the evaluation writes.

``metrics.json`` always holds every key in ``METRIC_KEYS`` (a metric that does not apply to a
(model, dataset) pair is written with ``mean = None`` and a note), so the tidy table that feeds the
paper's tables, the plots and MLflow has the same columns for every run.
"""

from __future__ import annotations

# Schema tags written into every JSON so that readers can refuse a file of another layout.
METRICS_SCHEMA = "vamoh.eval.metrics/1"
TIMING_SCHEMA = "vamoh.eval.timing/1"

# ---------------------------------------------------------------- generation (Tables 1 and 4)
# "train" = against real embeddings of the train split (the paper's "tr"), "test" = the test split ("tst").
FID_TRAIN = "fid_train"
FID_TEST = "fid_test"
PRECISION_TRAIN = "precision_train"
PRECISION_TEST = "precision_test"
RECALL_TRAIN = "recall_train"
RECALL_TEST = "recall_test"
KID_TRAIN = "kid_train"
KID_TEST = "kid_test"

GENERATION_KEYS = (FID_TRAIN, FID_TEST, PRECISION_TRAIN, PRECISION_TEST, RECALL_TRAIN, RECALL_TEST, KID_TRAIN, KID_TEST)
# Base names of the per-set metrics, before the "_train" / "_test" suffix.
FID, PRECISION, RECALL, KID = "fid", "precision", "recall", "kid"
REAL_SPLITS = ("train", "test")

# ---------------------------------------------------------------- reconstruction (Figure 7)
PSNR = "psnr"  # test-set reconstructions, per-sample PSNR, mean +- std over samples
VOXEL_IOU = "voxel_iou"  # voxels only: intersection over union of occupied voxels (threshold 0.5)
VOXEL_ACCURACY = "voxel_accuracy"  # voxels only: fraction of voxels with the right occupancy

RECONSTRUCTION_KEYS = (PSNR, VOXEL_IOU, VOXEL_ACCURACY)

# ---------------------------------------------------------------- completion (PSNR on the missing region)
PSNR_COMPLETION_CENTRE = "psnr_completion_centre"
PSNR_COMPLETION_HALF = "psnr_completion_half"
PSNR_COMPLETION_OUTPAINT = "psnr_completion_outpaint"

COMPLETION_KEYS = (PSNR_COMPLETION_CENTRE, PSNR_COMPLETION_HALF, PSNR_COMPLETION_OUTPAINT)

METRIC_KEYS = GENERATION_KEYS + RECONSTRUCTION_KEYS + COMPLETION_KEYS

# ---------------------------------------------------------------- timing (Tables 2 and 5)
TIME_RECONSTRUCTION = "reconstruction"
TIME_SUPER_RECONSTRUCTION = "super_reconstruction"
TIMING_TASKS = (TIME_RECONSTRUCTION, TIME_SUPER_RECONSTRUCTION)

# ---------------------------------------------------------------- provenance (every JSON carries these)
PROV_RUN = "run"
PROV_DATASET = "dataset"
PROV_IS_STANDIN = "is_standin"
PROV_MODEL = "model"
PROV_SEED = "seed"
PROV_FEATURE_EXTRACTOR = "feature_extractor"
PROV_NUM_SAMPLES = "num_samples"
PROV_DEVICE = "device"

REQUIRED_PROVENANCE = (
    PROV_RUN,
    PROV_DATASET,
    PROV_IS_STANDIN,
    PROV_MODEL,
    PROV_SEED,
    PROV_FEATURE_EXTRACTOR,
    PROV_NUM_SAMPLES,
    PROV_DEVICE,
)
