"""Counting black-box queries: evaluations until each source first reaches a goal.

:class:`QueryCounter` wraps any evaluator and sees every batch it scores. Per task row and goal
it records how many evaluations that row had used when its first success appeared; candidates
within a batch count in batch order (a batch is proposed before any of its scores are seen, so
scoring it one by one and stopping at the first success spends exactly that many queries).
:func:`evaluations_to_rate` and :func:`success_curve` summarise those counts over rows.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import torch
from torch import Tensor

from flowevo.objectives.base import Candidates
from flowevo.objectives.evaluator import Evaluation, Evaluator

__all__ = ["Goal", "QueryCounter", "ScoredPoints", "best_within", "evaluations_to_rate", "success_curve"]

Goal = Callable[[Evaluation, Candidates], Tensor]


class ScoredPoints(NamedTuple):
    """Every candidate a :class:`QueryCounter` saw scored, in order: ``row (N,)``, ``position (N,)`` (the
    row's evaluation number, from 1), ``values (N, M)`` (raw objective values) and ``feasible (N,)``."""

    row: Tensor
    position: Tensor
    values: Tensor
    feasible: Tensor


class QueryCounter:
    """An evaluator that counts evaluations per row and each row's first success per goal.

    Args:
        inner: the evaluator that scores.
        rows: number of task rows (``Candidates.source_index`` in ``0..rows-1``).
        goals: ``{name: fn(evaluation, candidates) -> (N,) bool}``.
        keep: optional ``fn(candidates) -> sequence of N items`` (e.g. the decoded Structures of a crystal
            edit): every scored candidate's item is kept, in the order of :meth:`scored` (:meth:`items`).

    Attributes:
        spent: ``(rows,)`` evaluations so far per row.
        first: ``{goal: (rows,)}`` evaluations a row had used up to and including its first
            success (float, ``inf`` if none yet).
        inner_s: seconds spent inside the wrapped evaluator (the black box), for the time a method
            spends outside it.
    """

    def __init__(self, inner: Evaluator, rows: int, goals: dict[str, Goal],
                 keep: Callable[[Candidates], Sequence[Any]] | None = None) -> None:
        self.inner, self.rows, self.goals, self.keep = inner, rows, goals, keep
        self._items: list[Any] = []
        self.objectives, self.constraints = inner.objectives, inner.constraints
        self.spent = torch.zeros(rows, dtype=torch.long)
        self.first = {g: torch.full((rows,), math.inf, dtype=torch.float64) for g in goals}
        self.inner_s = 0.0
        self._log: list[tuple[Tensor, Tensor, Tensor, Tensor]] = []

    def __call__(self, candidates: Candidates) -> Evaluation:
        start = time.perf_counter()
        ev = self.inner(candidates)
        self.inner_s += time.perf_counter() - start
        row = candidates.source_index.cpu().long()
        counts = torch.bincount(row, minlength=self.rows)
        order = torch.argsort(row, stable=True)
        starts = torch.cumsum(counts, 0) - counts
        pos = torch.empty_like(row)
        pos[order] = torch.arange(len(row)) - starts[row[order]]  # position within its row in this batch
        used = (self.spent[row] + pos + 1).double()  # evaluations of this row up to and including this one
        for name, fn in self.goals.items():
            ok = fn(ev, candidates).cpu().bool()
            hit = torch.where(ok, used, torch.full_like(used, math.inf))
            self.first[name] = torch.minimum(self.first[name], torch.full((self.rows,), math.inf, dtype=torch.float64)
                                             .scatter_reduce(0, row, hit, reduce="amin"))
        self._log.append((row, used.long(), ev.values.detach().double().cpu(), ev.feasible.cpu()))
        if self.keep is not None:
            items = list(self.keep(candidates))
            if len(items) != len(row):
                raise ValueError(f"QueryCounter keep: {len(items)} items for a batch of {len(row)} candidates")
            self._items += items
        self.spent += counts
        return ev

    def items(self) -> list[Any]:
        """The ``keep`` item of every candidate scored so far, in the order of :meth:`scored`.

        Raises:
            ValueError: the counter was built without ``keep``.
        """
        if self.keep is None:
            raise ValueError("QueryCounter was built without keep=: no items were kept")
        return list(self._items)

    def scored(self) -> ScoredPoints:
        """Every candidate scored so far (see :class:`ScoredPoints`)."""
        if not self._log:
            m = len(self.objectives)
            return ScoredPoints(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long),
                                torch.zeros(0, m, dtype=torch.float64), torch.zeros(0, dtype=torch.bool))
        return ScoredPoints(*(torch.cat(t) for t in zip(*self._log)))


def best_within(points: ScoredPoints, rows: int, at: Sequence[int], sign: float = 1.0) -> dict[int, Tensor]:
    """Per row, the best feasible point among its first ``e`` evaluations, for each ``e`` in ``at``.

    Args:
        points: a counter's :meth:`QueryCounter.scored` points.
        rows: number of task rows.
        at: evaluation counts per row.
        sign: multiplies the first objective into minimisation form (``+1`` for ``"min"``, ``-1`` for ``"max"``).

    Returns:
        ``{e: (rows,) long}``: the index into ``points`` of each row's best feasible point (lowest signed first
        objective; the earliest on ties) with ``position <= e``, ``-1`` where the row has none. A prefix of one
        run: the best after ``e`` is never worse than after fewer evaluations.
    """
    f = points.values[:, 0] * sign if len(points.row) else torch.zeros(0, dtype=torch.float64)
    ok = points.feasible & torch.isfinite(f)
    out: dict[int, Tensor] = {}
    for e in at:
        best = torch.full((rows,), -1, dtype=torch.long)
        score = torch.full((rows,), math.inf, dtype=torch.float64)
        for i in torch.nonzero(ok & (points.position <= e)).flatten().tolist():
            r = int(points.row[i])
            if f[i] < score[r]:
                score[r], best[r] = f[i], i
        out[int(e)] = best
    return out


def success_curve(first: Tensor | Sequence[float], evaluations: Sequence[int]) -> list[float]:
    """Share of rows whose first success came within ``e`` evaluations, for each ``e`` (non-decreasing in e)."""
    f = torch.as_tensor(first, dtype=torch.float64)
    return [float((f <= e).double().mean()) for e in evaluations]


def evaluations_to_rate(first: Tensor | Sequence[float], rate: float) -> float:
    """Fewest evaluations per row after which at least ``rate`` of the rows have succeeded (``inf``: never)."""
    f = torch.sort(torch.as_tensor(first, dtype=torch.float64)).values
    return float(f[max(1, math.ceil(rate * len(f) - 1e-9)) - 1])
