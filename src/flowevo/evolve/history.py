"""Per-generation records of a run (what plots and reports read)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


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
