"""Variation: self- and cross-pollination with repair, the Evolver's default strategy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from flowevo.evolve.operators.cross_pollination import CrossPollination
from flowevo.evolve.operators.repair import ShellRepair
from flowevo.evolve.operators.self_pollination import SelfPollination
from flowevo.evolve.population import CROSS, SELF, Population


def _tournament(rows: int, k: int, count: int, generator: torch.Generator, device) -> Tensor:
    """Binary tournament on within-row rank (position 0 is best): ``(rows*count,)`` positions."""
    a = torch.randint(0, k, (rows * count,), generator=generator, device=device)
    b = torch.randint(0, k, (rows * count,), generator=generator, device=device)
    return torch.minimum(a, b)


def _same_group_rows(groups: Tensor, rows: Tensor, generator: torch.Generator) -> Tensor:
    """For each of ``rows (N,)`` a uniformly random other row with the same ``groups`` id (itself if alone)."""
    order = torch.argsort(groups, stable=True)
    position = torch.empty_like(order)
    position[order] = torch.arange(len(order), device=order.device)
    _, size = torch.unique_consecutive(groups[order], return_counts=True)
    start = torch.repeat_interleave(torch.cumsum(size, 0) - size, size)[position[rows]]  # group start per row
    n = torch.repeat_interleave(size, size)[position[rows]]
    u = torch.rand(len(rows), generator=generator, device=rows.device)
    j = (u * (n - 1)).long()
    own = position[rows] - start
    j = j + (j >= own).long()
    return torch.where(n > 1, order[start + j.clamp(max=n - 1)], rows)


@dataclass(frozen=True)
class Variation:
    """Self- and cross-pollination with repair, composed.

    Each offspring picks a parent in its own row by binary tournament; with probability
    ``cross_rate`` it is cross-pollinated with a donor from another row (also chosen by
    tournament), otherwise self-pollinated; then repaired. ``cross_rate=0`` is self-only,
    ``cross_rate=1`` cross-only.

    With ``donor_groups`` the donor row is drawn from the other rows of the same group, e.g.
    rows that share a target class: their residuals already decode to that class, so mixing
    them trades style between solutions of the same kind (on digit counterfactuals this kept
    an independent classifier more convinced at the same morphology change than donors from
    any row; docs/benchmarks.md). A row alone in its group takes donors from itself.

    Args:
        self_pollination: the local operator.
        cross_pollination: the recombination operator.
        cross_rate: probability of cross-pollination per offspring.
        repair: shell repair applied to every child (None: off).
        donor_groups: optional ``(rows,)`` group id per row (None: donors from any other row).
    """

    self_pollination: SelfPollination = SelfPollination()
    cross_pollination: CrossPollination = CrossPollination()
    cross_rate: float = 0.3
    repair: ShellRepair | None = ShellRepair()
    donor_groups: Tensor | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not 0 <= self.cross_rate <= 1:
            raise ValueError(f"cross_rate must be in [0, 1], got {self.cross_rate}")

    def initial(self, residuals: Tensor, count: int, generator: torch.Generator) -> Tensor:
        """Generation-0 variants: ``count`` self-pollinated, repaired copies of each row's residual,
        ``(B, *S) -> (B, count, *S)``."""
        b, shape = residuals.shape[0], residuals.shape[1:]
        out = self.self_pollination(residuals.repeat_interleave(count, dim=0), generator)
        if self.repair is not None:
            out = self.repair(out)
        return out.reshape(b, count, *shape)

    def observe(self, evaluated: Population) -> None:
        """Stateless: nothing to learn from scores."""

    def state_dict(self) -> dict[str, Any]:
        """Stateless: empty."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Stateless: nothing to restore."""

    def offspring(self, population: Population, rows: int, per_row: int, generator: torch.Generator,
                  step: Tensor | None = None) -> Population:
        """Offspring ``(rows * per_row)`` from a population laid out as ``rows`` blocks of equal size,
        each block sorted best first. Offspring are laid out the same way. ``step (rows,)`` scales
        the self-pollination angle per row (step-size control)."""
        n = len(population)
        if n % rows:
            raise ValueError(f"population of {n} is not {rows} equal row blocks")
        k = n // rows
        if self.donor_groups is not None and tuple(self.donor_groups.shape) != (rows,):
            raise ValueError(f"donor_groups must hold one group id per row ({rows}), got shape {tuple(self.donor_groups.shape)}")
        dev = population.residuals.device
        row = torch.arange(rows, device=dev).repeat_interleave(per_row)
        parent = row * k + _tournament(rows, k, per_row, generator, dev)
        children = population.residuals[parent].clone()
        origin = torch.full((rows * per_row,), SELF, dtype=torch.long, device=dev)
        donor_row = torch.full_like(origin, -1)

        crossing = torch.rand(rows * per_row, generator=generator, device=dev) < self.cross_rate
        if (rows > 1 or self.donor_groups is not None) and crossing.any():
            idx = torch.nonzero(crossing).flatten()
            if self.donor_groups is None:
                shift = torch.randint(1, rows, (len(idx),), generator=generator, device=dev)
                d_row = (row[idx] + shift) % rows  # a uniformly random other row
            else:
                d_row = _same_group_rows(self.donor_groups.to(dev), row[idx], generator)
            donor = d_row * k + _tournament(1, k, len(idx), generator, dev)
            children[idx] = self.cross_pollination(children[idx], population.residuals[donor], generator)
            origin[idx], donor_row[idx] = CROSS, d_row
        selfing = origin == SELF
        if selfing.any():
            scale = None if step is None else step.to(dev)[row[selfing]]
            children[selfing] = self.self_pollination(children[selfing], generator, scale)
        if self.repair is not None:
            children = self.repair(children)
        return Population.new(children, row, origin, donor_row, population.values.shape[1], population.generation + 1)
