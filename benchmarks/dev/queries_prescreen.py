"""Dev-split query efficiency (issue 15): REO default vs REO + PreScreen(factor) vs CMA-ES (benchmark settings).

Training digits 1000-(1000+n-1) (the development split; never the benchmark's sources), targets from seeds
100, 101 (the benchmark uses 0-4 on its own sources). Goals and counting are the query benchmark's
(flowevo.benchmarks.query_digits): every evaluator a method builds is wrapped in a QueryCounter.

usage: OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/dev/queries_prescreen.py OUT.json [n=40] [seeds=100,101] [factor=8]
"""
import json
import sys
import time

import torch

torch.set_num_threads(1)
from flowevo.baselines import cma_search  # noqa: E402
from flowevo.benchmarks.machine import load_average  # noqa: E402
from flowevo.benchmarks.query_digits import DEV, kept_scores, run_on_training_digits  # noqa: E402
from flowevo.benchmarks.query_efficiency import summarise  # noqa: E402

out = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 40
seeds = [int(s) for s in sys.argv[3].split(",")] if len(sys.argv) > 3 else [100, 101]
factor = int(sys.argv[4]) if len(sys.argv) > 4 else 8
tau, population, generations = 0.9, 24, 15  # the digits benchmark's defaults (budget 384 per source)
budget = population * (generations + 1)
dev = slice(DEV.start, DEV.start + n)
methods = {"reo": kept_scores(tau, lambda cf: cf.reo(tau)),
           f"reo_ps{factor}": kept_scores(tau, lambda cf: cf.reo(tau, prescreen=factor)),
           "cma": kept_scores(tau, lambda cf: cf.search("cma", tau)),
           # population 8 (same budget, 47 generations): the qe findings' smaller population, and CMA-ES at
           # the same population (tuned on these dev digits in the qe findings)
           f"reo_p8_ps{factor}": kept_scores(tau, lambda cf: cf.reo(tau, population=8, generations=budget // 8 - 1,
                                                                      prescreen=factor)),
           "cma_p8": kept_scores(tau, lambda cf: cma_search(cf.codec, cf.task, cf.evaluator(tau), budget, popsize=8,
                                                             sigma0=0.3, seed=cf.seed))}
walls = {}


def timed(name, fn):
    def run(cf):
        t = time.perf_counter()
        r = fn(cf)
        walls.setdefault(name, []).append(time.perf_counter() - t)
        return r
    return run


methods = {k: timed(k, v) for k, v in methods.items()}
load0 = load_average()
t0 = time.perf_counter()
run = run_on_training_digits(methods, seeds, tau, dev, lambda s: print(time.strftime("%H:%M:%S"), s, flush=True),
                             hypervolume=False)
first, final = run["first"], run["final"]
res = {"command": " ".join(sys.argv), "rows": run["rows"], "seeds": seeds,
       "budget": budget, "close": run["close"], "load_before": load0, "load_after": load_average(),
       "wall_s": time.perf_counter() - t0, "wall_per_method_s": walls, "final": final,
       "summary": {g: summarise(first[g], budget)["methods"] for g in first}, "first": first}
for ms in res["summary"].values():
    for s in ms.values():
        s.pop("curve_median"), s.pop("curve_min"), s.pop("curve_max")
json.dump(res, open(out, "w"), indent=1)
for g, ms in res["summary"].items():
    print(g)
    for m, s in ms.items():
        print(f"  {m:10s} median {s['median']}  per seed {s['evaluations_to_rate']}  final {s['final_rate']}")
print("final", json.dumps(final))
print("walls", walls, "load", load0, load_average())
