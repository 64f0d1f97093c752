"""Quality of the digit models shipped with flowevo, and loading errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from flowevo.domains.digits.data import images_to_tensor, load_builtin_digits
from flowevo.domains.digits.models import WEIGHTS_DIR, DigitModels, load_digit_models
from flowevo.domains.digits.train import accuracy, sample_accuracy
from flowevo.flow import Condition, FixedGrid


@pytest.fixture(scope="module")
def models() -> DigitModels:
    return load_digit_models()


@pytest.fixture(scope="module")
def test_set() -> tuple[torch.Tensor, torch.Tensor]:
    split = load_builtin_digits()
    return images_to_tensor(split.test_images), torch.as_tensor(split.test_labels)


def test_loaded_in_eval_mode(models: DigitModels) -> None:
    state = torch.get_rng_state()
    load_digit_models()
    assert torch.equal(torch.get_rng_state(), state)
    for net in (models.classifier, models.independent, models.vae, models.flow):
        assert not net.training
        assert all(p.dtype == torch.float32 for p in net.parameters())


def test_classifiers_accuracy(models: DigitModels, test_set: tuple) -> None:
    x, y = test_set
    assert accuracy(models.classifier, x, y) >= 0.95
    assert accuracy(models.independent, x, y) >= 0.93


def test_vae_reconstructions_classified(models: DigitModels, test_set: tuple) -> None:
    x, y = test_set
    with torch.no_grad():
        recon = models.vae(x)
    assert accuracy(models.classifier, recon, y) >= 0.85
    assert float((recon - x).abs().mean()) < 0.08


def test_codec_roundtrip(models: DigitModels, test_set: tuple) -> None:
    x, y = test_set
    codec = models.codec(FixedGrid("rk4", 10))
    with torch.no_grad():
        err = codec.roundtrip_error(x[:200], Condition.from_labels(y[:200]))
    assert err.shape == (200,) and float(err.mean()) < 1e-3


def test_samples_follow_the_condition(models: DigitModels) -> None:
    assert sample_accuracy(models.flow, models.vae, models.classifier, per_class=50, seed=1) >= 0.8


def test_partial_codec(models: DigitModels, test_set: tuple) -> None:
    x, y = test_set
    codec = models.codec(FixedGrid("rk4", 10), strength=0.5)
    with torch.no_grad():
        r = codec.invert(x[:8], Condition.from_labels(y[:8]))
        out = codec.decode(r, Condition.from_labels(y[:8]))
    assert r.shape == (8, 16) and out.shape == (8, 28, 28) and codec.t_residual == 0.5


def test_missing_or_corrupt_weights(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="--retrain"):
        load_digit_models(tmp_path)
    for name in ("classifier.pt", "independent.pt", "vae.pt", "flow.pt"):
        shutil.copy(WEIGHTS_DIR / name, tmp_path / name)
    (tmp_path / "vae.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="(?s)vae.*--retrain"):
        load_digit_models(tmp_path)
    shutil.copy(WEIGHTS_DIR / "independent.pt", tmp_path / "vae.pt")  # the wrong model
    with pytest.raises(ValueError, match="expected VAE"):
        load_digit_models(tmp_path)
