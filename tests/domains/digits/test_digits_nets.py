"""Tests for flowevo.domains.digits.nets and the tiny-step training functions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from flowevo.domains.digits.nets import VAE, CNNClassifier, MLPClassifier
from flowevo.domains.digits.train import (
    DigitTrainConfig,
    round_weights,
    shift_images,
    train_classifier,
    train_digit_models,
    train_vae,
)
from flowevo.flow import Encoder, load_checkpoint, save_checkpoint


@pytest.mark.parametrize("cls", [CNNClassifier, MLPClassifier])
def test_classifier_shapes(cls: type) -> None:
    net = cls()
    x = torch.rand(3, 28, 28)
    assert net(x).shape == (3, 10)
    torch.testing.assert_close(net(x), net(x[:, None]))
    with pytest.raises(ValueError, match="28, 28"):
        net(torch.rand(3, 27, 28))


def test_vae_is_an_encoder_and_shapes() -> None:
    vae = VAE()
    assert isinstance(vae, Encoder)
    x = torch.rand(4, 28, 28)
    z = vae.encode(x)
    assert z.shape == (4, 16)
    out = vae.decode(z)
    out = out.detach()
    assert out.shape == (4, 28, 28) and 0 <= float(out.min()) and float(out.max()) <= 1
    total, recon, kl = vae.loss(x, torch.Generator().manual_seed(0))
    assert total.ndim == 0 and torch.isfinite(total) and float(kl.detach()) >= 0
    with pytest.raises(ValueError, match="latents"):
        vae.decode(torch.zeros(2, 8))


@pytest.mark.parametrize("model", [CNNClassifier(channels=(4, 8), hidden=16), MLPClassifier((32,)), VAE(8, (64, 32))])
def test_checkpoint_roundtrip(tmp_path: Path, model: torch.nn.Module) -> None:
    path = save_checkpoint(tmp_path / "m.pt", model, {"note": "x"})
    loaded, meta = load_checkpoint(path)
    assert type(loaded) is type(model) and meta["note"] == "x" and not loaded.training
    x = torch.rand(2, 28, 28)
    torch.testing.assert_close(loaded(x), model.eval()(x))


def test_shift_images_moves_content() -> None:
    img = torch.zeros(50, 28, 28)
    img[:, 14, 14] = 1.0
    out = shift_images(img, 2, torch.Generator().manual_seed(0))
    assert out.shape == img.shape and torch.all(out.sum((1, 2)) == 1)
    rows, cols = torch.nonzero(out)[:, 1], torch.nonzero(out)[:, 2]
    assert rows.min() >= 12 and rows.max() <= 16 and cols.min() >= 12 and cols.max() <= 16
    assert len({(int(r), int(c)) for r, c in zip(rows, cols)}) > 5
    assert shift_images(img, 0, torch.Generator()) is img


def test_training_is_seeded_and_keeps_global_rng() -> None:
    x, y = torch.rand(64, 28, 28), torch.randint(0, 10, (64,))
    vae = VAE(4, (32,))
    state = torch.get_rng_state()
    nets = []
    for _ in range(2):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            net = MLPClassifier((16,))
        losses = train_classifier(net, x, y, steps=5, batch_size=16, max_shift=1, seed=3)
        nets.append(net)
        assert len(losses) == 5 and not net.training
    torch.testing.assert_close(nets[0](x), nets[1](x))
    assert len(train_vae(vae, x, steps=4, batch_size=16)) == 4
    assert torch.equal(torch.get_rng_state(), state)


def test_round_weights_to_float16() -> None:
    net = round_weights(MLPClassifier((8,)))
    for p in net.parameters():
        assert torch.equal(p, p.half().float())


def test_train_digit_models_tiny(tmp_path: Path) -> None:
    cfg = DigitTrainConfig(classifier_steps=2, independent_steps=2, vae_steps=2, flow_steps=2, batch_size=16,
                           flow_batch_size=16, flow_hidden=32, flow_depth=1, flow_noise_copies=1, samples_per_class=2)
    state, threads = torch.get_rng_state(), torch.get_num_threads()
    metrics = train_digit_models(tmp_path, seed=1, show_progress=False, config=cfg, num_threads=1)
    assert torch.equal(torch.get_rng_state(), state) and torch.get_num_threads() == threads
    for name in ("classifier.pt", "independent.pt", "vae.pt", "flow.pt", "training.json"):
        assert (tmp_path / name).is_file()
    saved = json.loads((tmp_path / "training.json").read_text())
    for key in ("classifier_test_accuracy", "independent_test_accuracy", "vae_test_l1_per_pixel", "flow_final_loss",
                "flow_sample_accuracy", "wall_s"):
        assert key in saved and key in metrics
    assert set(saved["wall_s"]) == {"classifier", "independent", "vae", "flow"}
    payload = torch.load(tmp_path / "vae.pt", weights_only=True)
    assert all(v.dtype == torch.float16 for v in payload["state_dict"].values() if v.is_floating_point())
