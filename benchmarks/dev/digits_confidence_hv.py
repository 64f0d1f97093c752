"""Development split (issue 15, eighth pass): REO on p_target against REO on its log-odds
(``DigitCounterfactuals.reo(confidence="log_odds")``) under the query benchmark's counting: evaluations to 50/80/90%
of sources for the "close" goal, hypervolume in (shape distance, p) after 16-384 evaluations (the benchmark's
reference), kept edits. Training digits 1000-1099, targets from seeds 100 and 101; never the benchmark's sources.

usage: OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/dev/digits_confidence_hv.py OUT.json
"""
import json
import sys

import torch

torch.set_num_threads(1)
from flowevo.benchmarks.query_digits import kept_scores, run_on_training_digits  # noqa: E402
from flowevo.benchmarks.query_efficiency import summarise  # noqa: E402

tau = 0.9
methods = {"reo": kept_scores(tau, lambda cf: cf.reo(tau)),
           "reo_log_odds": kept_scores(tau, lambda cf: cf.reo(tau, confidence="log_odds"))}
run = run_on_training_digits(methods, (100, 101), tau, log=print)
out = {"command": " ".join(sys.argv), "rows": run["rows"], "close": run["close"]["threshold"], "methods": {}}
for m in methods:
    fin = run["final"][m]
    out["methods"][m] = {
        "close": summarise({m: run["first"]["close"][m]}, 384)["methods"][m]["median"],
        "hypervolume": [r["hypervolume"] for r in fin],
        "kept": [(r["acc_independent"], round(r["morph_mean"], 4)) for r in fin],
        "wall_s": [r["wall_s"] for r in fin]}
    print(m, json.dumps(out["methods"][m]), flush=True)
json.dump(out, open(sys.argv[1], "w"), indent=1)
