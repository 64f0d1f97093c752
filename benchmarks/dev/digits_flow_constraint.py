"""Development probe (issue 15, after the seventh pass): the flow's reading inside REO's search, not only at its
start and in the kept rule. REO under the digits benchmark's protocol (one run under p >= 0.5) with one more
constraint on every scored candidate: the flow reads it as the target by an energy margin >= M
(:func:`flowevo.objectives.target_margin`; the flow only, no black-box call; not declared cheap, so pre-screening
predicts it with its surrogate and the margin is computed for the scored candidates only). Kept edits by the library's
rule at tau 0.9 / 0.95; compare with keep_rules_*.json (same split and seed, no such constraint).

usage: OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/dev/digits_flow_constraint.py OUT.json FIRST_ROW SEED [M=6]
"""
import json
import sys
import time

import torch

torch.set_num_threads(1)
from flowevo.domains.digits.counterfactuals import DigitCounterfactuals  # noqa: E402
from flowevo.domains.digits.data import load_training_digits  # noqa: E402
from flowevo.domains.digits.models import load_digit_models  # noqa: E402
from flowevo.objectives import Constraint, LocalEvaluator, target_margin  # noqa: E402

out_path, first, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
margin = float(sys.argv[4]) if len(sys.argv) > 4 else 6.0
models = load_digit_models()
n = 100
rows = slice(first, first + n)
x, labels = load_training_digits(rows)
targets = torch.randint(0, 10, (n,), generator=torch.Generator().manual_seed(seed))


def with_flow_reading(ev):  # called when REO builds its evaluator, so `cf` below exists by then
    def g(c):
        with torch.inference_mode():
            return margin - target_margin(cf.codec, c.x, c.target.labels, 10)
    return LocalEvaluator(list(ev.objectives), list(ev.constraints) + [Constraint(f"flow_margin>={margin:g}", g)])


cf = DigitCounterfactuals(models, x, labels, targets, seed, 24, 15, wrap_evaluator=with_flow_reading)
t0 = time.perf_counter()
res = cf.reo(0.5)
wall = time.perf_counter() - t0
out = {"command": " ".join(sys.argv), "rows": f"training digits {rows.start}-{rows.stop - 1}", "seed": seed,
       "margin_constraint": margin, "wall_s": wall, "kept": {}}
for tau in (0.9, 0.95):
    for fm in (None, 6.0):
        s = cf.score(cf.kept(res, tau, flow_margin=fm)[0])
        out["kept"][f"fm{fm} tau{tau}"] = (s["acc_independent"], round(s["morph_mean"], 4))
print(json.dumps(out), flush=True)
json.dump(out, open(out_path, "w"), indent=1)
