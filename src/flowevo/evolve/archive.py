"""The archive of a search: per row, the best candidate scored so far and the feasible non-dominated set.

Every search (REO's :class:`~flowevo.evolve.Evolver` and every budgeted baseline) folds each scored
batch into an :class:`Archive`, so a result's Pareto set per row is the front of *everything* the
black box scored for that row, not only of the individuals that survive the last generation.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor

from flowevo.evolve.population import Population
from flowevo.evolve.survival import non_dominated

__all__ = ["Archive"]


class Archive:
    """Per row: the best candidate scored so far and the feasible non-dominated set (several objectives).

    Args:
        rows: number of task rows.
        sign: ``(M,)`` +1 for ``min`` and -1 for ``max`` objectives.

    Example:
        >>> archive = Archive(1, torch.tensor([1.0, -1.0], dtype=torch.float64))
        >>> archive.population is None
        True
    """

    def __init__(self, rows: int, sign: Tensor) -> None:
        self.rows, self.sign = rows, sign
        self.population: Population | None = None

    def add(self, scored: Population) -> None:
        """Fold in a scored batch (``values``, ``violation``, ``decoded`` filled in)."""
        pool = scored if self.population is None else Population.cat([self.population, scored])
        self.population = pool.take(self._keep(pool))

    def _keep(self, pool: Population) -> Tensor:
        row, v = pool.row.cpu(), pool.violation.double().cpu()
        F = pool.values * self.sign
        f = torch.nan_to_num(F[:, 0], nan=float("inf")) if F.shape[1] else torch.zeros(len(pool), dtype=torch.float64)
        order = torch.argsort(f, stable=True)
        order = order[torch.argsort(v[order], stable=True)]
        order = order[torch.argsort(row[order], stable=True)]
        counts = torch.bincount(row, minlength=self.rows)
        present = counts > 0
        keep = torch.zeros(len(pool), dtype=torch.bool)
        keep[order[(torch.cumsum(counts, 0) - counts)[present]]] = True
        if F.shape[1] > 1:
            feasible = pool.feasible.cpu()
            for b in torch.nonzero(present).flatten().tolist():
                idx = torch.nonzero((row == b) & feasible).flatten()
                if len(idx) > 1:
                    keep[idx[non_dominated(F[idx])]] = True
        return torch.nonzero(keep).flatten()

    def joined(self, population: Population) -> Population:
        """``population`` followed by the archive's members it does not hold (same row and residual)."""
        if self.population is None:
            return population
        arc = self.population
        dev = population.row.device
        a_row, p_row = arc.row.to(dev), population.row
        a_res = arc.residuals.to(population.residuals.device).flatten(1).double()
        p_res = population.residuals.flatten(1).double()
        extra = torch.ones(len(arc), dtype=torch.bool, device=dev)
        for b in torch.unique(a_row).tolist():
            ia, ip = torch.nonzero(a_row == b).flatten(), torch.nonzero(p_row == b).flatten()
            if len(ip):
                d = torch.cdist(a_res[ia], p_res[ip], compute_mode="donot_use_mm_for_euclid_dist")
                extra[ia] = ~(d == 0).any(dim=1)
        if not bool(extra.any()):
            return population
        joined = Population.cat([population, arc.take(torch.nonzero(extra).flatten())])
        return replace(joined, generation=population.generation)
