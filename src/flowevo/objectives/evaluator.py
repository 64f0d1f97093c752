"""Evaluate objectives and constraints on candidates, isolating failures.

An objective or constraint that raises, returns the wrong shape, or returns NaN/inf for a
candidate marks that candidate **failed** (infeasible, violation = inf); the error is
recorded and the run goes on. When a vectorised call raises, the batch is retried one
candidate at a time so only the offending candidates fail. An objective can also raise
:class:`~flowevo.objectives.base.PartialFailure` to report per-candidate failures itself.

:class:`LocalEvaluator` runs in this process and **cannot time out a hanging call** (Python
cannot stop a running thread or a blocking C call honestly); use
:class:`~flowevo.objectives.process_pool.ProcessPoolEvaluator` (``n_workers=1`` is fine) or
:class:`~flowevo.objectives.dask_backend.DaskEvaluator` with ``timeout_s`` for objectives that may hang.
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from flowevo.objectives.base import Candidates, Constraint, Objective, PartialFailure


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
    except PartialFailure as partial:  # the objective isolated its failures itself
        return _partial(partial, name, batch, failures)
    except Exception:  # isolate the failing candidates
        out = torch.full((len(batch),), math.nan, dtype=torch.float64)
        raised: set[int] = set()
        for i in range(len(batch)):
            try:
                out[i] = _call(fn, batch.subset(torch.tensor([i])))[0]
            except Exception as exc:
                raised.add(i)
                failures.append(Failure(i, int(batch.source_index[i]), name, _describe(exc)))
        for i in torch.nonzero(~torch.isfinite(out)).flatten().tolist():
            if i not in raised:
                failures.append(Failure(i, int(batch.source_index[i]), name, f"returned non-finite value {out[i].item()}"))
        return out
    for i in torch.nonzero(~torch.isfinite(out)).flatten().tolist():
        failures.append(Failure(i, int(batch.source_index[i]), name, f"returned non-finite value {out[i].item()}"))
    return out


def _partial(partial: PartialFailure, name: str, batch: Candidates, failures: list[Failure]) -> Tensor:
    n = len(batch)
    out = torch.as_tensor(partial.values).detach().to("cpu", torch.float64).clone()
    errors = dict(partial.errors)
    if out.shape != (n,):
        errors = {i: errors.get(i, f"PartialFailure values have shape {tuple(out.shape)}, expected ({n},)") for i in range(n)}
        out = torch.full((n,), math.nan, dtype=torch.float64)
    for i in torch.nonzero(~torch.isfinite(out)).flatten().tolist():
        errors.setdefault(i, f"returned non-finite value {out[i].item()}")
    for i, reason in sorted(errors.items()):
        out[i] = math.nan
        failures.append(Failure(i, int(batch.source_index[i]), name, reason))
    return out


def _describe(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" at {last[0].filename}:{last[0].lineno}" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


@runtime_checkable
class Evaluator(Protocol):
    """What the Evolver needs: ``evaluator(candidates) -> Evaluation`` plus the callables."""

    objectives: list[Objective]
    constraints: list[Constraint]

    def __call__(self, batch: Candidates) -> Evaluation: ...


def check_callables(
    objectives: Sequence[Objective], constraints: Sequence[Constraint] = ()
) -> tuple[list[Objective], list[Constraint]]:
    """Validate objectives (>= 1, sense set) and constraints (unique names); return them as lists."""
    if not objectives:
        raise ValueError("at least one objective is needed")
    names = [o.name for o in objectives] + [c.name for c in constraints]
    if len(set(names)) != len(names):
        raise ValueError(f"objective and constraint names must be unique, got {names}")
    for o in objectives:
        if getattr(o, "sense", None) not in ("min", "max"):
            raise ValueError(f"objective {getattr(o, 'name', o)!r} needs sense 'min' or 'max'")
    return list(objectives), list(constraints)


def assemble(values: Tensor, g: Tensor, constraints: Sequence[Constraint], failures: list[Failure]) -> Evaluation:
    """Build an :class:`Evaluation` from ``values (N, M)`` and constraint values ``g (N, C)`` (NaN = failed)."""
    values, g = values.to(torch.float64), g.to(torch.float64)
    n = values.shape[0]
    violation = torch.zeros(n, dtype=torch.float64)
    for j, c in enumerate(constraints):
        violation = violation + c.violation(g[:, j])
    bad = ~torch.isfinite(values).all(dim=1) | ~torch.isfinite(g).all(dim=1)
    violation = torch.where(bad, torch.full_like(violation, math.inf), violation)
    return Evaluation(values=values, constraint_values=g, violation=violation, failures=failures)


class LocalEvaluator:
    """Evaluate in this process (no timeout: a hanging objective hangs the run; see the module docstring).

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
        self.objectives, self.constraints = check_callables(objectives, constraints)

    def __call__(self, batch: Candidates) -> Evaluation:
        values, g, failures = evaluate_all(self.objectives, self.constraints, batch)
        return assemble(values, g, self.constraints, failures)

    def close(self) -> None:
        """Nothing to release (present so every evaluator can be closed the same way)."""

    def __enter__(self) -> LocalEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def evaluate_all(
    objectives: Sequence[Objective], constraints: Sequence[Constraint], batch: Candidates
) -> tuple[Tensor, Tensor, list[Failure]]:
    """Run every callable on the batch: ``values (N, M)``, ``g (N, C)`` (NaN where failed), failures."""
    failures: list[Failure] = []
    n = len(batch)
    values = torch.stack([evaluate_callable(o, o.name, batch, failures) for o in objectives], dim=1)
    if constraints:
        g = torch.stack([evaluate_callable(c, c.name, batch, failures) for c in constraints], dim=1)
    else:
        g = torch.zeros(n, 0, dtype=torch.float64)
    return values, g, failures
