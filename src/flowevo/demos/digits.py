"""The main job: counterfactual edits of held-out digits, every method side by side, with a report.

Two tasks on the shipped models (no download, no training):

1. counterfactual: reach a random other class by the black-box CNN's verdict (label is the
   target with probability >= 0.9) while changing the digit as little as possible; REO keeps
   a Pareto set per digit (shape distance to the source reconstruction vs target probability);
2. attribute edit: make each digit 1.6x thicker (measured by Morpho-MNIST thickness, not
   differentiable) while the black box still reads the same class.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from flowevo.domains.digits.attributes import morphometric_edit
from flowevo.domains.digits.counterfactuals import CHECKED_MARGIN, DigitCounterfactuals
from flowevo.domains.digits.data import load_source_digits
from flowevo.domains.digits.models import load_digit_models
from flowevo.domains.digits.morphometrics import METRICS, measure_batch
from flowevo.domains.digits.objectives import ClassifierOracle
from flowevo.evolve import ORIGINS
from flowevo.jsonio import write_json
from flowevo.report import Report, image_grid, plot_front, plot_history

METHODS = ("reo", "leap", "gradient", "cma", "random", "swap")


def run_digits_demo(run_dir: Path | str, n: int = 12, seed: int = 0, generations: int = 15, sources: str | None = None,
                    device: str = "cpu", log: Callable[[str], None] = lambda s: None,
                    weights: str | Path | None = None, retrain: bool = False, thickness_band: float | None = None,
                    penalty: bool = False) -> dict:
    """Run both tasks; write ``run_dir`` with report.html, PNGs, metrics.json and edits.npz.

    ``thickness_band``: make the attribute edit a constrained one: change the pixels as little as
    possible subject to ``|thickness - 1.6 x source| <= thickness_band`` (px) and the class kept;
    ``penalty``: rank its infeasible candidates by an adaptive Lagrangian penalty
    (:class:`~flowevo.evolve.LagrangianPenalty`) instead of feasibility first only.

    ``weights``: a folder of digit models (default: the shipped ones); ``retrain``: first train
    all four models from scratch into ``run_dir/models`` (about 5 minutes on 2 cores) and use them.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if retrain:
        from flowevo.domains.digits.train import train_digit_models

        log("training the digit models (classifier, independent classifier, VAE, latent flow)")
        weights = run_dir / "models"
        train_digit_models(weights, seed=seed, show_progress=True)
    models = load_digit_models(weights, device=device)
    x, labels = load_source_digits(sources, n)
    g = torch.Generator().manual_seed(seed)
    targets = (labels + torch.randint(1, 10, (len(x),), generator=g)) % 10  # always another class
    cf = DigitCounterfactuals(models, x, labels, targets, seed, population=24, generations=generations)

    log("REO (two objectives, Pareto set per digit)")
    check = cf.fitted_check()  # the kept edit's shift check, its queries left out of REO's search
    res = cf.reo(0.9, reserve=check.budget, show_progress=True)
    pop = res.population
    best, kept = cf.kept(res, 0.9, flow_margin=CHECKED_MARGIN, check=check)
    results = {"reo": {**cf.score(best, kept), **_cost(res)}}
    results["reo"]["evaluations"] += cf.check_queries / len(x)
    edits = {"reo": best}
    for name, run in (("leap", lambda: cf.leap(0.5)), ("gradient", cf.gradient), ("cma", lambda: cf.search("cma")),
                      ("random", lambda: cf.search("random")), ("swap", cf.swap)):
        log(name)
        r = run()
        edits[name] = r.best.decoded.cpu()
        results[name] = {**cf.score(edits[name]), **_cost(r)}

    # -- plots --------------------------------------------------------------------------------
    judge = ClassifierOracle(models.classifier)
    caption = lambda im: [f"{int(c)} ({p:.2f})" for c, p in zip(*judge.probs(im).max(dim=1)[::-1])]
    cols = {"source": x.numpy(), "reconstruction": cf.recon.cpu().numpy(), **{k: edits[k].numpy() for k in METHODS}}
    image_grid(cols, run_dir / "grid.png", row_labels=[f"{int(a)} -> {int(b)}" for a, b in zip(labels, targets)],
               cell_labels={k: caption(torch.as_tensor(v)) for k, v in cols.items() if k != "source"},
               title="counterfactuals (caption: black-box label and its probability)")
    plot_history(res.history, res.objective_names, run_dir / "fitness.png")
    feas = pop.feasible.cpu()
    vals = pop.values[feas].numpy()
    decoded = pop.decoded.cpu()[feas]
    div = np.array([float((decoded[i] - kept[int(r)]).flatten(1).norm(dim=1).mean())
                    for i, r in enumerate(pop.row.cpu()[feas].tolist())])
    plot_front(vals, res.objective_names, run_dir / "front.png", colour=div,
               colour_label="diversity (mean pixel distance)")
    lineage = {ORIGINS[k]: int((pop.origin.cpu() == k).sum()) for k in ORIGINS}

    log("attribute edit: thicker, same class")
    thick = _thickness_task(models, x[:6], labels[:6], seed, run_dir, thickness_band, penalty)

    metrics = {"demo": "digits", "n": n, "seed": seed, "device": device, "targets": targets.tolist(), "methods": results,
               "reo_kept_by_origin": lineage,
               "pareto_points_per_digit": float(np.mean([len(res.pareto_set(b)) for b in range(n)])),
               "thickness_task": thick, "wall_s": time.perf_counter() - start}
    write_json(run_dir / "metrics.json", metrics)
    to_u8 = lambda t: (t.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    np.savez_compressed(run_dir / "edits.npz", sources=to_u8(x), targets=targets.numpy(),
                        **{f"edits_{k}": to_u8(v) for k, v in edits.items()})
    _report(run_dir, metrics)
    return metrics


def _cost(res) -> dict:
    return {"evaluations": float(res.evaluations_per_row.mean()), "wall_s": res.wall_s}


def _thickness_task(models, x, labels, seed: int, run_dir: Path, band: float | None = None,
                    penalty: bool = False) -> dict:
    res, targets = morphometric_edit(models, x, labels, "thickness", 1.6, band, penalty, seed=seed)
    best = res.best
    edits = best.decoded.cpu()
    col = METRICS.index("thickness")
    t_src, t_edit = measure_batch(x.cpu().numpy())[:, col], measure_batch(edits.numpy())[:, col]
    keeps = (best.constraint_values[:, -1] == 0).tolist()  # keep-class is the last constraint
    rows = [{"digit": int(labels[b]), "thickness_source": float(t_src[b]), "target": float(targets[b]),
             "edit": float(t_edit[b]), "keeps_class": bool(keeps[b]), "feasible": bool(best.violation[b] == 0)}
            for b in range(len(x))]
    image_grid({"source": x.cpu().numpy(), "thicker (REO)": edits.numpy()}, run_dir / "thickness.png",
               cell_labels={"source": [f"t={r['thickness_source']:.2f}" for r in rows],
                            "thicker (REO)": [f"t={r['edit']:.2f} (goal {r['target']:.2f})" for r in rows]},
               title="attribute edit: 1.6x thickness, same class")
    out = {"rows": rows, "mean_abs_error": float(np.mean([abs(r["edit"] - r["target"]) for r in rows])),
           "keeps_class_rate": float(np.mean(keeps)), "evaluations_per_digit": float(res.evaluations_per_row.mean())}
    if band is not None or penalty:
        out.update(satisfaction=res.history[-1].satisfaction, multipliers=res.history[-1].multipliers)
    return out


def _report(run_dir: Path, m: dict) -> None:
    r = Report("flowevo digits demo")
    r.text(f"{m['n']} held-out digits, each edited toward another class by every method on the same models. "
           f"REO: 24 residuals per digit, {m['methods']['reo']['evaluations']:.0f} black-box queries per digit.")
    r.section("Counterfactual edits")
    r.image("grid.png", "rows: source -> target class; captions: the black box's label and probability")
    rows = [{"method": k, "acc (black box)": v["acc"], "acc (independent)": v["acc_independent"],
             "mean p(target)": v["mean_p_target"], "morph. change (5 metrics)": v["morph_mean"],
             "|slant change| rad": v["slant_abs_change"], "diversity (pixel)": v["diversity"]["pixel"],
             "evaluations / digit": v["evaluations"], "wall s": v["wall_s"]} for k, v in m["methods"].items()]
    r.table(rows)
    r.text("Morphological change is the mean relative change of area, length, thickness, width and height against "
           "the VAE reconstruction of the source (lower preserves more).", note=True)
    r.section("REO: Pareto sets and progress")
    r.image("front.png", "feasible kept candidates (survivors and archive): shape distance (blurred pixel L2 + ink change) "
                         "to the source reconstruction vs target probability")
    r.image("fitness.png", "mean best value per generation")
    r.table([{"origin of the kept candidates (survivors and archive)": k, "count": v}
             for k, v in m["reo_kept_by_origin"].items()])
    r.section("Attribute edit: thicker strokes, same class")
    r.image("thickness.png", "REO on a non-differentiable morphometric")
    r.table(m["thickness_task"]["rows"])
    r.section("Files")
    r.table([{"file": f, "what": w, "href": f} for f, w in (("metrics.json", "all figures"), ("edits.npz", "edits, uint8"),
             ("grid.png", "image grid"), ("front.png", "Pareto sets"), ("thickness.png", "attribute edits"))],
            links={"file": "href"})
    r.write(run_dir)
