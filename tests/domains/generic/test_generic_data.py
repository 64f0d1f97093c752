"""User .npz files: what loads, and a clear error naming file and key for everything that does not."""

import numpy as np
import pytest
import torch

from flowevo.domains.generic import load_npz


def _save(tmp_path, name="d.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def test_vectors_images_and_conditions_load(tmp_path):
    rng = np.random.default_rng(0)
    d = load_npz(_save(tmp_path, x=rng.normal(size=(6, 3)), c=np.array([0, 1, 2, 0, 1, 2]), v=rng.normal(size=6)))
    assert d.kind == "vectors" and d.shape == (3,) and d.num_classes == 3 and d.value_dim == 1
    assert d.x.dtype == torch.float32 and d.values.shape == (6, 1)
    imgs = load_npz(_save(tmp_path, "i.npz", x=np.full((4, 5, 5), 255, np.uint8), c=np.zeros(4, np.int64),
                          class_names=np.array(["a"])))
    assert imgs.kind == "images" and float(imgs.x.max()) == 1.0 and imgs.class_names == ("a",)
    chw = load_npz(_save(tmp_path, "c.npz", x=np.zeros((2, 3, 4, 4), np.float32), v=np.zeros((2, 2))))
    assert chw.shape == (3, 4, 4) and chw.value_dim == 2 and chw.labels is None


@pytest.mark.parametrize("arrays, words", [
    (dict(c=np.zeros(3, np.int64)), ["missing key 'x'"]),
    (dict(x=np.zeros(3), c=np.zeros(3, np.int64)), ["'x'", "shape (3,)"]),
    (dict(x=np.zeros((3, 2)), c=np.zeros(3)), ["'c'", "integer class ids", "float64"]),
    (dict(x=np.zeros((3, 2)), c=np.zeros(4, np.int64)), ["'c'", "shape (3,)"]),
    (dict(x=np.zeros((3, 2)), c=np.array([0, -1, 1])), ["'c'", "negative"]),
    (dict(x=np.array([[0.0, 1.0], [np.nan, 0.0]]), c=np.zeros(2, np.int64)), ["'x'", "NaN", "row 1"]),
    (dict(x=np.zeros((3, 2)), v=np.array([0.0, np.inf, 1.0])), ["'v'", "NaN or inf", "row 1"]),
    (dict(x=np.zeros((3, 2)), v=np.zeros((2, 1))), ["'v'", "shape (3,)"]),
    (dict(x=np.zeros((3, 2))), ["no conditions", "'c'", "'v'"]),
    (dict(x=np.zeros((3, 2)), c=np.zeros(3, np.int64), labels=np.zeros(3)), ["unknown key", "labels"]),
    (dict(x=np.zeros((3, 2), dtype=bool), c=np.zeros(3, np.int64)), ["'x'", "numeric"]),
])
def test_bad_files_name_the_file_and_key(tmp_path, arrays, words):
    path = _save(tmp_path, **arrays)
    with pytest.raises(ValueError) as err:
        load_npz(path)
    msg = str(err.value)
    assert str(path) in msg
    for w in words:
        assert w in msg, (w, msg)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_npz(tmp_path / "nope.npz")
    bad = tmp_path / "bad.npz"
    bad.write_text("not a zip")
    with pytest.raises(ValueError, match="bad.npz.*not a readable .npz"):
        load_npz(bad)
    obj = tmp_path / "obj.npz"
    np.savez(obj, x=np.array([object(), object()], dtype=object))
    with pytest.raises(ValueError, match="obj.npz.*object arrays"):
        load_npz(obj)
