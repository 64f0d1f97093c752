"""Variation: make offspring from a ranked population, row by row, in one batch."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class Variation:
    """Self- and cross-pollination with repair, composed.

    Each offspring picks a parent in its own row by binary tournament; with probability
    ``cross_rate`` it is cross-pollinated with a donor from another row (also chosen by
    tournament), otherwise self-pollinated; then repaired. ``cross_rate=0`` is self-only,
    ``cross_rate=1`` cross-only.

    Args:
        self_pollination: the local operator.
        cross_pollination: the recombination operator.
        cross_rate: probability of cross-pollination per offspring.
        repair: shell repair applied to every child (None: off).
        anchor_rate: when the evolver has per-row anchors (its ``extra_seeds``, e.g. the source
            inverted under the target condition), the share of cross-pollinations whose donor is
            one of the row's own anchors instead of another row's individual.
    """

    self_pollination: SelfPollination = SelfPollination()
    cross_pollination: CrossPollination = CrossPollination()
    cross_rate: float = 0.3
    repair: ShellRepair | None = ShellRepair()
    anchor_rate: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.cross_rate <= 1 or not 0 <= self.anchor_rate <= 1:
            raise ValueError(f"cross_rate and anchor_rate must be in [0, 1], got {self.cross_rate}, {self.anchor_rate}")

    def __call__(self, population: Population, rows: int, per_row: int, generator: torch.Generator,
                 step: Tensor | None = None, anchors: Tensor | None = None) -> Population:
        """Offspring ``(rows * per_row)`` from a population laid out as ``rows`` blocks of equal size,
        each block sorted best first. Offspring are laid out the same way. ``step (rows,)`` scales
        the self-pollination angle per row (step-size control); ``anchors (rows, P, *S)`` are
        per-row donors used with probability ``anchor_rate``."""
        n = len(population)
        if n % rows:
            raise ValueError(f"population of {n} is not {rows} equal row blocks")
        k = n // rows
        dev = population.residuals.device
        row = torch.arange(rows, device=dev).repeat_interleave(per_row)
        parent = row * k + _tournament(rows, k, per_row, generator, dev)
        children = population.residuals[parent].clone()
        origin = torch.full((rows * per_row,), SELF, dtype=torch.long, device=dev)
        donor_row = torch.full_like(origin, -1)

        crossing = torch.rand(rows * per_row, generator=generator, device=dev) < self.cross_rate
        use_anchor = torch.zeros_like(crossing)
        if anchors is not None and self.anchor_rate > 0:
            use_anchor = crossing & (torch.rand(len(crossing), generator=generator, device=dev) < self.anchor_rate)
            if use_anchor.any():
                idx = torch.nonzero(use_anchor).flatten()
                pick = torch.randint(0, anchors.shape[1], (len(idx),), generator=generator, device=dev)
                donors = anchors.to(dev)[row[idx], pick]
                children[idx] = self.cross_pollination(children[idx], donors, generator)
                origin[idx], donor_row[idx] = CROSS, row[idx]
        crossing = crossing & ~use_anchor
        if rows > 1 and crossing.any():
            idx = torch.nonzero(crossing).flatten()
            shift = torch.randint(1, rows, (len(idx),), generator=generator, device=dev)
            d_row = (row[idx] + shift) % rows  # a uniformly random other row
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
