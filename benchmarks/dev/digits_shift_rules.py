"""Development splits (issue 15, tenth pass): kept-edit rules with a black-box check of shifted copies.

One REO run per (split, seed) under the digits benchmark's protocol (p >= 0.5, full budget 384), cached in
/tmp/shift_rules_FIRST_SEED.pt, and random search's reference (p >= 0.9) from the same run. Then, offline, every rule
on the archive: candidates with p >= 0.95 past a flow margin fm, least shape distance first; up to K of them are
checked, 4 black-box queries each (copies shifted by s1: 1 px along the axes, s2: 2 px, s2d: 2 px along both
diagonals, s3: 3 px); the first whose least target probability over its copies reaches rho is kept; where none
passes, the most robust checked one (fallback "robust") or the least-changed one ("first"). `nocheck fmX`: the
library's rule without the check (the flow's best reading where no edit is past the margin). Entries:
(independent agreement, morphology change, black-box queries per digit spent on checks).
Raw: benchmarks/results/queries_dev/issue15/shift_rules_FIRST_SEED.json.

usage: OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/dev/digits_shift_rules.py OUT.json FIRST SEED
"""
import json
import os
import sys

import torch

torch.set_num_threads(1)
from flowevo.domains.digits.counterfactuals import DigitCounterfactuals  # noqa: E402
from flowevo.domains.digits.data import load_training_digits  # noqa: E402
from flowevo.domains.digits.models import load_digit_models  # noqa: E402
from flowevo.domains.digits.robustness import shift_images  # noqa: E402
from flowevo.objectives import class_energies  # noqa: E402

out_path, first, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
models = load_digit_models()
n = 100
x, labels = load_training_digits(slice(first, first + n))
targets = torch.randint(0, 10, (n,), generator=torch.Generator().manual_seed(seed))
cf = DigitCounterfactuals(models, x, labels, targets, seed, 24, 15)
cache = f"/tmp/shift_rules_{first}_{seed}.pt"
if not os.path.exists(cache):
    res = cf.reo(0.5)
    pop = res.population
    rnd = cf.score(cf.search("random", 0.9).best.decoded.cpu())
    torch.save({"values": pop.values.cpu(), "row": pop.row.cpu(), "feasible": pop.feasible.cpu(),
                "decoded": pop.decoded.cpu(), "lib": cf.kept(res, 0.95)[0],
                "random": (rnd["acc_independent"], rnd["morph_mean"])}, cache)
raw = torch.load(cache)
p, dist, row, feas, dec = raw["values"][:, 1], raw["values"][:, 0], raw["row"], raw["feasible"], raw["decoded"].float()
t = targets[row]
ok = feas & (p >= 0.95)
cand = torch.nonzero(ok).flatten()
tc = t[cand]
margin = torch.full((len(p),), -torch.inf, dtype=torch.float64)
e = class_energies(cf.codec, dec[cand], 10).double()
margin[cand] = e.scatter(1, tc[:, None], torch.inf).min(1).values - e.gather(1, tc[:, None]).squeeze(1)
AUG = {"s2": [(2, 0), (-2, 0), (0, 2), (0, -2)], "s1": [(1, 0), (-1, 0), (0, 1), (0, -1)],
       "s2d": [(2, 2), (-2, -2), (2, -2), (-2, 2)], "s3": [(3, 0), (-3, 0), (0, 3), (0, -3)]}
rob = {}
for name, offsets in AUG.items():
    ps = [cf.oracle.probs(shift_images(dec[cand], dx, dy)).gather(1, tc[:, None]).squeeze(1) for dx, dy in offsets]
    rob[name] = torch.full((len(p),), -1.0, dtype=torch.float64)
    rob[name][cand] = torch.stack(ps, 1).min(1).values.double()
out = {"random": raw["random"]}
s = cf.score(raw["lib"])
out["library"] = (s["acc_independent"], round(s["morph_mean"], 4), 0)
for fm in (4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0):
    edits = []
    for b in range(n):
        mine = torch.nonzero((row == b) & ok & (margin > fm)).flatten()
        if len(mine):
            edits.append(dec[mine[dist[mine].argmin()]])
            continue
        mine = torch.nonzero((row == b) & ok).flatten()
        edits.append(dec[mine[margin[mine].argmax()]] if len(mine) else raw["lib"][b])
    s = cf.score(torch.stack(edits))
    out[f"nocheck fm{fm}"] = (s["acc_independent"], round(s["morph_mean"], 4), 0)
for fm in (4.0, 5.0, 6.0):
    for aug in AUG:
        for rho in (0.5, 0.8, 0.9):
            for k in (4, 8, 16):
                for fallback in ("robust", "first"):
                    edits, queries = [], 0
                    for b in range(n):
                        mine = torch.nonzero((row == b) & ok & (margin > fm)).flatten()
                        if not len(mine):
                            edits.append(raw["lib"][b])
                            continue
                        mine = mine[dist[mine].argsort()][:k]
                        r = rob[aug][mine]
                        good = torch.nonzero(r >= rho).flatten()
                        if len(good):
                            queries += 4 * (int(good[0]) + 1)
                            edits.append(dec[mine[good[0]]])
                        else:
                            queries += 4 * len(mine)
                            edits.append(dec[mine[r.argmax()]] if fallback == "robust" else dec[mine[0]])
                    s = cf.score(torch.stack(edits))
                    out[f"fm{fm} {aug} {rho} K{k} {fallback}"] = (s["acc_independent"], round(s["morph_mean"], 4),
                                                                  round(queries / n, 1))
json.dump(out, open(out_path, "w"), indent=0)
