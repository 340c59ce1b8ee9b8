"""CelebA-HQ at 64x64.

Real format: an image folder (JPEG/PNG, searched recursively so a torchvision-style class
subfolder works too), e.g. Functa's 30,000 128x128 JPEGs. Files are sorted by relative path; the
first 90% are train, the last 10% test (Functa's rule); no validation split. Each image is
centre-cropped to a square if needed and resized to 64x64 with the configured method
(``resize``, ``resize_library``, ``antialias``), which is recorded: resizing changes FID.

Stand-in: no colour face data can be had offline, so a procedural face generator draws each
face at 128x128 (background, clothes, hair, neck, face, brows, eyes, nose, mouth; skin tone, hair
colour and style, eye colour, expression and pose varied by seed) and the same resize takes it
to 64x64. It also records each pixel's true part (background, clothes, hair, face: ``PART_NAMES``),
which the evaluation compares with VAMoH's segmentation maps.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .files import IMAGE_SUFFIXES, check_count, list_files, open_rgb, require_dir, warn_data
from .spec import SPLITS, DatasetSpec, RawSplits, SuperResTruth, cap, check_superres_count, fraction_split

if TYPE_CHECKING:
    from .config import DataConfig

SIZE = 64
SOURCE_SIZE = 128  # the stand-in's drawing size, the size of Functa's CelebA-HQ files
REAL_COUNT = 30_000  # images in CelebA-HQ (Functa's release); another count is reported, not refused

SPEC = DatasetSpec(
    name="celebahq64",
    label="CelebA-HQ 64x64",
    kind="image",
    coord_system="grid",
    grid_shape=(SIZE, SIZE),
    feature_dim=3,
    likelihood="discretized_logistic",
    formats=("folder",),
    split_rule="sorted file names: first 90% train, last 10% test; no validation split",
    standin="synthetic procedural faces, no photographs",
    standin_sizes=(1080, 0, 120),
    paper_batch_size=64,
    short_name="CelebA-HQ 64",
    paper_order=3,
    paper_key="celebahq",
)

SKIN = np.array([[255, 224, 196], [234, 192, 160], [210, 160, 120], [168, 112, 72], [110, 70, 45]]) / 255.0
HAIR = np.array([[20, 15, 12], [70, 45, 25], [140, 95, 50], [215, 180, 110], [160, 60, 25], [170, 170, 170]]) / 255.0
IRIS = np.array([[70, 45, 25], [60, 110, 170], [70, 130, 80], [120, 90, 50]]) / 255.0


def resize_description(cfg: DataConfig) -> str:
    aa = "antialias" if cfg.resize_library == "pil" or cfg.antialias else "no antialias"
    return f"{cfg.resize_library} {cfg.resize}, {aa}"


def resize(images: np.ndarray, cfg: DataConfig, size: int = SIZE) -> np.ndarray:
    """(N, h, w, 3) uint8 square images -> (N, size, size, 3) uint8 with the configured method."""
    if images.shape[1:3] == (size, size):
        return images
    if cfg.resize_library == "pil":
        from PIL import Image

        method = getattr(Image.Resampling, cfg.resize.upper())
        return np.stack([np.asarray(Image.fromarray(img).resize((size, size), method)) for img in images])
    x = torch.from_numpy(np.array(images)).permute(0, 3, 1, 2).float()  # a copy: the input may be read-only
    kwargs = {"antialias": cfg.antialias} if cfg.resize in ("bilinear", "bicubic") else {}
    if cfg.resize in ("bilinear", "bicubic"):
        kwargs["align_corners"] = False
    y = torch.nn.functional.interpolate(x, size=(size, size), mode=cfg.resize, **kwargs)
    return y.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


# ----------------------------------------------------------------------------- stand-in


PART_NAMES = ("background", "clothes", "hair", "face")  # the stand-in's true parts: label 0..3 per pixel
BACKGROUND, CLOTHES, HAIR_PART, FACE = range(4)


def face(rng: np.random.Generator, size: int = SOURCE_SIZE, with_parts: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """One procedural face, (size, size, 3) uint8; ``with_parts`` also its parts (size, size) int8 (``PART_NAMES``:
    the face part holds the skin with its features: ears, neck, brows, eyes, nose, mouth)."""
    n = size
    y, x = (np.mgrid[0:n, 0:n] + 0.5) / n * 128.0  # coordinates in 128-px units, whatever the size

    def ellipse(cx: float, cy: float, ax: float, ay: float, angle: float = 0.0) -> np.ndarray:
        c, s = np.cos(angle), np.sin(angle)
        u, v = (x - cx) * c + (y - cy) * s, -(x - cx) * s + (y - cy) * c
        return (u / ax) ** 2 + (v / ay) ** 2 <= 1.0

    def paint(mask: np.ndarray, colour: np.ndarray, part: int = FACE) -> None:
        img[mask] = colour
        parts[mask] = part

    top, bottom = rng.uniform(0.1, 0.9, 3), rng.uniform(0.1, 0.9, 3)
    img = top + (bottom - top) * (y / 128.0)[..., None]  # background gradient
    parts = np.full((n, n), BACKGROUND, dtype=np.int8)
    t = rng.uniform(0, len(SKIN) - 1)
    skin = SKIN[int(t)] + (SKIN[min(int(t) + 1, len(SKIN) - 1)] - SKIN[int(t)]) * (t - int(t))
    hair = HAIR[rng.integers(len(HAIR))] * rng.uniform(0.85, 1.15)
    cx, cy = 64 + rng.uniform(-6, 6), 62 + rng.uniform(-4, 6)
    ax, ay = rng.uniform(26, 33), rng.uniform(34, 42)
    tilt = rng.uniform(-0.12, 0.12)
    long_hair = rng.random() < 0.5
    paint(ellipse(cx, 140, rng.uniform(45, 60), 34), rng.uniform(0.05, 0.8, 3), CLOTHES)  # shoulders / clothes
    if long_hair:
        paint(ellipse(cx, cy + 12, ax + 9, ay + 22, tilt) & (y < cy + ay + rng.uniform(5, 30)), hair, HAIR_PART)
    paint((np.abs(x - cx) < ax * 0.45) & (y > cy + ay * 0.6) & (y < 128), skin * 0.85)  # neck
    for side in (-1, 1):  # ears
        paint(ellipse(cx + side * ax * 0.98, cy + 2, 5, 9), skin * 0.92)
    face_mask = ellipse(cx, cy, ax, ay, tilt)
    shade = 1.0 - 0.15 * (((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2)
    img[face_mask] = np.clip(skin[None, :] * shade[face_mask][:, None], 0, 1)
    parts[face_mask] = FACE
    hairline = cy - ay * rng.uniform(0.35, 0.6) + 0.004 * (x - cx) ** 2
    paint(ellipse(cx, cy - 4, ax + 4, ay + 6, tilt) & (y < hairline), hair, HAIR_PART)  # hair on top
    eye_y, eye_dx = cy - ay * 0.1, ax * rng.uniform(0.36, 0.44)
    iris = IRIS[rng.integers(len(IRIS))]
    open_ = rng.uniform(3.0, 4.5)
    for side in (-1, 1):
        ex = cx + side * eye_dx
        paint(ellipse(ex, eye_y - 9, 7, 1.6, -side * rng.uniform(0, 0.2)), hair * 0.8)  # brow
        paint(ellipse(ex, eye_y, 6.5, open_), np.array([0.95, 0.95, 0.93]))
        paint(ellipse(ex + rng.uniform(-1, 1), eye_y, 3.2, min(3.2, open_)), iris)
        paint(ellipse(ex, eye_y, 1.5, 1.5), np.array([0.05, 0.05, 0.05]))
    paint(ellipse(cx, cy + ay * 0.22, 3.5, 7), skin * 0.82)  # nose shadow
    mouth_y, mouth_w = cy + ay * 0.5, rng.uniform(8, 13)
    smile = rng.uniform(-0.02, 0.06)
    curve = mouth_y - smile * ((x - cx) ** 2 - mouth_w**2 / 2)  # y grows downwards: smile > 0 lifts the corners
    lips = (np.abs(x - cx) < mouth_w) & (np.abs(y - curve) < rng.uniform(1.5, 3.5))
    paint(lips, np.array([0.65, 0.25, 0.3]) * rng.uniform(0.8, 1.1))
    out = np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)
    return (out, parts) if with_parts else out


def _faces(cfg: DataConfig, first: int, n: int) -> np.ndarray:
    if n == 0:
        return np.zeros((0, SOURCE_SIZE, SOURCE_SIZE, 3), np.uint8)
    return np.stack([face(np.random.default_rng([cfg.seed, first + i])) for i in range(n)])


def downsample_parts(parts: np.ndarray, size: int = SIZE) -> np.ndarray:
    """Parts (N, s, s) drawn at s = a multiple of ``size`` -> (N, size, size) int8: each pixel the part most of its
    block shows (a tie goes to the later part: face over hair over clothes over background)."""
    N, s = parts.shape[0], parts.shape[1]
    f = s // size
    if f * size != s:
        raise ValueError(f"parts of side {s}: not a multiple of {size}")
    votes = np.stack([parts == k for k in range(len(PART_NAMES))], axis=-1).reshape(N, size, f, size, f, -1).sum(axis=(2, 4))
    return (len(PART_NAMES) - 1 - votes[..., ::-1].argmax(axis=-1)).astype(np.int8)


def _faces_and_parts(cfg: DataConfig, first: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The faces of ``_faces`` and their parts at 64x64."""
    if n == 0:
        return np.zeros((0, SOURCE_SIZE, SOURCE_SIZE, 3), np.uint8), np.zeros((0, SIZE, SIZE), np.int8)
    done = [face(np.random.default_rng([cfg.seed, first + i]), with_parts=True) for i in range(n)]
    return np.stack([d[0] for d in done]), downsample_parts(np.stack([d[1] for d in done]))


