"""What runs inside a worker process: unpickle the callables once, score one chunk.

The parent pickles the objectives and constraints once (:func:`pickle_callables`, which
names the first one that cannot be pickled) and ships those bytes with every chunk; a
worker unpickles each distinct blob once (a small LRU) and reuses it.
"""

from __future__ import annotations

import functools
import os
import pickle
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from flowevo.objectives.base import Constraint, Objective
from flowevo.objectives.evaluator import evaluate_all
from flowevo.objectives.payload import Payload, from_payload


@dataclass(frozen=True)
class ChunkResult:
    """Scores of one chunk of n candidates.

    Attributes:
        values: ``(n, M + C)`` float64: objective values then constraint values (NaN = failed).
        failures: ``(position in chunk, callable name, error)`` for each failure.
        pid: the worker process that computed it.
    """

    values: np.ndarray
    failures: list[tuple[int, str, str]]
    pid: int


def pickle_callables(objectives: Sequence[Objective], constraints: Sequence[Constraint]) -> bytes:
    """Pickle ``(objectives, constraints)`` for workers; a clear ``TypeError`` if one cannot be."""
    for kind, items in (("objective", objectives), ("constraint", constraints)):
        for item in items:
            try:
                pickle.dumps(item)
            except Exception as exc:
                raise TypeError(
                    f"{kind} {getattr(item, 'name', item)!r} cannot be sent to worker processes "
                    f"({type(exc).__name__}: {exc}). Pool and Dask backends need picklable objectives: "
                    "module-level functions, dataclasses or functools.partial of them — not lambdas, "
                    "closures or locally defined functions. Use LocalEvaluator for those."
                ) from exc
    return pickle.dumps((list(objectives), list(constraints)))


@functools.lru_cache(maxsize=4)
def load_callables(blob: bytes) -> tuple[list[Objective], list[Constraint]]:
    """Unpickle (and memoise) the callables shipped by :func:`pickle_callables`."""
    return pickle.loads(blob)


def evaluate_chunk(blob: bytes, payload: Payload) -> ChunkResult:
    """Score one chunk in this process, isolating failures exactly as :class:`LocalEvaluator` does."""
    objectives, constraints = load_callables(blob)
    batch = from_payload(payload)
    values, g, failures = evaluate_all(objectives, constraints, batch)
    table = np.concatenate([values.numpy(), g.numpy()], axis=1)
    return ChunkResult(table, [(f.index, f.name, f.error) for f in failures], os.getpid())


def init_worker(threads: int) -> None:
    """Process-pool initializer: limit torch's intra-op threads so workers do not oversubscribe cores."""
    import torch

    torch.set_num_threads(max(1, threads))


def warm(blob: bytes, hold_s: float = 0.0) -> int:
    """Load the callables (imports, models) ahead of the first chunk; return this worker's pid."""
    load_callables(blob)
    time.sleep(hold_s)
    return os.getpid()
