"""Metric keys: the one spelling of every number the evaluation writes.

``metrics.json`` always holds every key in ``METRIC_KEYS`` (a metric that does not apply to a
(model, dataset) pair is written with ``mean = None`` and a note), so the tidy table that feeds the
paper's tables, the plots and MLflow has the same columns for every run.
"""

from __future__ import annotations

# Schema tags written into every JSON so that readers can refuse a file of another layout.
METRICS_SCHEMA = "vamoh.eval.metrics/2"
TIMING_SCHEMA = "vamoh.eval.timing/2"
REFERENCE_SCHEMA = "vamoh.eval.reference/1"  # reference.json: the extractor, the sanity rows (floor, ceiling, mean image)
SCORES_SCHEMA = "vamoh.eval.scores/1"  # scores.npz: what every number of metrics.json is computed from

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
# density and coverage (Naeem et al. 2020) on the same features and k as precision/recall
DENSITY_TRAIN = "density_train"
DENSITY_TEST = "density_test"
COVERAGE_TRAIN = "coverage_train"
COVERAGE_TEST = "coverage_test"
# diversity: the generated set's RMS distance to its own mean in feature space over the real split's (1 = as spread
# as the data, 0 = every sample the same); the "samples are diverse" precondition of every generation verdict
SPREAD_TRAIN = "spread_train"
SPREAD_TEST = "spread_test"

GENERATION_KEYS = (FID_TRAIN, FID_TEST, PRECISION_TRAIN, PRECISION_TEST, RECALL_TRAIN, RECALL_TEST, KID_TRAIN, KID_TEST,
                   DENSITY_TRAIN, DENSITY_TEST, COVERAGE_TRAIN, COVERAGE_TEST, SPREAD_TRAIN, SPREAD_TEST)
# Base names of the per-set metrics, before the "_train" / "_test" suffix.
FID, PRECISION, RECALL, KID, DENSITY, COVERAGE, SPREAD = "fid", "precision", "recall", "kid", "density", "coverage", "spread"
SET_METRICS = (FID, KID, PRECISION, RECALL, DENSITY, COVERAGE, SPREAD)
REAL_SPLITS = ("train", "test")

# ---------------------------------------------------------------- 3-D generation (ShapeNet: the field's protocol)
# COV, MMD and 1-NNA under the Chamfer distance between point clouds sampled from the voxel surfaces,
# generated shapes against the test split's (vamoh.eval.pointsets)
COV, MMD, ONE_NNA = "cov", "mmd", "1nna"  # what vamoh.eval.pointsets computes, under any distance
COV_CD = "cov_cd"
MMD_CD = "mmd_cd"
NNA_CD = "1nna_cd"
POINTSET_KEYS = (COV_CD, MMD_CD, NNA_CD)

# ---------------------------------------------------------------- memorisation (vamoh.eval.memorisation)
# generated samples' nearest-training-example distances against the test set's own, in feature space
MEMORISATION_RATIO = "memorisation_ratio"  # median generated / median test distance (~1 = held-out-like, ~0 = copies)
MEMORISATION_CLOSE = "memorisation_close_fraction"  # share of generated samples closer than the test set's 5th percentile
MEMORISATION_KEYS = (MEMORISATION_RATIO, MEMORISATION_CLOSE)

# ---------------------------------------------------------------- reconstruction (Figure 7)
# test-set reconstructions, per-sample PSNR in the paper's convention (eq. 19: squared error summed over
# channels, divided by the number of points), mean +- std over samples
PSNR = "psnr"
VOXEL_IOU = "voxel_iou"  # voxels only: intersection over union of occupied voxels (threshold 0.5)
VOXEL_ACCURACY = "voxel_accuracy"  # voxels only: fraction of voxels with the right occupancy

# the same under the leak-free protocol (vamoh.interface.RECONSTRUCTION_PROTOCOLS): no point's mixture weights read its
# own value; the keys above are the paper's protocol (VAMoH's posterior weights read y at every observed point)
LEAK_FREE_SUFFIX = "_leakfree"
PSNR_LEAK_FREE = PSNR + LEAK_FREE_SUFFIX
VOXEL_IOU_LEAK_FREE = VOXEL_IOU + LEAK_FREE_SUFFIX
VOXEL_ACCURACY_LEAK_FREE = VOXEL_ACCURACY + LEAK_FREE_SUFFIX
LEAK_FREE_KEYS = {PSNR: PSNR_LEAK_FREE, VOXEL_IOU: VOXEL_IOU_LEAK_FREE, VOXEL_ACCURACY: VOXEL_ACCURACY_LEAK_FREE}

# ---------------------------------------------------------------- super-resolution against a true 2x render
# the first eval.superres_samples test samples reconstructed at the cell centres of a 2x grid, against the stand-in's
# own render of the same sample at 2x (vamoh.data.registry.superres_truth); images PSNR (eq. 19), voxels IoU
PSNR_SUPERRES = "psnr_superres"
VOXEL_IOU_SUPERRES = "voxel_iou_superres"
SUPERRES_KEYS = (PSNR_SUPERRES, VOXEL_IOU_SUPERRES)

RECONSTRUCTION_KEYS = (PSNR, VOXEL_IOU, VOXEL_ACCURACY, PSNR_LEAK_FREE, VOXEL_IOU_LEAK_FREE, VOXEL_ACCURACY_LEAK_FREE) + SUPERRES_KEYS

