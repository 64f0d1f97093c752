"""EditResult: what every search method returns (REO, CMA-ES, random search, leap, gradient, ...).

A result holds the candidates a method kept for each task row (source), in one
:class:`~flowevo.evolve.population.Population` with any number of individuals per row, plus
the bookkeeping every method shares: evaluations per row, failures, per-generation history and
wall time. What users ask of it is the same whatever made it:

- :attr:`EditResult.best`: each row's best individual (feasible first, then the first objective);
- :meth:`EditResult.pareto_set`: a row's feasible non-dominated individuals (optionally only those
  whose objective passes a threshold);
- :meth:`EditResult.kept`: per row the edit a user keeps at a threshold, e.g. "the least-changed
  edit the classifier reads as the target with p >= 0.9".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from flowevo.evolve.history import GenerationRecord
from flowevo.evolve.population import Population
from flowevo.evolve.survival import non_dominated
from flowevo.objectives import Failure, sense_sign

__all__ = ["EditResult"]


@dataclass
class EditResult:
    """The outcome of one search over an :class:`~flowevo.evolve.task.EditTask`.

    Attributes:
        method: the method's name (``"reo"``, ``"cma"``, ``"random"``, ``"leap"``, ``"gradient"``, ...).
        population: the kept candidates, any number per row (REO: its survivors, best first per row;
            budgeted baselines: each row's best and its feasible non-dominated archive; leap and
            gradient: each row's final edit). ``decoded`` holds them in data space ``(N, *D)``.
        objective_names: the objectives, in column order of ``population.values`` (may be empty when a
            method scores nothing, e.g. plain leap); senses: ``"min"`` / ``"max"`` per objective.
        rows: number of task rows.
        evaluations_per_row: ``(rows,)`` black-box evaluations spent on each row.
        history: one :class:`GenerationRecord` per generation or step (may be empty).
        failures: every failed evaluation.
        stop_reason: why the search stopped.
        wall_s: run time in seconds.
        info: method-specific extras (e.g. leap's last labels), plain data or tensors.
    """

    method: str
    population: Population
    objective_names: list[str]
    senses: list[str]
    rows: int
    evaluations_per_row: Tensor
    history: list[GenerationRecord] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    stop_reason: str = ""
    wall_s: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    # -- counts ----------------------------------------------------------------------------------
    @property
    def evaluations(self) -> int:
        """Black-box evaluations spent, all rows together."""
        return int(self.evaluations_per_row.sum())

    def _column(self, objective: int | str) -> int:
        if isinstance(objective, str):
            if objective not in self.objective_names:
                raise ValueError(f"unknown objective {objective!r}; this result has {self.objective_names}")
            return self.objective_names.index(objective)
        m = len(self.objective_names)
        if not -m <= objective < m:
            raise ValueError(f"objective index {objective} out of range for {m} objective(s)")
        return objective % m

    def _sign(self) -> Tensor:
        return sense_sign(self.senses)

    # -- selections --------------------------------------------------------------------------------
    def _pick(self, primary: Tensor, secondary: Tensor) -> Population:
        """Per row the individual with the smallest ``(primary, secondary)`` (ties: first kept)."""
        pop = self.population
        row = pop.row.cpu()
        order = torch.argsort(torch.nan_to_num(secondary, nan=math.inf), stable=True)
        order = order[torch.argsort(torch.nan_to_num(primary, nan=math.inf)[order], stable=True)]
        order = order[torch.argsort(row[order], stable=True)]
        counts = torch.bincount(row, minlength=self.rows)
        if (counts == 0).any():
            raise ValueError(f"rows {torch.nonzero(counts == 0).flatten().tolist()} have no individual in this result")
        return pop.take(order[torch.cumsum(counts, 0) - counts])

    @property
    def best(self) -> Population:
        """Each row's best individual: feasible first (least violation), then by the first objective in
        its sense. ``rows`` individuals, in row order."""
        pop = self.population
        f = pop.values[:, 0] * self._sign()[0] if self.objective_names else torch.zeros(len(pop), dtype=torch.float64)
        return self._pick(pop.violation.double().cpu(), f)

    def _qualifies(self, threshold: float | None, objective: int | str) -> tuple[Tensor, Tensor]:
        """``(ok (N,), shortfall (N,))``: feasible and at least as good as ``threshold`` in its sense."""
        pop = self.population
        feasible = pop.feasible.cpu()
        if threshold is None:
            return feasible, torch.zeros(len(pop), dtype=torch.float64)
        j = self._column(objective)
        v = pop.values[:, j]
        gap = (v - threshold) * self._sign()[j]  # > 0: short of the threshold in the objective's sense
        shortfall = torch.nan_to_num(gap.clamp_min(0.0), nan=math.inf)
        return feasible & (shortfall == 0), shortfall

    def kept(self, threshold: float | None = None, objective: int | str = -1, rank_by: int | str = 0,
             prefer: Tensor | None = None) -> Population:
        """Per row, the edit kept at ``threshold``: the best by ``rank_by`` (in its sense) among the feasible
        individuals whose ``objective`` is at least as good as ``threshold``; a row where none qualifies
        gives its individual nearest to qualifying (least shortfall plus violation, then ``rank_by``).
        ``prefer (N,)`` bool over :attr:`population`: qualifying individuals marked in it come first (a row
        with none marked keeps its best qualifying one), e.g. those a second, cheaper reader also accepts.

        Example: with objectives (shape distance, min) and (target probability, max),
        ``result.kept(0.9, objective=1, rank_by=0)`` is each digit's least-changed edit read as the
        target with probability >= 0.9. ``threshold=None`` keeps the best feasible by ``rank_by``.
        Returns ``rows`` individuals in row order.
        """
        pop = self.population
        ok, shortfall = self._qualifies(threshold, objective)
        k = self._column(rank_by)
        f = pop.values[:, k] * self._sign()[k]
        miss = torch.where(ok, torch.zeros_like(shortfall), shortfall + pop.violation.double().cpu())
        if prefer is not None:
            if prefer.shape != (len(pop),):
                raise ValueError(f"prefer must be a ({len(pop)},) bool mask over the population, got {tuple(prefer.shape)}")
            miss = torch.where(ok & prefer.cpu().bool(), torch.full_like(miss, -1.0), miss)
        return self._pick(miss, f)

    def pareto_set(self, row: int, threshold: float | None = None, objective: int | str = -1) -> Population:
        """The feasible non-dominated individuals of ``row`` (all objectives, in their senses); with
        ``threshold``, only among those whose ``objective`` is at least as good as it."""
        if not 0 <= row < self.rows:
            raise ValueError(f"row {row} out of range for {self.rows} rows")
        ok, _ = self._qualifies(threshold, objective)
        idx = torch.nonzero((self.population.row.cpu() == row) & ok).flatten()
        sub = self.population.take(idx)
        if not self.objective_names or len(sub) == 0:
            return sub
        return sub.take(torch.nonzero(non_dominated(sub.values * self._sign())).flatten())

    def pareto_mask(self) -> Tensor:
        """``(N,)`` bool over :attr:`population`: in its row's feasible non-dominated set."""
        pop = self.population
        mask = torch.zeros(len(pop), dtype=torch.bool)
        if not self.objective_names:
            return mask
        rows, feasible, sign = pop.row.cpu(), pop.feasible.cpu(), self._sign()
        for b in range(self.rows):
            idx = torch.nonzero((rows == b) & feasible).flatten()
            if len(idx):
                mask[idx] = non_dominated(pop.values[idx] * sign)
        return mask
