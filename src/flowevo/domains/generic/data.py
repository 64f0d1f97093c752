"""A user's data set as one ``.npz`` file: samples plus class ids and/or float conditions.

Keys (``numpy.savez(path, x=..., c=..., v=...)``):

- ``x`` (required): the samples. ``(N, D)`` vectors, ``(N, H, W)`` grey images or
  ``(N, C, H, W)`` channel-first images; any real dtype. ``uint8`` images are read as
  ``x / 255`` (floats in [0, 1]).
- ``c`` (optional): ``(N,)`` integer class ids ``0 .. num_classes - 1``.
- ``v`` (optional): ``(N,)`` or ``(N, K)`` float conditions (e.g. a measured property).
- ``class_names`` (optional): ``(num_classes,)`` strings, shown in reports.

At least one of ``c`` and ``v`` is needed to train a conditional model. Every problem is a
``ValueError`` (or ``FileNotFoundError``) whose message names the file and the key.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from flowevo.flow import Condition

__all__ = ["UserData", "load_npz", "KEYS"]

KEYS = {
    "x": "samples: (N, D) vectors, (N, H, W) or (N, C, H, W) images",
    "c": "(N,) integer class ids",
    "v": "(N,) or (N, K) float conditions",
    "class_names": "(num_classes,) strings",
}


@dataclass(frozen=True)
class UserData:
    """A loaded data set.

    Attributes:
        x: ``(N, *D)`` float32 samples (uint8 images already divided by 255).
        labels: ``(N,)`` long class ids, or None.
        values: ``(N, K)`` float32 conditions, or None.
        path: the file it came from (for messages).
        kind: ``"vectors"`` or ``"images"``.
        class_names: names of the classes, or None.

    Example:
        >>> import numpy as np, tempfile, os
        >>> f = os.path.join(tempfile.mkdtemp(), "d.npz")
        >>> np.savez(f, x=np.random.rand(10, 3), c=np.arange(10) % 2)
        >>> data = load_npz(f)
        >>> data.kind, data.shape, data.num_classes
        ('vectors', (3,), 2)
    """

    x: Tensor
    labels: Tensor | None
    values: Tensor | None
    path: str
    kind: str
    class_names: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def shape(self) -> tuple[int, ...]:
        """The trailing sample shape ``D``."""
        return tuple(int(s) for s in self.x.shape[1:])

    @property
    def num_classes(self) -> int:
        """``max(c) + 1`` (0 without class ids)."""
        return 0 if self.labels is None else int(self.labels.max()) + 1

    @property
    def value_dim(self) -> int:
        """Width K of the float conditions (0 without them)."""
        return 0 if self.values is None else int(self.values.shape[1])

    def condition(self) -> Condition:
        """The samples' own conditions (batch N)."""
        if self.labels is None and self.values is None:
            raise ValueError(f"{self.path}: no conditions: add key 'c' ({KEYS['c']}) and/or 'v' ({KEYS['v']})")
        return Condition(labels=self.labels, values=self.values)

    def subset(self, index: Tensor | np.ndarray | list[int]) -> UserData:
        """The samples at ``index``."""
        idx = torch.as_tensor(index, dtype=torch.long)
        pick = lambda t: None if t is None else t[idx]  # noqa: E731
        return UserData(self.x[idx], pick(self.labels), pick(self.values), self.path, self.kind, self.class_names)


def _first_bad_row(a: np.ndarray) -> int:
    bad = ~np.isfinite(a.reshape(a.shape[0], -1)).all(axis=1)
    return int(np.flatnonzero(bad)[0])


def load_npz(path: str | Path, require_condition: bool = True) -> UserData:
    """Read and validate a user ``.npz`` (see the module docstring for the keys).

    Args:
        path: the file.
        require_condition: raise when neither ``c`` nor ``v`` is present.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not an npz, a missing key, a wrong shape or dtype, NaN or inf, negative class ids;
            the message names the file and the key.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such data file")
    if not zipfile.is_zipfile(p):
        raise ValueError(f"{p}: not a readable .npz file (not a zip archive; write it with numpy.savez)")
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ValueError(f"{p}: not a readable .npz file ({type(exc).__name__}: {exc})") from exc
    except ValueError as exc:  # object arrays need pickle: refused
        raise ValueError(f"{p}: holds object arrays, which are not loaded (save plain numeric arrays; {exc})") from exc
    unknown = sorted(set(arrays) - set(KEYS))
    if unknown:
        raise ValueError(f"{p}: unknown key(s) {unknown}; expected {sorted(KEYS)}: "
                         + "; ".join(f"{k}: {v}" for k, v in KEYS.items()))
    if "x" not in arrays:
        raise ValueError(f"{p}: missing key 'x' ({KEYS['x']}); keys present: {sorted(arrays)}")
    x = arrays["x"]
    if x.dtype.kind not in "uif" or x.dtype == np.bool_:
        raise ValueError(f"{p}: key 'x' must be numeric, got dtype {x.dtype}")
    if x.ndim not in (2, 3, 4) or x.shape[0] == 0 or 0 in x.shape:
        raise ValueError(f"{p}: key 'x' must be {KEYS['x']} with N >= 1, got shape {x.shape}")
    n = x.shape[0]
    kind = "vectors" if x.ndim == 2 else "images"
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise ValueError(f"{p}: key 'x' contains NaN or inf (first at row {_first_bad_row(x)})")
    xt = torch.from_numpy(x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32))
    labels = values = None
    if "c" in arrays:
        c = arrays["c"]
        if c.dtype.kind not in "iu":
            raise ValueError(f"{p}: key 'c' must hold integer class ids ({KEYS['c']}), got dtype {c.dtype}")
        if c.shape != (n,):
            raise ValueError(f"{p}: key 'c' must have shape ({n},) to match 'x', got {c.shape}")
        if c.min() < 0:
            raise ValueError(f"{p}: key 'c' has negative class ids (e.g. {int(c.min())}); use 0 .. num_classes - 1")
        labels = torch.from_numpy(c.astype(np.int64))
    if "v" in arrays:
        v = arrays["v"]
        if v.dtype.kind not in "iuf" or v.dtype == np.bool_:
            raise ValueError(f"{p}: key 'v' must be numeric ({KEYS['v']}), got dtype {v.dtype}")
        v = v.astype(np.float32)
        if v.ndim == 1:
            v = v[:, None]
        if v.ndim != 2 or v.shape[0] != n or v.shape[1] == 0:
            raise ValueError(f"{p}: key 'v' must have shape ({n},) or ({n}, K), got {arrays['v'].shape}")
        if not np.isfinite(v).all():
            raise ValueError(f"{p}: key 'v' contains NaN or inf (first at row {_first_bad_row(v)})")
        values = torch.from_numpy(v)
    names = None
    if "class_names" in arrays:
        cn = arrays["class_names"]
        if cn.ndim != 1 or cn.dtype.kind not in "US":
            raise ValueError(f"{p}: key 'class_names' must be a 1-D array of strings, got {cn.dtype} {cn.shape}")
        names = tuple(str(s) for s in cn.tolist())
        if labels is not None and len(names) < int(labels.max()) + 1:
            raise ValueError(f"{p}: key 'class_names' has {len(names)} names but 'c' uses ids up to {int(labels.max())}")
    if require_condition and labels is None and values is None:
        raise ValueError(f"{p}: no conditions: add key 'c' ({KEYS['c']}) and/or 'v' ({KEYS['v']})")
    return UserData(xt, labels, values, str(p), kind, names)
