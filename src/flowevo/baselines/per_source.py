"""Shared pieces of the per-source optimisers (CMA-ES, NSGA-II, BO): start genomes and scores in
minimisation form.

Failures (NaN values, ``inf`` violation) become large finite numbers, so an optimiser that cannot
take NaN still ranks a failed candidate last.
"""

from __future__ import annotations

import torch
from torch import Tensor

from flowevo.evolve.task import EditTask
from flowevo.flow.codec import Codec
from flowevo.objectives import Evaluation, Evaluator

__all__ = ["FAILED", "PENALTY", "constraint_bounds", "constraint_excess", "minimised", "penalised", "start_genomes"]

FAILED = 1e12  # fitness of a failed candidate
PENALTY = 1e6  # weight of the constraint violation in a scalar fitness


def start_genomes(codec: Codec, task: EditTask) -> Tensor:
    """Each row's own genome ``(B, *S)`` on the CPU: its source inverted under its own condition."""
    with torch.inference_mode():
        return codec.invert(task.sources.to(codec.device), task.source_condition.to(codec.device)).cpu()


def minimised(ev: Evaluation, sign: Tensor) -> Tensor:
    """``(N, M)`` float64 objective values in minimisation form; failed entries :data:`FAILED`."""
    f = ev.values.double().cpu() * sign
    return torch.where(torch.isfinite(f), f, torch.full_like(f, FAILED))


def penalised(ev: Evaluation, sign: Tensor) -> Tensor:
    """``(N,)`` scalar fitness (lower is better): the first objective in minimisation form plus
    :data:`PENALTY` times the violation; failures :data:`FAILED` (the rule of :func:`~.cma_search.cma_search`)."""
    violation = torch.nan_to_num(ev.violation.double().cpu(), posinf=PENALTY)
    f = ev.values[:, 0].double().cpu() * sign[0] + PENALTY * violation
    return torch.where(torch.isfinite(f), f, torch.full_like(f, FAILED))


def constraint_bounds(evaluator: Evaluator) -> Tensor:
    """``(C,)`` the evaluator's constraint bounds (feasible when ``g <= bound``)."""
    return torch.tensor([float(c.bound) for c in evaluator.constraints], dtype=torch.float64)


def constraint_excess(ev: Evaluation, bounds: Tensor) -> Tensor:
    """``(N, C)`` ``g - bound`` (feasible when every entry is <= 0); failed entries :data:`PENALTY`."""
    g = ev.constraint_values.double().cpu() - bounds
    g = torch.where(torch.isfinite(g), g, torch.full_like(g, PENALTY))
    failed = torch.isinf(ev.violation.cpu())
    if g.shape[1] and failed.any():
        g[failed] = torch.clamp_min(g[failed], PENALTY)
    return g
