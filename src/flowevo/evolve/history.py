"""Per-generation records of a run (what plots and reports read), and how one is computed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor

from flowevo.evolve.population import Population
from flowevo.evolve.survival import hypervolume


@dataclass(frozen=True)
class GenerationRecord:
    """Summary of one generation over all rows.

    Attributes:
        generation: generation number (0 = the evaluated initial population).
        evaluations: black-box evaluations spent so far (all rows).
        best: per objective, mean over rows of each row's best feasible value, in the objective's sense
            (NaN where a row has no feasible individual).
        best_min: the same in minimisation form (used by termination).
        feasible_fraction: fraction of this generation's new candidates that are feasible.
        failed: candidates of this generation whose evaluation failed.
        rows_feasible: fraction of rows with at least one feasible survivor.
        hypervolume: mean per-row hypervolume of the survivors (multi-objective runs; else None).
        wall_s: seconds since the run started.
        satisfaction: per constraint name, fraction of this generation's new candidates that satisfy it
            (``g <= bound``; a failed evaluation counts as not satisfied). Empty without constraints;
            the overall rate is ``feasible_fraction``.
        survivors_feasible: fraction of the survivors (all rows) that are feasible (NaN in old records).
        multipliers: per constraint name, the Lagrange multiplier after this generation (empty without
            a :class:`~flowevo.evolve.constraints.LagrangianPenalty`).
    """

    generation: int
    evaluations: int
    best: list[float]
    best_min: list[float]
    feasible_fraction: float
    failed: int
    rows_feasible: float
    hypervolume: float | None
    wall_s: float
    satisfaction: dict[str, float] = field(default_factory=dict)
    survivors_feasible: float = float("nan")
    multipliers: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The record as a plain dict (what history.json / trace.json hold)."""
        return asdict(self)


def summarise_generation(
    survivors: Population,
    new: Population,
    sign: Tensor,
    rows: int,
    generation: int,
    evaluations: int,
    wall_s: float,
    hv_reference: Tensor | None = None,
    constraint_names: Sequence[str] = (),
    constraint_bounds: Tensor | None = None,
    multipliers: dict[str, float] | None = None,
) -> tuple[GenerationRecord, Tensor | None]:
    """The :class:`GenerationRecord` of one generation, and the hypervolume reference it used.

    Args:
        survivors: what the method keeps after this generation (any number per row).
        new: this generation's newly scored candidates.
        sign: ``(M,)`` +1 for ``min`` and -1 for ``max`` objectives.
        rows: number of task rows.
        hv_reference: ``(M,)`` hypervolume reference in minimisation form; None: set from the
            feasible survivors the first time there are any (and returned, to be passed again).
        constraint_names / constraint_bounds ``(C,)``: for per-constraint satisfaction of ``new``.
        multipliers: Lagrange multipliers to record (empty without a penalty).
    """
    F = survivors.values * sign
    feas = survivors.feasible.cpu()
    big = torch.where(feas[:, None], F, torch.full_like(F, math.inf))
    per_row = torch.full((rows, F.shape[1]), math.inf, dtype=torch.float64)
    per_row = per_row.scatter_reduce(0, survivors.row.cpu()[:, None].expand_as(big), big, reduce="amin")
    has = torch.isfinite(per_row).all(dim=1) if F.shape[1] else torch.zeros(rows, dtype=torch.bool).index_fill_(
        0, survivors.row.cpu()[feas], True)
    best_min = [float(per_row[has, j].mean()) if has.any() else math.nan for j in range(F.shape[1])]
    hv = None
    if F.shape[1] > 1:
        if hv_reference is None and feas.any():
            hv_reference = F[feas].max(dim=0).values + 0.1 * F[feas].abs().max(dim=0).values + 1e-9
        if hv_reference is not None:
            row = survivors.row.cpu()
            hv = sum(hypervolume(F[(row == b) & feas], hv_reference) for b in range(rows)) / rows
    satisfaction: dict[str, float] = {}
    g = new.constraint_values
    if g is not None and constraint_names:
        ok = torch.isfinite(g) & (g <= constraint_bounds)
        satisfaction = dict(zip(constraint_names, ok.double().mean(0).tolist()))
    record = GenerationRecord(
        generation=generation, evaluations=evaluations,
        best=[b * float(s) for b, s in zip(best_min, sign)], best_min=best_min,
        feasible_fraction=float(new.feasible.double().mean()), failed=int(torch.isinf(new.violation).sum()),
        rows_feasible=float(has.double().mean()), hypervolume=hv, wall_s=wall_s,
        satisfaction=satisfaction, survivors_feasible=float(feas.double().mean()),
        multipliers=dict(multipliers or {}),
    )
    return record, hv_reference
