"""REO's crystal settings for few evaluations (issue 15), chosen on the development split.

Sources held out of the *training* part of ``val.csv`` (``dev=True``; the benchmark's held-out rows are never
read), models trained on the rest as the benchmark trains them, no CHGNet. Each REO setting (keywords of
``site_masked_reo``: population, pre-screening factor and options) runs at both B-kept budgets with 48
evaluations per source over the seeds given; SR10 after 8 / 16 / 24 / 48 evaluations by the surrogate, the
gradient-boosting judge and the element judge; masked_random and exhaustive as references.

    PYTHONPATH=src python benchmarks/dev/crystal_reo_screen.py ../shared/data/perov_5/val.csv OUT.json SEEDS NAME...

Environment: ``BUDGETS`` (default ``k1_bkept,k2_bkept``), ``EVALUATIONS`` (default 48; 24 for quicker screening).
"""

import json
import os
import statistics
import sys
import time

from flowevo.benchmarks.query_crystals import BO_ROWS, CrystalQueryTask
from flowevo.domains.crystals import RandomRegions


class Flat:
    """A surrogate that knows nothing (same mean and spread everywhere): screening by the cheap checks alone."""

    def fit(self, x, y, valid, lengthscale=None):
        self.t = y.shape[-1]

    def predict(self, xs):
        import torch

        shape = (*xs.shape[:2], self.t)
        return torch.zeros(shape, dtype=torch.float64), torch.ones(shape, dtype=torch.float64)


SETTINGS = {
    "reo8": {},
    "reo4": {"population": 4},
    "scr8_p8": {"screen": 8},
    "scr8_p4": {"population": 4, "screen": 8},
    "scr8_p2": {"population": 2, "screen": 8},
    "scr16_p4": {"population": 4, "screen": 16},
    "scr4_p4": {"population": 4, "screen": 4},
    "scr8_p4_onehot": {"population": 4, "screen": 8, "screen_options": {"features": "onehot"}},
    "scr8_p4_row": {"population": 4, "screen": 8, "screen_options": {"pool": False}},
    "scr8_p4_seeds": {"population": 4, "screen": 8, "screen_seeds": True},
    "scr8_p2_seeds": {"population": 2, "screen": 8, "screen_seeds": True},
    "scr8_p8_seeds": {"population": 8, "screen": 8, "screen_seeds": True},
    "scr16_p4_seeds": {"population": 4, "screen": 16, "screen_seeds": True},
    "reo8_seeds": {"screen_seeds": True},
    "scr8_p4_flat": {"population": 4, "screen": 8, "screen_options": {"surrogate": Flat()}},
    "scr32_p4": {"population": 4, "screen": 32},
    "mr_p4_seeds": {"population": 4, "screen_seeds": True, "move": RandomRegions()},
    "mr_p2_seeds": {"population": 2, "screen_seeds": True, "move": RandomRegions()},
    "mr_p8_seeds": {"population": 8, "screen_seeds": True, "move": RandomRegions()},
    "scr8_p4_seeds_onehot": {"population": 4, "screen": 8, "screen_seeds": True,
                             "screen_options": {"features": "onehot"}},
    "scr16_p4_seeds_onehot": {"population": 4, "screen": 16, "screen_seeds": True,
                              "screen_options": {"features": "onehot"}},
    "scr8_p4_seeds_flat": {"population": 4, "screen": 8, "screen_seeds": True, "screen_options": {"surrogate": Flat()}},
    "scr8_p4_seeds_row": {"population": 4, "screen": 8, "screen_seeds": True, "screen_options": {"pool": False}},
}
JUDGES = ("surrogate", "independent", "element")
EVALUATIONS = int(os.environ.get("EVALUATIONS", "48"))

data, out_path, seeds, names = sys.argv[1], sys.argv[2], [int(s) for s in sys.argv[3].split(",")], sys.argv[4:]
task = CrystalQueryTask(data, None, 100, dev=True, chgnet=False, log=print)
out = []
for name in names:
    for budget in os.environ.get("BUDGETS", "k1_bkept,k2_bkept").split(","):
        runs, walls = [], []
        for seed in ([0] if name == "exhaustive" else seeds):
            t = time.perf_counter()
            if name in ("masked_random", "exhaustive"):
                scores, info = task.run(name, budget, seed, EVALUATIONS, BO_ROWS)
            else:
                scores, info = task.run("reo", budget, seed, EVALUATIONS, BO_ROWS, reo=SETTINGS[name])
            walls.append(time.perf_counter() - t)
            runs.append(scores)
        row = {"name": name, "budget": budget, "settings": SETTINGS.get(name), "wall_s": walls}
        for e in runs[0]:
            row[e] = {j: statistics.median(r[e][j]["sr10"] for r in runs) for j in JUDGES}
            row[e]["spread_surrogate"] = [r[e]["surrogate"]["sr10"] for r in runs]
        print(json.dumps(row, default=str), flush=True)
        out.append(row)
json.dump(out, open(out_path, "w"), indent=1, default=str)
