"""Dev-seed screening of CFO settings on the constrained benchmark's crystals task (issue 16).

One process per development seed (11, 12, 13, 14, 15; never the benchmark's 0, 1, 2): builds the crystals task once, runs the
baselines (unconstrained, fixed_small, fixed_large) with the schedule given, then CFO once per setting (overrides of
the benchmark's crystals ``CFOConfig``), and writes the benchmark's bar check at every round listed in ``--at`` (the
records of round k of a longer run are those of a k-round run: every round draws from generators seeded by the config
seed and k). Results are rewritten after every run, so a partial file can be read.

usage: OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/dev/cfo_dev.py OUT.json --seed 11 --rounds 12 \
           --steps 200 --at 8,10,12 --cfo 'default={}' --cfo 'floor25={"target_floor": 0.25}'
"""
import argparse
import json
import time
from dataclasses import replace

import torch

torch.set_num_threads(1)
from flowevo.benchmarks.constrained import FIXED, CrystalSetup, bar_check, default_configs, run_variants  # noqa: E402
from flowevo.benchmarks.machine import load_average  # noqa: E402
from flowevo.domains.crystals.diversity import composition_key  # noqa: E402
from flowevo.domains.crystals.objectives import structure_projection  # noqa: E402

DEV_SEEDS = (11, 12, 13, 14, 15)
p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--seed", type=int, required=True)
p.add_argument("--rounds", type=int, default=8)
p.add_argument("--steps", type=int, default=None, help="fine-tuning steps per round (all variants)")
p.add_argument("--shared", default="{}", help="JSON overrides of the crystals CFOConfig for every variant")
p.add_argument("--at", default="8")
p.add_argument("--cfo", action="append", default=[], help="NAME=JSON overrides of the crystals CFOConfig")
p.add_argument("--baselines", default="unconstrained,fixed_small,fixed_large")
p.add_argument("--baselines-from", default=None,
               help="a previous OUT.json of this seed and shared config: reuse its baseline traces (same seed, same run)")
p.add_argument("--project", choices=("none", "cfo", "all"), default="none",
               help="fine-tune on each sample's decoded structure re-encoded (structure_projection): for CFO or all variants")
p.add_argument("--mix", type=float, default=1.0, help="with --project: the share of rows projected each round")
p.add_argument("--data", default="/work/shared/data/perov_5/val.csv")
a = p.parse_args()
if a.seed not in DEV_SEEDS:
    raise SystemExit(f"development seeds only: {DEV_SEEDS}")
at = [int(k) for k in a.at.split(",")]
cfg = default_configs(a.seed, rounds=a.rounds)["crystals"]
if a.steps is not None:
    cfg = replace(cfg, finetune=replace(cfg.finetune, steps=a.steps))
shared = json.loads(a.shared)
if "finetune" in shared:
    cfg = replace(cfg, finetune=replace(cfg.finetune, **shared.pop("finetune")))
cfg = replace(cfg, **shared)
specs = {}
for s in a.cfo or ["default={}"]:
    name, _, js = s.partition("=")
    specs[name] = json.loads(js or "{}")


def log(s):
    print(time.strftime("%H:%M:%S"), s, flush=True)


def figures(res, k):
    r = res.records[k]
    return {"reward_mean": r.reward_mean, "constraint_satisfaction": r.satisfaction, **r.monitored}


def compact(res):
    return [{"round": r.round, "reward": r.reward_mean, "sat": r.satisfaction, "judge": r.monitored.get("judge_mean"),
             "dft": r.monitored.get("dft_mean_labelled"), "fd": r.monitored.get("feasible_distinct"),
             "fts": r.monitored.get("feasible_top_share"), "lam": r.multipliers, "targets": r.targets,
             "ess": r.ess, "ess_keys": r.ess_keys, "T": r.temperature, "kl": r.kl} for r in res.records]


out = {"seed": a.seed, "rounds": a.rounds, "shared": a.shared, "project": a.project, "mix": a.mix,
       "steps": cfg.finetune.steps, "at": at,
       "load_start": load_average(), "baselines": {}, "cfo": {}}
t0 = time.perf_counter()
setup = CrystalSetup(a.data, a.seed, log=log)
out["setup_s"] = time.perf_counter() - t0


def run(names, config):
    proj = a.project == "all" or (a.project == "cfo" and names == ["cfo"])
    return run_variants(setup.model.velocity, setup.evaluator, None, config, None, encoder=setup.model.encoder,
                        payload=setup.payload, meta=setup.model.meta(), log=log, monitor=setup.monitor,
                        diversity_key=composition_key, variants=names,
                        project=projection if proj else None)


_mix = torch.Generator().manual_seed(a.seed)
_structure = structure_projection(setup.model.representation)  # built once, called every round


def projection(x):
    p = _structure(x)
    if a.mix < 1.0:  # a random share (1 - mix) of the rows keeps its sample (NaN rows are left alone)
        p[torch.rand(p.shape[0], generator=_mix) >= a.mix] = float("nan")
    return p


def save():
    out["load_now"] = load_average()
    out["wall_s"] = time.perf_counter() - t0
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1, default=float)


def from_trace(t):
    return {"reward_mean": t["reward"], "constraint_satisfaction": t["sat"], "judge_mean": t["judge"],
            "dft_mean_labelled": t["dft"], "feasible_distinct": t["fd"], "feasible_top_share": t["fts"]}


if a.baselines_from:
    prev = json.load(open(a.baselines_from))
    if (prev["seed"], prev.get("shared", "{}"), prev["steps"], prev.get("project", "none") == "all", prev.get("mix", 1.0)) \
            != (a.seed, a.shared, cfg.finetune.steps, a.project == "all", a.mix) \
            or prev["rounds"] < a.rounds:
        raise SystemExit(f"{a.baselines_from}: another seed, shared config or fewer rounds")
    out["baselines"] = prev["baselines"]
    out["baselines_from"] = a.baselines_from
else:
    base = run([v for v in a.baselines.split(",") if v in FIXED], cfg)
    for name, res in base.items():
        out["baselines"][name] = {"trace": compact(res)}
save()
for name, over in specs.items():
    ft = over.pop("finetune", None)
    c = replace(cfg, **over)
    if ft:
        c = replace(c, finetune=replace(c.finetune, **ft))
    t1 = time.perf_counter()
    res = run(["cfo"], c)["cfo"]
    entry = {"overrides": {**over, **({"finetune": ft} if ft else {})}, "wall_s": time.perf_counter() - t1,
             "trace": compact(res), "bars": {}}
    for k in at:
        if k > a.rounds:
            continue
        m = {"pretrained": figures(res, 0), "cfo": figures(res, k),
             **{v: from_trace(b["trace"][k]) for v, b in out["baselines"].items()}}
        entry["bars"][str(k)] = bar_check("crystals", m, c.samples)
    out["cfo"][name] = entry
    save()
    b = entry["bars"].get(str(at[-1]), {})
    log(f"{name}: met={b.get('met')} sat={b.get('cfo_satisfaction')} "
        f"ratio_s={b.get('surrogate_gain', 0) / max(b.get('surrogate_gain_unconstrained', 1e-9), 1e-9):.2f} "
        f"ratio_j={b.get('judge_gain', 0) / max(b.get('judge_gain_unconstrained', 1e-9), 1e-9):.2f}")
log("done")
