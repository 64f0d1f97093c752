"""CMA-ES in residual space (the ``cma`` package), one strategy per row, all rows decoded together.

``surrogate=True`` runs pycma's surrogate-assisted variant (``cma.fitness_models.SurrogatePopulation``:
a linear-quadratic model fitted to the true evaluations ranks each population; only as many
candidates are evaluated as the model needs to rank them reliably). It evaluates candidates one
at a time, adaptively, so the rows run under a :class:`~flowevo.baselines.lockstep.Lockstep` broker:
each round every row asks for one candidate, all are decoded and scored in one batch.
"""

from __future__ import annotations

import cma
import cma.fitness_models
import numpy as np
import torch

from flowevo.baselines.budgeted import Payload, Recorder, decode_and_score, run_budgeted
from flowevo.baselines.lockstep import Lockstep
from flowevo.baselines.per_source import penalised, start_genomes
from flowevo.baselines.space import SearchSpace
from flowevo.evolve.result import EditResult
from flowevo.evolve.task import EditTask
from flowevo.flow.codec import Codec
from flowevo.objectives import Evaluator, sense_sign

__all__ = ["cma_search"]


def cma_search(codec: Codec, task: EditTask, evaluator: Evaluator, budget_per_row: int, popsize: int = 16,
               sigma0: float = 0.5, seed: int = 0, payload: Payload | None = None, space: SearchSpace | None = None,
               surrogate: bool = False) -> EditResult:
    """Run pycma's ask/tell per row, started at the row's own residual (inverted under its condition).

    Fitness is the first objective in minimisation form plus a large penalty times the
    constraint violation; failed candidates get ``+inf``-like fitness (1e12).

    Args:
        codec, task, evaluator: the shared codec, edit task and black box.
        budget_per_row: black-box evaluations per row.
        popsize: CMA-ES population (and, without the surrogate, the batch per row and step).
        sigma0: initial step size (times ``space``'s per-coordinate scale).
        seed: row ``b``'s strategy is seeded ``seed * 1000 + b + 1``.
        payload: the domain's ``payload`` hook (decoded tensors -> ``Candidates.extra``).
        space: which genome coordinates to search (default: all; e.g. the site-masked crystal genome's
            residual and mask, not its anchor).
        surrogate: pycma's surrogate-assisted ask/tell (``cma.fitness_models.SurrogatePopulation``, model
            optimum injected as in pycma's example), rows batched by :class:`~.lockstep.Lockstep`; each row
            spends exactly ``budget_per_row`` true evaluations (its last population may be cut short).

    Returns:
        an :class:`~flowevo.evolve.EditResult` (``"cma"``, or ``"cma_surrogate"``).
    """
    if surrogate:
        return _cma_surrogate(codec, task, evaluator, budget_per_row, popsize, sigma0, seed, payload, space)
    r0 = start_genomes(codec, task)
    shape = tuple(r0.shape[1:])
    x0, opts = _starts(r0, space, popsize)
    es = [cma.CMAEvolutionStrategy(x0[b], sigma0, {**opts, "seed": seed * 1000 + b + 1}) for b in range(len(task))]
    sign = float(sense_sign(evaluator.objectives)[0])
    asked: list[list[np.ndarray]] = []
    base = r0.repeat_interleave(popsize, dim=0)

    def propose(step: int) -> torch.Tensor:
        asked[:] = [e.ask() for e in es]
        y = torch.as_tensor(np.concatenate([np.stack(a) for a in asked]), dtype=torch.float32)
        return y.reshape(-1, *shape) if space is None else space.genomes(y, base)

    def observe(residuals: torch.Tensor, ev) -> None:
        f = ev.values[:, 0].numpy() * sign + 1e6 * np.nan_to_num(ev.violation.numpy(), posinf=1e6)
        f = np.where(np.isfinite(f), f, 1e12).reshape(len(es), popsize)
        for e, a, fb in zip(es, asked, f):
            e.tell(a, fb.tolist())

    return run_budgeted("cma", propose, observe, codec, task, evaluator, budget_per_row, popsize, payload)


def _starts(r0: torch.Tensor, space: SearchSpace | None, popsize: int) -> tuple[np.ndarray, dict]:
    """Start points ``(B, d)`` and the pycma options every row shares."""
    opts: dict = {"popsize": popsize, "verbose": -9}
    if space is None:
        return r0.reshape(len(r0), -1).double().numpy(), opts
    size = int(np.prod(r0.shape[1:]))
    scale = space.scales(size)
    if not torch.all(scale == 1):
        opts["CMA_stds"] = scale.tolist()
    return space.vectors(r0).numpy(), opts


def _cma_surrogate(codec: Codec, task: EditTask, evaluator: Evaluator, budget_per_row: int, popsize: int,
                   sigma0: float, seed: int, payload: Payload | None, space: SearchSpace | None) -> EditResult:
    if budget_per_row < 1:
        raise ValueError(f"cma_surrogate: budget_per_row must be >= 1, got {budget_per_row}")
    r0 = start_genomes(codec, task)
    shape = tuple(r0.shape[1:])
    x0, opts = _starts(r0, space, popsize)
    opts["CMA_injections_threshold_keep_len"] = 1  # keep the injected model optimum, as pycma's example does
    sign = sense_sign(evaluator.objectives)
    recorder = Recorder(task, evaluator)
    dev = codec.device

    def program(b: int):
        def run(fitness) -> None:
            es = cma.CMAEvolutionStrategy(x0[b], sigma0, {**opts, "seed": seed * 1000 + b + 1})
            model = cma.fitness_models.SurrogatePopulation(fitness)
            while True:
                X = es.ask()
                es.tell(X, model(X))
                es.inject([model.model.xopt])

        return run

    def evaluate(rows: list[int], xs: list[np.ndarray]) -> list[float]:
        row = torch.as_tensor(rows, dtype=torch.long)
        y = torch.as_tensor(np.stack(xs), dtype=torch.float32)
        genomes = y.reshape(-1, *shape) if space is None else space.genomes(y, r0[row])
        cands, ev = decode_and_score(codec, task, evaluator, genomes, row, payload)
        recorder.add(genomes.to(dev), cands, ev)
        return penalised(ev, sign).tolist()

    broker = Lockstep([program(b) for b in range(len(task))], budget_per_row)
    broker.run(evaluate)
    return recorder.result("cma_surrogate", info={"popsize": popsize, "sigma0": sigma0,
                                                  "rounds": len(recorder.history)})
