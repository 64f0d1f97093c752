"""Tests for flowevo.domains.digits.data: builtin split, user npz, Morpho-MNIST IDX files."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from flowevo.domains.digits.data import images_to_tensor, load_builtin_digits, load_digits_npz, load_morpho_mnist, read_idx
from flowevo.domains.digits.morphometrics import METRICS


def test_builtin_split_shapes_and_determinism() -> None:
    a, b = load_builtin_digits(), load_builtin_digits()
    assert a.train_images.shape == (4000, 28, 28) and a.test_images.shape == (1000, 28, 28)
    assert a.train_images.dtype == np.uint8 and a.train_labels.dtype == np.int64
    assert a.train_labels.shape == (4000,) and a.test_labels.shape == (1000,)
    assert set(np.unique(a.test_labels)) == set(range(10))
    np.testing.assert_array_equal(a.test_images, b.test_images)
    np.testing.assert_array_equal(a.train_labels, b.train_labels)
    assert a.train_images.max() == 255 and a.train_images.min() == 0
    t = images_to_tensor(a.test_images[:3])
    assert t.shape == (3, 28, 28) and float(t.max()) <= 1.0


def test_builtin_split_is_parsed_once_and_each_call_owns_its_arrays() -> None:
    from flowevo.domains.digits.data import _builtin_arrays

    a = load_builtin_digits()
    parses = _builtin_arrays.cache_info().misses
    first = int(a.test_images[0, 14, 14])
    a.test_images[0, 14, 14] = 255 - first  # a caller may edit its copy
    a.train_labels[:] = 0
    b = load_builtin_digits()
    assert int(b.test_images[0, 14, 14]) == first and len(set(b.train_labels.tolist())) == 10
    assert b.test_images.flags.writeable and not np.shares_memory(a.test_images, b.test_images)
    assert _builtin_arrays.cache_info().misses == parses  # the second call did not parse again


# -- user npz --------------------------------------------------------------------------------------
def _npz(tmp_path: Path, name: str = "d.npz", **arrays: np.ndarray) -> Path:
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def test_npz_formats(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    u8 = rng.integers(0, 256, (5, 28, 28)).astype(np.uint8)
    labels = np.array([0, 1, 2, 3, 9])
    images, out_labels = load_digits_npz(_npz(tmp_path, images=u8, labels=labels))
    np.testing.assert_array_equal(images, u8)
    assert out_labels.dtype == np.int64
    # float in [0, 1] (max <= 1) is scaled by 255; float above 1 is read as 0..255; flat rows accepted
    unit, _ = load_digits_npz(_npz(tmp_path, "f1.npz", images=u8 / 255.0, labels=labels))
    np.testing.assert_array_equal(unit, u8)
    wide, _ = load_digits_npz(_npz(tmp_path, "f255.npz", images=u8.astype(np.float32).reshape(5, 784), labels=labels))
    np.testing.assert_array_equal(wide, u8)
    floats, _ = load_digits_npz(_npz(tmp_path, "fl.npz", images=u8, labels=labels.astype(np.float64)))
    assert floats.dtype == np.uint8


@pytest.mark.parametrize(
    "arrays, match",
    [
        (dict(images=np.zeros((2, 28, 28))), "missing array"),
        (dict(images=np.zeros((2, 27, 28)), labels=np.zeros(2)), "shape"),
        (dict(images=np.full((2, 28, 28), np.nan), labels=np.zeros(2)), "NaN"),
        (dict(images=np.zeros((2, 28, 28)), labels=np.array([0, 10])), "0..9"),
        (dict(images=np.zeros((2, 28, 28)), labels=np.array([0.5, 1])), "whole"),
        (dict(images=np.zeros((2, 28, 28)), labels=np.zeros(3, int)), "2 images but 3 labels"),
        (dict(images=np.full((2, 28, 28), 300.0), labels=np.zeros(2)), r"\[0, 255\]"),
        (dict(images=np.full((2, 28, 28), -1, np.int16), labels=np.zeros(2)), "0..255"),
    ],
)
def test_npz_errors_name_file_and_problem(tmp_path: Path, arrays: dict, match: str) -> None:
    path = _npz(tmp_path, **arrays)
    with pytest.raises(ValueError, match=match) as info:
        load_digits_npz(path)
    assert str(path) in str(info.value)


def test_npz_missing_and_not_npz(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_digits_npz(tmp_path / "nope.npz")
    bad = tmp_path / "bad.npz"
    bad.write_text("hello")
    with pytest.raises(ValueError, match="not an .npz"):
        load_digits_npz(bad)


# -- Morpho-MNIST -----------------------------------------------------------------------------------
def _idx(path: Path, array: np.ndarray, type_code: int = 0x08, compress: bool = True) -> None:
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)


def _morpho_dir(tmp_path: Path, n: int = 4, pert: bool = True) -> tuple[Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
    morpho = rng.random((n, 6))
    _idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    _idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(n) % 10)
    if pert:
        _idx(tmp_path / "t10k-pert-idx1-ubyte.gz", np.arange(n) % 5)
    rows = [",".join(["index", *METRICS])]
    for i in reversed(range(n)):  # rows out of order: the loader sorts by index
        rows.append(",".join([str(i), *(repr(float(v)) for v in morpho[i])]))
    (tmp_path / "t10k-morpho.csv").write_text("\n".join(rows) + "\n")
    return tmp_path, images, morpho


def test_morpho_mnist_roundtrip(tmp_path: Path) -> None:
    folder, images, morpho = _morpho_dir(tmp_path)
    out = load_morpho_mnist(folder)
    np.testing.assert_array_equal(out.images, images)
    np.testing.assert_array_equal(out.labels, [0, 1, 2, 3])
    np.testing.assert_allclose(out.morpho, morpho)
    np.testing.assert_array_equal(out.perturbations, [0, 1, 2, 3])
    imgs, labels, morph, pert = out  # unpacks as a 4-tuple
    assert morph.shape == (4, 6) and pert is not None


def test_morpho_mnist_without_pert(tmp_path: Path) -> None:
    folder, _, _ = _morpho_dir(tmp_path, pert=False)
    assert load_morpho_mnist(folder).perturbations is None


def test_read_idx_raw_and_errors(tmp_path: Path) -> None:
    raw = tmp_path / "raw-idx1-ubyte"
    _idx(raw, np.arange(7), compress=False)
    np.testing.assert_array_equal(read_idx(raw), np.arange(7))
    bad_magic = tmp_path / "m.gz"
    bad_magic.write_bytes(gzip.compress(b"\x01\x02\x08\x01\x00\x00\x00\x01\x05"))
    with pytest.raises(ValueError, match="magic"):
        read_idx(bad_magic)
    short = tmp_path / "s.gz"
    short.write_bytes(gzip.compress(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"\x00" * 3))
    with pytest.raises(ValueError, match="10 bytes"):
        read_idx(short)
    corrupt = tmp_path / "c.gz"
    corrupt.write_bytes(gzip.compress(b"\x00" * 100)[:20])
    with pytest.raises(ValueError, match=str(corrupt)):
        read_idx(corrupt)
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "absent.gz")


def test_morpho_mnist_errors(tmp_path: Path) -> None:
    folder, _, _ = _morpho_dir(tmp_path)
    _idx(folder / "t10k-labels-idx1-ubyte.gz", np.arange(3))
    with pytest.raises(ValueError, match="3 labels but 4 images"):
        load_morpho_mnist(folder)
    _idx(folder / "t10k-labels-idx1-ubyte.gz", np.arange(4))
    csv = folder / "t10k-morpho.csv"
    csv.write_text("index,area\n0,1\n")
    with pytest.raises(ValueError, match="missing column"):
        load_morpho_mnist(folder)
    csv.unlink()
    with pytest.raises(FileNotFoundError, match="morpho.csv"):
        load_morpho_mnist(folder)
    with pytest.raises(FileNotFoundError):
        load_morpho_mnist(folder, split="train")


def test_training_digits_are_a_development_split_of_the_builtin_training_set():
    from flowevo.domains.digits.data import load_builtin_digits, load_training_digits

    x, labels = load_training_digits(slice(1000, 1010))
    split = load_builtin_digits()
    assert x.shape == (10, 28, 28) and 0 <= float(x.min()) and float(x.max()) <= 1
    assert labels.tolist() == split.train_labels[1000:1010].tolist()
    with pytest.raises(ValueError, match="select no training digit"):
        load_training_digits(slice(5000, 5010))
