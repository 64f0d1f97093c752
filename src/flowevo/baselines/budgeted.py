"""Shared loop for budgeted baseline searches: propose a batch per row, decode once, score, archive.

A baseline proposes ``batch`` residuals for every row each step; all rows are decoded in one
batched codec call and scored by the evaluator. An :class:`~flowevo.evolve.Archive` keeps, per
row, the best candidate (feasible first, then the first objective in its sense) and the feasible
non-dominated set of everything scored, and the loop returns them as an
:class:`~flowevo.evolve.EditResult` with one history record per step.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import Tensor

from flowevo.evolve.archive import Archive
from flowevo.evolve.history import GenerationRecord, summarise_generation
from flowevo.evolve.population import SEED, Population
from flowevo.evolve.result import EditResult
from flowevo.evolve.task import EditTask
from flowevo.flow.codec import Codec
from flowevo.objectives import Candidates, Evaluation, Evaluator, Failure, sense_sign

__all__ = ["Archive", "Payload", "Recorder", "decode_and_score", "final_edits", "run_budgeted", "scored_population"]


Payload = Callable[[Tensor], dict]


def decode_and_score(codec: Codec, task: EditTask, evaluator: Evaluator, residuals: Tensor, row: Tensor,
                     payload: Payload | None = None) -> tuple[Candidates, Evaluation]:
    """Decode ``residuals (N, *S)`` of rows ``row (N,)`` under their targets in one batch and score them;
    ``payload(x) -> {name: list of N}`` adds domain objects to ``Candidates.extra`` (as the Evolver's)."""
    dev = codec.device
    residuals, row = residuals.to(dev), row.to(dev)
    target = task.target_condition.to(dev)[row]
    with torch.inference_mode():
        x = codec.decode(residuals, target)
    cands = Candidates(x=x, source_index=row, sources=task.sources.to(dev)[row], target=target,
                       extra=payload(x) if payload is not None else {})
    return cands, evaluator(cands)


def scored_population(residuals: Tensor, cands: Candidates, ev: Evaluation, step: int) -> Population:
    """A batch of scored candidates as a :class:`Population` (origin ``seed``, born at ``step``)."""
    row = cands.source_index
    pop = Population.new(residuals, row, torch.full_like(row, SEED), torch.full_like(row, -1), ev.values.shape[1], step)
    return Population(residuals=residuals, row=row, origin=pop.origin, donor_row=pop.donor_row,
                      values=ev.values.double().cpu(), violation=ev.violation.double().cpu(), decoded=cands.x,
                      born=pop.born, generation=step, constraint_values=ev.constraint_values.double().cpu())


class Recorder:
    """Archive, failures and one history record per scored batch: the bookkeeping every baseline shares."""

    def __init__(self, task: EditTask, evaluator: Evaluator) -> None:
        self.rows = len(task)
        self.sign = sense_sign(evaluator.objectives)
        self.objective_names = [o.name for o in evaluator.objectives]
        self.senses = [o.sense for o in evaluator.objectives]
        constraints = list(evaluator.constraints)
        self.constraint_names = [c.name for c in constraints]
        self.constraint_bounds = torch.tensor([float(c.bound) for c in constraints], dtype=torch.float64)
        self.archive = Archive(self.rows, self.sign)
        self.spent = torch.zeros(self.rows, dtype=torch.float64)
        self.failures: list[Failure] = []
        self.history: list[GenerationRecord] = []
        self.hv_reference: Tensor | None = None
        self.start = time.perf_counter()

    def add(self, residuals: Tensor, cands: Candidates, ev: Evaluation) -> None:
        """Fold in one scored batch."""
        step = len(self.history)
        new = scored_population(residuals, cands, ev, step)
        self.archive.add(new)
        self.spent += torch.bincount(cands.source_index.cpu(), minlength=self.rows).double()
        self.failures.extend(ev.failures)
        record, self.hv_reference = summarise_generation(
            self.archive.population, new, self.sign, self.rows, step, int(self.spent.sum()),
            time.perf_counter() - self.start, self.hv_reference, self.constraint_names, self.constraint_bounds)
        self.history.append(record)

    def result(self, method: str, stop_reason: str = "budget spent", info: dict | None = None) -> EditResult:
        """Everything so far as an :class:`~flowevo.evolve.EditResult`."""
        if self.archive.population is None:
            raise RuntimeError(f"{method}: nothing was evaluated (budget smaller than one batch?)")
        return EditResult(method=method, population=self.archive.population, objective_names=self.objective_names,
                          senses=self.senses, rows=self.rows, evaluations_per_row=self.spent.clone(),
                          history=self.history, failures=self.failures, stop_reason=stop_reason,
                          wall_s=time.perf_counter() - self.start, info=dict(info or {}))


def final_edits(method: str, z: Tensor, x: Tensor, spent: Tensor, wall_s: float, info: dict | None = None) -> EditResult:
    """An unscored method's result: one final edit per row (``z (B, *S)`` flow-space points, ``x (B, *D)``
    decoded), no objectives, every edit counted feasible; ``spent (B,)`` black-box calls per row."""
    b = len(x)
    row = torch.arange(b, device=x.device)
    pop = Population(residuals=z, row=row, origin=torch.full_like(row, SEED), donor_row=torch.full_like(row, -1),
                     values=torch.zeros(b, 0, dtype=torch.float64), violation=torch.zeros(b, dtype=torch.float64),
                     decoded=x, born=torch.zeros_like(row))
    return EditResult(method=method, population=pop, objective_names=[], senses=[], rows=b,
                      evaluations_per_row=spent.double().cpu(), stop_reason="done", wall_s=wall_s, info=dict(info or {}))


def run_budgeted(method: str, propose: Callable[[int], Tensor], observe: Callable[[Tensor, Evaluation], None],
                 codec: Codec, task: EditTask, evaluator: Evaluator, budget_per_row: int, batch: int,
                 payload: Payload | None = None) -> EditResult:
    """Drive a baseline: ``propose(step) -> (B*batch, *S)`` residuals (row-major), ``observe(residuals, ev)``;
    ``budget_per_row // batch`` steps. Returns the :class:`~flowevo.evolve.EditResult` named ``method``."""
    if budget_per_row < batch:
        raise ValueError(f"{method}: budget_per_row ({budget_per_row}) is smaller than one batch ({batch})")
    recorder = Recorder(task, evaluator)
    row = torch.arange(len(task)).repeat_interleave(batch)
    spent = 0
    while spent + batch <= budget_per_row:
        residuals = propose(spent // batch)
        cands, ev = decode_and_score(codec, task, evaluator, residuals, row, payload)
        spent += batch
        recorder.add(residuals.to(codec.device), cands, ev)
        observe(residuals, ev)
    return recorder.result(method)
