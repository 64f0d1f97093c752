"""JSON in and out for every layer: clear errors on read, strict JSON (no NaN) on write."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np


def read_json(path: str | Path) -> Any:
    """The parsed contents of ``path``; a ``ValueError`` naming the file when it is not valid JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc


def strict_json(obj: Any) -> Any:
    """``obj`` with NaN/inf -> None, numpy scalars -> Python, tuples -> lists and keys -> str.

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
    return obj


def write_json(path: str | Path, obj: Any, indent: int | None = 2) -> Path:
    """Write ``strict_json(obj)`` (tensors as lists) to ``path`` atomically (temporary file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(strict_json(_plain(obj)), indent=indent))
    tmp.replace(path)
    return path


def _plain(obj: Any) -> Any:
    """Tensors and numpy arrays -> lists, recursively (other values unchanged)."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray) or type(obj).__module__.startswith("torch") and hasattr(obj, "tolist"):
        return obj.tolist()
    return obj
