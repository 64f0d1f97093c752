"""A short crystal edit run: lower heat_ref of a few held-out Perov-5 crystals with REO under an edit budget.

Trains small models on a split of the user's CSV (CFM, MLP surrogate, gradient-boosting judge,
CHGNet references), runs REO on site-masked genomes (residual + edit region, decoded by flow
inpainting; black-box constraints: the edit budget, structure validity and SMACT validity with the
``"icsd24_common"`` setting) and writes ``run_dir/report.html`` (pictures of each source and edited
cell with the changed sites marked, formula, sites changed, space group, surrogate, judge and CHGNet
formation energy before/after, validity, links to the CIFs), ``property.png``, ``metrics.json``,
``edits.csv`` and ``cif/source_<i>.cif`` / ``cif/edit_<i>.cif`` with their pictures (``.png``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from flowevo.devices import require_cpu
from flowevo.domains.crystals.constraints import extra_constraints
from flowevo.domains.crystals.data import load_edit_split
from flowevo.domains.crystals.editing import edit_evaluator, encodable_sources, kept_edits, site_masked_reo
from flowevo.domains.crystals.fitting import fit_crystal_models
from flowevo.domains.crystals.objectives import BUDGETS, canonical_sources
from flowevo.domains.crystals.outputs import write_edit_outputs
from flowevo.domains.crystals.validity import SMACT_SET
from flowevo.jsonio import strict_json
from flowevo.report import Report
from flowevo.report.crystal_view import crystal_edits_table
from flowevo.report.plots import save_figure

IMPROVED_BY = 1e-6  # eV/atom; float32 noise between batches is ~1e-7, so a no-edit result is not "improved"


def run_crystals_demo(run_dir: Path | str, data: str | Path, n: int = 8, seed: int = 0, budget: str = "k2_bkept",
                      population: int = 8, generations: int = 8, cfm_steps: int = 1500, surrogate_steps: int = 2000,
                      gbr_estimators: int = 400, chgnet_rows: int = 300, max_rows: int | None = None,
                      log: Callable[[str], None] = lambda s: None, constraints: tuple[str, ...] = (),
                      energy_ceiling: float | None = None, device: str = "cpu") -> dict:
    """Edit ``n`` held-out crystals of ``data``; write the run directory; return the metrics.

    ``constraints``: extra named constraints of the search (``"smact_strict"``: SMACT with
    ``pymatgen_sp``); ``energy_ceiling``: also require the CHGNet formation energy <= this (eV/atom).
    """
    require_cpu(device, "the crystals demo", "the crystals domain's Whitening encoder and surrogate take no device")
    extra_constraints(constraints)  # unknown names fail before any training
    if budget not in BUDGETS:
        raise ValueError(f"unknown budget {budget!r}; use one of {list(BUDGETS)}")
    run_dir = Path(run_dir)
    start = time.perf_counter()
    _, train, src = load_edit_split(data, None, n, seed, max_rows)
    run_dir.mkdir(parents=True, exist_ok=True)
    m = fit_crystal_models(train, "heat_ref", seed, cfm_steps, surrogate_steps, gbr_estimators=gbr_estimators,
                           chgnet_rows=chgnet_rows, log=log)
    sources, skipped = encodable_sources(m.model, src, log)
    structures = canonical_sources(sources, m.representation)
    extra = extra_constraints(constraints, m.formation, energy_ceiling)
    evaluator = edit_evaluator(m.surrogate, structures, budget, constraints=extra)
    target = float(np.min(train.properties["heat_ref"]))  # REO decodes under the lowest training heat_ref
    log(f"REO at budget {budget}: {population * (generations + 1)} evaluations per crystal")
    t0 = time.perf_counter()
    result = site_masked_reo(m.model, m.model.encode(sources.structures, sources.formulas),
                             sources.properties["heat_ref"], target, evaluator, population, generations, seed)
    reo_s = time.perf_counter() - t0

    rows = write_edit_outputs(run_dir, structures, kept_edits(result, m.representation), result.best.violation,
                              {"surrogate": m.surrogate.predict, "independent": m.independent.predict,
                               "chgnet_formation": m.formation},
                              {"heat_ref_dft_before": [float(v) for v in sources.properties["heat_ref"]]}, table=None,
                              csv_name="edits.csv", pictures=len(structures))
    _plot(rows, run_dir / "property.png")
    done = [r for r in rows if r["surrogate_after"] is not None]
    metrics = {
        "demo": "crystals", "data": str(data), "n": len(rows), "seed": seed, "budget": budget,
        "train_rows": len(train), "evaluations_per_crystal": float(result.evaluations_per_row.mean()),
        "reo_wall_s": reo_s,
        "thresholds": m.thresholds, "skipped_sources": skipped,
        "valid_rate": float(np.mean([r["valid"] for r in rows])),
        "improved_rate": float(np.mean([r["surrogate_after"] is not None
                                        and r["surrogate_after"] < r["surrogate_before"] - IMPROVED_BY
                                        for r in rows])),
        "chgnet_agrees": float(np.mean([(r["chgnet_formation_after"] < r["chgnet_formation_before"])
                                        for r in done
                                        if r["surrogate_after"] < r["surrogate_before"] - IMPROVED_BY] or [np.nan])),
        "mean_sites_changed": float(np.mean([r["sites_changed"] for r in done])) if done else None,
        "validity": f"structure: distances >= 0.5 A, volume >= 0.1 A^3; composition: SMACT oxidation_states_set={SMACT_SET!r}",
        "edits": rows, "wall_s": time.perf_counter() - start,
        "extra_constraints": {c.name: c.bound for c in extra},
    }
    metrics = strict_json(metrics)
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    _report(run_dir, metrics)
    return metrics


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, key, label in ((axes[0], "surrogate", "surrogate heat_ref (eV/atom)"),
                           (axes[1], "chgnet_formation", "CHGNet formation energy (eV/atom)")):
        b = [r[f"{key}_before"] for r in rows if r[f"{key}_after"] is not None]
        a = [r[f"{key}_after"] for r in rows if r[f"{key}_after"] is not None]
        ax.scatter(b, a, s=25)
        if b:
            lo, hi = min(b + a), max(b + a)
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_xlabel(f"before: {label}")
        ax.set_ylabel("after")
    axes[0].set_title("points below the diagonal improved")
    save_figure(fig, path)


def _report(run_dir: Path, m: dict) -> None:
    r = Report("flowevo crystals demo")
    r.text(f"{m['n']} held-out crystals of {m['data']}, heat_ref lowered by REO (residual + edit region, decoded by "
           f"flow inpainting) under edit budget {m['budget']!r} "
           f"({m['evaluations_per_crystal']:.0f} surrogate queries per crystal). Valid {m['valid_rate']:.0%}, "
           f"improved by the surrogate {m['improved_rate']:.0%}; the CHGNet judge agrees on "
           f"{'-' if m['chgnet_agrees'] is None else format(m['chgnet_agrees'], '.0%')} of the improved ones.")
    r.text(m["validity"], note=True)
    r.section("Edits")
    crystal_edits_table(r, m["edits"])
    r.text("surrogate: the MLP the search optimises; judge (independent): a gradient-boosting model never optimised "
           "against; CHGNet formation: CHGNet energy per atom minus per-element references fitted on training "
           "crystals (a physics-based judge, never optimised against).", note=True)
    r.section("Property before vs after")
    r.image("property.png", "each point is one crystal")
    r.section("Thresholds (training heat_ref percentiles)")
    r.table([{"SR": k, "heat_ref": v} for k, v in m["thresholds"].items()])
    r.write(run_dir)
