"""Where a configured run's objectives are scored: ``[optimize.evaluation]`` -> an evaluator.

=========  ==========================================================================================
backend    evaluator
=========  ==========================================================================================
local      :class:`~flowevo.objectives.LocalEvaluator`: in this process (no timeouts)
processes  :class:`~flowevo.objectives.ProcessPoolEvaluator`: ``workers`` local processes (spawned)
dask       :class:`~flowevo.objectives.DaskEvaluator`: a private cluster on 127.0.0.1 with ``workers``
           processes, or the scheduler at ``address`` (e.g. dask-jobqueue on an HPC cluster)
=========  ==========================================================================================

``cache`` puts a :class:`~flowevo.objectives.CachedEvaluator` in front (true: ``RUN_DIR/cache``; a
folder: shared between runs), so a candidate decoded twice is scored once. The objectives travel
to the workers as their specs (:class:`~flowevo.workflows.builtins.SpecFunction`); candidates as
numpy payloads. Every backend gives the same values, so a run's result does not depend on it.
Workers need flowevo installed and must reach the files that import strings and ``cmd:`` programs
name (the same paths: a shared file system on a cluster).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flowevo.config.models import EvaluationSection
from flowevo.objectives import (
    CachedEvaluator,
    Constraint,
    DaskEvaluator,
    EvaluationCache,
    Evaluator,
    LocalEvaluator,
    Objective,
    ProcessPoolEvaluator,
)

__all__ = ["build_evaluator", "evaluator_summary"]


def build_evaluator(section: EvaluationSection, objectives: Sequence[Objective], constraints: Sequence[Constraint],
                    run_dir: Path | None = None) -> Evaluator:
    """The evaluator ``section`` describes, started (pool workers / cluster up); close it with ``.close()``.

    Raises:
        ValueError: ``cache = true`` without a run directory.
        TypeError: an objective that cannot be sent to worker processes (the message names it).
    """
    inner: Any
    if section.backend == "local":
        inner = LocalEvaluator(objectives, constraints)
    elif section.backend == "processes":
        inner = ProcessPoolEvaluator(objectives, constraints, n_workers=section.workers, timeout_s=section.timeout_s,
                                     retries=section.retries, threads_per_worker=section.threads_per_worker)
    else:
        inner = DaskEvaluator(objectives, constraints, address=section.address, n_workers=section.workers,
                              threads_per_worker=section.threads_per_worker, timeout_s=section.timeout_s,
                              retries=section.retries)
    if section.cache is False:
        return inner
    if section.cache is True:
        if run_dir is None:
            inner.close()
            raise ValueError("optimize.evaluation.cache = true needs a run directory (or give the cache a folder)")
        folder = Path(run_dir) / "cache"
    else:
        folder = Path(section.cache)
    return CachedEvaluator(inner, EvaluationCache(folder))


def evaluator_summary(section: EvaluationSection, evaluator: Evaluator) -> dict[str, Any]:
    """What ``metrics.json`` records about evaluation: backend, workers, worker restarts, cache hits."""
    inner = evaluator.inner if isinstance(evaluator, CachedEvaluator) else evaluator
    out: dict[str, Any] = {"backend": section.backend}
    if section.backend != "local":
        out["workers"] = None if section.address else section.workers
        out["address"] = section.address
        out["worker_restarts"] = int(getattr(inner, "restarts", 0))
    if isinstance(evaluator, CachedEvaluator):
        out["cache"] = {**evaluator.cache.stats(), "folder": str(evaluator.cache.directory)}
    return out
