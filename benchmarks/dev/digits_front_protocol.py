"""Development split (issue 15): REO's kept-edit rule under the digits benchmark's protocol (one run under
p >= 0.5, the edit kept at tau 0.9 / 0.95 / 0.97), new defaults against REO before issue 15, flow margins
None/2/4/6/8.

Training digits 1000-1099, targets from seeds 100 and 101. Writes
benchmarks/results/queries_dev/issue15/digits_front_protocol.json: per setting, (independent agreement,
morphology change) per seed.

usage: OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/dev/digits_front_protocol.py [OUT.json] [SETTING,...]
    [FIRST_ROW=1000] [SEEDS=100,101]
settings: new (the library default), old (REO before issue 15), ladder (the anchor ladder, the default before the
ranked seed pool), p4_ps8 (population 4, pre-screening 8), p4 (population 4), p8_ps4 (population 8, pre-screening
4: the default before issue 15's fourth pass), w256 (the default with the screening window of 256 points, as
before issue 15's sixth pass), random (random search as the digits benchmark runs it: its
fmNone tau0.9 rows are the reference of the quality bar). FIRST_ROW / SEEDS: another development split (training digits
FIRST_ROW .. FIRST_ROW + 99, never the benchmark's held-out sources).
"""
import json
import sys

import torch

torch.set_num_threads(1)
from flowevo.benchmarks.query_digits import DEV  # noqa: E402
from flowevo.domains.digits.counterfactuals import DigitCounterfactuals  # noqa: E402
from flowevo.domains.digits.data import load_training_digits  # noqa: E402
from flowevo.domains.digits.models import load_digit_models  # noqa: E402

models = load_digit_models()
n = 100
first = int(sys.argv[3]) if len(sys.argv) > 3 else DEV.start
rows = slice(first, first + n)
x, labels = load_training_digits(rows)
path = sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/queries_dev/issue15/digits_front_protocol.json"
names = sys.argv[2].split(",") if len(sys.argv) > 2 else ["new", "old"]
out: dict[str, list] = {}
for seed in ([int(v) for v in sys.argv[4].split(",")] if len(sys.argv) > 4 else (100, 101)):
    targets = torch.randint(0, 10, (n,), generator=torch.Generator().manual_seed(seed))
    cf = DigitCounterfactuals(models, x, labels, targets, seed, 24, 15)
    runs = {"new": lambda cf=cf: cf.reo(0.5),
            "old": lambda cf=cf: cf.reo(0.5, population=24, extra_seeds=cf.target_seeds, prescreen=1),
            "ladder": lambda cf=cf: cf.reo(0.5, extra_seeds=cf.anchor_ladder()),
            "p4_ps8": lambda cf=cf: cf.reo(0.5, population=4, prescreen=8),
            "random": lambda cf=cf: cf.search("random"),  # the benchmark's random search (p >= 0.9); read its fmNone rows
            "p4": lambda cf=cf: cf.reo(0.5, population=4), "p8_ps4": lambda cf=cf: cf.reo(0.5, population=8, prescreen=4),
            "ps8": lambda cf=cf: cf.reo(0.5, prescreen=8),
            "w256": lambda cf=cf: cf.reo(0.5, screen={"capacity": 256}),
            "p6": lambda cf=cf: cf.reo(0.5, population=6), "p6_ps8": lambda cf=cf: cf.reo(0.5, population=6, prescreen=8)}
    for name in names:
        run = runs[name]
        res = run()
        for fm in (None, 2.0, 4.0, 6.0, 8.0):
            for tau in (0.9, 0.95, 0.97):
                s = cf.score(cf.kept(res, tau, flow_margin=fm)[0])
                out.setdefault(f"{name} fm{fm} tau{tau}", []).append((s["acc_independent"], round(s["morph_mean"], 4)))
        print(seed, name, {k: v[-1] for k, v in out.items() if k.startswith(name)}, flush=True)
json.dump(out, open(path, "w"), indent=1)
for k, v in out.items():
    print(k, v)
