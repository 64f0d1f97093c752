"""Development splits (issue 15, seventh pass): which edit REO keeps from a digit's front, under the digits
benchmark's protocol (one run under p >= 0.5, edits kept at tau).

One REO run per (split, seed); the rules differ only in the choice among the row's archive (its feasible
non-dominated set and survivors) of candidates with target probability >= tau:

- ``least``: the library's rule: the least-changed (shape distance) among those the flow reads as the target
  by more than the margin; a digit with none keeps its least-changed one;
- ``flow``: the same, but a digit with none keeps the one the flow reads best (its largest margin).

Every rule is scored by the independent classifier (agreement) and the morphometrics (morphology change), and
the share of digits that fell back. Random search's reference for the bar is in the earlier files
(``random fmNone tau0.9`` rows of window_front_protocol*.json and tau_split3_*.json: same splits and seeds).

usage: OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/dev/digits_keep_rules.py OUT.json FIRST_ROW SEEDS [MARGINS=4,6,8]
Each run's archive is cached in /tmp/keep_rules_FIRST_ROW_SEED.pt (a second call with other margins reuses it).
"""
import json
import os
import sys

import torch

torch.set_num_threads(1)
from flowevo.domains.digits.counterfactuals import DigitCounterfactuals  # noqa: E402
from flowevo.domains.digits.data import load_training_digits  # noqa: E402
from flowevo.domains.digits.models import load_digit_models  # noqa: E402
from flowevo.objectives import target_margin  # noqa: E402

out_path, first = sys.argv[1], int(sys.argv[2])
seeds = [int(v) for v in sys.argv[3].split(",")]
margins = [float(v) for v in sys.argv[4].split(",")] if len(sys.argv) > 4 else [4.0, 6.0, 8.0]
models = load_digit_models()
n = 100
rows = slice(first, first + n)
x, labels = load_training_digits(rows)
out: dict[str, list] = {}
for seed in seeds:
    targets = torch.randint(0, 10, (n,), generator=torch.Generator().manual_seed(seed))
    cf = DigitCounterfactuals(models, x, labels, targets, seed, 24, 15)
    cache = f"/tmp/keep_rules_{first}_{seed}.pt"
    if not os.path.exists(cache):
        res = cf.reo(0.5)
        pop = res.population
        feasible, p, row = pop.feasible.cpu(), pop.values[:, 1].cpu(), pop.row.cpu()
        margin = torch.full((len(pop),), -torch.inf, dtype=torch.float64)
        idx = torch.nonzero(feasible & (p >= 0.9)).flatten()
        margin[idx] = target_margin(cf.codec, pop.decoded[idx], targets[row[idx]], 10).double()
        torch.save({"values": pop.values.cpu(), "row": row, "feasible": feasible, "margin": margin,
                    "decoded": pop.decoded.cpu(), "lib": {tau: cf.kept(res, tau, flow_margin=6.0)[0] for tau in (0.9, 0.95)}},
                   cache)
    raw = torch.load(cache)  # caches of the first version of this script hold half-precision edits and no "lib"
    raw["decoded"] = raw["decoded"].float()
    feasible, p, dist, row, margin = raw["feasible"], raw["values"][:, 1], raw["values"][:, 0], raw["row"], raw["margin"]
    for tau in (0.9, 0.95):
        lib = raw["lib"][tau] if "lib" in raw else None
        for fm in margins:
            for fallback in ("least", "flow"):
                edits, fell = [], 0
                for b in range(n):
                    ok = torch.nonzero((row == b) & feasible & (p >= tau)).flatten()
                    if len(ok) == 0:
                        edits.append(lib[b] if lib is not None else raw["decoded"][torch.nonzero(row == b).flatten()[0]])
                        continue
                    good = ok[margin[ok] > fm]
                    if len(good):
                        pick = good[dist[good].argmin()]
                    else:
                        fell += 1
                        pick = ok[dist[ok].argmin()] if fallback == "least" else ok[margin[ok].argmax()]
                    edits.append(raw["decoded"][pick])
                edits = torch.stack(edits)
                if fm == 6.0 and fallback == "least" and lib is not None:  # the rule before the seventh pass
                    print("library rule reproduced:", torch.equal(edits, lib), flush=True)
                s = cf.score(edits)
                out.setdefault(f"{fallback} fm{fm} tau{tau}", []).append(
                    (s["acc_independent"], round(s["morph_mean"], 4), fell))
    print(seed, {k: v[-1] for k, v in out.items()}, flush=True)
json.dump({"command": " ".join(sys.argv), "rows": f"training digits {rows.start}-{rows.stop - 1}", "seeds": seeds,
           "rules": out}, open(out_path, "w"), indent=1)
