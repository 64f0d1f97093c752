"""Survival: keep the best ``k`` individuals of every row, feasible first.

Every strategy (:class:`Elitist`, :class:`HypervolumeContribution`, :class:`RankAndCrowding`) returns indices
laid out as row blocks of size ``k``, best first within a row, which is what
:class:`~flowevo.evolve.operators.Variation` expects. Objective values
``F (N, M)`` are already in minimisation form. Infeasible individuals (violation > 0) come
after every feasible one of their row, ordered by violation; failed ones (inf) last.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from moocore import hv_contributions
from pymoo.indicators.hv import HV
from pymoo.operators.survival.rank_and_crowding.metrics import calc_crowding_distance
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting
from torch import Tensor


def _check(F: Tensor, violation: Tensor, row: Tensor, rows: int, k: int) -> None:
    counts = torch.bincount(row.cpu(), minlength=rows)
    if (counts < k).any():
        raise ValueError(f"every row needs at least {k} individuals; smallest has {int(counts.min())}")
    if F.shape[0] != violation.shape[0] or F.shape[0] != row.shape[0]:
        raise ValueError("F, violation and row disagree on the number of individuals")


@dataclass(frozen=True)
class Elitist:
    """Scalar elitism: feasible first, then by objective ``column`` (ties keep order)."""

    column: int = 0

    def __call__(self, F: Tensor, violation: Tensor, row: Tensor, rows: int, k: int) -> Tensor:
        """``F (N, M)``, ``violation (N,)``, ``row (N,)`` -> ``(rows * k,)`` survivor indices."""
        _check(F, violation, row, rows, k)
        f = torch.nan_to_num(F[:, self.column].double().cpu(), nan=np.inf)
        v, r = violation.double().cpu(), row.cpu()
        order = torch.argsort(f, stable=True)
        order = order[torch.argsort(v[order], stable=True)]
        order = order[torch.argsort(r[order], stable=True)]
        starts = torch.cumsum(torch.bincount(r, minlength=rows), 0) - torch.bincount(r, minlength=rows)
        take = (starts[:, None] + torch.arange(k)[None, :]).flatten()
        return order[take]


def _by_rank(F: Tensor, violation: Tensor, row: Tensor, rows: int, k: int,
             arrange: Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray]) -> Tensor:
    """The multi-objective survivals' common frame: per row, feasible individuals front by front (pymoo's
    non-dominated sorting), each front put in order by ``arrange(F, feasible, members, room)`` (indices into
    ``F``; ``room``: places left) and cut to the room left; then infeasible ones by violation."""
    _check(F, violation, row, rows, k)
    Fn, v, r = F.double().cpu().numpy(), violation.double().cpu().numpy(), row.cpu().numpy()
    out = []
    nds = NonDominatedSorting()
    for b in range(rows):
        idx = np.flatnonzero(r == b)
        feas = idx[v[idx] == 0]
        chosen: list[int] = []
        if len(feas):
            for front in nds.do(Fn[feas], n_stop_if_ranked=k):
                room = k - len(chosen)
                chosen.extend(arrange(Fn, feas, feas[front], room)[:room].tolist())
                if len(chosen) >= k:
                    break
        if len(chosen) < k:
            infeas = idx[v[idx] != 0]
            chosen.extend(infeas[np.argsort(v[infeas], kind="stable")][: k - len(chosen)].tolist())
        out.extend(chosen)
    return torch.as_tensor(out, dtype=torch.long)


@dataclass(frozen=True)
class RankAndCrowding:
    """Multi-objective survival: non-dominated rank (pymoo), then crowding distance (pymoo), NSGA-II's rule.

    Feasible individuals of a row are sorted into fronts; within the last admitted front
    the most crowded are dropped. Then infeasible ones by violation.
    """

    def __call__(self, F: Tensor, violation: Tensor, row: Tensor, rows: int, k: int) -> Tensor:
        """``F (N, M)``, ``violation (N,)``, ``row (N,)`` -> ``(rows * k,)`` survivor indices."""
        return _by_rank(F, violation, row, rows, k, self._arrange)

    @staticmethod
    def _arrange(F: np.ndarray, feasible: np.ndarray, members: np.ndarray, room: int) -> np.ndarray:
        cd = calc_crowding_distance(F[members]) if len(members) > 2 else np.full(len(members), np.inf)
        return members[np.argsort(-cd, kind="stable")]


@dataclass(frozen=True)
class HypervolumeContribution:
    """Multi-objective survival by hypervolume contribution (SMS-EMOA's rule, the default for several objectives).

    A row's feasible individuals are sorted into non-dominated fronts (pymoo); fronts that fit are kept
    whole, and the first that does not loses, one at a time, the member that adds the least hypervolume
    to it (exact, moocore), the reference being the worst value of each objective among the row's feasible
    individuals plus ``margin`` of its range. Unlike crowding distance, which always keeps a front's
    extremes, this keeps the ``k`` points that together dominate the most (an extreme that adds little goes).
    Survivors are ordered by front, then by the first objective (the order :attr:`EditResult.best`
    uses); then infeasible individuals by violation.

    Args:
        margin: reference point beyond the worst feasible values, as a fraction of their range.
    """

    margin: float = 0.1

    def __call__(self, F: Tensor, violation: Tensor, row: Tensor, rows: int, k: int) -> Tensor:
        """``F (N, M)``, ``violation (N,)``, ``row (N,)`` -> ``(rows * k,)`` survivor indices."""
        return _by_rank(F, violation, row, rows, k, self._arrange)

    def _arrange(self, F: np.ndarray, feasible: np.ndarray, members: np.ndarray, room: int) -> np.ndarray:
        if len(members) > room:
            hi, lo = F[feasible].max(0), F[feasible].min(0)
            ref = hi + self.margin * np.where(hi > lo, hi - lo, 1.0)
            while len(members) > room:
                members = np.delete(members, int(np.argmin(hv_contributions(F[members], ref=ref))))
        return members[np.argsort(F[members, 0], kind="stable")]


def non_dominated(F: Tensor) -> Tensor:
    """``F (N, M)`` (minimisation) -> ``(N,)`` bool mask of the first non-dominated front (pymoo)."""
    mask = torch.zeros(F.shape[0], dtype=torch.bool)
    if F.shape[0]:
        front = NonDominatedSorting().do(F.double().cpu().numpy(), only_non_dominated_front=True)
        mask[torch.as_tensor(front, dtype=torch.long)] = True
    return mask


def hypervolume(F: Tensor, reference: Tensor) -> float:
    """Hypervolume (pymoo) of points ``F (N, M)`` (minimisation) w.r.t. ``reference (M,)``."""
    if F.shape[0] == 0:
        return 0.0
    return float(HV(ref_point=reference.double().cpu().numpy())(F.double().cpu().numpy()))
