"""The population: tensors only, residuals in their native shape ``(N, *S)``."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor

SEED, SELF, CROSS = 0, 1, 2
ORIGINS = {SEED: "seed", SELF: "self", CROSS: "cross"}


@dataclass(frozen=True)
class Population:
    """A batch of individuals over many task rows (source samples) at once.

    Attributes:
        residuals: ``(N, *S)`` residuals (noise-space points).
        row: ``(N,)`` long, the task row (source sample) each individual belongs to (lineage).
        origin: ``(N,)`` long: 0 seed, 1 self-pollination, 2 cross-pollination.
        donor_row: ``(N,)`` long, the row a cross-pollination donor came from (-1 if none).
        values: ``(N, M)`` objective values in each objective's sense (NaN = not evaluated / failed).
        violation: ``(N,)`` constraint violation (0 feasible, inf failed or not evaluated).
        decoded: ``(N, *D)`` decoded candidates, or None before evaluation.
        born: ``(N,)`` long, generation in which each individual was created.
        generation: the generation this population belongs to.
        constraint_values: ``(N, C)`` raw constraint values ``g`` (NaN = failed), or None before evaluation.
    """

    residuals: Tensor
    row: Tensor
    origin: Tensor
    donor_row: Tensor
    values: Tensor
    violation: Tensor
    decoded: Tensor | None
    born: Tensor
    generation: int = 0
    constraint_values: Tensor | None = None

    def __post_init__(self) -> None:
        n = self.residuals.shape[0]
        for f in ("row", "origin", "donor_row", "violation", "born"):
            if getattr(self, f).shape != (n,):
                raise ValueError(f"population field {f} has shape {tuple(getattr(self, f).shape)}, expected ({n},)")
        if self.values.shape[0] != n or any(t is not None and t.shape[0] != n for t in (self.decoded, self.constraint_values)):
            raise ValueError("population fields disagree on the number of individuals")

    def __len__(self) -> int:
        return int(self.residuals.shape[0])

    @classmethod
    def new(cls, residuals: Tensor, row: Tensor, origin: Tensor, donor_row: Tensor, n_objectives: int,
            generation: int) -> Population:
        """Unevaluated individuals (values NaN, violation inf)."""
        n = residuals.shape[0]
        return cls(
            residuals=residuals, row=row, origin=origin, donor_row=donor_row,
            values=torch.full((n, n_objectives), float("nan"), dtype=torch.float64),
            violation=torch.full((n,), float("inf"), dtype=torch.float64), decoded=None,
            born=torch.full((n,), generation, dtype=torch.long), generation=generation,
        )

    def take(self, index: Tensor) -> Population:
        """The individuals at ``index (K,)``."""
        tensors = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "generation"}
        return replace(self, **{k: (None if v is None else v[index.to(v.device)]) for k, v in tensors.items()})

    @staticmethod
    def cat(pops: list[Population]) -> Population:
        """Concatenate populations (the generation of the last one is kept)."""
        out = {}
        for f in fields(Population):
            if f.name == "generation":
                continue
            parts = [getattr(p, f.name) for p in pops]
            out[f.name] = None if any(p is None for p in parts) else torch.cat(parts)
        return Population(**out, generation=pops[-1].generation)

    @property
    def feasible(self) -> Tensor:
        """``(N,)`` bool: evaluated, no failure, no constraint violation."""
        return self.violation == 0
