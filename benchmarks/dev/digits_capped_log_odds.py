"""Development probe (issue 15, after the eighth pass): REO on the log-odds of the target probability capped at
``CAP`` (no reward past p = CAP), to keep the log-odds view's kept-edit gain without its hypervolume loss in p.

A probe, not library code: it swaps the digits module's ``LogOdds`` for a capped one for this process only, then
runs ``DigitCounterfactuals.reo(confidence="log_odds")`` under two protocols on development splits:
``query``: the query benchmark's counting on training digits 1000-1099, seeds 100 / 101 (hypervolume in
(shape distance, p), evaluations to 50/80/90%, kept edits at 0.9); ``bench``: the digits benchmark's (one run under
p >= 0.5, kept at 0.95 by the library's rule) on FIRST_ROW .. +99 with SEEDS. Compare with confidence_hv.json and
keep_energy_{,lo_}*.json (library rule rows).

usage: OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/dev/digits_capped_log_odds.py OUT.json CAP query
       OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/dev/digits_capped_log_odds.py OUT.json CAP bench FIRST_ROW SEEDS
"""
import json
import sys

import torch

torch.set_num_threads(1)
import flowevo.domains.digits.counterfactuals as counterfactuals  # noqa: E402
from flowevo.benchmarks.query_digits import kept_scores, run_on_training_digits  # noqa: E402
from flowevo.benchmarks.query_efficiency import summarise  # noqa: E402
from flowevo.domains.digits.data import load_training_digits  # noqa: E402
from flowevo.domains.digits.models import load_digit_models  # noqa: E402
from flowevo.objectives import Evaluation, LogOdds, log_odds  # noqa: E402

out_path, cap, protocol = sys.argv[1], float(sys.argv[2]), sys.argv[3]


class CappedLogOdds(LogOdds):
    """LogOdds of min(p, cap)."""

    def __call__(self, batch):
        ev = self.inner(batch)
        values = ev.values.clone()
        values[:, self.column] = log_odds(values[:, self.column].clamp(max=cap))
        return Evaluation(values, ev.constraint_values, ev.violation, ev.failures)


counterfactuals.LogOdds = CappedLogOdds  # this process only
out: dict = {"command": " ".join(sys.argv), "cap": cap, "protocol": protocol}
if protocol == "query":
    tau = 0.9
    run = run_on_training_digits({"reo_capped": kept_scores(tau, lambda cf: cf.reo(tau, confidence="log_odds"))},
                                 (100, 101), tau, log=print)
    fin = run["final"]["reo_capped"]
    out |= {"close": summarise({"m": run["first"]["close"]["reo_capped"]}, 384)["methods"]["m"]["median"],
            "hypervolume": [r["hypervolume"] for r in fin],
            "kept": [(r["acc_independent"], round(r["morph_mean"], 4)) for r in fin]}
else:
    first, seeds = int(sys.argv[4]), [int(v) for v in sys.argv[5].split(",")]
    models = load_digit_models()
    x, labels = load_training_digits(slice(first, first + 100))
    for seed in seeds:
        targets = torch.randint(0, 10, (100,), generator=torch.Generator().manual_seed(seed))
        cf = counterfactuals.DigitCounterfactuals(models, x, labels, targets, seed, 24, 15)
        s = cf.score(cf.kept(cf.reo(0.5, confidence="log_odds"), 0.95)[0])
        out[str(seed)] = (s["acc_independent"], round(s["morph_mean"], 4))
        print(seed, out[str(seed)], flush=True)
print(json.dumps(out), flush=True)
json.dump(out, open(out_path, "w"), indent=1)
