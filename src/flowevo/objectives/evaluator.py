"""Evaluate objectives and constraints on candidates, isolating failures.

An objective or constraint that raises, returns the wrong shape, or returns NaN/inf for a
candidate marks that candidate **failed** (infeasible, violation = inf); the error is
recorded and the run goes on. When a vectorised call raises, the batch is retried one
candidate at a time so only the offending candidates fail.
"""

from __future__ import annotations

import math
import traceback
from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import Tensor

from flowevo.objectives.base import Candidates, Constraint, Objective


@dataclass(frozen=True)
class Failure:
    """One failed evaluation: candidate position in its batch, task row, callable name, error text."""

    index: int
    row: int
    name: str
    error: str


@dataclass
class Evaluation:
    """Results for a batch of N candidates.

    Attributes:
        values: ``(N, M)`` objective values in each objective's own sense (NaN where failed).
        constraint_values: ``(N, C)`` raw constraint values ``g`` (NaN where failed).
        violation: ``(N,)`` total constraint violation; ``inf`` for failed candidates.
        failures: every failure, in order.
    """

    values: Tensor
    constraint_values: Tensor
    violation: Tensor
    failures: list[Failure] = field(default_factory=list)

    @property
    def failed(self) -> Tensor:
        """``(N,)`` bool: candidates for which some objective or constraint failed."""
        return torch.isinf(self.violation)

    @property
    def feasible(self) -> Tensor:
        """``(N,)`` bool: no failure and no constraint violation."""
        return self.violation == 0


def _call(fn, batch: Candidates) -> Tensor:
    out = torch.as_tensor(fn(batch)).detach().to("cpu", torch.float64)
    if out.shape != (len(batch),):
        raise ValueError(f"returned shape {tuple(out.shape)}, expected ({len(batch)},)")
    return out


def evaluate_callable(fn, name: str, batch: Candidates, failures: list[Failure]) -> Tensor:
    """Call ``fn`` on the batch; on error retry per candidate. Returns ``(N,)`` with NaN where failed."""
    try:
        out = _call(fn, batch)
    except Exception:  # isolate the failing candidates
        out = torch.full((len(batch),), math.nan, dtype=torch.float64)
        for i in range(len(batch)):
            try:
                out[i] = _call(fn, batch.subset(torch.tensor([i])))[0]
            except Exception as exc:
                failures.append(Failure(i, int(batch.source_index[i]), name, _describe(exc)))
        return out
    for i in torch.nonzero(~torch.isfinite(out)).flatten().tolist():
        failures.append(Failure(i, int(batch.source_index[i]), name, f"returned non-finite value {out[i].item()}"))
    return out


def _describe(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" at {last[0].filename}:{last[0].lineno}" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


class LocalEvaluator:
    """Evaluate in this process.

    Args:
        objectives: the objectives (at least one).
        constraints: black-box constraints (may be empty).

    Example:
        >>> from flowevo.objectives import FunctionObjective
        >>> ev = LocalEvaluator([FunctionObjective("norm", "min", lambda b: b.x.norm(dim=1))])
        >>> batch = Candidates(x=torch.ones(3, 2), source_index=torch.arange(3))
        >>> ev(batch).values.shape
        torch.Size([3, 1])
    """

    def __init__(self, objectives: Sequence[Objective], constraints: Sequence[Constraint] = ()) -> None:
        if not objectives:
            raise ValueError("at least one objective is needed")
        names = [o.name for o in objectives] + [c.name for c in constraints]
        if len(set(names)) != len(names):
            raise ValueError(f"objective and constraint names must be unique, got {names}")
        for o in objectives:
            if getattr(o, "sense", None) not in ("min", "max"):
                raise ValueError(f"objective {getattr(o, 'name', o)!r} needs sense 'min' or 'max'")
        self.objectives, self.constraints = list(objectives), list(constraints)

    def __call__(self, batch: Candidates) -> Evaluation:
        failures: list[Failure] = []
        n = len(batch)
        values = torch.stack([evaluate_callable(o, o.name, batch, failures) for o in self.objectives], dim=1)
        if self.constraints:
            g = torch.stack([evaluate_callable(c, c.name, batch, failures) for c in self.constraints], dim=1)
            violation = sum(c.violation(g[:, j]) for j, c in enumerate(self.constraints))
        else:
            g, violation = torch.zeros(n, 0, dtype=torch.float64), torch.zeros(n, dtype=torch.float64)
        bad = ~torch.isfinite(values).all(dim=1) | ~torch.isfinite(g).all(dim=1)
        violation = torch.where(bad, torch.full_like(violation, math.inf), violation)
        return Evaluation(values=values, constraint_values=g, violation=violation, failures=failures)
