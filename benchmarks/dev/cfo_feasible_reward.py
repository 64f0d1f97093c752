"""Issue 16, seventh pass: where the unconstrained run's reward lies, feasible or not (development seeds only).

Runs the constrained benchmark's crystals task at one dev seed with the committed defaults, variants
``unconstrained`` and ``cfo``, and records per round the surrogate's mean gap over all samples, over the feasible
samples and over the violating ones (a monitor: never used in fine-tuning). Writes
``benchmarks/results/constrained_dev/feasible_reward_s{SEED}.json`` and prints ``round:reward/feasible-reward/sat``.

usage: OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/dev/cfo_feasible_reward.py SEED
"""
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)
from flowevo.benchmarks.constrained import CrystalSetup, default_configs, run_variants  # noqa: E402
from flowevo.domains.crystals.diversity import composition_key  # noqa: E402

seed = int(sys.argv[1])
if seed not in (11, 12, 13, 14, 15):
    raise SystemExit("development seeds only: 11-15")
setup = CrystalSetup("/work/shared/data/perov_5/val.csv", seed, log=lambda s: None)
cfg = default_configs(seed)["crystals"]


def monitor(cands, feasible):
    out = setup.monitor(cands, feasible)
    structs = list(cands.extra["structures"])
    idx = [i for i, s in enumerate(structs) if s is not None]
    pred = setup.surrogate.predict([structs[i] for i in idx])
    f = np.array([bool(feasible[i]) for i in idx])
    out["surrogate_all"] = float(pred.mean())
    out["surrogate_feasible"] = float(pred[f].mean()) if f.any() else math.nan
    out["surrogate_infeasible"] = float(pred[~f].mean()) if (~f).any() else math.nan
    return out


res = run_variants(setup.model.velocity, setup.evaluator, None, cfg, None, encoder=setup.model.encoder,
                   payload=setup.payload, meta=setup.model.meta(), log=lambda s: None, monitor=monitor,
                   diversity_key=composition_key, variants=["unconstrained", "cfo"])
keys = ("surrogate_all", "surrogate_feasible", "surrogate_infeasible")
out = {v: [{"round": r.round, "reward": r.reward_mean, "sat": r.satisfaction, **{k: r.monitored[k] for k in keys}}
           for r in res[v].records] for v in res}
path = Path(__file__).resolve().parents[1] / "results" / "constrained_dev" / f"feasible_reward_s{seed}.json"
path.write_text(json.dumps({"seed": seed, "variants": out}, indent=1))
for v, rs in out.items():
    print(seed, v, " ".join(f"{r['round']}:{r['reward']:.2f}/{r['surrogate_feasible']:.2f}/{r['sat']:.2f}" for r in rs))
