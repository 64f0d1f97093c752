"""Training, checkpoints and the residual codec on a trained toy flow."""

import pytest
import torch

from flowevo.domains.toy import ToyMixture, train_toy_flow
from flowevo.flow import (
    Adaptive,
    Condition,
    FixedGrid,
    MLPVelocity,
    ResidualCodec,
    TrainConfig,
    load_checkpoint,
    save_checkpoint,
    train_flow,
)


def test_dopri5_roundtrip_below_1e4(toy16, toy2):
    for toy, model in (toy16, toy2):
        x, y = toy.sample(128, torch.Generator().manual_seed(7))
        codec = ResidualCodec(model, Adaptive("dopri5", 1e-6, 1e-6))
        with torch.inference_mode():
            err = codec.roundtrip_error(x, Condition.from_labels(y))
        assert err.mean() < 1e-4, float(err.mean())


def test_rk4_more_steps_is_more_accurate(toy16):
    toy, model = toy16
    x, y = toy.sample(128, torch.Generator().manual_seed(8))
    c = Condition.from_labels(y)
    with torch.inference_mode():
        e5 = ResidualCodec(model, FixedGrid("rk4", 5)).roundtrip_error(x, c).mean()
        e20 = ResidualCodec(model, FixedGrid("rk4", 20)).roundtrip_error(x, c).mean()
    assert e20 < e5 / 10


def test_codec_batches_one_model_call_per_stage(toy16):
    toy, model = toy16
    calls = []
    handle = model.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    try:
        codec = ResidualCodec(model, FixedGrid("rk4", 6))
        with torch.inference_mode():
            codec.decode(torch.randn(1000, 16), Condition.from_labels(torch.zeros(1000, dtype=torch.long)))
    finally:
        handle.remove()
    assert calls == [1000] * 24


def test_residuals_of_data_look_like_noise(toy16):
    toy, model = toy16
    x, y = toy.sample(512, torch.Generator().manual_seed(9))
    with torch.inference_mode():
        r = ResidualCodec(model, FixedGrid("rk4", 10)).invert(x, Condition.from_labels(y))
    assert abs(r.mean()) < 0.15 and abs(r.std() - 1) < 0.15
    assert abs(r.norm(dim=1).mean() - 4.0) < 0.5  # sqrt(16)


def test_samples_follow_their_condition(toy16):
    toy, model = toy16
    with torch.inference_mode():
        x = ResidualCodec(model).decode(torch.randn(600, 16), Condition.from_labels(torch.arange(3).repeat(200)))
    nearest_class = torch.cdist(x, toy.centres.reshape(-1, 16)).argmin(dim=1) // toy.modes
    assert (nearest_class == torch.arange(3).repeat(200)).double().mean() > 0.95


def test_partial_inversion_strength(toy16):
    toy, model = toy16
    x, y = toy.sample(64, torch.Generator().manual_seed(3))
    c = Condition.from_labels(y)
    with torch.inference_mode():
        gentle = ResidualCodec(model, FixedGrid("rk4", 10), strength=0.3)
        r = gentle.invert(x, c)
        assert gentle.t_residual == pytest.approx(0.7)
        assert (r - x).norm(dim=1).mean() < (ResidualCodec(model).invert(x, c) - x).norm(dim=1).mean()
        assert gentle.roundtrip_error(x, c).mean() < 1e-3
    with pytest.raises(ValueError):
        ResidualCodec(model, strength=0.0)


def test_codec_rejects_bad_input(toy16):
    _, model = toy16
    codec = ResidualCodec(model)
    with pytest.raises(ValueError, match="conditions"):
        codec.invert(torch.zeros(3, 16), Condition.from_labels([0, 1]))
    with pytest.raises(ValueError, match="NaN"):
        codec.decode(torch.full((1, 16), float("nan")), Condition.from_labels([0]))
    with pytest.raises(ValueError, match="unknown class"):
        codec.decode(torch.zeros(1, 16), Condition.from_labels([7]))


def test_training_is_deterministic_and_learns():
    toy = ToyMixture(dim=2)
    cfg = TrainConfig(steps=60, batch_size=64, seed=3)
    a, b = train_toy_flow(toy, config=cfg, hidden=32, depth=1), train_toy_flow(toy, config=cfg, hidden=32, depth=1)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    x, y = toy.sample(512, torch.Generator().manual_seed(0))
    res = train_flow(MLPVelocity((2,), num_classes=3, hidden=32, depth=1), x, Condition.from_labels(y),
                     TrainConfig(steps=200, batch_size=128, ema_decay=None), show_progress=False)
    assert sum(res.losses[-20:]) / 20 < sum(res.losses[:20]) / 20


def test_checkpoint_roundtrip_weights_only(tmp_path, toy2):
    _, model = toy2
    path = save_checkpoint(tmp_path / "m.pt", model, {"note": "toy", "scale": [1.0, 2.0]})
    loaded, meta = load_checkpoint(path)
    assert meta == {"note": "toy", "scale": [1.0, 2.0]}
    x, t, c = torch.randn(4, 2), torch.rand(4), Condition.from_labels([0, 1, 2, 0])
    with torch.inference_mode():
        assert torch.equal(loaded(x, t, c), model(x, t, c))


def test_corrupt_or_missing_checkpoint_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable flowevo checkpoint"):
        load_checkpoint(bad)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")
