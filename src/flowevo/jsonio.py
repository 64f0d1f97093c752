"""JSON in and out for every layer: clear errors on read, strict JSON (no NaN) on write, atomic files."""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["read_json", "strict_json", "write_json"]


def read_json(path: str | Path) -> Any:
    """The parsed contents of ``path``; a ``ValueError`` naming the file when it is not valid JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc


def strict_json(obj: Any) -> Any:
    """``obj`` with NaN/inf -> None, numpy scalars -> Python, tuples -> lists, keys -> str, arrays and tensors
    (anything with ``tolist`` and ``dtype``) -> nested lists, paths -> str.

    Example::

        >>> strict_json({"a": float("nan"), 1: (np.float32(0.5), np.int64(2), np.bool_(True))})
        {'a': None, '1': [0.5, 2, True]}
    """
    if isinstance(obj, dict):
        return {str(k): strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if hasattr(obj, "tolist") and hasattr(obj, "dtype"):  # numpy arrays, torch tensors
        return strict_json(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: str | Path, obj: Any, indent: int | None = 2, default: Callable[[Any], Any] | None = None) -> Path:
    """Write ``strict_json(obj)`` to ``path`` atomically (a temporary file in the same folder, then a rename).

    A reader never sees a half-written file, and a crash leaves the old one. ``default`` converts
    objects JSON does not know (e.g. ``str``); without it they raise ``TypeError``.

    Example::

        >>> import tempfile; d = Path(tempfile.mkdtemp())
        >>> read_json(write_json(d / "m.json", {"loss": np.float32(0.5), "best": float("nan")}))
        {'loss': 0.5, 'best': None}
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(strict_json(obj), indent=indent, allow_nan=False, default=default) + "\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
