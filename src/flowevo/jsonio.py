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
