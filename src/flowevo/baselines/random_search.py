"""Random residual search: draw residuals from N(0, I), decode under the target, keep the best."""

from __future__ import annotations

import torch

from flowevo.baselines.budgeted import SearchResult, SuccessFn, run_budgeted
from flowevo.evolve.task import EditTask
from flowevo.flow.codec import ResidualCodec


def random_search(codec: ResidualCodec, task: EditTask, evaluator, budget_per_row: int, batch: int = 16,
                  seed: int = 0, success: SuccessFn | None = None, shape: tuple[int, ...] | None = None) -> SearchResult:
    """Search each row with ``budget_per_row`` i.i.d. residuals, ``batch`` per step, all rows batched.

    ``shape`` is the residual shape S (default: the flow space shape of the sources).
    """
    if shape is None:
        with torch.inference_mode():
            shape = tuple(codec.to_flow_space(task.sources[:1]).shape[1:])
    gen = torch.Generator().manual_seed(seed)
    n = len(task) * batch
    propose = lambda step: torch.randn(n, *shape, generator=gen)
    return run_budgeted(propose, lambda r, ev: None, codec, task, evaluator, budget_per_row, batch, success)
