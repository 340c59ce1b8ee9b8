"""One evaluation end to end on a toy model and small stand-in data: the reference stage, metrics.json,
scores.npz, recompute, timing; the device rule."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vamoh.eval import keys
from vamoh.eval.config import EvalConfig
from vamoh.eval.evaluate import EvalData, evaluate_model, write_evaluation
from vamoh.eval.speed import evaluate_timing, timing_candidates
from vamoh.eval.io import read_json
from vamoh.eval.recompute import compare, recompute_metrics
from vamoh.eval.reference import ReferenceData, build_reference
from vamoh.io import atomic_write_json


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
        return torch.rand(n, coords.shape[0], 3, generator=generator).to(coords.device)

    def reconstruct(self, observed, query_coords):
        out = observed.features
        for _ in range(self.steps):
            out = torch.where(observed.mask[..., None], observed.features, torch.full_like(out, 0.5))
        return out


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from vamoh.data import load_dataset

    root = tmp_path_factory.mktemp("eval")
    splits = load_dataset({"name": "polymnist", "n_train": 40, "n_test": 12}, root / "cache")
    cfg = EvalConfig(num_samples=16, num_sets=2, kid_subset_size=8, kid_subsets=5, extractor_epochs=1, extractor_feature_dim=8,
                     device="cpu", batch_size=8, completion_samples=5)
    record, arrays = build_reference(splits, cfg, seed=0, device="cpu", extractor_out=root / "extractor.pt")
    np.savez(root / "features.npz", **arrays)
    atomic_write_json(root / "reference.json", record)
    ref = ReferenceData.load(root / "reference.json", root / "features.npz")
    return {"root": root, "splits": splits, "cfg": cfg, "record": record, "ref": ref,
            "data": EvalData.from_split(splits["test"], "PolyMNIST (stand-in)", True, batch_size=5)}


def test_reference_has_floor_ceiling_and_mean_baseline(data):
    rec, splits = data["record"], data["splits"]
    m = rec["metrics"]
    assert set(m) == {keys.REF_HELDOUT, keys.REF_NOISE, keys.REF_MEAN, keys.REF_COLLAPSED, keys.REF_BLURRED, keys.REF_OBSERVED_MEAN}
    # the floor (held-out real) scores a far lower FID than noise, against both real splits
    for split in ("train", "test"):
        assert m[keys.REF_HELDOUT][f"fid_{split}"]["mean"] < m[keys.REF_NOISE][f"fid_{split}"]["mean"]
        assert m[keys.REF_NOISE][f"precision_{split}"]["mean"] == 0.0
    # the train-mean baseline: PSNR of the mean train image against every test image, by the closed form
    test = splits["test"].features(torch.arange(12)).numpy()  # (12, 784, 3)
    mean = splits["train"].features(torch.arange(40)).double().mean(0).float().numpy()  # the mean image, stored as float32
    pred = np.rint(np.clip(mean, 0, 1) * 255).astype(np.float64)
    mse = ((pred[None] - np.rint(test * 255)) ** 2).sum(-1).mean(-1)
    np.testing.assert_allclose(m[keys.REF_MEAN][keys.PSNR]["values"], 10 * np.log10(255**2 / mse), rtol=1e-9)
    assert rec["extractor"]["quality"]["test_psnr_db"] > 0 and rec["extractor"]["trained_here"]


def test_reference_baseline_generators(data):
    """The rows a learned model must beat: one real image repeated has no spread at all; the train-mean image repeated
    none either; blurred held-out images keep the data's layout (some spread); every generation key is present."""
    m = data["record"]["metrics"]
    for split in ("train", "test"):
        assert m[keys.REF_COLLAPSED][f"spread_{split}"]["mean"] == pytest.approx(0.0, abs=1e-6)
        assert m[keys.REF_MEAN][f"spread_{split}"]["mean"] == pytest.approx(0.0, abs=1e-6)
        assert m[keys.REF_BLURRED][f"spread_{split}"]["mean"] > 0.05
        assert m[keys.REF_HELDOUT][f"spread_{split}"]["mean"] == pytest.approx(1.0, abs=0.5)
        for ref in (keys.REF_COLLAPSED, keys.REF_BLURRED, keys.REF_MEAN):
            assert set(keys.GENERATION_KEYS) <= set(m[ref])
    # the train-mean baseline inside each completion mask, over the completed samples; and the observed part's mean
    for key in (keys.PSNR_COMPLETION_CENTRE, keys.PSNR_COMPLETION_HALF, keys.PSNR_COMPLETION_OUTPAINT):
        assert len(m[keys.REF_MEAN][key]["values"]) == data["cfg"].completion_samples
        assert len(m[keys.REF_OBSERVED_MEAN][key]["values"]) == data["cfg"].completion_samples
    assert keys.VOXEL_IOU_COMPLETION_HALF not in m[keys.REF_MEAN]  # images: no voxel score
    # observed part's mean, half mask, by hand: each hidden pixel given the mean colour of the sample's left half
    test = np.rint(data["splits"]["test"].features(torch.arange(5)).numpy().astype(np.float64).reshape(5, 28, 28, 3) * 255)
    guess = np.clip(np.rint(test[:, :, :14].reshape(5, -1, 3).mean(1)), 0, 255)  # (5, 3)
    mse = ((test[:, :, 14:] - guess[:, None, None]) ** 2).sum(-1).reshape(5, -1).mean(1)
    np.testing.assert_allclose(m[keys.REF_OBSERVED_MEAN][keys.PSNR_COMPLETION_HALF]["values"], 10 * np.log10(255**2 / mse), rtol=1e-9)
    # PolyMNIST has no 2x render (real MNIST digits): no truth, no super-resolution score, the reason recorded
    assert data["record"].get("superres") is None or data["record"]["superres"]["available"] is False


