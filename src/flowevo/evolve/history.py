"""Per-generation records of a run (what plots and reports read)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


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

    def to_dict(self) -> dict:
        return asdict(self)