# ---------------------------------------------------------------- completion (PSNR on the missing region)
PSNR_COMPLETION_CENTRE = "psnr_completion_centre"
PSNR_COMPLETION_HALF = "psnr_completion_half"
PSNR_COMPLETION_OUTPAINT = "psnr_completion_outpaint"

# voxels: IoU of the occupancy inside the missing region only (PSNR there is mostly empty space)
VOXEL_IOU_COMPLETION_CENTRE = "voxel_iou_completion_centre"
VOXEL_IOU_COMPLETION_HALF = "voxel_iou_completion_half"
VOXEL_IOU_COMPLETION_OUTPAINT = "voxel_iou_completion_outpaint"

COMPLETION_KEYS = (PSNR_COMPLETION_CENTRE, PSNR_COMPLETION_HALF, PSNR_COMPLETION_OUTPAINT,
                   VOXEL_IOU_COMPLETION_CENTRE, VOXEL_IOU_COMPLETION_HALF, VOXEL_IOU_COMPLETION_OUTPAINT)

# ---------------------------------------------------------------- mixture maps (VAMoH; Figures 10, 25)
MIXTURE_ENTROPY = "mixture_entropy"  # mean over test points of H(pi_d) / ln K, in [0, 1] (1 = uniform weights)
SEGMENT_COHERENCE = "segment_coherence"  # share of neighbouring grid points whose most probable component agrees
SEGMENT_CHANCE = "segment_chance"  # the coherence of a structureless segmentation with the same component shares: sum_k p_k^2

# Segmentation scores (vamoh.eval.maps; docs/evaluation.md, "Segmentation scores"), per test sample:
SEGMENT_KAPPA = "segment_kappa"  # (coherence - chance) / (1 - chance): contiguity normalised for balance; undefined for one component
SEGMENT_POSITION_ARI = "segment_position_ari"  # mean ARI of the map with other inputs' maps: 1 = the same partition whatever the input
SEGMENT_PARTS_ARI = "segment_parts_ari"  # ARI of the map with the true parts (stand-ins that render them; absent otherwise)
SEGMENT_PARTS_ARI_KMEANS = "segment_parts_ari_kmeans"  # the baseline: ARI of k-means (k = number of parts) on colour with the parts

SEGMENTATION_KEYS = (SEGMENT_KAPPA, SEGMENT_POSITION_ARI, SEGMENT_PARTS_ARI, SEGMENT_PARTS_ARI_KMEANS)
MIXTURE_KEYS = (MIXTURE_ENTROPY, SEGMENT_COHERENCE, SEGMENT_CHANCE) + SEGMENTATION_KEYS

METRIC_KEYS = GENERATION_KEYS + POINTSET_KEYS + MEMORISATION_KEYS + RECONSTRUCTION_KEYS + COMPLETION_KEYS + MIXTURE_KEYS

# ---------------------------------------------------------------- the reference rows (reference.json), as tidy "models"
REF_HELDOUT = "real_heldout"  # held-out real images scored as if generated: the floor of FID
REF_NOISE = "noise"  # uniform noise images: the ceiling of FID
REF_MEAN = "mean_image"  # every test sample predicted by the train mean: the floor of reconstruction; as generation, the
# train-mean image repeated (a generator that learned only the average)
REF_COLLAPSED = "collapsed"  # one real image repeated for a whole set: a generator collapsed onto one good sample
REF_BLURRED = "blurred"  # held-out real images under a heavy Gaussian blur: right content, no detail
REF_OBSERVED_MEAN = "observed_mean"  # completion: every hidden point predicted by the mean of the sample's observed points
REF_UPSAMPLED = "upsampled"  # super-resolution: the 1x sample upsampled (bicubic for images, nearest for voxels)
REFERENCE_MODELS = (REF_HELDOUT, REF_NOISE, REF_MEAN, REF_COLLAPSED, REF_BLURRED, REF_OBSERVED_MEAN, REF_UPSAMPLED)
REFERENCE_LABELS = {REF_HELDOUT: "Real held-out (floor)", REF_NOISE: "Uniform noise (ceiling)", REF_MEAN: "Train mean (baseline)",
                    REF_COLLAPSED: "One real image repeated (collapse)", REF_BLURRED: "Real held-out, blurred",
                    REF_OBSERVED_MEAN: "Observed part's mean (baseline)", REF_UPSAMPLED: "1x upsampled (baseline)"}
# generation rows a model must beat (lower FID) to count as having learned, beside the noise ceiling
GENERATION_BASELINES = (REF_MEAN, REF_COLLAPSED, REF_BLURRED, REF_NOISE)

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


# ---------------------------------------------------------------- inference variants ("<entry>@<steps>")
# A model with an inner loop (``inference_steps``) is also scored and timed run for other numbers of steps; each such
# variant is named "<entry>@<steps>" in metrics.json, timing.json and the tidy table. These three functions are the
# only place the name is built or read.
STEPS_SEPARATOR = "@"


def inference_variant(entry: str, steps: int) -> str:
    """The name of ``entry`` run for ``steps`` inner steps, e.g. "functa@10"."""
    return f"{entry}{STEPS_SEPARATOR}{steps}"


def split_inference_variant(name: str) -> tuple[str, int | None]:
    """("functa", 10) for "functa@10"; (name, None) for a plain entry."""
    base, sep, steps = name.rpartition(STEPS_SEPARATOR)
    return (base, int(steps)) if sep else (name, None)


def inference_variant_label(label: str, steps: int) -> str:
    """The display label of an inference variant, e.g. "Functa (3), run 10 steps"."""
    return f"{label}, run {steps} steps"