def _standin_sizes(cfg: DataConfig) -> dict[str, int]:
    sizes = dict(zip(SPLITS, SPEC.standin_sizes))
    return {s: sizes[s] if getattr(cfg, f"n_{s}") is None or s == "val" else getattr(cfg, f"n_{s}") for s in SPLITS}


def build_standin(cfg: DataConfig) -> RawSplits:
    sizes = _standin_sizes(cfg)
    # Face i of the sorted list: train is 0..n_train-1, test follows, as the 90/10 rule cuts a folder.
    (train, train_parts), (test, test_parts) = _faces_and_parts(cfg, 0, sizes["train"]), _faces_and_parts(cfg, sizes["train"], sizes["test"])
    arrays = {"train": resize(train, cfg), "val": np.zeros((0, SIZE, SIZE, 3), np.uint8), "test": resize(test, cfg)}
    parts = {"train": train_parts, "val": np.zeros((0, SIZE, SIZE), np.int8), "test": test_parts}
    return RawSplits(arrays, meta={"resize": resize_description(cfg), "source_size": SOURCE_SIZE, "part_names": list(PART_NAMES)}, parts=parts)


def render_superres(cfg: DataConfig, split: str, count: int, factor: int) -> SuperResTruth:
    """The first ``count`` faces of the stand-in's ``split`` at ``factor`` times 64x64, by the stored faces' own recipe
    at the larger size: drawn from the same random draws at twice the output size (``SOURCE_SIZE * factor``) and
    resized to ``SIZE * factor`` with the configured method. (count, 64 * factor, 64 * factor, 3) uint8, cell-centred
    (``face`` places its shapes in 128-px units whatever the drawing size).

    Block-averaging ``factor`` x ``factor`` pixels gives the stored face up to the resize filter (bicubic's support
    spans more than one block) and rounding: tests/test_data_superres.py measures the difference (0..255 levels) and
    bounds it. Costs ``factor**2`` times the stored face per sample (its drawing and resize have that many pixels).
    """
    sizes = _standin_sizes(cfg)
    check_superres_count(SPEC.label, split, count, sizes[split])
    first = {"train": 0, "val": sizes["train"], "test": sizes["train"]}[split]  # build_standin's face indices
    draw, size = SOURCE_SIZE * factor, SIZE * factor
    values = np.empty((count, size, size, 3), np.uint8)
    for lo in range(0, count, 16):  # resized 16 at a time: one torch call per chunk, the drawings' memory bounded
        idx = range(lo, min(lo + 16, count))
        values[lo : idx.stop] = resize(np.stack([face(np.random.default_rng([cfg.seed, first + i]), size=draw) for i in idx]), cfg, size=size)
    return SuperResTruth(values, f"procedural faces drawn at {draw}x{draw} from the same random draws and resized to {size}x{size} "
                                 f"with {resize_description(cfg)}, as the stored {SIZE}x{SIZE} ones are drawn at "
                                 f"{SOURCE_SIZE}x{SOURCE_SIZE} and resized")


