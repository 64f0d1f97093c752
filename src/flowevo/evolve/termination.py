"""Termination criteria: ``criterion(state) -> reason or None``. Several may be combined."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from flowevo.evolve.history import GenerationRecord


class RunState(Protocol):
    """What termination criteria may read: the generation, evaluations used, and the history."""

    generation: int
    evaluations: int
    history: Sequence[GenerationRecord]


@dataclass(frozen=True)
class MaxGenerations:
    """Stop after ``n`` generations after the initial one."""

    n: int

    def __call__(self, state: RunState) -> str | None:
        return f"reached {self.n} generations" if state.generation >= self.n else None


@dataclass(frozen=True)
class MaxEvaluations:
    """Stop once ``n`` black-box evaluations (all rows together) have been spent."""

    n: int

    def __call__(self, state: RunState) -> str | None:
        return f"spent {state.evaluations} >= {self.n} evaluations" if state.evaluations >= self.n else None


@dataclass(frozen=True)
class Stagnation:
    """Stop when the mean best value of the first objective (minimisation form) has not
    improved by more than ``tol`` for ``patience`` generations."""

    patience: int = 5
    tol: float = 1e-6

    def __call__(self, state: RunState) -> str | None:
        h = state.history
        if len(h) <= self.patience:
            return None
        before = h[-self.patience - 1].best_min[0]
        recent = min(r.best_min[0] for r in h[-self.patience:])
        return f"no improvement for {self.patience} generations" if not recent < before - self.tol else None
