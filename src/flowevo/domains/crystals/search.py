"""LeapFactual-style and gradient baselines for crystal editing, wrapping the generic baselines.

Both run on the plain :class:`~flowevo.flow.ResidualCodec` of a :class:`~.model.CrystalModel`
(the same residual space as random search and CMA-ES) and score **every** intermediate edit with
the same evaluator as the other methods (surrogate objective, validity and budget constraints),
keeping per row the best feasible edit (:class:`~flowevo.baselines.BestTracker`). One batched
evaluation per round / step: ``evaluations`` per row equals ``rounds`` / ``steps``.

* :func:`leap_edit`: :func:`~flowevo.baselines.leap`, one lift/land round at a time: lift the
  current crystal to ``t = 1 - gamma`` under the property the surrogate reads off it (the source's
  own value the first time), land under the target value.
* :func:`gradient_edit`: :func:`~flowevo.baselines.gradient_search` (AdamW on the residual) through
  the decoder and :class:`~.differentiable.SoftSurrogate` — a white-box reference.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from flowevo.baselines import BestTracker, SearchResult, gradient_search, leap
from flowevo.evolve.task import EditTask
from flowevo.flow.codec import ResidualCodec
from flowevo.objectives import Candidates, Evaluation, sense_sign

from .differentiable import SoftSurrogate
from .model import CrystalModel

__all__ = ["leap_edit", "gradient_edit"]

Payload = Callable[[Tensor], dict]


class _Scorer:
    """Score full batches of edits (one per row), fold them into a :class:`BestTracker`."""

    def __init__(self, task: EditTask, evaluator, payload: Payload) -> None:
        self.task, self.evaluator, self.payload = task, evaluator, payload
        self.rows = len(task)
        self.tracker = BestTracker(self.rows, sense_sign(evaluator.objectives))
        self.spent = 0
        self.failures: list = []

    def __call__(self, x: Tensor, z: Tensor) -> Evaluation:
        if len(x) != self.rows:
            raise ValueError(f"expected one edit per row ({self.rows}), got {len(x)}")
        x = x.detach()
        row = torch.arange(self.rows, device=x.device)
        cands = Candidates(x=x, source_index=row, sources=self.task.sources.to(x.device),
                           target=self.task.target_condition.to(x.device), extra=self.payload(x))
        ev = self.evaluator(cands)
        self.spent += 1
        self.tracker.update(z.detach(), cands, ev, self.spent, None)
        self.failures.extend(ev.failures)
        return ev

    def result(self, wall_s: float) -> SearchResult:
        t = self.tracker
        return SearchResult(t.residuals, t.x, t.values, t.violation, self.spent, t.first_success, self.failures, wall_s)


def leap_edit(model: CrystalModel, codec: ResidualCodec, task: EditTask, source_values: Tensor, target_values: Tensor,
              evaluator, payload: Payload, rounds: int, gamma: float = 0.5) -> SearchResult:
    """``rounds`` lift/land rounds per row from the sources; ``source_values``/``target_values (B,)`` in
    physical units; the surrogate (the evaluator's first objective) reads the property each round."""
    import time

    start = time.perf_counter()
    scorer = _Scorer(task, evaluator, payload)
    x, current = task.sources, source_values.double()
    target = target_values.double()
    for _ in range(rounds):
        def read(edits: Tensor, previous: Tensor = current) -> Tensor:  # a failed reading keeps the last one
            ev = scorer(edits, model.encoder.encode(edits) if model.encoder is not None else edits)
            return torch.where(torch.isfinite(ev.values[:, 0]), ev.values[:, 0], previous)

        res = leap(codec, x, current, target, read, gamma=gamma, rounds=1, condition=model.condition)
        x, current = res.x, res.labels.double()
    return scorer.result(time.perf_counter() - start)


def gradient_edit(model: CrystalModel, codec: ResidualCodec, task: EditTask, surrogate: SoftSurrogate, evaluator,
                  payload: Payload, steps: int, lr: float = 0.05, weight: float = 0.01) -> SearchResult:
    """AdamW on each row's residual (inverted under its own condition) minimising the soft surrogate
    of the decoded crystal plus ``weight * |r - r0|^2``; every step's decode is scored."""
    import time

    start = time.perf_counter()
    scorer = _Scorer(task, evaluator, payload)
    with torch.inference_mode():
        r0 = codec.invert(task.sources, task.source_condition)
    target = task.target_condition

    def record(x: Tensor) -> Tensor:
        scorer(x, model.encoder.encode(x) if model.encoder is not None else x)
        return torch.zeros(len(x), dtype=torch.bool, device=x.device)

    gradient_search(r0.clone(), lambda r: codec.decode(r, target), surrogate, record, steps=steps, lr=lr, weight=weight)
    return scorer.result(time.perf_counter() - start)
