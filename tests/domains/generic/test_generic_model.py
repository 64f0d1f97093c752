"""Generic training, encoders and MODEL_DIR: defaults scale with the data, save/load is exact, conditions are checked."""

import numpy as np
import pytest
import torch

from flowevo.domains.generic import (
    GenericTrainConfig,
    UserData,
    fit_autoencoder,
    fit_pca,
    load_model,
    load_npz,
    save_model,
    train_generic,
)


def _blobs(n=240, d=4, seed=0):
    rng = np.random.default_rng(seed)
    c = np.arange(n) % 3
    x = rng.normal(size=(n, d)) * 0.3 + 3.0 * np.eye(3, d)[c]
    v = x[:, 3:4] * 2 + 1  # independent of the class (dims 0..2)
    return x.astype(np.float32), c, v.astype(np.float32)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    x, c, v = _blobs()
    path = tmp_path_factory.mktemp("gen") / "train.npz"
    np.savez(path, x=x, c=c, v=v)
    data = load_npz(path)
    model = train_generic(data, GenericTrainConfig(steps=300, judge_steps=100, seed=0), show_progress=False)
    return data, model


def test_defaults_scale_with_the_data():
    small = UserData(torch.zeros(100, 8), torch.zeros(100, dtype=torch.long), None, "s", "vectors")
    wide = UserData(torch.zeros(20000, 300), torch.zeros(20000, dtype=torch.long), None, "w", "vectors")
    img = UserData(torch.zeros(50, 8, 8), torch.zeros(50, dtype=torch.long), None, "i", "images")
    a, b, c = (GenericTrainConfig().resolve(d) for d in (small, wide, img))
    assert (a.encoder, b.encoder, c.encoder) == ("none", "pca", "pca")
    assert a.batch_size == 100 and b.batch_size == 256
    assert a.steps == 500 and b.steps == 3125 and 500 <= c.steps <= 4000
    assert GenericTrainConfig(encoder="autoencoder").resolve(small).latent == 8


def test_training_learns_the_conditions(trained):
    data, model = trained
    assert model.info["judge"]["holdout_accuracy"] >= 0.9
    assert model.info["roundtrip"]["rk4_20_median_rel_error"] < 1e-3
    codec = model.codec(steps=10)
    with torch.inference_mode():
        src = data.subset(torch.nonzero(data.labels == 0).flatten()[:16])
        r = codec.invert(src.x, model.condition(labels=src.labels, values=src.values))
        edit = codec.decode(r, model.condition(labels=[2] * 16, values=src.values))
    probs, _ = model.judge.predict(edit)
    assert float((probs.argmax(1) == 2).double().mean()) >= 0.8  # class swap reads as the target class


def test_model_dir_round_trip_is_exact(trained, tmp_path):
    data, model = trained
    save_model(model, tmp_path / "m")
    assert {p.name for p in (tmp_path / "m").iterdir()} >= {"model.json", "flow.pt", "encoder.pt", "judge.pt"}
    again = load_model(tmp_path / "m")
    c = model.condition(labels=data.labels[:8], values=data.values[:8])
    with torch.inference_mode():
        a = model.codec().invert(data.x[:8], c)
        b = again.codec().invert(data.x[:8], c)
    assert torch.equal(a, b)
    assert again.info["value_dim"] == 1 and again.num_classes == 3


def test_conditions_are_checked(trained):
    _, model = trained
    with pytest.raises(ValueError, match=r"unknown class id\(s\) \[5\].*0\.\.2"):
        model.condition(labels=[5], values=[[0.0]])
    with pytest.raises(ValueError, match="float value"):
        model.condition(labels=[1])
    with pytest.raises(ValueError, match="class ids"):
        model.condition(values=[[0.0]])


def test_model_dir_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such model folder"):
        load_model(tmp_path / "missing")
    (tmp_path / "m").mkdir()
    with pytest.raises(FileNotFoundError, match="no model.json"):
        load_model(tmp_path / "m")
    (tmp_path / "m" / "model.json").write_text("{}")
    with pytest.raises(ValueError, match="not a flowevo generic model"):
        load_model(tmp_path / "m")


def test_pca_is_exact_on_its_subspace_and_autoencoder_learns():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 3, generator=g) @ torch.randn(3, 10, generator=g)  # rank 3 in 10-D
    pca = fit_pca(x)
    assert pca.latent_shape == (3,) and float(pca.explained) > 0.999
    assert torch.allclose(pca.decode(pca.encode(x)), x, atol=1e-4)
    z = pca.encode(x)
    assert torch.allclose(z.std(0), torch.ones(3), atol=0.05)  # whitened: residuals near N(0, I)
    ae, losses = fit_autoencoder(x, latent=3, steps=300, hidden=[32], show_progress=False)
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:20])
    assert ae.encode(x).shape == (300, 3)


def test_same_seed_same_weights():
    x, c, v = _blobs(n=60)
    data = UserData(torch.from_numpy(x), torch.from_numpy(c), torch.from_numpy(v)[:, None] if v.ndim == 1 else
                    torch.from_numpy(v), "mem", "vectors")
    cfg = GenericTrainConfig(steps=30, judge_steps=10, seed=3)
    a, b = (train_generic(data, cfg, show_progress=False) for _ in range(2))
    for m1, m2 in ((a.velocity, b.velocity), (a.judge, b.judge), (a.encoder, b.encoder)):
        s1, s2 = m1.state_dict(), m2.state_dict()
        assert s1.keys() == s2.keys() and all(torch.equal(s1[k], s2[k]) for k in s1)
    other = train_generic(data, GenericTrainConfig(steps=30, judge_steps=10, seed=4), show_progress=False)
    assert not torch.equal(other.velocity.state_dict()["model.input.weight"], a.velocity.state_dict()["model.input.weight"])
