"""Development split (issue 15): REO's digit settings, one component at a time, against CMA-ES.

Training digits 1000-(1000+n-1) (never the benchmark's sources), targets from seeds 100 and 101, the query
benchmark's goals and counting (flowevo.benchmarks.query_digits; every evaluator is wrapped in a QueryCounter),
hypervolume per source after 16-384 evaluations. Each REO variant's kept edits are scored under four rules: the
black box alone (plain) and preferring edits the flow reads as the target by an energy margin of 0, 1 or 2.

usage: OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/dev/reo_ablation.py OUT.json VARIANT[,...] [n=100] [seeds=100,101]
variants: default (population 8, ranked seed pool, pre-screening 4), ladder (the anchor ladder nearest the swap
edit first, the default before), p4_ps8, p4, ladder_p4_ps8, ps8, ps1 (no
screening), p4, ladder_asc (anchor first), anchor (target anchor only), p24, pool, cma_p4, cma_p8
"""
import json
import sys
import time

import torch

torch.set_num_threads(1)
from flowevo.benchmarks.query_digits import DEV, run_on_training_digits  # noqa: E402
from flowevo.benchmarks.query_efficiency import summarise  # noqa: E402
from flowevo.evolve import slerp_ladder  # noqa: E402

out, names = sys.argv[1], sys.argv[2].split(",")
n = int(sys.argv[3]) if len(sys.argv) > 3 else 100
seeds = [int(s) for s in sys.argv[4].split(",")] if len(sys.argv) > 4 else [100, 101]
tau, rules = 0.9, {"plain": None, "fm0": 0.0, "fm1": 1.0, "fm2": 2.0, "fm4": 4.0, "fm6": 6.0}
dev = slice(DEV.start, DEV.start + n)
kept_rules: dict[str, list] = {}


def ascending_ladder(cf):
    with torch.inference_mode():
        return slerp_ladder(cf.target_seeds[:, 0], cf.codec.invert(cf.x, cf.src_c))


VARIANTS = {
    "default": lambda cf: cf.reo(tau),
    "ladder": lambda cf: cf.reo(tau, extra_seeds=cf.anchor_ladder()),
    "p4_ps8": lambda cf: cf.reo(tau, population=4, prescreen=8),
    "p4": lambda cf: cf.reo(tau, population=4),
    "p6": lambda cf: cf.reo(tau, population=6), "p6_ps8": lambda cf: cf.reo(tau, population=6, prescreen=8),
    "ladder_p4_ps8": lambda cf: cf.reo(tau, population=4, prescreen=8, extra_seeds=cf.anchor_ladder()),
    "ps8": lambda cf: cf.reo(tau, prescreen=8), "ps1": lambda cf: cf.reo(tau, prescreen=1),
    "ladder_asc": lambda cf: cf.reo(tau, extra_seeds=ascending_ladder(cf)),
    "anchor": lambda cf: cf.reo(tau, extra_seeds=cf.target_seeds), "p24": lambda cf: cf.reo(tau, population=24),
    "pool": lambda cf: cf.reo(tau, pool=True),
    "tr3": lambda cf: cf.reo(tau, transfer=0.3), "tr5": lambda cf: cf.reo(tau, transfer=0.5),
    "tr3_pool": lambda cf: cf.reo(tau, transfer=0.3, pool=True),
    "cma_p4": lambda cf: cf.search("cma", tau, popsize=4), "cma_p8": lambda cf: cf.search("cma", tau, popsize=8),
}


def scored(name):
    def run(cf):
        res = VARIANTS[name](cf)
        scores = {rule: cf.score(cf.kept(res, tau, flow_margin=m)[0]) for rule, m in rules.items()}
        kept_rules.setdefault(name, []).append({rule: {k: s[k] for k in ("acc_independent", "morph_mean", "shape_distance")}
                                               for rule, s in scores.items()})
        return {**scores["plain"], "evaluations": float(res.evaluations_per_row.mean())}
    return run


t0 = time.perf_counter()
run = run_on_training_digits({m: scored(m) for m in names}, seeds, tau, dev,
                             lambda s: print(time.strftime("%H:%M:%S"), s, flush=True))
first, final = run["first"], run["final"]
res = {"command": " ".join(sys.argv), "rows": run["rows"], "seeds": seeds, "close": run["close"],
       "wall_s": time.perf_counter() - t0, "first": first, "kept_rules": kept_rules,
       "final": {m: [{k: v for k, v in f.items() if k != "hypervolume_rows"} for f in fs] for m, fs in final.items()},
       "summary": {g: {m: s["median"] for m, s in summarise(first[g], 384)["methods"].items()} for g in first}}
json.dump(res, open(out, "w"), indent=1)
for m in names:
    print(m, "close", res["summary"]["close"][m], "kept", kept_rules[m], "hv", [f["hypervolume"] for f in final[m]])