def test_extractor_is_trained_on_a_train_half_it_does_not_embed(data, tmp_path):
    """FID tr is not in-sample for the suite extractor: it learns from one half of the train split, tr is the other half."""
    with np.load(data["root"] / "features.npz") as z:
        ext_idx, tr_idx = set(z["extractor_train_index"].tolist()), set(z["real_train_index"].tolist())
    assert ext_idx and tr_idx and not ext_idx & tr_idx and len(ext_idx | tr_idx) == 40
    assert data["record"]["extractor"]["disjoint_from_embeddings"] is True


def test_blur_is_a_gaussian_of_the_stated_width():
    from scipy.ndimage import gaussian_filter

    from vamoh.eval.reference import blur_images, blur_sigma

    img = np.zeros((1, 64, 64, 3), dtype=np.uint8)
    img[0, 32, 32] = 255
    out = blur_images(img).astype(np.float64)
    assert blur_sigma((64, 64)) == 4.0 and blur_sigma((28, 28)) == 1.75
    profile = out[0, 32, :, 0]
    expected = gaussian_filter(img[0, ..., 0].astype(np.float64), 4.0)[32]
    np.testing.assert_allclose(profile, np.rint(expected), atol=1)
    # its width: the second moment of the blurred impulse is sigma^2
    w = gaussian_filter(img[0, ..., 0].astype(np.float64), 4.0)
    x = np.arange(64) - 32
    assert np.sqrt((w.sum(0) * x**2).sum() / w.sum()) == pytest.approx(4.0, rel=0.02)


def test_evaluation_writes_metrics_scores_and_recomputes_exactly(data, tmp_path):
    ev = evaluate_model(ToyModel(), data["data"], data["cfg"], entry="vamoh", label="VAMoH", seed=0, run="t", reference=data["ref"])
    write_evaluation(ev, tmp_path / "metrics.json", tmp_path / "scores.npz")
    saved = read_json(tmp_path / "metrics.json", keys.METRICS_SCHEMA)
    prov = saved["provenance"]
    assert all(k in prov for k in keys.REQUIRED_PROVENANCE)
    assert prov[keys.PROV_DEVICE]["device"] == "cpu" and prov["label"] == "VAMoH"
    m = saved["metrics"]
    assert list(m) == list(keys.METRIC_KEYS)
    for k in keys.GENERATION_KEYS:
        assert len(m[k]["values"]) == 2
    assert m[keys.PSNR]["n"] == 12 and m[keys.PSNR]["num_infinite"] == 12  # every test sample, copied exactly
    assert len(m[keys.PSNR_COMPLETION_CENTRE]["values"]) == 5  # eval.completion_samples caps only completion
    assert m[keys.MEMORISATION_RATIO]["mean"] > 0
    assert m[keys.VOXEL_IOU]["mean"] is None
    # every number recomputed from scores.npz and the reference features agrees
    again = recompute_metrics(tmp_path / "metrics.json")
    assert set(again) >= set(keys.GENERATION_KEYS) | {keys.PSNR, keys.PSNR_COMPLETION_HALF, keys.MEMORISATION_RATIO}
    assert compare(m, again) == []
    # and a tampered number is caught
    m[keys.FID_TRAIN]["values"][1] += 1e-3
    assert any(p.startswith("fid_train") for p in compare(m, again))


def test_recompute_refuses_missing_scores(data, tmp_path):
    from vamoh.checks import DataError

    ev = evaluate_model(ToyModel(), data["data"], data["cfg"], entry="vamoh", label="VAMoH", seed=0, run="t", reference=data["ref"])
    write_evaluation(ev, tmp_path / "metrics.json", tmp_path / "scores.npz")
    (tmp_path / "scores.npz").unlink()
    with pytest.raises(DataError, match="saved scores not found"):
        recompute_metrics(tmp_path / "metrics.json")


