"""Development seeds 10-12 (issue 15; the toy benchmark runs 0-4): toy query efficiency, REO settings vs CMA-ES settings.

Every black-box call is counted by QueryCounter; prints evaluations to 50/80/90% of the 32 sources per seed and the
median over seeds. How benchmarks/results/queries_dev/issue15/toy_*.log were made.

usage: OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/dev/toy_settings.py 10,11,12 reo_p2_ps8_pool,cma_p4
"""
import statistics
import sys
import time

import torch

torch.set_num_threads(1)
from flowevo.baselines import cma_search  # noqa: E402
from flowevo.benchmarks.toy import toy_edit_task  # noqa: E402
from flowevo.evolve import Evolver, MaxEvaluations, PreScreen, Variation  # noqa: E402
from flowevo.objectives import QueryCounter, evaluations_to_rate  # noqa: E402

BUDGET = 512


def reo(setup, counter, seed, pop=16, factor=8, pool=False):
    var = Variation(cross_rate=0.3)
    if factor > 1:
        var = PreScreen(var, factor=factor, pool=pool, seed=seed)
    return Evolver(setup.codec, setup.task, counter, population_size=pop, variation=var,
                   termination=[MaxEvaluations(BUDGET * len(setup.task))], seed=seed).run()


def cma(setup, counter, seed, pop, sigma=0.5):
    return cma_search(setup.codec, setup.task, counter, BUDGET, popsize=pop, sigma0=sigma, seed=seed)


METHODS = {
    "reo": lambda s, c, sd: reo(s, c, sd, factor=1),  # the toy benchmark's REO before issue 15
    "reo_ps8": lambda s, c, sd: reo(s, c, sd),
    "reo_ps8_pool": lambda s, c, sd: reo(s, c, sd, pool=True),
    "reo_p8_ps8_pool": lambda s, c, sd: reo(s, c, sd, pop=8, pool=True),
    "reo_p4_ps8_pool": lambda s, c, sd: reo(s, c, sd, pop=4, pool=True),
    "reo_p4_ps16_pool": lambda s, c, sd: reo(s, c, sd, pop=4, factor=16, pool=True),
    "reo_p4_ps8": lambda s, c, sd: reo(s, c, sd, pop=4),
    "reo_p2_ps8_pool": lambda s, c, sd: reo(s, c, sd, pop=2, pool=True),
    "cma": lambda s, c, sd: cma(s, c, sd, 16),
    "cma_p8": lambda s, c, sd: cma(s, c, sd, 8),
    "cma_p6_s1": lambda s, c, sd: cma(s, c, sd, 6, 1.0),
    "cma_p4": lambda s, c, sd: cma(s, c, sd, 4),
    "cma_p4_s03": lambda s, c, sd: cma(s, c, sd, 4, 0.3),
    "cma_p4_s1": lambda s, c, sd: cma(s, c, sd, 4, 1.0),
    "cma_p2": lambda s, c, sd: cma(s, c, sd, 2),
}

if __name__ == "__main__":
    seeds, names = [int(s) for s in sys.argv[1].split(",")], sys.argv[2].split(",")
    res: dict[str, list] = {}
    for sd in seeds:
        setup = toy_edit_task(sd)
        for m in names:
            counter = QueryCounter(setup.evaluator, len(setup.task), {"success": setup.success})
            t = time.perf_counter()
            METHODS[m](setup, counter, sd)
            res.setdefault(m, []).append([evaluations_to_rate(counter.first["success"], r) for r in (0.5, 0.8, 0.9)])
            print(sd, m, res[m][-1], round(time.perf_counter() - t, 1), flush=True)
    for m, v in res.items():
        print(m, [statistics.median(x[i] for x in v) for i in range(3)])
