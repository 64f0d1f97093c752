"""Choose the element-statistics judge's family on a development split (issue 15, crystals).

The 90% training part of ``val.csv`` (seed 0 split; the held-out benchmark rows are never read) is split again:
60% for the surrogate and the gradient-boosting judge, 25% for the element-statistics judges, 15% to score every
judge against DFT ``heat_ref`` (Spearman, MAE, precision / recall below the SR10 threshold).

    PYTHONPATH=src python benchmarks/dev/crystal_judges.py ../shared/data/perov_5/val.csv
"""

import json
import sys
import time

import numpy as np

from flowevo.domains.crystals import fit_independent, fit_surrogate, load_edit_split, split_indices
from flowevo.domains.crystals.judges import JUDGE_KINDS, fit_element_judge, judge_trust

_, train, _ = load_edit_split(sys.argv[1], None, 1, 0)
a, b, c = split_indices(len(train), (0.6, 0.25, 0.15), seed=100)
sur_rows, judge_rows, dev = train.subset(a), train.subset(b), train.subset(c)
thr = float(np.percentile(sur_rows.properties["heat_ref"], 10))
preds = {}
t = time.perf_counter()
preds["surrogate (mlp, surrogate rows)"] = fit_surrogate(sur_rows, seed=0).predict(dev.structures, dev.formulas)
preds["gbr (surrogate rows)"] = fit_independent(sur_rows, seed=1).predict(dev.structures, dev.formulas)
print(f"surrogate + gbr {time.perf_counter() - t:.0f} s", flush=True)
for kind in JUDGE_KINDS:
    t = time.perf_counter()
    j = fit_element_judge(judge_rows.structures, judge_rows.properties["heat_ref"], kind, formulas=judge_rows.formulas)
    preds[f"element {kind} (judge rows)"] = j.predict(dev.structures, dev.formulas)
    print(f"{kind} {time.perf_counter() - t:.1f} s", flush=True)
rows = judge_trust(preds, dev.properties["heat_ref"], thr)
for r in rows:
    print(json.dumps(r))
# how alike are the judges' errors? correlation of residuals with the surrogate's
y = dev.properties["heat_ref"]
res = {k: v - y for k, v in preds.items()}
s = res["surrogate (mlp, surrogate rows)"]
print({k: round(float(np.corrcoef(s, v)[0, 1]), 3) for k, v in res.items()})
