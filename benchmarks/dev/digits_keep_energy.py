"""Development splits (issue 15, eighth pass): a typicality check next to the flow's margin in REO's kept rule.

The kept rule prefers edits the flow reads as the target by an energy margin (``min_{c != t} E_c - E_t`` > 6).
An edit can pass it while being atypical of every class (off the data, where black boxes are fooled): here a
second check bounds the target energy itself, ``E_t <= q``, with ``q`` the given quantile of the energies of
training digits of that class under their own class (rows 0-999, never a development source). One REO run per
(split, seed) under the digits benchmark's protocol (p >= 0.5), cached in /tmp/keep_energy_lo_FIRST_SEED.pt; then
every rule on its archive; a digit with no edit passing keeps the one the flow reads best (the library's
fallback). Random search's reference: ``random fmNone tau0.9`` of window_front_protocol*.json / tau_split3_*.json.
keep_energy_{1000,2000,3000_104,3000_105}.json: REO on p_target (run at 8fa0304, before the option existed);
keep_energy_lo_*.json: REO on its log-odds (``DigitCounterfactuals.reo(confidence="log_odds")``).

usage: OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/dev/digits_keep_energy.py OUT.json FIRST_ROW SEEDS [CONFIDENCE]
CONFIDENCE: probability (REO's default; keep_energy_*.json) or log_odds (keep_energy_lo_*.json).
"""
import json
import os
import sys

import torch

torch.set_num_threads(1)
from flowevo.domains.digits.counterfactuals import DigitCounterfactuals  # noqa: E402
from flowevo.domains.digits.data import images_to_tensor, load_builtin_digits, load_training_digits  # noqa: E402
from flowevo.domains.digits.models import load_digit_models  # noqa: E402
from flowevo.objectives import class_energies  # noqa: E402

out_path, first = sys.argv[1], int(sys.argv[2])
seeds = [int(v) for v in sys.argv[3].split(",")]
confidence = sys.argv[4] if len(sys.argv) > 4 else "probability"
models = load_digit_models()
n = 100
x, labels = load_training_digits(slice(first, first + n))
split = load_builtin_digits()
codec = models.codec()
ref_x = images_to_tensor(split.train_images[:1000], codec.device)
ref_y = torch.as_tensor(split.train_labels[:1000], dtype=torch.long)
ref_e = class_energies(codec, ref_x, 10).gather(1, ref_y[:, None]).squeeze(1)
QUANTILES = (None, 0.8, 0.9, 0.95, 0.99)
caps = {q: torch.stack([ref_e[ref_y == c].quantile(q) if q else torch.tensor(torch.inf, dtype=ref_e.dtype)
                        for c in range(10)]) for q in QUANTILES}
out: dict[str, dict] = {"caps": {str(q): caps[q].tolist() for q in QUANTILES[1:]}}
for seed in seeds:
    targets = torch.randint(0, 10, (n,), generator=torch.Generator().manual_seed(seed))
    cf = DigitCounterfactuals(models, x, labels, targets, seed, 24, 15)
    cache = f"/tmp/keep_energy_{'lo_' if confidence == 'log_odds' else ''}{first}_{seed}.pt"
    if not os.path.exists(cache):
        res = cf.reo(0.5, confidence=confidence)
        pop = res.population
        p = pop.values[:, 1].cpu()
        feasible, p, row = pop.feasible.cpu(), torch.sigmoid(p) if confidence == "log_odds" else p, pop.row.cpu()
        energies = torch.full((len(pop), 10), torch.inf, dtype=torch.float64)
        idx = torch.nonzero(feasible & (p >= 0.9)).flatten()
        energies[idx] = class_energies(cf.codec, pop.decoded[idx], 10).double()
        torch.save({"values": torch.stack([pop.values[:, 0].cpu(), p], 1), "row": row, "feasible": feasible, "energies": energies,
                    "decoded": pop.decoded.cpu(), "lib": cf.kept(res, 0.95)[0]}, cache)
    raw = torch.load(cache)
    feasible, p, dist, row, e = raw["feasible"], raw["values"][:, 1], raw["values"][:, 0], raw["row"], raw["energies"]
    t = targets[row]
    e_t = e.gather(1, t[:, None]).squeeze(1)
    margin = e.scatter(1, t[:, None], torch.inf).min(1).values - e_t
    cap = {q: caps[q][t] for q in QUANTILES}
    for tau in (0.9, 0.95):
        ok = feasible & (p >= tau)
        for fm in (4.0, 5.0, 6.0, 7.0):
            for q in QUANTILES:
                passes = ok & (margin > fm) & (e_t <= cap[q])
                edits, fell = [], 0
                for b in range(n):
                    mine = torch.nonzero((row == b) & passes).flatten()
                    if len(mine):
                        edits.append(raw["decoded"][mine[dist[mine].argmin()]])
                        continue
                    fell += 1
                    mine = torch.nonzero((row == b) & ok).flatten()
                    if not len(mine):  # nothing at tau: the library's edit (it has the same fallback)
                        edits.append(raw["lib"][b])
                        continue
                    edits.append(raw["decoded"][mine[margin[mine].argmax()]])
                s = cf.score(torch.stack(edits).float())
                out.setdefault(f"tau{tau} fm{fm} q{q}", {})[str(seed)] = (s["acc_independent"], round(s["morph_mean"], 4), fell)
        if tau == 0.95:
            s = cf.score(raw["lib"])
            out.setdefault("library tau0.95", {})[str(seed)] = (s["acc_independent"], round(s["morph_mean"], 4))
    print(seed, {k: v[str(seed)] for k, v in out.items() if k != "caps" and "tau0.95" in k}, flush=True)
    json.dump(out, open(out_path, "w"), indent=1)
