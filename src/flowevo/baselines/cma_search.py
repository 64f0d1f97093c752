"""CMA-ES in residual space (the ``cma`` package), one strategy per row, all rows decoded together."""

from __future__ import annotations

import cma
import numpy as np
import torch

from flowevo.baselines.budgeted import Payload, run_budgeted
from flowevo.evolve.result import EditResult
from flowevo.evolve.task import EditTask
from flowevo.flow.codec import Codec
from flowevo.objectives import Evaluator, sense_sign


def cma_search(codec: Codec, task: EditTask, evaluator: Evaluator, budget_per_row: int, popsize: int = 16,
               sigma0: float = 0.5, seed: int = 0, payload: Payload | None = None) -> EditResult:
    """Run pycma's ask/tell per row, started at the row's own residual (inverted under its condition).

    Fitness is the first objective in minimisation form plus a large penalty times the
    constraint violation; failed candidates get ``+inf``-like fitness (1e12). Returns an
    :class:`~flowevo.evolve.EditResult` (``"cma"``).
    """
    with torch.inference_mode():
        r0 = codec.invert(task.sources.to(codec.device), task.source_condition.to(codec.device)).cpu()
    shape = tuple(r0.shape[1:])
    es = [
        cma.CMAEvolutionStrategy(r0[b].flatten().double().numpy(), sigma0,
                                 {"popsize": popsize, "seed": seed * 1000 + b + 1, "verbose": -9})
        for b in range(len(task))
    ]
    sign = float(sense_sign(evaluator.objectives)[0])
    asked: list[list[np.ndarray]] = []

    def propose(step: int) -> torch.Tensor:
        asked[:] = [e.ask() for e in es]
        return torch.as_tensor(np.concatenate([np.stack(a) for a in asked]), dtype=torch.float32).reshape(-1, *shape)

    def observe(residuals: torch.Tensor, ev) -> None:
        f = ev.values[:, 0].numpy() * sign + 1e6 * np.nan_to_num(ev.violation.numpy(), posinf=1e6)
        f = np.where(np.isfinite(f), f, 1e12).reshape(len(es), popsize)
        for e, a, fb in zip(es, asked, f):
            e.tell(a, fb.tolist())

    return run_budgeted("cma", propose, observe, codec, task, evaluator, budget_per_row, popsize, payload)
