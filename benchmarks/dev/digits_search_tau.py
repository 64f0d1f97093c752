"""Development splits (issue 15, eighth pass): the confidence REO searches under, for the edit it keeps.

The digits benchmark runs REO once under p >= 0.5 (its front spans tau 0.5-0.95) and keeps the edit at 0.95;
random search, its reference, searches under the task's 0.9. Here REO searches under ``SEARCH_TAU`` (0.5, 0.9,
0.95) and keeps at 0.9 and 0.95 by the library's rule (``DigitCounterfactuals.kept``: flow margin 6, the flow's
best where none passes). Random search's reference on the same splits and seeds is in
``window_front_protocol*.json`` and ``tau_split3_*.json`` (``random fmNone tau0.9``).

usage: OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/dev/digits_search_tau.py OUT.json FIRST_ROW SEEDS
    [SEARCH_TAUS=0.5,0.9,0.95]
"""
import json
import sys
import time

import torch

torch.set_num_threads(1)
from flowevo.domains.digits.counterfactuals import DigitCounterfactuals  # noqa: E402
from flowevo.domains.digits.data import load_training_digits  # noqa: E402
from flowevo.domains.digits.models import load_digit_models  # noqa: E402

out_path, first = sys.argv[1], int(sys.argv[2])
seeds = [int(v) for v in sys.argv[3].split(",")]
search_taus = [float(v) for v in sys.argv[4].split(",")] if len(sys.argv) > 4 else [0.5, 0.9, 0.95]
models = load_digit_models()
n = 100
x, labels = load_training_digits(slice(first, first + n))
out: dict[str, dict] = {}
for seed in seeds:
    targets = torch.randint(0, 10, (n,), generator=torch.Generator().manual_seed(seed))
    cf = DigitCounterfactuals(models, x, labels, targets, seed, 24, 15)
    for st in search_taus:
        t0 = time.perf_counter()
        res = cf.reo(st)
        for tau in (0.9, 0.95):
            if tau < st:
                continue
            s = cf.score(cf.kept(res, tau)[0])
            out.setdefault(f"search{st} kept{tau}", {})[str(seed)] = {
                k: s[k] for k in ("acc_independent", "morph_mean", "shape_distance", "mean_p_target")}
        mine = {k: v[str(seed)] for k, v in out.items() if k.startswith(f"search{st} ")}
        print(seed, st, round(time.perf_counter() - t0), mine, flush=True)
        json.dump(out, open(out_path, "w"), indent=1)
