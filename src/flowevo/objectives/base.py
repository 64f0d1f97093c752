"""Objectives and constraints: black boxes over a batch of decoded candidates.

An objective maps a :class:`Candidates` batch of N to a ``(N,)`` tensor and declares a
``sense`` (``"min"`` or ``"max"``). A constraint maps it to ``g (N,)`` with a bound ``b``
and is satisfied where ``g <= b``; its violation is ``max(0, g - b)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import torch
from torch import Tensor

Sense = Literal["min", "max"]


@dataclass(frozen=True)
class Candidates:
    """A batch of decoded candidates handed to objectives.

    Args:
        x: ``(N, *D)`` decoded candidates (data space).
        source_index: ``(N,)`` long, the task row (source sample) each candidate edits.
        sources: ``(N, *D)`` the source sample of each candidate (for preservation objectives).
        target: the target condition of each candidate (a ``Condition`` of batch N), or None.
        extra: domain payloads (e.g. crystal structures), keyed by name, each of length N.
    """

    x: Tensor
    source_index: Tensor
    sources: Tensor | None = None
    target: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def subset(self, index: Tensor) -> Candidates:
        """The candidates at ``index (K,)`` (long), as a new batch."""
        idx = index.tolist()
        return Candidates(
            x=self.x[index],
            source_index=self.source_index[index],
            sources=None if self.sources is None else self.sources[index],
            target=None if self.target is None else self.target[index],
            extra={k: [v[i] for i in idx] if isinstance(v, list) else v[index] for k, v in self.extra.items()},
        )


@runtime_checkable
class Objective(Protocol):
    """A named, vectorised black box with a sense: ``objective(candidates) -> (N,)``.

    An objective may also carry ``cheap: bool`` (see :func:`is_cheap`); without it, it is not cheap."""

    name: str
    sense: Sense

    def __call__(self, candidates: Candidates) -> Tensor: ...


@dataclass(frozen=True)
class FunctionObjective:
    """Wrap a function ``fn(candidates) -> (N,)`` as an :class:`Objective`.

    ``cheap=True`` declares the function computable without the black box (e.g. a preservation
    distance the user computes from the decoded candidate): pre-screening
    (:class:`~flowevo.evolve.operators.PreScreen`) calls it exactly on candidates it never sends to
    the black box. Every scored candidate is still an evaluation (the evaluator computes every column).

    Example:
        >>> dist = FunctionObjective("distance", "min", lambda b: (b.x - b.sources).norm(dim=1))
        >>> dist.sense
        'min'
    """

    name: str
    sense: Sense
    fn: Callable[[Candidates], Tensor | Any]
    cheap: bool = False

    def __post_init__(self) -> None:
        if self.sense not in ("min", "max"):
            raise ValueError(f"objective {self.name!r}: sense must be 'min' or 'max', got {self.sense!r}")

    def __call__(self, candidates: Candidates) -> Tensor:
        return torch.as_tensor(self.fn(candidates), dtype=torch.float64)


@dataclass(frozen=True)
class Constraint:
    """A black-box constraint ``g(candidates) <= bound``; violation ``max(0, g - bound)``.

    ``cheap=True``: computable without the black box (e.g. an edit budget or a validity check); see
    :class:`FunctionObjective`.

    Example:
        >>> near = Constraint("stay_close", lambda b: (b.x - b.sources).norm(dim=1), bound=1.0)
        >>> near.bound
        1.0
    """

    name: str
    fn: Callable[[Candidates], Tensor | Any]
    bound: float = 0.0
    cheap: bool = False

    def __call__(self, candidates: Candidates) -> Tensor:
        return torch.as_tensor(self.fn(candidates), dtype=torch.float64)

    def violation(self, g: Tensor) -> Tensor:
        """``(N,)`` measured values -> ``(N,)`` violation >= 0."""
        return (g - self.bound).clamp_min(0.0)


def is_cheap(callable_: Objective | Constraint) -> bool:
    """Whether an objective or constraint declares itself cheap (``cheap=True``: computable without the
    black box, used exactly during pre-screening); objects without the attribute are not."""
    return bool(getattr(callable_, "cheap", False))


class PartialFailure(Exception):
    """Raised by an objective that scored a batch but failed on some candidates.

    The evaluator keeps ``values`` for the others and records one :class:`Failure` per
    entry of ``errors``, without calling the objective again.

    Args:
        values: ``(N,)`` scores; entries named in ``errors`` are ignored (set to NaN).
        errors: batch position -> reason, for each failed candidate.
    """

    def __init__(self, values: Tensor, errors: dict[int, str]) -> None:
        super().__init__(f"{len(errors)} candidate(s) failed: " + "; ".join(f"{i}: {e}" for i, e in sorted(errors.items())[:3]))
        self.values, self.errors = values, dict(errors)


def sense_sign(objectives: Sequence[Objective | str]) -> Tensor:
    """``(M,)`` +1 for ``min`` and -1 for ``max``, from objectives or their senses: multiply values to get a
    minimisation.

    Example:
        >>> sense_sign(["min", "max"]).tolist()
        [1.0, -1.0]
    """
    senses = [o if isinstance(o, str) else o.sense for o in objectives]
    bad = sorted({s for s in senses if s not in ("min", "max")})
    if bad:
        raise ValueError(f"unknown sense(s) {bad}: expected 'min' or 'max'")
    return torch.tensor([1.0 if s == "min" else -1.0 for s in senses], dtype=torch.float64)
