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
