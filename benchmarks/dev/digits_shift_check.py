"""The kept edit's shift check (issue 15, tenth pass) as `flowevo benchmark digits` runs it: REO under p >= 0.5 with the
check's budget left out of the search, edits kept at each of the benchmark's taus with the flow's margin 4 and the shift
check (`reo_front`, the library defaults), and the same without the check (the flow's margin 6 alone, full budget).

Development splits: FIRST = 1000 / 2000 / 3000 (training digits FIRST..FIRST+99, targets from SEED, random search run
here). Benchmark sources: FIRST = bench (the benchmark's 200 held-out digits; random search not run: it reproduces
exactly across environments, its figures are in digits_seeds/kept_seed*.json and digits_pinned_env/metrics.json).

usage: OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/dev/digits_shift_check.py OUT.json FIRST SEED [nocheck]
"""
import json
import sys
import time

import torch

torch.set_num_threads(1)
from flowevo.benchmarks.digits import REO_DEFAULT, REO_TAUS, reo_front  # noqa: E402
from flowevo.domains.digits.counterfactuals import DigitCounterfactuals  # noqa: E402
from flowevo.domains.digits.data import load_source_digits, load_training_digits  # noqa: E402
from flowevo.domains.digits.models import load_digit_models  # noqa: E402

out_path, first, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
with_check = not (len(sys.argv) > 4 and sys.argv[4] == "nocheck")
models = load_digit_models()
x, labels = load_source_digits(None, 200) if first == "bench" else load_training_digits(slice(int(first), int(first) + 100))
targets = torch.randint(0, 10, (len(x),), generator=torch.Generator().manual_seed(seed))
cf = DigitCounterfactuals(models, x, labels, targets, seed, 24, 15)
keys = ("acc", "acc_independent", "mean_p_target", "morph_mean", "shape_distance", "evaluations")
t0 = time.perf_counter()
front = reo_front(cf, REO_TAUS, diversity_at=None, **({} if with_check else {"check": None}))
row = {"command": " ".join(sys.argv), "reo": {k: front[REO_DEFAULT][k] for k in keys} | {"wall_s": time.perf_counter() - t0},
       "reo_front": {str(tau): {k: r[k] for k in keys} for tau, r in front.items()}, "check_queries": cf.check_queries}
if first != "bench":
    rnd = cf.score(cf.search("random").best.decoded.cpu())
    row["random"] = {k: rnd[k] for k in keys if k in rnd}
print(json.dumps(row), flush=True)
json.dump(row, open(out_path, "w"), indent=1)
