"""Content-hash cache: the same candidate is never scored twice, whatever the backend.

A candidate's key is a BLAKE2b hash of everything an objective can see of it: its row of
``x``, ``sources``, ``source_index``, the target condition, and its entries of ``extra``
(arrays by bytes, other objects by pickle, falling back to ``repr``). Values are stored per
``(key, callable name)``: changing what an objective computes without renaming it makes a
persisted cache stale. Only finite values are stored, so failures (which may be transient,
e.g. a timeout) are retried next time.

:class:`CachedEvaluator` wraps any evaluator (local, process pool, Dask): it scores only the
candidates whose values are missing, each distinct candidate of a batch once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from flowevo.objectives.base import Candidates
from flowevo.objectives.evaluator import Evaluation, Evaluator, Failure, assemble


class EvaluationCache:
    """In-memory map ``(candidate key, callable name) -> value``, optionally persisted.

    Args:
        directory: if given, values are loaded from and appended to ``directory/cache.jsonl``
            (one ``{"key", "name", "value"}`` object a line); None keeps the cache in memory only.

    Attributes:
        hits / misses: candidates served from the cache (or from a duplicate in the same batch)
            and candidates that had to be scored.
    """

    FILENAME = "cache.jsonl"

    def __init__(self, directory: Path | str | None = None) -> None:
        self.directory = None if directory is None else Path(directory)
        self._values: dict[tuple[str, str], float] = {}
        self.hits = self.misses = 0
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / self.FILENAME
            if path.exists():
                for line in path.read_text().splitlines():
                    if line.strip():
                        rec = json.loads(line)
                        self._values[(rec["key"], rec["name"])] = float(rec["value"])

    def __len__(self) -> int:
        """Stored values: one per (candidate, callable)."""
        return len(self._values)

    def get(self, key: str, names: list[str]) -> list[float] | None:
        """The values of ``names`` for ``key``, or None if any is missing."""
        out = [self._values.get((key, n)) for n in names]
        return None if any(v is None for v in out) else out  # type: ignore[misc]

    def put(self, items: list[tuple[str, str, float]]) -> None:
        """Store finite ``(key, name, value)`` items (and append them to disk if persisted)."""
        new = [(k, n, float(v)) for k, n, v in items if math.isfinite(v) and (k, n) not in self._values]
        for k, n, v in new:
            self._values[(k, n)] = v
        if self.directory is not None and new:
            with (self.directory / self.FILENAME).open("a") as fh:
                fh.writelines(json.dumps({"key": k, "name": n, "value": v}) + "\n" for k, n, v in new)

    @property
    def hit_rate(self) -> float:
        """Fraction of candidates served without scoring (NaN before any lookup)."""
        total = self.hits + self.misses
        return self.hits / total if total else math.nan

    def stats(self) -> dict[str, float]:
        """``{"hits", "misses", "hit_rate", "stored_values"}`` (one stored value per candidate and callable)."""
        return {"hits": self.hits, "misses": self.misses, "hit_rate": self.hit_rate, "stored_values": len(self)}


def candidate_keys(batch: Candidates) -> list[str]:
    """One hex key per candidate of the batch (N keys): a hash of all its content."""
    n = len(batch)
    hashers = [hashlib.blake2b(digest_size=16) for _ in range(n)]

    def feed(obj: Any, path: str) -> None:
        if obj is None:
            return
        if isinstance(obj, Tensor):
            obj = obj.detach().cpu()
            obj = (obj.float() if obj.dtype == torch.bfloat16 else obj).numpy()
        if isinstance(obj, np.ndarray):
            head = f"{path}|{obj.dtype}|{obj.shape[1:]}|".encode()
            if obj.ndim and obj.shape[0] == n:
                rows = np.ascontiguousarray(obj).reshape(n, -1)
                for h, row in zip(hashers, rows):
                    h.update(head + row.tobytes())
            else:
                for h in hashers:
                    h.update(head + np.ascontiguousarray(obj).tobytes())
        elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            for f in dataclasses.fields(obj):
                feed(getattr(obj, f.name), f"{path}.{f.name}")
        elif isinstance(obj, dict):
            for k in sorted(obj, key=str):
                feed(obj[k], f"{path}[{k}]")
        elif isinstance(obj, (list, tuple)) and len(obj) == n:
            for h, item in zip(hashers, obj):
                h.update(f"{path}|".encode() + _object_bytes(item))
        else:
            for h in hashers:
                h.update(f"{path}|".encode() + _object_bytes(obj))

    for name in ("x", "sources", "source_index", "target", "extra"):
        feed(getattr(batch, name), name)
    return [h.hexdigest() for h in hashers]


def _object_bytes(obj: Any) -> bytes:
    if isinstance(obj, Tensor):
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        return f"{obj.dtype}{obj.shape}".encode() + np.ascontiguousarray(obj).tobytes()
    try:
        return pickle.dumps(obj, protocol=4)
    except Exception:
        return repr(obj).encode()


class CachedEvaluator:
    """Wrap an evaluator so each distinct candidate is scored once; a drop-in for it.

    Args:
        inner: any evaluator (``LocalEvaluator``, ``ProcessPoolEvaluator``, ``DaskEvaluator``).
        cache: the cache to use (default: a new in-memory one); share one to reuse across runs.

    Example:
        >>> ev = CachedEvaluator(LocalEvaluator([objective]))  # doctest: +SKIP
        >>> ev(batch); ev(batch); ev.cache.hit_rate             # doctest: +SKIP
        0.5
    """

    def __init__(self, inner: Evaluator, cache: EvaluationCache | None = None) -> None:
        self.inner = inner
        self.cache = cache if cache is not None else EvaluationCache()
        self.objectives, self.constraints = inner.objectives, inner.constraints
        self._names = [o.name for o in self.objectives] + [c.name for c in self.constraints]

    def __call__(self, batch: Candidates) -> Evaluation:
        n, m = len(batch), len(self.objectives)
        keys = candidate_keys(batch)
        table = torch.full((n, len(self._names)), math.nan, dtype=torch.float64)
        first: dict[str, int] = {}  # key -> first position needing a score
        for i, key in enumerate(keys):
            cached = self.cache.get(key, self._names)
            if cached is not None:
                table[i] = torch.tensor(cached, dtype=torch.float64)
            elif key not in first:
                first[key] = i
        todo = list(first.values())
        self.cache.hits += n - len(todo)
        self.cache.misses += len(todo)
        failures: list[Failure] = []
        if todo:
            ev = self.inner(batch.subset(torch.tensor(todo)))
            fresh = torch.cat([ev.values, ev.constraint_values], dim=1).to(torch.float64)
            by_key = {keys[i]: fresh[j] for j, i in enumerate(todo)}
            failed_at: dict[str, list[Failure]] = {}
            for f in ev.failures:
                failed_at.setdefault(keys[todo[f.index]], []).append(f)
            for i, key in enumerate(keys):
                if key in by_key:
                    table[i] = by_key[key]
                    failures.extend(dataclasses.replace(f, index=i, row=int(batch.source_index[i]))
                                    for f in failed_at.get(key, ()))
            self.cache.put([(keys[i], name, float(fresh[j, k])) for j, i in enumerate(todo)
                            for k, name in enumerate(self._names)])
        return assemble(table[:, :m], table[:, m:], self.constraints, failures)

    def close(self) -> None:
        """Close the wrapped evaluator (if it can be closed)."""
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> CachedEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
