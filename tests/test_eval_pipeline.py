"""One (dataset, model) evaluation end to end on a toy model: metrics.json and timing.json."""

from __future__ import annotations

import numpy as np
import torch

from vamoh.eval import keys
from vamoh.eval.config import EvalConfig
from vamoh.eval.io import read_json
from vamoh.eval.pipeline import EvalInputs, evaluate_model, evaluate_timing
from vamoh.pointcloud import PointCloudBatch, from_grid, grid_coordinates

SIZE = 16


class ToyModel(torch.nn.Module):
    """Samples noise images; reconstructs by copying observed points and filling 0.5 elsewhere."""

    can_reconstruct = True

    def __init__(self, steps: int = 1) -> None:
        super().__init__()
        self.p = torch.nn.Parameter(torch.zeros(1))
        self.steps = steps

    @property
    def device(self):
        return self.p.device

    def sample(self, n, coords, generator=None):
        return torch.rand(n, coords.shape[0], 3, generator=generator, device=coords.device)

    def reconstruct(self, observed, query_coords):
        out = observed.features
        for _ in range(self.steps):
            out = torch.where(observed.mask[..., None], observed.features, torch.full_like(out, 0.5))
        return out


def real_images(n, seed):
    return np.random.default_rng(seed).integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)


def batches(images):
    feats = from_grid(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0)
    coords = grid_coordinates((SIZE, SIZE)).expand(len(images), -1, -1)
    return [PointCloudBatch(coords, feats, torch.ones(len(images), SIZE * SIZE, dtype=torch.bool), (SIZE, SIZE))]


def test_evaluate_model_writes_complete_metrics_json(tmp_path):
    cfg = EvalConfig(num_samples=16, num_sets=2, kid_subset_size=8, extractor_epochs=1, extractor_feature_dim=8, cache_root=str(tmp_path / "cache"), device="cpu", batch_size=8)
    inputs = EvalInputs("toyset", True, "image", (SIZE, SIZE), real_images(24, 0), real_images(16, 1), batches(real_images(4, 2)))
    path, stages = evaluate_model(ToyModel(), "vamoh", inputs, cfg, run="t", seed=0, out_root=tmp_path / "out")
    data = read_json(path, keys.METRICS_SCHEMA)
    assert path == tmp_path / "out" / "t" / "toyset" / "vamoh" / "seed0" / "metrics.json"
    prov = data["provenance"]
    assert all(k in prov for k in keys.REQUIRED_PROVENANCE)
    assert prov[keys.PROV_FEATURE_EXTRACTOR].startswith("vamoh-suite-ae[toyset]@")
    assert prov[keys.PROV_NUM_SAMPLES] == 16 and prov[keys.PROV_IS_STANDIN] is True
    m = data["metrics"]
    assert list(m) == list(keys.METRIC_KEYS)
    for k in keys.GENERATION_KEYS:
        assert len(m[k]["values"]) == 2 and m[k]["feature_extractor"] == prov[keys.PROV_FEATURE_EXTRACTOR]
    assert m[keys.PSNR]["num_infinite"] == 4  # the toy copies observed points exactly
    assert m[keys.PSNR_COMPLETION_CENTRE]["mean"] is not None
    assert m[keys.VOXEL_IOU]["mean"] is None  # not a voxel dataset
    assert set(stages) == {"extractor", "generation", "reconstruction", "completion"}
    # The extractor trained on first use is reused (same checksum) by a second evaluation.
    path2, stages2 = evaluate_model(ToyModel(), "gasp", inputs, cfg, run="t", seed=0, out_root=tmp_path / "out")
    assert read_json(path2)["provenance"][keys.PROV_FEATURE_EXTRACTOR] == prov[keys.PROV_FEATURE_EXTRACTOR]


def test_evaluate_timing_writes_one_file_per_model(tmp_path):
    cfg = EvalConfig(timing_repeats=3, timing_warmup=1, timing_batch_sizes=(1, 2), device="cpu")
    inputs = EvalInputs("toyset", True, "image", (SIZE, SIZE), test_batches=batches(real_images(2, 3)))
    models = {"vamoh": ToyModel(1), "functa3": ToyModel(3), "functa10": ToyModel(10)}
    paths = evaluate_timing(models, inputs, cfg, run="t", seed=0, out_root=tmp_path, reference="vamoh", model_of={"functa3": "functa", "functa10": "functa"})
    names = sorted(str(p.relative_to(tmp_path)) for p in paths)
    assert names == ["t/toyset/functa/seed0/timing_functa10.json", "t/toyset/functa/seed0/timing_functa3.json", "t/toyset/vamoh/seed0/timing.json"]
    data = read_json(paths[0], keys.TIMING_SCHEMA)
    groups = data["timing"]["groups"]
    assert [(g["task"], g["batch_size"]) for g in groups] == [(t, b) for t in keys.TIMING_TASKS for b in (1, 2)]
    sup = [g for g in groups if g["task"] == keys.TIME_SUPER_RECONSTRUCTION][0]
    assert sup["query_points"] == (2 * SIZE - 1) ** 2
    for g in groups:
        assert set(g["seconds_per_call"]) == set(models) and g["speedup_vs_reference"]["vamoh"] == 1.0
    assert data["provenance"][keys.PROV_DEVICE]["torch_version"] == torch.__version__
