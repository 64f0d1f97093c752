"""Choose the element-statistics judge's family and settings on a development split (issue 15, crystals).

The 90% training part of ``val.csv`` (seed 0 split; the held-out benchmark rows are never read) is split again:
60% for the surrogate and the gradient-boosting judge ("surrogate rows"), 25% for the element-statistics judges
("judge rows"), 15% to score every judge against DFT ``heat_ref`` (Spearman, MAE, precision / recall below the
SR10 threshold) and to correlate each judge's errors with the surrogate's (shared errors = a judge that is
fooled where the surrogate is). Controls: the element judge on the surrogate rows, the MLP on the judge rows.

    PYTHONPATH=src python benchmarks/dev/crystal_judges.py ../shared/data/perov_5/val.csv
"""

import sys

import numpy as np

from flowevo.domains.crystals import fit_independent, fit_surrogate, load_edit_split, split_indices
from flowevo.domains.crystals.judges import fit_element_judge, judge_trust

_, train, _ = load_edit_split(sys.argv[1], None, 1, 0)
a, b, c = split_indices(len(train), (0.6, 0.25, 0.15), seed=100)
sur, jr, dev = train.subset(a), train.subset(b), train.subset(c)
thr = float(np.percentile(sur.properties["heat_ref"], 10))
y = dev.properties["heat_ref"]
on = lambda t, kind, **kw: fit_element_judge(t.structures, t.properties["heat_ref"], kind, formulas=t.formulas,  # noqa: E731
                                             **kw).predict(dev.structures, dev.formulas)
preds = {"surrogate (mlp, surrogate rows)": fit_surrogate(sur, seed=0).predict(dev.structures, dev.formulas),
         "gbr (surrogate rows)": fit_independent(sur, seed=1).predict(dev.structures, dev.formulas)}
for leaf, mf in ((1, 0.3), (1, 0.5), (1, 1.0), (2, 0.5)):
    preds[f"forest leaf {leaf} max_features {mf}"] = on(jr, "forest", min_samples_leaf=leaf, max_features=mf)
f = 34  # features of ElementStatsFeaturizer
for alpha in (0.01, 0.03, 0.1, 0.3):
    for g in (0.5, 1, 2):
        preds[f"kernel ridge alpha {alpha} gamma {g}/F"] = on(jr, "kernel_ridge", alpha=alpha, gamma=g / f)
for k in (3, 5, 8):
    preds[f"knn {k}"] = on(jr, "knn", n_neighbors=k)
preds["default element judge on the surrogate rows (control)"] = on(sur, "kernel_ridge")
preds["mlp on the judge rows (control)"] = fit_surrogate(jr, seed=0).predict(dev.structures, dev.formulas)
s = preds["surrogate (mlp, surrogate rows)"] - y
for r in judge_trust(preds, y, thr):
    e = preds[r["judge"]] - y
    print(f"{r['judge']:55s} Spearman {r['spearman']:.3f}  MAE {r['mae']:.3f}  precision {r['precision_below']:.2f}  "
          f"recall {r['recall_below']:.2f}  error corr. with surrogate {np.corrcoef(s, e)[0, 1]:.2f}")
