"""Development splits (issue 15, fifth pass): what limits REO's late search on the digits query task.

The query benchmark's goals, counting and hypervolume (flowevo.benchmarks.query_digits) on training digits
FIRST_ROW .. FIRST_ROW + n - 1 (never the benchmark's held-out sources); each variant's kept edits by the library's
rule (DigitCounterfactuals.kept, flow margin KEPT_MARGIN). Variants change one thing against "before" (the
default before this pass: rank-and-crowding survival, cross-pollination 0.3):

    before, now (the library default: hypervolume-contribution survival, cross-pollination 0.1),
    hvc (hypervolume contribution, cross 0.3), cr01 / cr0 / cr05 (rank-and-crowding, cross 0.1 / 0 / 0.5),
    ps16 (pre-screening 16), step05 (the 1/5th rule at half its rate), p6 (population 6), now_step05;
    sixth pass, the screening surrogate (PreScreen's keyword arguments, everything else the library default):
    cap256 (the window before the sixth pass; "now" in window_*.json), cap128 / cap64 / cap32 / cap16 (the most
    recent points per row the GP is conditioned on; 32 is the default since), ls05 / ls025 (the median-heuristic
    lengthscale x 0.5 / 0.25), cap64_ls05, cap32_ls05, cap64_ps16

usage: OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/dev/reo_late_search.py OUT.json VARIANT[,...] [n=50]
    [SEEDS=100,101] [FIRST_ROW=1000]
"""
import json
import sys
import time

import torch

torch.set_num_threads(1)
from flowevo.benchmarks.query_digits import DEV, run_on_training_digits  # noqa: E402
from flowevo.benchmarks.query_efficiency import summarise  # noqa: E402
from flowevo.evolve import Evolver, HypervolumeContribution, RankAndCrowding, RowGP  # noqa: E402

out, names = sys.argv[1], sys.argv[2].split(",")
n = int(sys.argv[3]) if len(sys.argv) > 3 else 50
seeds = [int(s) for s in sys.argv[4].split(",")] if len(sys.argv) > 4 else [100, 101]
first_row = int(sys.argv[5]) if len(sys.argv) > 5 else DEV.start
tau = 0.9
rows = slice(first_row, first_row + n)
RC, HVC = RankAndCrowding(), HypervolumeContribution()
VARIANTS = {  # name: (reo keyword arguments, 1/5th rule rate)
    "before": ({"survival": RC, "cross_rate": 0.3}, 1.0), "now": ({}, 1.0),
    "hvc": ({"survival": HVC, "cross_rate": 0.3}, 1.0),
    "cr01": ({"survival": RC, "cross_rate": 0.1}, 1.0), "cr0": ({"survival": RC, "cross_rate": 0.0}, 1.0),
    "cr05": ({"survival": RC, "cross_rate": 0.5}, 1.0), "ps16": ({"survival": RC, "cross_rate": 0.3, "prescreen": 16}, 1.0),
    "step05": ({"survival": RC, "cross_rate": 0.3}, 0.5), "p6": ({"survival": RC, "cross_rate": 0.3, "population": 6}, 1.0),
    "now_step05": ({}, 0.5),
}
SCREENS = {  # name: PreScreen keyword arguments (sixth pass: the surrogate's window and lengthscale)
    "cap64": {"capacity": 64}, "cap32": {"capacity": 32}, "ls05": {"surrogate": RowGP(lengthscale_factor=0.5)},
    "cap256": {"capacity": 256}, "cap64_ps16": {"capacity": 64}, "cap128": {"capacity": 128},
    "ls025": {"surrogate": RowGP(lengthscale_factor=0.25)},
    "cap64_ls05": {"capacity": 64, "surrogate": RowGP(lengthscale_factor=0.5)},
    "cap32_ls05": {"capacity": 32, "surrogate": RowGP(lengthscale_factor=0.5)}, "cap16": {"capacity": 16},
}
VARIANTS |= {k: ({"prescreen": 16} if k.endswith("ps16") else {}, 1.0) for k in SCREENS}
kept: dict[str, list] = {}


def scored(name):
    def run(cf):
        settings, rate = VARIANTS[name]
        Evolver.STEP_RATE = rate
        try:
            res = cf.reo(tau, **settings, screen=SCREENS.get(name))
        finally:
            Evolver.STEP_RATE = 1.0
        s = cf.score(cf.kept(res, tau)[0])
        kept.setdefault(name, []).append({k: s[k] for k in ("acc_independent", "morph_mean", "shape_distance")})
        return {**s, "evaluations": float(res.evaluations_per_row.mean())}
    return run


t0 = time.perf_counter()
run = run_on_training_digits({m: scored(m) for m in names}, seeds, tau, rows,
                             lambda s: print(time.strftime("%H:%M:%S"), s, flush=True))
first, final = run["first"], run["final"]
res = {"command": " ".join(sys.argv), "rows": run["rows"], "seeds": seeds,
       "wall_s": time.perf_counter() - t0, "kept": kept,
       "hypervolume": {m: [f["hypervolume"] for f in fs] for m, fs in final.items()},
       "wall": {m: [f["wall_s"] for f in fs] for m, fs in final.items()},
       "summary": {g: {m: s["median"] for m, s in summarise(first[g], 384)["methods"].items()} for g in first}}
json.dump(res, open(out, "w"), indent=1)
for m in names:
    print(m, "close", res["summary"]["close"][m], "kept",
          [(round(k["acc_independent"], 3), round(k["morph_mean"], 4)) for k in kept[m]],
          "hv", [[round(f[e], 4) for e in ("128", "256", "384")] for f in res["hypervolume"][m]])
