"""The `vamoh` command as the README documents it: params, train (with overrides, resume), sample."""

import numpy as np
import pytest

from vamoh.cli import main
from vamoh.train import load_model


def test_params_prints_the_paper_counts(capsys):
    assert main(["params", "--preset", "celebahq64"]) == 0
    out = capsys.readouterr().out
    # REFERENCE / paper: about 12.95M per hypernetwork, 129.5M for K = 10
    assert "per hypernetwork: 12,954,243 (12.95M), K = 10: 129.5M" in out


def test_train_with_overrides_resumes_and_samples(tmp_path, capsys):
    ck = tmp_path / "poly.pt"
    common = ["train", "--dataset", "polymnist", "--preset", "tiny", "--out", str(ck), "--cache-dir", str(tmp_path / "cache"),
              "--batch-size", "8", "--set", '{"compute_dtype": "bfloat16", "microbatch_size": 3}']
    assert main(common + ["--max-steps", "2"]) == 0
    model, payload = load_model(ck)
    assert payload["step"] == 2
    assert model.config.compute_dtype == "bfloat16" and model.config.microbatch_size == 3
    assert main(common + ["--max-steps", "4"]) == 0
    assert "resuming from" in capsys.readouterr().out
    assert load_model(ck)[1]["step"] == 4
    out = tmp_path / "samples.npz"
    assert main(["sample", "--checkpoint", str(ck), "--n", "2", "--upsample", "2", "--out", str(out)]) == 0
    samples = np.load(out)["samples"]
    # 2x refinement of the 28 x 28 grid keeps the original points: 2 * 28 - 1 = 55 per axis
    assert samples.shape[:3] == (2, 55, 55) and samples.size == 2 * 55 * 55 * 3 and np.isfinite(samples).all()
    assert samples.min() >= 0 and samples.max() <= 1


@pytest.mark.parametrize("bad, match", [("{K: 4}", "--set '{K: 4}' is not valid JSON"), ("[1]", "expected a JSON object")])
def test_bad_overrides_give_one_clear_error(tmp_path, capsys, bad, match):
    code = main(["train", "--dataset", "polymnist", "--out", str(tmp_path / "x.pt"), "--cache-dir", str(tmp_path / "c"), "--set", bad])
    assert code == 2
    assert match in capsys.readouterr().err


@pytest.fixture(scope="module")
def poly(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_models")
    out = {}
    for model in ("vamoh", "functa"):
        ck = root / f"{model}.pt"
        assert main(["train", "--dataset", "polymnist", "--model", model, "--preset", "tiny", "--out", str(ck), "--cache-dir",
                     str(root / "cache"), "--batch-size", "8", "--max-steps", "2"]) == 0
        out[model] = ck
    from PIL import Image

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (56, 56, 3), dtype=np.uint8)).save(root / "mine.png")  # resized to the model's 28 x 28
    out["root"] = root
    return out


@pytest.mark.parametrize("model", ["vamoh", "functa"])
def test_reconstruct_your_own_image(poly, model, capsys):
    root = poly["root"]
    out = root / f"{model}_completed.png"
    assert main(["reconstruct", "--checkpoint", str(poly[model]), "--input", str(root / "mine.png"), "--mask", "centre",
                 "--upsample", "2", "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    arrays = np.load(out.with_suffix(".npz"))
    assert arrays["recon_1x"].shape == (28, 28, 3) and arrays["recon_2x"].shape == (55, 55, 3)
    assert arrays["mask"].sum() == 28 * 28 - 14 * 14  # the centre box is hidden
    # the 2x reconstruction holds the 1x one at the shared pixels
    np.testing.assert_allclose(arrays["recon_2x"][::2, ::2], arrays["recon_1x"], atol=1e-4)
    assert ("entropy" in arrays) == (model == "vamoh")
    if model == "vamoh":
        assert arrays["entropy"].shape == (28, 28) and 0 <= arrays["entropy"].min() and arrays["entropy"].max() <= 1 + 1e-6
    a_mask = root / "mask.npy"
    np.save(a_mask, np.arange(28 * 28).reshape(28, 28) % 2 == 0)
    assert main(["reconstruct", "--checkpoint", str(poly[model]), "--input", str(root / "mine.png"), "--mask", str(a_mask),
                 "--out", str(root / "m.png")]) == 0
    assert np.load(root / "m.npz")["mask"].sum() == 28 * 28 // 2


def test_sample_by_mlflow_run_id(poly, tmp_path, capsys):
    from vamoh import tracking

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking.init_store(uri)
    with tracking.job_run(uri, "cli-test", "train/polymnist/vamoh/seed0") as run:
        run.log_checkpoint(poly["vamoh"])
    out = tmp_path / "s.npz"
    assert main(["sample", "--run-id", run.run_id, "--tracking-uri", uri, "--n", "3", "--out", str(out)]) == 0
    direct = tmp_path / "d.npz"
    assert main(["sample", "--checkpoint", str(poly["vamoh"]), "--n", "3", "--out", str(direct)]) == 0
    np.testing.assert_array_equal(np.load(out)["samples"], np.load(direct)["samples"])  # the same model, the same seed


def test_import_a_published_functa_and_sample_it(tmp_path):
    import dill

    try:
        from test_importers import functa_checkpoint
    except ImportError:
        from tests.test_importers import functa_checkpoint

    ckpt = functa_checkpoint(width=8, depth=3, latent=4)
    ckpt["config"]["dataset"]["resolution"] = 28  # a PolyMNIST-sized release
    params = tmp_path / "params.npz"
    with open(params, "wb") as f:
        dill.dump(ckpt, f)
    rng = np.random.default_rng(0)
    mods = tmp_path / "mods.npz"
    with open(mods, "wb") as f:
        dill.dump({"train": {"modulation": rng.normal(0, 1, (20, 4)).astype(np.float32), "psnr": np.full(20, 25.0, np.float32)}}, f)
    out = tmp_path / "official.pt"
    assert main(["import", "functa", str(params), "--modulations", str(mods), "--dataset", "polymnist", "--out", str(out)]) == 0
    model, payload = load_model(out)
    assert payload["imported_from"]["files"][0]["name"] == "params.npz" and bool(model.prior_fitted)
    assert main(["sample", "--checkpoint", str(out), "--n", "2", "--out", str(tmp_path / "s.npz")]) == 0
