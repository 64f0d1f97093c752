"""Settings of the crystals query benchmark's CMA-ES and BO, chosen on the development split (issue 15).

Sources held out of the *training* part of ``val.csv`` (``dev=True``; the benchmark's held-out rows are never
read), models trained on the rest as the benchmark trains them, no CHGNet. Each setting runs once (seed 100) at
both B-kept budgets with 48 evaluations per source; the score is what the methods optimise: SR10 by the
surrogate after 16 and after 48 evaluations (BO on the first 50 dev sources, as in the benchmark).
REO's settings were chosen on the same kind of split in issue 4.

    PYTHONPATH=src python benchmarks/dev/crystal_baselines.py ../shared/data/perov_5/val.csv OUT.json [cma:I bo:J ...]
"""

import json
import sys
import time

from flowevo.benchmarks.query_crystals import BO_ROWS, CrystalQueryTask

task = CrystalQueryTask(sys.argv[1], None, 100, dev=True, chgnet=False, log=print)
CMA = [{"popsize": p, "sigma0": s, "space_options": {"mask_scale": m}}
       for p in (4, 8) for s in (0.3, 0.6, 1.0) for m in (2.0, 4.0)]
BO = [{"length_init": li, "batch": b} for li in (0.4, 0.8) for b in (4, 8)] + [
    {"length_init": 0.4, "batch": 4, "space_options": {"mask_scale": 4.0}}]
ONLY = sys.argv[3:]  # optional: run only these settings' indices, e.g. "bo:4" (the rest were run before)
out = []
todo = [("cma", i, c) for i, c in enumerate(CMA)] + [("bo", i, b) for i, b in enumerate(BO)]
for method, i, settings in todo:
    if ONLY and f"{method}:{i}" not in ONLY:
        continue
    row = {"method": method, "settings": settings}
    for budget in ("k1_bkept", "k2_bkept"):
        t = time.perf_counter()
        scores, _ = task.run(method, budget, 100, 48, BO_ROWS, cma=settings, bo=settings)
        row[budget] = {e: scores[e]["surrogate"]["sr10"] for e in ("16", "48")}
        row[f"{budget}_s"] = time.perf_counter() - t
    row["score"] = sum(row[b][e] for b in ("k1_bkept", "k2_bkept") for e in ("16", "48")) / 4
    print(json.dumps(row), flush=True)
    out.append(row)
json.dump(out, open(sys.argv[2], "w"), indent=1)
