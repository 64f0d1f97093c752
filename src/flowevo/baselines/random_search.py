"""Random residual search: draw residuals from N(0, I), decode under the target, keep the best."""

from __future__ import annotations

import torch

from flowevo.baselines.budgeted import Payload, run_budgeted
from flowevo.evolve.result import EditResult
from flowevo.evolve.task import EditTask
from flowevo.flow.codec import Codec
from flowevo.objectives import Evaluator


def random_search(codec: Codec, task: EditTask, evaluator: Evaluator, budget_per_row: int, batch: int = 16,
                  seed: int = 0, payload: Payload | None = None) -> EditResult:
    """Search each row with ``budget_per_row`` i.i.d. N(0, I) residuals of the codec's residual shape,
    ``batch`` per step, all rows decoded together. Returns an :class:`~flowevo.evolve.EditResult` (``"random"``)."""
    shape = codec.residual_shape(task.sources[:1].to(codec.device))
    gen = torch.Generator().manual_seed(seed)
    n = len(task) * batch
    return run_budgeted("random", lambda step: torch.randn(n, *shape, generator=gen), lambda r, ev: None, codec, task,
                        evaluator, budget_per_row, batch, payload)
