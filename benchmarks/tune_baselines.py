"""Tune the per-source baselines (CMA-ES, its surrogate-assisted variant, NSGA-II, BO) on development splits.

Never the benchmark sources: digits = training digits 1000-1099 (targets drawn with seeds 100, 101; the
``close`` threshold from leap's valid edits on the same digits, as ``flowevo benchmark queries`` computes
it); toy = the toy benchmark's task trained with seeds 10-12 (the benchmark uses 0-4); crystals = the
crystals benchmark's ``--dev`` split (sources held out of the training part, models trained on the rest).
Every black-box call is counted by :class:`flowevo.objectives.QueryCounter`. A thin caller of the
library: each method is its public function with the settings given on the command line.

    python benchmarks/tune_baselines.py digits OUT.json "cma:pop=8,sigma=0.3" "bo:q=4,L=0.4" --seeds 100 101
    python benchmarks/tune_baselines.py toy OUT.json "nsga2:pop=8,sigma=0.5" --seeds 10 11 12
    python benchmarks/tune_baselines.py crystals OUT.json "cma:pop=4,sigma=0.3,mask=2" --seeds 0 1 \
        --models crystal_dev.pkl

Results are merged into OUT.json under ``<task>/<spec>/seed<seed>``: evaluations per source to each
source's first success per goal, kept-edit quality, hypervolume per source (digits), SR (crystals),
wall time and the machine's load average.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import time
from pathlib import Path

import numpy as np
import torch

from flowevo.baselines import bo_search, cma_search, nsga2_search, random_search
from flowevo.objectives import QueryCounter, evaluations_to_rate

BUDGET = {"digits": 384, "toy": 512, "crystals": 16}
HV_AT = (16, 32, 64, 128, 256, 384)


def parse(spec: str) -> tuple[str, dict]:
    """``"cma:pop=8,sigma=0.3"`` -> ``("cma", {"pop": 8, "sigma": 0.3})``."""
    name, _, rest = spec.partition(":")
    kw = {}
    for item in filter(None, rest.split(",")):
        k, _, v = item.partition("=")
        kw[k] = v if v.isalpha() else (int(v) if v.lstrip("-").isdigit() else float(v))
    return name, kw


def run(name: str, kw: dict, codec, task, evaluator, budget: int, seed: int, payload=None, space=None):
    """The method ``name`` with settings ``kw`` (pop / sigma / q / L / radius / acq)."""
    common = dict(seed=seed, payload=payload, space=space)
    if name in ("cma", "cma_s"):
        return cma_search(codec, task, evaluator, budget, popsize=kw["pop"], sigma0=kw["sigma"],
                          surrogate=name == "cma_s", **common)
    if name == "nsga2":
        return nsga2_search(codec, task, evaluator, budget, popsize=kw["pop"], sigma0=kw["sigma"],
                            radius=kw.get("radius", 3.0), **common)
    if name == "bo":
        return bo_search(codec, task, evaluator, budget, batch=kw["q"], length_init=kw["L"], radius=kw.get("radius", 3.0),
                         init_steps=kw.get("init", 2), acquisition=kw.get("acq", "auto"),
                         refit_every=kw.get("refit", 4), candidates=kw.get("cand", 256), **common)
    if name == "random":
        return random_search(codec, task, evaluator, budget, batch=kw["pop"], seed=seed, payload=payload)
    raise ValueError(f"unknown method {name!r}")


def pending(specs: list[str], seeds: list[int], out: dict, key: str):
    """``(method name, its settings, seed, result key)`` for every spec and seed not yet in ``out``."""
    for spec in specs:
        name, kw = parse(spec)
        for seed in seeds:
            k = f"{key}/{spec}/seed{seed}"
            if k not in out:
                yield name, kw, seed, k


def rates(first: torch.Tensor) -> dict:
    return {f"to_{int(r * 100)}": (None if math.isinf(v := evaluations_to_rate(first, r)) else v) for r in (0.5, 0.8, 0.9)}


def load_avg() -> float:
    return os.getloadavg()[0]


# -- tasks ----------------------------------------------------------------------------------------------
def digits(specs: list[str], seeds: list[int], out: dict, key: str, save, budget: int) -> None:
    from flowevo.benchmarks.query_digits import DEV, digit_goals, hv_reference, hypervolume_at, leap_threshold
    from flowevo.domains.digits.counterfactuals import DigitCounterfactuals
    from flowevo.domains.digits.data import images_to_tensor, load_builtin_digits
    from flowevo.domains.digits.models import load_digit_models
    from flowevo.objectives import sense_sign

    models = load_digit_models()
    close = leap_threshold(models, 24, 15, 0.9, dev=DEV)
    split = load_builtin_digits()
    x = images_to_tensor(split.train_images[DEV])
    labels = torch.as_tensor(split.train_labels[DEV], dtype=torch.long)
    goals = digit_goals(models.classifier, 0.9, close["threshold"])
    reference = hv_reference(close["threshold"], 0.9)  # (shape distance, -p_target), the query benchmark's
    for name, kw, seed, k in pending(specs, seeds, out, key):
        targets = torch.randint(0, 10, (len(x),), generator=torch.Generator().manual_seed(seed))
        box: dict = {}

        def wrap(ev, box=box):
            box["counter"] = QueryCounter(ev, len(x), goals)
            return box["counter"]

        cf = DigitCounterfactuals(models, x, labels, targets, seed, 24, 15, wrap_evaluator=wrap)
        ev = cf.evaluator(0.9)
        t0, l0 = time.perf_counter(), load_avg()
        res = run(name, kw, cf.codec, cf.task, ev, budget, seed)
        wall = time.perf_counter() - t0
        score = cf.score(res.best.decoded.cpu())
        sign = sense_sign(ev.objectives)
        c = box["counter"]
        out[k] = {"close": rates(c.first["close"]), "valid": rates(c.first["valid"]),
                  "close_at_budget": float(torch.isfinite(c.first["close"]).double().mean()),
                  "acc": score["acc"], "acc_independent": score["acc_independent"], "morph": score["morph_mean"],
                  "shape_distance": score["shape_distance"],
                  "hv": {a: float(np.mean(v)) for a, v in hypervolume_at([c], sign, reference, HV_AT).items()},
                  "hv_reference": reference.tolist(), "threshold": close["threshold"],
                  "evaluations": float(res.evaluations_per_row.mean()), "wall_s": wall, "load": [l0, load_avg()],
                  "info": {k2: v for k2, v in res.info.items() if isinstance(v, (int, float, str))}}
        print(k, json.dumps({a: out[k][a] for a in ("close", "acc_independent", "morph", "hv", "wall_s")}), flush=True)
        save()


def toy(specs: list[str], seeds: list[int], out: dict, key: str, save, budget: int) -> None:
    from flowevo.benchmarks.toy import toy_edit_task

    setups = {}
    for name, kw, seed, k in pending(specs, seeds, out, key):
        setup = setups.get(seed) or setups.setdefault(seed, toy_edit_task(seed))
        counter = QueryCounter(setup.evaluator, len(setup.task), {"success": setup.success})
        t0, l0 = time.perf_counter(), load_avg()
        res = run(name, kw, setup.codec, setup.task, counter, budget, seed)
        out[k] = {"success": rates(counter.first["success"]),
                  "success_at_budget": float(torch.isfinite(counter.first["success"]).double().mean()),
                  "evaluations": float(res.evaluations_per_row.mean()), "wall_s": time.perf_counter() - t0,
                  "load": [l0, load_avg()],
                  "info": {k2: v for k2, v in res.info.items() if isinstance(v, (int, float, str))}}
        print(k, json.dumps({a: out[k][a] for a in ("success", "success_at_budget", "wall_s")}), flush=True)
        save()


def crystals(specs: list[str], seeds: list[int], out: dict, key: str, save, models_path: str, budget: int,
             edit_budget: str) -> None:
    from flowevo.domains.crystals.editing import edit_evaluator, encodable_sources, kept_edits, site_masked_reo
    from flowevo.domains.crystals.genome_space import site_masked_space
    from flowevo.domains.crystals.objectives import canonical_sources, structures_payload
    from flowevo.domains.crystals.site_edit import RandomRegions, SiteMaskedCodec, SiteMutation
    from flowevo.domains.crystals.validity import SMACT_SET, CompositionCheck
    from flowevo.evolve import EditTask
    from flowevo.flow import FixedGrid

    saved = pickle.load(open(models_path, "rb"))
    m, train = saved["models"], saved["train"]
    judges = {"gbr": m.independent}
    if "judge" in saved:
        judges["judge"] = saved["judge"]
    src, _ = encodable_sources(m.model, saved["src"])
    rep = m.representation
    structures = canonical_sources(src, rep)
    x = m.model.encode(src.structures, src.formulas)
    target = float(np.min(train.properties["heat_ref"]))
    n = len(src)
    task = EditTask(x, m.model.condition(src.properties["heat_ref"]), m.model.condition([target] * n))
    grid = FixedGrid("rk4", 10)
    codec = SiteMaskedCodec(m.model, grid)
    composition = CompositionCheck(SMACT_SET)
    payload = structures_payload(rep)
    thr = m.thresholds
    for name, kw, seed, k in pending(specs, seeds, out, key):
        ev = edit_evaluator(m.surrogate, structures, edit_budget, composition=composition)
        counter = QueryCounter(ev, n, {})
        t0, l0 = time.perf_counter(), load_avg()
        torch.set_num_threads(1)
        if name in ("reo", "masked_random"):
            pop = kw.get("pop", 8)
            res = site_masked_reo(m.model, x, src.properties["heat_ref"], target, counter, pop, budget // pop - 1,
                                  seed, move=SiteMutation() if name == "reo" else RandomRegions(),
                                  discretisation=grid)
        else:
            space = site_masked_space(codec, kw.get("mstart", 0.0), kw.get("mask", 2.0))
            res = run(name, kw, codec, task, counter, budget, seed, payload, space)
        kept = kept_edits(res, rep)
        ok = [s for s in kept if s is not None]
        sr = {}
        for jn, judge in judges.items():
            v = judge.predict(ok) if ok else np.zeros(0)
            sr[jn] = {s: float(np.sum(v < t) / n) for s, t in thr.items()}
        out[k] = {"sr": sr, "kept_rate": len(ok) / n, "evaluations": float(res.evaluations_per_row.mean()),
                  "spent": float(counter.spent.double().mean()), "wall_s": time.perf_counter() - t0,
                  "load": [l0, load_avg()]}
        print(k, json.dumps(out[k]), flush=True)
        save()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("task", choices=("digits", "toy", "crystals"))
    p.add_argument("out")
    p.add_argument("specs", nargs="+")
    p.add_argument("--seeds", nargs="+", type=int, required=True)
    p.add_argument("--models", default="crystal_dev.pkl", help="crystals: pickled dev-split models")
    p.add_argument("--budget", type=int, default=None, help="evaluations per source (default: the task's)")
    p.add_argument("--edit-budget", default="k2_bkept", help="crystals: the edit budget constraint")
    a = p.parse_args()
    torch.set_num_threads(1)
    path = Path(a.out)
    out = json.loads(path.read_text()) if path.exists() else {}
    save = lambda: path.write_text(json.dumps(out, indent=1))
    budget = a.budget or BUDGET[a.task]
    suffix = "" if a.budget is None else f"_{budget}"
    if a.task == "digits":
        digits(a.specs, a.seeds, out, "digits" + suffix, save, budget)
    elif a.task == "toy":
        toy(a.specs, a.seeds, out, "toy" + suffix, save, budget)
    else:
        crystals(a.specs, a.seeds, out, f"crystals_{a.edit_budget}_{budget}", save, a.models, budget, a.edit_budget)


if __name__ == "__main__":
    main()
