"""LeapFactual-style and gradient baselines for crystal editing, wrapping the generic baselines.

Both run on the plain :class:`~flowevo.flow.ResidualCodec` of a :class:`~.model.CrystalModel`
(the same residual space as random search and CMA-ES) and score **every** intermediate edit with
the same evaluator as the other methods (surrogate objective, validity and budget constraints);
a :class:`~flowevo.baselines.Recorder` keeps per row the best edit (feasible first) and the
history, and both return an :class:`~flowevo.evolve.EditResult` whose residuals are the edits'
flow-space points. One batched evaluation per round / step: ``evaluations_per_row`` equals
``rounds`` / ``steps``.

* :func:`leap_edit`: :func:`~flowevo.baselines.leap`, one lift/land round at a time: lift the
  current crystal to ``t = 1 - gamma`` under the property the surrogate reads off it (the source's
  own value the first time), land under the target value.
* :func:`gradient_edit`: :func:`~flowevo.baselines.gradient_search` (AdamW on the residual) through
  the decoder and :class:`~.differentiable.SoftSurrogate` — a white-box reference.
"""

from __future__ import annotations

import torch
from torch import Tensor

from flowevo.baselines import Recorder, gradient_search, leap
from flowevo.baselines.budgeted import Payload
from flowevo.evolve.result import EditResult
from flowevo.evolve.task import EditTask
from flowevo.flow.codec import ResidualCodec
from flowevo.objectives import Candidates, Evaluation, Evaluator

from .differentiable import SoftSurrogate
from .model import CrystalModel
from .objectives import structures_payload

__all__ = ["leap_edit", "gradient_edit"]


class _Scorer:
    """Score full batches of edits (one per row) into a :class:`~flowevo.baselines.Recorder`."""

    def __init__(self, model: CrystalModel, task: EditTask, evaluator: Evaluator, payload: Payload | None) -> None:
        self.model, self.task, self.evaluator = model, task, evaluator
        self.payload = payload or structures_payload(model.representation)
        self.recorder = Recorder(task, evaluator)

    def __call__(self, x: Tensor) -> Evaluation:
        rows = len(self.task)
        if len(x) != rows:
            raise ValueError(f"expected one edit per row ({rows}), got {len(x)}")
        x = x.detach()
        row = torch.arange(rows, device=x.device)
        cands = Candidates(x=x, source_index=row, sources=self.task.sources.to(x.device),
                           target=self.task.target_condition.to(x.device), extra=self.payload(x))
        ev = self.evaluator(cands)
        z = self.model.encoder.encode(x) if self.model.encoder is not None else x
        self.recorder.add(z, cands, ev)
        return ev


def leap_edit(model: CrystalModel, codec: ResidualCodec, task: EditTask, source_values: Tensor, target_values: Tensor,
              evaluator: Evaluator, payload: Payload | None, rounds: int, gamma: float = 0.5) -> EditResult:
    """``rounds`` lift/land rounds per row from ``task.sources (B, D)``; ``source_values``/``target_values (B,)``
    in physical units; the surrogate (the evaluator's first objective) reads the property each round.

    ``payload``: builds ``extra["structures"]`` for the evaluator (default
    :func:`~.objectives.structures_payload` of the model's representation). Returns an
    :class:`~flowevo.evolve.EditResult` (``"leap"``): per row the best scored edit and the feasible ones.
    """
    scorer = _Scorer(model, task, evaluator, payload)
    x, current = task.sources, source_values.double()
    target = target_values.double()
    for _ in range(rounds):
        def read(edits: Tensor, previous: Tensor = current) -> Tensor:  # a failed reading keeps the last one
            ev = scorer(edits)
            return torch.where(torch.isfinite(ev.values[:, 0]), ev.values[:, 0], previous)

        res = leap(codec, x, current, target, read, gamma=gamma, rounds=1, condition=model.condition)
        x, current = res.population.decoded, res.info["labels"].double()
    return scorer.recorder.result("leap", stop_reason=f"{rounds} rounds")


def gradient_edit(model: CrystalModel, codec: ResidualCodec, task: EditTask, surrogate: SoftSurrogate,
                  evaluator: Evaluator, payload: Payload | None, steps: int, lr: float = 0.05,
                  weight: float = 0.01) -> EditResult:
    """AdamW on each row's residual (inverted under its own condition) minimising the soft surrogate
    of the decoded crystal plus ``weight * |r - r0|^2``; every step's decode is scored.

    Returns an :class:`~flowevo.evolve.EditResult` (``"gradient"``): per row the best scored edit."""
    scorer = _Scorer(model, task, evaluator, payload)
    with torch.inference_mode():
        r0 = codec.invert(task.sources, task.source_condition)
    target = task.target_condition

    def record(x: Tensor) -> Tensor:
        scorer(x)
        return torch.zeros(len(x), dtype=torch.bool, device=x.device)

    gradient_search(r0.clone(), lambda r: codec.decode(r, target), surrogate, record, steps=steps, lr=lr, weight=weight)
    return scorer.recorder.result("gradient", stop_reason=f"{steps} steps")
