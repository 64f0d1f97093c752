"""Development split (issue 15, eighth pass): REO on p_target against REO on its log-odds
(``DigitCounterfactuals.reo(confidence="log_odds")``) under the query benchmark's counting: evaluations to 50/80/90%
of sources for the "close" goal, hypervolume in (shape distance, p) after 16-384 evaluations (the benchmark's
reference), kept edits. Training digits 1000-1099, targets from seeds 100 and 101; never the benchmark's sources.

usage: OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/dev/digits_confidence_hv.py OUT.json [MODE ...]
MODE (issue 15, ninth pass; default: reo and reo_log_odds): reo_screen_log_odds (REO ranks p, its pre-screening sees
the log-odds) or reo_log_odds_screen_p (REO ranks the log-odds, its pre-screening sees p).
"""
import json
import sys

import torch

torch.set_num_threads(1)
from flowevo.benchmarks.query_digits import kept_scores, run_on_training_digits  # noqa: E402
from flowevo.benchmarks.query_efficiency import summarise  # noqa: E402
from flowevo.objectives import log_odds  # noqa: E402


def _column(fn):
    def transform(v):
        v = v.clone()
        v[:, 1] = fn(v[:, 1])
        return v
    return transform


tau = 0.9
every = {"reo": kept_scores(tau, lambda cf: cf.reo(tau)),
         "reo_log_odds": kept_scores(tau, lambda cf: cf.reo(tau, confidence="log_odds")),
         "reo_screen_log_odds": kept_scores(tau, lambda cf: cf.reo(tau, screen={"transform": _column(log_odds)})),
         "reo_log_odds_screen_p": kept_scores(tau, lambda cf: cf.reo(tau, confidence="log_odds",
                                                                      screen={"transform": _column(torch.sigmoid)}))}
methods = {m: every[m] for m in (sys.argv[2:] or ["reo", "reo_log_odds"])}
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
