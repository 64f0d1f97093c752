"""Development probe (issue 15, eighth pass): REO's second objective as the black box's log-odds of the target,
``log p_t - log sum_{c != t} p_c`` (from the probabilities alone), in place of ``p_t``, which saturates near 1:
edits at p 0.99 and 0.99999 then count alike in the hypervolume and look alike to the screening GP. The
constraint (label = target, p_t >= tau) is unchanged; kept edits by the library's rule at tau 0.9 / 0.95 (its
threshold passed as log-odds). Compare with keep_rules_*.json / keep_energy_*.json (same split and seed).

usage: OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/dev/digits_logit_objective.py OUT.json FIRST_ROW SEEDS
"""
import json
import math
import sys
import time

import torch

torch.set_num_threads(1)
from flowevo.domains.digits.counterfactuals import DigitCounterfactuals  # noqa: E402
from flowevo.domains.digits.data import load_training_digits  # noqa: E402
from flowevo.domains.digits.models import load_digit_models  # noqa: E402
from flowevo.objectives import FunctionObjective, LocalEvaluator  # noqa: E402

out_path, first = sys.argv[1], int(sys.argv[2])
seeds = [int(v) for v in sys.argv[3].split(",")]
models = load_digit_models()
n = 100
x, labels = load_training_digits(slice(first, first + n))
out: dict = {"command": " ".join(sys.argv), "kept": {}}
for seed in seeds:
    targets = torch.randint(0, 10, (n,), generator=torch.Generator().manual_seed(seed))

    def log_odds(ev):
        def f(c):
            p = cf.oracle.probs(c.x).double()  # noqa: B023 (called inside this iteration's REO run only)
            t = c.target.labels.cpu()
            p_t = p.gather(1, t[:, None]).squeeze(1)
            rest = p.scatter(1, t[:, None], 0.0).sum(1)
            return (p_t.clamp_min(1e-300).log() - rest.clamp_min(1e-300).log()).clamp(-50, 50)
        return LocalEvaluator([ev.objectives[0], FunctionObjective("p_target", "max", f)], list(ev.constraints))

    cf = DigitCounterfactuals(models, x, labels, targets, seed, 24, 15, wrap_evaluator=log_odds)
    t0 = time.perf_counter()
    res = cf.reo(0.5)
    wall = time.perf_counter() - t0
    for tau in (0.9, 0.95):
        s = cf.score(cf.kept(res, math.log(tau / (1 - tau)))[0])
        out["kept"].setdefault(f"tau{tau}", {})[str(seed)] = (s["acc_independent"], round(s["morph_mean"], 4),
                                                               round(s["shape_distance"], 3))
    print(seed, round(wall), {k: v[str(seed)] for k, v in out["kept"].items()}, flush=True)
    json.dump(out, open(out_path, "w"), indent=1)
