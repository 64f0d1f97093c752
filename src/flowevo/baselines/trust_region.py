"""TuRBO trust regions for many sources at once (Eriksson et al., 2019), in the unit cube.

One hyper-rectangle per source, centred on its incumbent, side ``length`` (times the GP's relative
lengthscales): ``success_tolerance`` improving batches in a row double it, ``failure_tolerance``
failing batches in a row halve it, below ``length_min`` it restarts at ``length_init`` (the data
are kept). Candidates are TuRBO's: the centre with a random subset of coordinates (each with
probability ``min(1, 20 / d)``, at least one) replaced by scrambled Sobol points of the region.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["TrustRegions", "trust_region_candidates"]


@dataclass
class TrustRegions:
    """Trust-region state of ``rows`` sources (all ``(rows,)`` tensors).

    Args:
        rows: number of sources; dim: searched coordinates ``d``; batch: candidates per source and step ``q``.
        length_init, length_min, length_max: side lengths in the unit cube.
        success_tolerance: improving steps in a row that double the side.
        failure_tolerance: failing steps in a row that halve it (None: TuRBO's ``ceil(max(4 / q, d / q))``).
    """

    rows: int
    dim: int
    batch: int
    length_init: float = 0.8
    length_min: float = 0.5**7
    length_max: float = 1.6
    success_tolerance: int = 3
    failure_tolerance: int | None = None

    def __post_init__(self) -> None:
        if not 0 < self.length_min <= self.length_init <= self.length_max:
            raise ValueError("trust region lengths must satisfy 0 < length_min <= length_init <= length_max, got "
                             f"{self.length_min}, {self.length_init}, {self.length_max}")
        if self.failure_tolerance is None:
            self.failure_tolerance = math.ceil(max(4.0 / self.batch, self.dim / self.batch))
        self.length = torch.full((self.rows,), float(self.length_init), dtype=torch.float64)
        self.successes = torch.zeros(self.rows, dtype=torch.long)
        self.failures = torch.zeros(self.rows, dtype=torch.long)
        self.restarts = torch.zeros(self.rows, dtype=torch.long)

    def update(self, improved: Tensor) -> None:
        """Fold in one step's outcome ``improved (rows,)`` bool."""
        improved = improved.cpu().bool()
        self.successes = torch.where(improved, self.successes + 1, torch.zeros_like(self.successes))
        self.failures = torch.where(improved, torch.zeros_like(self.failures), self.failures + 1)
        grow = self.successes >= self.success_tolerance
        shrink = self.failures >= int(self.failure_tolerance)
        self.length = torch.where(grow, torch.clamp(2.0 * self.length, max=self.length_max), self.length)
        self.length = torch.where(shrink, self.length / 2.0, self.length)
        self.successes[grow] = 0
        self.failures[shrink] = 0
        restart = self.length < self.length_min
        self.length[restart] = self.length_init
        self.restarts += restart.long()


def trust_region_candidates(centre: Tensor, length: Tensor, weights: Tensor, count: int,
                            generator: torch.Generator) -> Tensor:
    """TuRBO candidates ``(B, count, d)`` in ``[0, 1]^d``.

    Args:
        centre: ``(B, d)`` incumbents in the unit cube.
        length: ``(B,)`` side lengths.
        weights: ``(B, d)`` relative side per coordinate (e.g. lengthscales over their geometric mean).
        count: candidates per source.
        generator: seeds the Sobol scrambling and the perturbation masks.
    """
    b, d = centre.shape
    half = weights * length[:, None] / 2.0
    lo, hi = torch.clamp(centre - half, 0.0, 1.0), torch.clamp(centre + half, 0.0, 1.0)
    seeds = torch.randint(0, 2**31 - 1, (b,), generator=generator).tolist()
    sobol = torch.stack([torch.quasirandom.SobolEngine(d, scramble=True, seed=s).draw(count, dtype=torch.float64)
                         for s in seeds])
    points = lo[:, None] + (hi - lo)[:, None] * sobol
    prob = min(1.0, 20.0 / d)
    mask = torch.rand(b, count, d, generator=generator, dtype=torch.float64) <= prob
    none = ~mask.any(dim=2)
    if none.any():
        pick = torch.randint(0, d, (int(none.sum()),), generator=generator)
        mask[none.nonzero(as_tuple=True) + (pick,)] = True
    return torch.where(mask, points, centre[:, None].expand_as(points))
