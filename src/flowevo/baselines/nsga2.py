"""NSGA-II in residual space (pymoo), one algorithm per row, all rows decoded together.

Each row runs pymoo's :class:`~pymoo.algorithms.moo.nsga2.NSGA2` through its ask / tell interface
on the row's searched genome coordinates (:class:`~flowevo.baselines.space.SearchSpace`), inside a box
``start +- radius * scale`` around the row's own residual, with pymoo's real operators (SBX crossover,
polynomial mutation, binary tournament, rank and crowding survival). Every objective is used (one
works too); constraints enter as pymoo's inequality constraints ``G = g - bound`` (its constraint
violation decides feasibility first); failed candidates get large finite F and G.
"""

from __future__ import annotations

import numpy as np
import torch

from flowevo.baselines.budgeted import Payload, run_budgeted
from flowevo.baselines.per_source import constraint_bounds, constraint_excess, minimised, start_genomes
from flowevo.baselines.space import SearchSpace
from flowevo.evolve.result import EditResult
from flowevo.evolve.task import EditTask
from flowevo.flow.codec import Codec
from flowevo.objectives import Evaluation, Evaluator, sense_sign

__all__ = ["nsga2_search"]


def nsga2_search(codec: Codec, task: EditTask, evaluator: Evaluator, budget_per_row: int, popsize: int = 16,
                 sigma0: float = 0.5, radius: float = 3.0, crossover_eta: float = 15.0, mutation_eta: float = 20.0,
                 seed: int = 0, payload: Payload | None = None, space: SearchSpace | None = None) -> EditResult:
    """Run pymoo's NSGA-II per row (ask / tell), every row's offspring decoded and scored in one batch.

    Args:
        codec, task, evaluator: the shared codec, edit task and black box (every objective, every constraint).
        budget_per_row: black-box evaluations per row (``budget_per_row // popsize`` generations, the
            initial population included).
        popsize: population and offspring per generation (the batch per row and step).
        sigma0: the initial population is the row's start point and ``popsize - 1`` draws of
            ``start + sigma0 * scale * N(0, I)`` (clipped to the box).
        radius: the search box ``start +- radius * scale`` (pymoo's ``xl`` / ``xu``).
        crossover_eta, mutation_eta: distribution indices of SBX (probability 0.9) and polynomial mutation
            (probability 1 / d per coordinate).
        seed: row ``b``'s algorithm is seeded ``seed * 1000 + b + 1``.
        payload: the domain's ``payload`` hook.
        space: which genome coordinates to search (default: all).

    Returns:
        an :class:`~flowevo.evolve.EditResult` (``"nsga2"``).
    """
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.evaluator import Evaluator as PymooEvaluator
    from pymoo.core.problem import Problem
    from pymoo.core.termination import NoTermination
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM
    from pymoo.problems.static import StaticProblem

    if popsize < 2:
        raise ValueError(f"nsga2: popsize must be >= 2, got {popsize}")
    if sigma0 < 0 or radius <= 0:
        raise ValueError(f"nsga2: sigma0 must be >= 0 and radius > 0, got {sigma0} and {radius}")
    space = space or SearchSpace()
    r0 = start_genomes(codec, task)
    size = int(np.prod(r0.shape[1:]))
    y0, scale = space.vectors(r0).numpy(), space.scales(size).numpy()
    rows, d = y0.shape
    sign = sense_sign(evaluator.objectives)
    bounds = constraint_bounds(evaluator)
    m, c = len(sign), len(bounds)
    problems, algorithms = [], []
    for b in range(rows):
        xl, xu = y0[b] - radius * scale, y0[b] + radius * scale
        problem = Problem(n_var=d, n_obj=m, n_ieq_constr=c, xl=xl, xu=xu)
        rng = np.random.default_rng(seed * 1000 + b + 1)
        init = y0[b] + sigma0 * scale * rng.standard_normal((popsize, d))
        init[0] = y0[b]
        algorithm = NSGA2(pop_size=popsize, n_offsprings=popsize, sampling=np.clip(init, xl, xu),
                          crossover=SBX(eta=crossover_eta, prob=0.9), mutation=PM(eta=mutation_eta),
                          eliminate_duplicates=False)
        algorithm.setup(problem, termination=NoTermination(), seed=seed * 1000 + b + 1, verbose=False)
        problems.append(problem)
        algorithms.append(algorithm)
    asked: list = []
    base = r0.repeat_interleave(popsize, dim=0)

    def propose(step: int) -> torch.Tensor:
        asked[:] = [a.ask() for a in algorithms]
        for b, pop in enumerate(asked):
            if len(pop) != popsize:  # pymoo's mating fills exactly n_offsprings without duplicate elimination
                raise RuntimeError(f"nsga2: row {b} asked {len(pop)} candidates, expected {popsize}")
        y = torch.as_tensor(np.concatenate([p.get("X") for p in asked]), dtype=torch.float32)
        return space.genomes(y, base)

    def observe(residuals: torch.Tensor, ev: Evaluation) -> None:
        F = minimised(ev, sign).numpy().reshape(rows, popsize, m)
        G = constraint_excess(ev, bounds).numpy().reshape(rows, popsize, c)
        for b, (algorithm, pop) in enumerate(zip(algorithms, asked)):
            static = StaticProblem(problems[b], F=F[b], G=G[b]) if c else StaticProblem(problems[b], F=F[b])
            PymooEvaluator().eval(static, pop)
            algorithm.tell(infills=pop)

    result = run_budgeted("nsga2", propose, observe, codec, task, evaluator, budget_per_row, popsize, payload)
    result.info.update({"popsize": popsize, "sigma0": sigma0, "radius": radius, "crossover_eta": crossover_eta,
                        "mutation_eta": mutation_eta, "space": space.describe(size)})
    return result