# ----------------------------------------------------------------------------- real format


def detect_format(root: Path) -> str:
    return "folder"


def _square(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    m = min(h, w)
    return img[(h - m) // 2 : (h - m) // 2 + m, (w - m) // 2 : (w - m) // 2 + m]


def load_real(cfg: DataConfig, fmt: str) -> RawSplits:
    root = require_dir(cfg.path, "CelebA-HQ image folder")
    files = list_files(root, IMAGE_SUFFIXES, "CelebA-HQ image folder", recursive=True)
    meta: dict = {"root": str(root), "files": len(files), "resize": resize_description(cfg)}
    check_count(meta, "CelebA-HQ image folder", root, len(files), REAL_COUNT, "images")
    blocks = dict(zip(("train", "test"), fraction_split(len(files), (0.9, 0.1))))
    arrays = {"val": np.zeros((0, SIZE, SIZE, 3), np.uint8)}
    cropped = 0
    small: list[tuple[int, Path]] = []  # (side after the square crop, file) of images upsampled to SIZE
    for split, idx in blocks.items():
        idx = cap(idx, getattr(cfg, f"n_{split}"))
        out = np.empty((len(idx), SIZE, SIZE, 3), np.uint8)
        for j, i in enumerate(idx):
            img = np.asarray(open_rgb(files[i], "CelebA-HQ"))
            cropped += img.shape[0] != img.shape[1]
            if min(img.shape[:2]) < SIZE:
                small.append((min(img.shape[:2]), files[i]))
            out[j] = resize(_square(img)[None], cfg)[0]
        arrays[split] = out
    meta["centre_cropped"] = int(cropped)
    meta["upsampled"] = len(small)
    if small:
        side, worst = min(small)
        warn_data(meta, f"CelebA-HQ: {len(small)} image(s) smaller than {SIZE}x{SIZE} were upsampled (the smallest, {worst}, "
                        f"is {side} px on its short side): their pixels are interpolated, not CelebA-HQ's detail")
    return RawSplits(arrays, meta=meta)


def write_real(cfg: DataConfig, out_dir: Path, fmt: str) -> Path:
    """The stand-in's faces as 128x128 PNGs ``{i:05d}.png`` (train then test): Functa's layout, lossless."""
    from PIL import Image

    sizes = _standin_sizes(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(_faces(cfg, 0, sizes["train"] + sizes["test"])):
        Image.fromarray(img).save(out_dir / f"{i:05d}.png")
    return out_dir
