"""Shared loop for baseline searches: propose a batch per row, decode once, score, keep the best.

A baseline proposes ``batch`` residuals for every row each step; all rows are decoded in
one batched codec call and scored by the evaluator. The best candidate per row is kept
feasible-first on the first objective, in its sense.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor

from flowevo.evolve.task import EditTask
from flowevo.flow.codec import ResidualCodec
from flowevo.objectives import Candidates, Evaluation, Failure, sense_sign

SuccessFn = Callable[[Evaluation, Candidates], Tensor]


@dataclass
class SearchResult:
    """Per-row outcome of a search.

    Attributes:
        best_residuals: ``(B, *S)``; best_x: ``(B, *D)``; best_values: ``(B, M)`` in each objective's sense;
        best_violation: ``(B,)``; evaluations_per_row: evaluations spent on each row;
        first_success: ``(B,)`` evaluations spent on a row when it first succeeded (inf if never);
        failures: recorded evaluation failures; wall_s: seconds.
    """

    best_residuals: Tensor
    best_x: Tensor
    best_values: Tensor
    best_violation: Tensor
    evaluations_per_row: int
    first_success: Tensor
    failures: list[Failure] = field(default_factory=list)
    wall_s: float = 0.0


class BestTracker:
    """Keep each row's best candidate (feasible first, then first objective) and first success."""

    def __init__(self, rows: int, sign: Tensor) -> None:
        self.rows, self.sign = rows, sign
        self.key = torch.full((rows, 2), math.inf, dtype=torch.float64)  # (violation, objective)
        self.residuals = self.x = self.values = None
        self.violation = torch.full((rows,), math.inf, dtype=torch.float64)
        self.first_success = torch.full((rows,), math.inf, dtype=torch.float64)

    def update(self, residuals: Tensor, cands: Candidates, ev: Evaluation, spent_per_row: int,
               success: Tensor | None) -> None:
        """Fold in one scored batch; ``success (N,)`` optional bool per candidate."""
        row = cands.source_index.cpu()
        f = torch.nan_to_num(ev.values[:, 0] * self.sign[0], nan=math.inf)
        for b in torch.unique(row).tolist():
            idx = torch.nonzero(row == b).flatten()
            keys = torch.stack([ev.violation[idx], f[idx]], dim=1)
            best = idx[min(range(len(idx)), key=lambda i: (keys[i, 0].item(), keys[i, 1].item()))]
            cand = (ev.violation[best].item(), f[best].item())
            if self.residuals is None:
                self.residuals = torch.zeros(self.rows, *residuals.shape[1:], dtype=residuals.dtype)
                self.x = torch.zeros(self.rows, *cands.x.shape[1:], dtype=cands.x.dtype)
                self.values = torch.full((self.rows, ev.values.shape[1]), math.nan, dtype=torch.float64)
            if cand < (self.key[b, 0].item(), self.key[b, 1].item()):
                self.key[b] = torch.tensor(cand, dtype=torch.float64)
                self.residuals[b], self.x[b] = residuals[best].cpu(), cands.x[best].cpu()
                self.values[b], self.violation[b] = ev.values[best], ev.violation[best]
            if success is not None and math.isinf(self.first_success[b]) and bool(success[idx].any()):
                self.first_success[b] = spent_per_row


def decode_and_score(codec: ResidualCodec, task: EditTask, evaluator, residuals: Tensor, row: Tensor
                     ) -> tuple[Candidates, Evaluation]:
    """Decode ``residuals (N, *S)`` of rows ``row (N,)`` under their targets in one batch and score them."""
    dev = residuals.device
    target = task.target_condition.to(dev)[row]
    with torch.inference_mode():
        x = codec.decode(residuals, target)
    cands = Candidates(x=x, source_index=row, sources=task.sources.to(dev)[row], target=target)
    return cands, evaluator(cands)


def run_budgeted(propose, observe, codec: ResidualCodec, task: EditTask, evaluator, budget_per_row: int,
                 batch: int, success: SuccessFn | None = None) -> SearchResult:
    """Drive a baseline: ``propose(step) -> (B*batch, *S)`` residuals (row-major), ``observe(residuals, ev)``."""
    rows, start = len(task), time.perf_counter()
    tracker = BestTracker(rows, sense_sign(evaluator.objectives))
    failures: list[Failure] = []
    row = torch.arange(rows).repeat_interleave(batch)
    spent = 0
    while spent + batch <= budget_per_row:
        residuals = propose(spent // batch)
        cands, ev = decode_and_score(codec, task, evaluator, residuals, row.to(residuals.device))
        spent += batch
        tracker.update(residuals, cands, ev, spent, None if success is None else success(ev, cands).cpu())
        failures.extend(ev.failures)
        observe(residuals, ev)
    return SearchResult(tracker.residuals, tracker.x, tracker.values, tracker.violation, spent,
                        tracker.first_success, failures, time.perf_counter() - start)
