"""Picklable (module-level) objectives for the backend tests."""

from __future__ import annotations

import time

import torch
from torch import Tensor

from flowevo.flow.condition import Condition
from flowevo.objectives import Candidates, Constraint, FunctionObjective


def sum_of_squares(b: Candidates) -> Tensor:
    """``(N,)`` sum of squares of each candidate."""
    return (b.x.double() ** 2).flatten(1).sum(dim=1)


def distance_to_source(b: Candidates) -> Tensor:
    """``(N,)`` Euclidean distance to the source."""
    return (b.x.double() - b.sources.double()).flatten(1).norm(dim=1)


def first_coordinate(b: Candidates) -> Tensor:
    """``(N,)`` the first coordinate (a constraint value)."""
    return b.x[:, 0].double()


def fails_on_negative(b: Candidates) -> Tensor:
    """Raises when any candidate's first coordinate is negative; NaN where it is exactly 0."""
    if (b.x[:, 0] < 0).any():
        raise ValueError("negative first coordinate")
    out = b.x[:, 0].double()
    return torch.where(out == 0, torch.full_like(out, float("nan")), out)


def hangs_on_large(b: Candidates) -> Tensor:
    """Sleeps 60 s (a hang) when a candidate's first coordinate exceeds 100."""
    if (b.x[:, 0] > 100).any():
        time.sleep(60)
    return b.x[:, 0].double()


def target_label(b: Candidates) -> Tensor:
    """``(N,)`` the target class id plus the first extra value (checks shipping of target/extra)."""
    return b.target.labels.double() + torch.tensor([float(v) for v in b.extra["weights"]], dtype=torch.float64)


def make_batch() -> Candidates:
    """10 candidates of dim 3; rows 2 and 7 make ``fails_on_negative`` raise, row 3 makes it NaN."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(10, 3, generator=g) + 0.1
    x[2, 0], x[7, 0], x[3, 0] = -1.0, -2.0, 0.0
    return Candidates(
        x=x, source_index=torch.arange(10) // 2, sources=torch.zeros(10, 3),
        target=Condition.from_labels(torch.arange(10) % 3), extra={"weights": [0.5 * i for i in range(10)]},
    )


def make_callables() -> tuple[list, list]:
    """Objectives (one failing on some candidates, one that hangs when x[:, 0] > 100) and a constraint."""
    objectives = [
        FunctionObjective("sum_sq", "min", sum_of_squares),
        FunctionObjective("dist", "min", distance_to_source),
        FunctionObjective("neg", "max", fails_on_negative),
        FunctionObjective("label", "max", target_label),
        FunctionObjective("hang", "min", hangs_on_large),
    ]
    return objectives, [Constraint("first", first_coordinate, bound=0.5)]
