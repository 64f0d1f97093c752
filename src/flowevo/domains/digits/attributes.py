"""Attribute edits of digits: move a Morpho-MNIST measurement (not differentiable) while the class stays.

:func:`morphometric_edit` edits every digit in one REO run: each digit is a task row whose target
is ``factor`` times its own measurement, decoded under its own class. Two forms:

- *targeted* (default): minimise ``|m(edit) - target|`` subject to the black box still reading the
  digit's class;
- *banded* (``band`` given): change the pixels as little as possible subject to
  ``|m(edit) - target| <= band`` and the class kept.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from flowevo.domains.digits.models import DigitModels
from flowevo.domains.digits.morphometrics import METRICS, measure_batch
from flowevo.domains.digits.objectives import ClassifierOracle, keep_class_constraint, pixel_distance
from flowevo.evolve import EditResult, EditTask, Evolver, LagrangianPenalty, MaxGenerations
from flowevo.flow import Condition
from flowevo.objectives import Candidates, Constraint, FunctionObjective, LocalEvaluator

__all__ = ["morphometric_edit", "morphometric_gap"]


def morphometric_gap(metric: str, targets: Tensor, processes: int | None = 1) -> Callable[[Candidates], Tensor]:
    """``candidates -> (N,)``: ``|m(x) - targets[row]|`` for the Morpho-MNIST ``metric`` (``targets (B,)`` per row)."""
    if metric not in METRICS:
        raise ValueError(f"unknown morphometric {metric!r}; use one of {list(METRICS)}")
    col, targets = METRICS.index(metric), targets.detach().cpu().double()

    def gap(c: Candidates) -> Tensor:
        m = torch.as_tensor(measure_batch(c.x.detach().cpu().numpy(), processes=processes)[:, col], dtype=torch.float64)
        return (m - targets[c.source_index.cpu()]).abs()

    return gap


def morphometric_edit(models: DigitModels, x: Tensor, labels: Tensor, metric: str = "thickness", factor: float = 1.6,
                      band: float | None = None, penalty: bool = False, population: int = 16, generations: int = 8,
                      seed: int = 0) -> tuple[EditResult, np.ndarray]:
    """Edit digits ``x (B, 28, 28)`` of classes ``labels (B,)`` toward ``factor`` times their own ``metric``.

    Args:
        band: None for the targeted form; else the banded form's allowed distance to the target (px).
        penalty: rank infeasible candidates by an adaptive :class:`~flowevo.evolve.LagrangianPenalty`.

    Returns:
        the :class:`~flowevo.evolve.EditResult` (``best`` = each digit's edit) and the targets ``(B,)``.
    """
    device = models.codec().device
    x, labels = x.to(device), labels.to(device)
    targets = factor * measure_batch(x.cpu().numpy())[:, METRICS.index(metric)]
    oracle = ClassifierOracle(models.classifier)
    gap = morphometric_gap(metric, torch.as_tensor(targets))
    if band is None:
        evaluator = LocalEvaluator([FunctionObjective(f"{metric}_to_target", "min", gap)], [keep_class_constraint(oracle)])
    else:
        evaluator = LocalEvaluator([FunctionObjective("pixel_change", "min", lambda c: pixel_distance(c, x))],
                                   [Constraint(f"{metric}_band", gap, bound=band), keep_class_constraint(oracle)])
    c = Condition.from_labels(labels)
    evolver = Evolver(models.codec(), EditTask(x, c, c), evaluator, population_size=population,
                      termination=[MaxGenerations(generations)], seed=seed,
                      penalty=LagrangianPenalty() if penalty else None)
    return evolver.run(), targets