def test_recompute_finds_a_reference_recorded_relative_to_the_run_directory(data, tmp_path, monkeypatch):
    """The workflow records the reference features relative to its working directory; ``vamoh recompute`` run from
    anywhere else must still find them (CI ran it from the repository on a run under /tmp and it failed)."""
    import shutil

    from vamoh.checks import DataError

    work = tmp_path / "work"
    seed_dir = work / "results" / "t" / "polymnist" / "vamoh" / "seed0"
    ref_dir = work / "results" / "t" / "polymnist" / "reference"
    seed_dir.mkdir(parents=True)
    ref_dir.mkdir(parents=True)
    shutil.copy(data["root"] / "features.npz", ref_dir / "features.npz")
    ev = evaluate_model(ToyModel(), data["data"], data["cfg"], entry="vamoh", label="VAMoH", seed=0, run="t", reference=data["ref"])
    write_evaluation(ev, seed_dir / "metrics.json", seed_dir / "scores.npz")
    saved = read_json(seed_dir / "metrics.json", keys.METRICS_SCHEMA)
    saved["provenance"]["reference"]["features"] = "results/t/polymnist/reference/features.npz"
    atomic_write_json(seed_dir / "metrics.json", saved)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert compare(saved["metrics"], recompute_metrics(seed_dir / "metrics.json")) == []
    # a reference that exists nowhere is still one clear error naming the recorded path
    (ref_dir / "features.npz").unlink()
    with pytest.raises(DataError, match="results/t/polymnist/reference/features.npz"):
        recompute_metrics(seed_dir / "metrics.json")


def test_timing_measures_every_candidate_interleaved(data):
    cfg = EvalConfig(timing_repeats=3, timing_warmup=1, timing_batch_sizes=(1, 2), device="cpu")
    models = timing_candidates({"vamoh": ToyModel(1), "functa": ToyModel(3)})
    timing = evaluate_timing(models, data["data"], cfg, "cpu", reference="vamoh")
    groups = timing["groups"]
    assert [(g["task"], g["batch_size"]) for g in groups] == [(t, b) for t in keys.TIMING_TASKS for b in (1, 2)]
    sup = [g for g in groups if g["task"] == keys.TIME_SUPER_RECONSTRUCTION][0]
    assert sup["query_points"] == 55 * 55 and sup["query_grid"] == [55, 55]
    for g in groups:
        assert set(g["seconds_per_call"]) == {"vamoh", "functa"} and g["speedup_vs_reference"]["vamoh"] == 1.0


@pytest.mark.parametrize("stage", ["evaluate", "timing"])
def test_the_device_of_a_number_is_the_device_of_its_tensors(monkeypatch, tmp_path, stage):
    """device: auto with CUDA present must load the models on CUDA for evaluation and timing (they were loaded on
    the CPU while the scorer and the provenance said CUDA). Without a GPU, CUDA's presence is simulated and the
    loader records where it was asked to put the model."""
    from pathlib import Path

    import yaml

    from vamoh.checks import resolve_device
    from vamoh.pipeline import jobs, stages
    from vamoh.pipeline.runconfig import RunConfig

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto", "eval.device").type == "cuda"
    asked = []

    def fake_load(path, device="cpu"):
        asked.append(str(device))
        raise RuntimeError("stop here")

    monkeypatch.setattr("vamoh.train.load_model", fake_load)
    monkeypatch.setattr(jobs, "load_data", lambda *a, **k: ({"test": None}, {"label": "x", "is_standin": True}))
    monkeypatch.setattr(stages, "eval_data", lambda *a: None)
    raw = yaml.safe_load((Path(__file__).resolve().parents[1] / "config/tiny.yaml").read_text())
    rc = RunConfig.from_dict({**raw, "device": "auto"})
    with pytest.raises(RuntimeError, match="stop here"):
        if stage == "evaluate":
            stages.evaluate(rc, "polymnist", "vamoh", 0, tmp_path / "d.json", tmp_path / "c.pt", None, None,
                            tmp_path / "m.json", tmp_path / "s.npz", tmp_path / "f.npz", tracking=tmp_path / "tracking.json")
        else:
            stages.timing(rc, "polymnist", 0, tmp_path / "d.json", {"vamoh": "c.pt", "functa": "f.pt", "functa10": "g.pt"}, tmp_path / "t.json",
                          tracking=tmp_path / "tracking.json")
    assert asked == ["cuda"]


