"""The suite-trained feature extractor and the Inception weights check."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from vamoh.checks import CheckpointError, ConfigError
from vamoh.eval.config import EvalConfig, eval_config_from_dict
from vamoh.eval.fid import INCEPTION_WEIGHTS_KEY
from vamoh.eval.extractors import (
    SUITE_EXTRACTOR,
    ExtractorConfig,
    SuiteFeatureExtractor,
    load_extractor,
    register_suite_extractor,
    save_extractor,
    sha256_file,
    train_extractor,
    train_or_load_extractor,
)
from vamoh.eval.fid import InceptionWeightsMissingError, inception_spec, inception_weights_filename, resolve_extractor

TINY = ExtractorConfig(input_size=16, feature_dim=8, channels=(8, 16, 16), epochs=2, batch_size=16, seed=0)


def images(n: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28, 3), dtype=np.uint8)


def test_training_is_deterministic_and_checksummed(tmp_path):
    data = images()
    d1 = save_extractor(train_extractor(data, TINY, "toy"), tmp_path / "a.pt", "toy")
    d2 = save_extractor(train_extractor(data, TINY, "toy"), tmp_path / "b.pt", "toy")
    state_a = torch.load(tmp_path / "a.pt", weights_only=True)["state_dict"]
    state_b = torch.load(tmp_path / "b.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert d1 == sha256_file(tmp_path / "a.pt") and d2 == sha256_file(tmp_path / "b.pt")
    assert (tmp_path / "a.pt.sha256").read_text().split()[0] == d1
    other = save_extractor(train_extractor(data, ExtractorConfig(**{**TINY.__dict__, "seed": 1}), "toy"), tmp_path / "c.pt", "toy")
    assert other != d1


def test_the_extractor_identity_is_its_weights_not_the_file_bytes(tmp_path):
    """Two saves of the same trained weights are two different files (torch.save writes a fresh serialization id),
    yet one extractor: its label and recorded sha256 must agree, or two bitwise-identical runs print different
    extractor labels beside every FID (they did). Different weights still get a different identity."""
    from vamoh.eval.fid import resolve_extractor

    model = train_extractor(images(), TINY, "toy")
    save_extractor(model, tmp_path / "a.pt", "toy")
    save_extractor(model, tmp_path / "b.pt", "toy")
    a, b = resolve_extractor("suite", suite_weights=tmp_path / "a.pt"), resolve_extractor("suite", suite_weights=tmp_path / "b.pt")
    assert a.label == b.label and a.digest == b.digest
    # the identity is a function of the content, computed independently here
    import hashlib, json
    payload = torch.load(tmp_path / "a.pt", weights_only=True)
    h = hashlib.sha256(json.dumps({k: payload[k] for k in ("format", "config", "dataset")}, sort_keys=True).encode())
    for name in sorted(payload["state_dict"]):
        t = payload["state_dict"][name]
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode() + t.numpy().tobytes())
    assert a.digest == h.hexdigest()
    other = train_extractor(images(), ExtractorConfig(**{**TINY.__dict__, "seed": 1}), "toy")
    save_extractor(other, tmp_path / "c.pt", "toy")
    assert resolve_extractor("suite", suite_weights=tmp_path / "c.pt").digest != a.digest


def test_corrupted_weights_are_refused(tmp_path):
    save_extractor(train_extractor(images(), TINY, "toy"), tmp_path / "a.pt", "toy")
    with open(tmp_path / "a.pt", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(CheckpointError, match=r"a\.pt: sha256 .* does not match"):
        load_extractor(tmp_path / "a.pt")


def test_train_or_load_reuses_and_checks_config(tmp_path):
    path = tmp_path / "x.pt"
    d1 = train_or_load_extractor(images(), path, "toy", TINY)
    mtime = os.path.getmtime(path)
    assert train_or_load_extractor(images(), path, "toy", TINY) == d1
    assert os.path.getmtime(path) == mtime
    with pytest.raises(ConfigError, match="was trained with config"):
        train_or_load_extractor(images(), path, "toy", ExtractorConfig(**{**TINY.__dict__, "feature_dim": 4}))


def test_registered_extractor_gives_features_of_any_image_size(tmp_path):
    save_extractor(train_extractor(images(), TINY, "toy"), tmp_path / "a.pt", "toy")
    register_suite_extractor()
    register_suite_extractor()  # idempotent
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    assert FEATURE_EXTRACTORS_REGISTRY[SUITE_EXTRACTOR] is SuiteFeatureExtractor
    fe = SuiteFeatureExtractor(SUITE_EXTRACTOR, ["bottleneck"], feature_extractor_weights_path=str(tmp_path / "a.pt"))
    for size in (28, 32, 64):
        (f,) = fe(torch.zeros(5, 3, size, size, dtype=torch.uint8))
        assert f.shape == (5, TINY.feature_dim)
    spec = resolve_extractor("suite", suite_weights=tmp_path / "a.pt")
    # the recorded identity is the weights' content digest (the file's sha256 guards only its integrity)
    from vamoh.eval.extractors import weights_digest

    content = weights_digest(torch.load(tmp_path / "a.pt", weights_only=True))
    assert spec.label == f"{SUITE_EXTRACTOR}[toy]@{content[:12]}" and spec.digest == content


def test_inception_weights_file_name_comes_from_torch_fidelity():
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    name, url = inception_weights_filename()
    assert url == URL_INCEPTION_V3 and URL_INCEPTION_V3.endswith("/" + name)
    assert name.startswith("weights-inception-2015-12-05") and name.endswith(".pth")


def test_missing_inception_weights_give_one_clear_error(tmp_path):
    missing = tmp_path / "nowhere" / "inception.pth"
    with pytest.raises(InceptionWeightsMissingError) as info:
        resolve_extractor("inception-v3-compat", inception_weights=missing)
    message = str(info.value)
    assert str(missing) in message
    assert INCEPTION_WEIGHTS_KEY in message and INCEPTION_WEIGHTS_KEY == "eval.inception_weights"
    assert inception_weights_filename()[0] in message
    assert isinstance(info.value, FileNotFoundError)


def test_missing_inception_weights_in_hub_cache_names_the_hub_path(tmp_path):
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    try:
        with pytest.raises(InceptionWeightsMissingError) as info:
            inception_spec(None)
    finally:
        torch.hub.set_dir(old)
    expected = Path(tmp_path / "hub" / "checkpoints" / inception_weights_filename()[0])
    assert str(expected) in str(info.value)
    assert INCEPTION_WEIGHTS_KEY in str(info.value)


def test_inception_weights_with_wrong_hash_are_refused(tmp_path):
    fake = tmp_path / inception_weights_filename()[0]
    fake.write_bytes(b"not the weights")
    with pytest.raises(CheckpointError, match="does not start with"):
        inception_spec(fake)


def test_eval_config_rejects_bad_values():
    assert eval_config_from_dict({}) == EvalConfig()
    with pytest.raises(ConfigError, match="eval.feature_extractor"):
        eval_config_from_dict({"feature_extractor": "vgg"})
    with pytest.raises(ConfigError, match="unknown key"):
        eval_config_from_dict({"num_sample": 10})
    with pytest.raises(ConfigError, match="eval.num_sets"):
        eval_config_from_dict({"num_sets": 1})