class _Echo(torch.nn.Module):
    """A stand-in autoencoder: returns its input (a perfect extractor) or a constant image (a useless one)."""

    def __init__(self, constant=None):
        super().__init__()
        self.config = type("C", (), {"input_size": 8})()
        self.constant = constant

    def preprocess(self, x):
        return torch.nn.functional.interpolate(x.float() / 255.0, size=(8, 8), mode="bilinear", antialias=True, align_corners=False)

    def encode(self, x):
        return x

    def decoder(self, z):
        return z if self.constant is None else torch.full_like(z, self.constant)


def test_extractor_quality_gate_against_the_train_mean_image():
    from vamoh.eval.reference import EXTRACTOR_GATE_DB, extractor_quality

    rng = np.random.default_rng(0)
    train, test = (rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8) for n in (40, 12))
    perfect = extractor_quality(_Echo(), test, train)
    assert perfect["passes"] and perfect["margin_db"] > 50
    useless = extractor_quality(_Echo(constant=0.5), test, train)
    assert not useless["passes"] and useless["margin_db"] < EXTRACTOR_GATE_DB
    # the train-mean figure is the closed form: PSNR of the mean 8x8 image against each test image
    x_train = _Echo().preprocess(torch.from_numpy(train).permute(0, 3, 1, 2)).double()
    x_test = _Echo().preprocess(torch.from_numpy(test).permute(0, 3, 1, 2)).double()
    mse = ((x_train.mean(0, keepdim=True) - x_test) ** 2).sum(1).mean((1, 2))
    assert useless["mean_image_psnr_db"] == pytest.approx(float((10 * torch.log10(1 / mse)).mean()), rel=1e-6)


def test_a_failing_extractor_is_flagged_in_table1(data):
    from vamoh.eval.tidy import rows_from_reference, tidy_frame
    from vamoh.report.tables.generation import table1

    rec = json.loads((data["root"] / "reference.json").read_text())
    rec["extractor"]["quality"].update(passes=False, margin_db=1.0)
    path = data["root"] / "failing.json"
    path.write_text(json.dumps(rec))
    rows = rows_from_reference(path, "PolyMNIST (stand-in)", True)
    model_row = {**next(r for r in rows if r["metric"] == "fid_train"), "model": "vamoh", "label": "VAMoH", "kind": "model", "note": ""}
    t = table1(tidy_frame(rows + [model_row]))
    assert t.notes[0].startswith("FLAGGED") and "fails its quality gate" in t.notes[0]
    assert any("FAILS the +6 dB quality gate" in n for n in t.notes)


def test_recompute_refuses_scores_that_are_not_the_ones_the_numbers_came_from(data, tmp_path):
    """metrics.json records its scores file's sha256: another evaluation's scores.npz put in its place (same layout, same
    keys: every check of shape and schema passes) is refused by name instead of "recomputing" other numbers."""
    from vamoh.checks import DataError

    for seed, where in ((0, tmp_path / "a"), (1, tmp_path / "b")):
        where.mkdir()
        ev = evaluate_model(ToyModel(), data["data"], data["cfg"], entry="vamoh", label="VAMoH", seed=seed, run="t", reference=data["ref"])
        write_evaluation(ev, where / "metrics.json", where / "scores.npz")
    prov = read_json(tmp_path / "a" / "metrics.json", keys.METRICS_SCHEMA)["provenance"]
    import hashlib

    assert prov["scores_sha256"] == hashlib.sha256((tmp_path / "a" / "scores.npz").read_bytes()).hexdigest()
    (tmp_path / "b" / "scores.npz").replace(tmp_path / "a" / "scores.npz")
    with pytest.raises(DataError, match="sha256"):
        recompute_metrics(tmp_path / "a" / "metrics.json")


def test_an_evaluation_does_not_depend_on_the_process_random_state(data):
    """A model whose inference draws from torch's global generator (VAMoH with random encoder centroids) scored
    differently depending on what the process had drawn before (a job run cold or in the warm server's child, another
    import order): two evaluations of the same checkpoint gave leak-free PSNRs 0.3 dB apart. The evaluation now seeds
    its own draws from the job's seed."""
    from vamoh.interface import build_model

    torch.manual_seed(0)
    model = build_model("vamoh", data["splits"]["train"].info, preset="tiny", overrides={"centroid_method": "random"}).eval()
    runs = []
    for state in (1, 2):
        torch.manual_seed(state)  # whatever the process drew before the job
        torch.rand(state * 7)
        ev = evaluate_model(model, data["data"], data["cfg"], entry="vamoh", label="VAMoH", seed=0, run="t", generation=False)
        runs.append({k: v["values"] for k, v in ev.metrics.items() if "values" in v})
    assert runs[0].keys() == runs[1].keys() and keys.PSNR in runs[0]
    for k in runs[0]:
        np.testing.assert_array_equal(runs[0][k], runs[1][k], err_msg=k)
