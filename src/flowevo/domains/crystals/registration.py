"""The crystal domain's registration: ``crystals.*`` built-ins, the crystal MODEL_DIR loader, the CDVAE ``.csv``
trainer and the output writer.

- **training** (``flowevo train --data FILE.csv``, a ``cif`` column and the property column): the models of
  ``flowevo benchmark crystals`` with its settings by default (:func:`~.fitting.fit_crystal_models`: CFM 3000
  steps, MLP surrogate 3000 steps, gradient-boosting judge 1200 trees, CHGNet references on 600 rows for
  ``heat_ref``; the training 5/10/15th percentiles as SR thresholds) on the same 90/10 split by the seed
  (``train.holdout``, 0 = every row trains). MODEL_DIR: ``crystal_flow.pt``, ``surrogate.json``,
  ``judge.json``, ``chgnet_references.json``, ``training.json`` and the held-out rows as ``holdout.csv``.
- **optimize** (``flowevo optimize --model MODEL_DIR --sources FILE.csv``): the library's site-masked REO
  (:func:`~.editing.site_masked_strategy`, as :func:`~.editing.site_masked_evolver`): genomes = residual +
  free-site mask + anchor, decoded by flow inpainting; :class:`~.site_edit.SiteVariation`
  (``optimize.cross_rate`` does not apply) pre-screened (:mod:`~.screening`: 8 children decoded per child
  scored, the cheap constraints called exactly, ranked by a GP on the decoded compositions pooled over the
  sources; leave ``optimize.prescreen`` at 1); generation 0 = each source's residual with all sites free, then
  the small edit regions (and variants) whose decoded crystal passes the default constraints with a new
  composition. Defaults, each overridable:
  the target is the lowest training value of the property (the benchmark's REO target); the objective
  ``crystals.surrogate`` (min; ``crystals.surrogate_error`` when a target is given); the constraints
  ``crystals.structure_valid <= 0`` and ``crystals.composition_valid <= 0`` (SMACT ``icsd24_common``), plus the
  budget when given (``--constraint "crystals.budget@budget=k2_bkept<=0"``, or the domain option ``budget``);
  population 4 and 11 generations (48 evaluations per source). The default constraints are marked ``cheap``.
- **outputs**: per source the kept edit (best candidate meeting every constraint) as ``cif/edit_<i>.cif`` and
  ``cif/edit_<i>.png`` next to the source's, ``edits.csv`` / ``crystals.json`` (formulas, sites changed, B kept,
  validity, surrogate / judge / CHGNet before and after) and SR5/10/15 by the saved judge in ``metrics.json``.

==============================  =====  ============  ==================================================
built-in                        sense  role          what
==============================  =====  ============  ==================================================
crystals.surrogate              min    alignment     the model folder's surrogate: predicted property
crystals.surrogate_error        min    alignment     abs(surrogate - target value)
crystals.structure_valid        min    other         1 if distances/volume are unphysical (constraint)
crystals.composition_valid      min    other         1 if SMACT rejects the composition (constraint)
crystals.space_group            max    other         spglib space-group number
crystals.space_group_changed    min    preservation  1 if it differs from the source's
crystals.sites_changed          min    preservation  sites changed vs the source (0..5)
crystals.fingerprint_distance   min    preservation  lattice + species fingerprint distance
crystals.budget                 min    other         edit-budget violation (params: budget=k1|k2|...)
==============================  =====  ============  ==================================================

Imports here are light: pymatgen, chgnet and the model code load when a run or training does.
"""

from __future__ import annotations

import csv
import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowevo.domains.crystals.files import CRYSTAL_CHECKPOINT, HOLDOUT_FILE, JUDGE_FILE, SURROGATE_FILE, TRAINING_FILE
from flowevo.domains.plugin import (
    BatchFn,
    Builtin,
    BuiltinContext,
    Domain,
    DomainFlow,
    DomainRun,
    FlowRequest,
    RunRequest,
    Trained,
    TrainRequest,
)

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["BUILTINS", "CRYSTAL_CHECKPOINT", "DEFAULT_PROPERTY", "DOMAIN", "OPTIMIZE_DEFAULTS", "SURROGATE_FILE",
           "TRAIN_DEFAULTS", "is_crystal_model", "load_run", "train", "write_outputs"]

DEFAULT_PROPERTY = "heat_ref"
TRAIN_DEFAULTS = {"steps": 3000, "judge_steps": 3000, "hidden": 128, "gbr_estimators": 1200, "chgnet_rows": 600}
"""``flowevo train`` defaults: the crystals benchmark's (CFM and surrogate steps, judge trees, CHGNet rows)."""
OPTIMIZE_DEFAULTS = {"population": 4, "generations": 11}
"""``[optimize]`` values suggested for crystal runs (the library's REO defaults: 48 evaluations per source;
:data:`~.editing.POPULATION`, :data:`~.editing.GENERATIONS`)."""
PICTURES = 200
"""Sources (the first ones) drawn as pictures next to their CIFs."""


# ------------------------------------------------------------------------------------- built-ins
def _crystal(ctx: BuiltinContext, name: str) -> dict[str, Any]:
    if ctx.kind != "crystals":
        raise ValueError(f"built-in {name!r} needs a crystal model (flowevo train --data crystals.csv)")
    return ctx.extra


def _crystal_surrogate(ctx: BuiltinContext, name: str) -> dict[str, Any]:
    e = _crystal(ctx, name)
    if e.get("surrogate") is None:
        raise ValueError(f"built-in {name!r} needs the model folder's surrogate.json (written by flowevo train)")
    return e


def _c_surrogate(ctx: BuiltinContext) -> BatchFn:
    from flowevo.domains.crystals.objectives import property_objective

    e = _crystal_surrogate(ctx, "crystals.surrogate")
    return property_objective(e["surrogate"], representation=e["representation"]).fn


def _c_surrogate_error(ctx: BuiltinContext) -> BatchFn:
    from flowevo.domains.crystals.objectives import property_objective

    e = _crystal_surrogate(ctx, "crystals.surrogate_error")
    pred, target = property_objective(e["surrogate"], representation=e["representation"]).fn, float(e["target_value"])
    return lambda c: (pred(c) - target).abs()


def _c_constraint(factory_name: str) -> Callable[..., BatchFn]:
    def factory(ctx: BuiltinContext, **params: Any) -> BatchFn:
        from flowevo.domains.crystals import objectives as co

        e = _crystal(ctx, f"crystals.{factory_name}")
        return getattr(co, f"{factory_name}_constraint")(**params, representation=e["representation"]).fn

    return factory


def _c_space_group(compare: bool) -> Callable[..., BatchFn]:
    def factory(ctx: BuiltinContext, symprec: float = 0.1) -> BatchFn:
        from flowevo.domains.crystals.objectives import space_group_objective

        e = _crystal(ctx, "crystals.space_group")
        return space_group_objective(symprec, e["source_structures"], compare, e["representation"]).fn

    return factory


def _c_sites_changed(ctx: BuiltinContext) -> BatchFn:
    from flowevo.domains.crystals.objectives import sites_changed_objective

    e = _crystal(ctx, "crystals.sites_changed")
    return sites_changed_objective(e["source_structures"], e["representation"]).fn


def _c_fingerprint(ctx: BuiltinContext) -> BatchFn:
    from flowevo.domains.crystals.objectives import fingerprint_distance_objective

    e = _crystal(ctx, "crystals.fingerprint_distance")
    return fingerprint_distance_objective(e["representation"], e["source_structures"]).fn


def _c_budget(ctx: BuiltinContext, budget: str = "k2") -> BatchFn:
    from flowevo.domains.crystals.objectives import budget_constraint

    e = _crystal(ctx, "crystals.budget")
    if budget == "any":
        raise ValueError("crystals.budget with budget 'any' constrains nothing; leave it out")
    return budget_constraint(budget, e["source_structures"], e["representation"])[0].fn


BUILTINS: dict[str, Builtin] = {
    "crystals.surrogate": Builtin(_c_surrogate, "min", "alignment", "the model folder's surrogate: predicted property"),
    "crystals.surrogate_error": Builtin(_c_surrogate_error, "min", "alignment",
                                        "|surrogate prediction - target value| of the property"),
    "crystals.structure_valid": Builtin(_c_constraint("structure_validity"), "min", "other",
                                        "1 where distances < min_dist or volume < min_volume (constraint: <= 0)",
                                        cheap=True),
    "crystals.composition_valid": Builtin(_c_constraint("composition_validity"), "min", "other",
                                          "1 where SMACT rejects the composition (constraint: <= 0)", cheap=True),
    "crystals.space_group": Builtin(_c_space_group(False), "max", "other", "spglib space-group number"),
    "crystals.space_group_changed": Builtin(_c_space_group(True), "min", "preservation",
                                            "1 where the space group differs from the source's"),
    "crystals.sites_changed": Builtin(_c_sites_changed, "min", "preservation", "sites changed vs the source (0..5)"),
    "crystals.fingerprint_distance": Builtin(_c_fingerprint, "min", "preservation",
                                             "distance of lattice + species fingerprints to the source"),
    "crystals.budget": Builtin(_c_budget, "min", "other", "edit-budget violation; params: budget (k1, k2, k1_bkept, "
                                                          "k2_bkept); constraint: <= 0", cheap=True),
}


def default_objectives(ctx: BuiltinContext, has_class: bool, has_values: bool) -> list[str]:
    """The benchmark's objective: the surrogate, minimised (no target given: REO decodes under the lowest training
    value); with a target value, the surrogate's distance to it.

    Raises:
        ValueError: the model folder has no surrogate.
    """
    if ctx.extra.get("surrogate") is None:
        raise ValueError("no objectives given and the crystal model has no surrogate.json: pass --objective "
                         "(a crystals.* built-in, package.module:function or path/file.py:function)")
    return ["crystals.surrogate_error"] if has_values else ["crystals.surrogate"]


# ------------------------------------------------------------------------------------- model loader
def is_crystal_model(folder: str | Path) -> bool:
    """True for a MODEL_DIR written by the crystal training (``crystal_flow.pt``)."""
    return (Path(folder) / CRYSTAL_CHECKPOINT).is_file()


def load_run(request: RunRequest) -> DomainRun:
    """A crystal MODEL_DIR and a CDVAE-format CSV of sources -> the site-masked REO run (see the module doc).

    The codec is the :class:`~.site_edit.SiteMaskedCodec` (genome = residual + free-site mask + anchor,
    decoded by flow inpainting), the variation :class:`~.site_edit.SiteVariation` (never a composition the
    row already proposed; its archive is checkpointed), generation 0 each source's residual with all sites
    free and with each small edit region (:func:`~.site_edit.seed_masks`). Sources the model cannot encode
    are left out and listed in ``extra["skipped_sources"]``.

    ``extra`` holds what the ``crystals.*`` built-ins and :func:`write_outputs` read: ``representation``,
    ``source_structures`` (canonical, per row), ``surrogate`` / ``judge`` / ``formation`` (or None),
    ``thresholds``, ``property``, ``property_before`` (per row), ``target_value``, ``budget``, ``source_ids``.

    Raises:
        ValueError: sources that are not a CSV, a target that is not one value of the property, no target with
            a MODEL_DIR that records no default, ``strength`` / ``guidance`` other than 1, an unknown option.
    """
    import numpy as np
    import torch

    from flowevo.domains.crystals.data import load_cdvae_csv
    from flowevo.domains.crystals.editing import encodable_sources, site_masked_seeds, site_masked_variation
    from flowevo.domains.crystals.fitting import load_crystal_models
    from flowevo.domains.crystals.genome_space import site_masked_space
    from flowevo.domains.crystals.objectives import BUDGETS, canonical_sources, structures_payload
    from flowevo.domains.crystals.site_edit import SiteMaskedCodec
    from flowevo.evolve import EditTask
    from flowevo.flow import FixedGrid

    r = request
    unknown = sorted(set(r.options) - {"budget"})
    if unknown:
        raise ValueError(f"optimize options {unknown}: a crystal model knows only 'budget' ({', '.join(BUDGETS)})")
    budget = str(r.options.get("budget", "any"))
    if budget not in BUDGETS:
        raise ValueError(f"budget {budget!r}: use one of {', '.join(BUDGETS)}")
    models = load_crystal_models(r.model_dir)
    model = models.model
    sources = Path(r.sources)
    if sources.suffix.lower() != ".csv":
        raise ValueError(f"{sources}: a crystal model edits crystals from a CDVAE-format CSV (columns cif, "
                         f"{model.property}), not a {sources.suffix or 'suffix-less'} file")
    if r.target_class is not None or (r.target_values is not None and len(r.target_values) != 1):
        raise ValueError(f"optimize.target: a crystal model is conditioned on one value of {model.property!r}; "
                         f"give values=V (e.g. --target values=-0.5) or leave it out (default: the lowest training "
                         f"{model.property})")
    if r.target_values is None and models.lowest is None:
        raise ValueError(f"optimize.target: {r.model_dir} records no default target ({TRAINING_FILE} is missing: "
                         f"an older flowevo train); give --target values=V")
    if r.strength != 1.0 or r.guidance != 1.0:
        raise ValueError("optimize.strength / optimize.guidance: site-masked crystal editing decodes with strength 1 "
                         "and guidance 1 (its mask decides what may change); leave them at their defaults")
    table = load_cdvae_csv(sources, properties=(model.property,), limit=None)
    if r.rows is not None:
        table = table.subset(list(range(min(r.rows, len(table)))))
    table, skipped = encodable_sources(model, table)
    b = len(table)
    target_value = float(models.lowest if r.target_values is None else r.target_values[0])
    x = model.encode(table.structures, table.formulas)
    source = model.condition(table.properties[model.property])
    target = model.condition([target_value] * b)
    codec = SiteMaskedCodec(model, FixedGrid(r.solver, r.solver_steps))
    extra = {"representation": model.representation,
             "source_structures": canonical_sources(table, model.representation),
             "surrogate": models.surrogate, "judge": models.independent, "formation": models.formation,
             "thresholds": models.thresholds, "property": model.property, "target_value": target_value,
             "property_before": [float(v) for v in table.properties[model.property]], "budget": budget,
             "source_ids": list(table.ids), "skipped_sources": skipped}
    physical = torch.as_tensor(np.asarray(table.properties[model.property], dtype=np.float32))[:, None]
    constraints: list[dict[str, Any]] = [{"use": "crystals.structure_valid", "upper": 0},
                                         {"use": "crystals.composition_valid", "upper": 0}]
    if budget != "any":
        constraints.append({"use": "crystals.budget", "params": {"budget": budget}, "upper": 0})
    # the library's site-masked REO: pre-screened variation; generation-0 seeds screened by the run's cheap
    # constraints (the crystals.* validity and budget built-ins are cheap) once the workflow has built them
    task = EditTask(x, source, target)
    variation = site_masked_variation(codec, task)
    seeds = functools.partial(site_masked_seeds, codec, task)
    return DomainRun("crystals", "crystals", (int(model.dim),), x, None, physical, source, target, codec, model,
                     payload=structures_payload(model.representation), extra=extra,
                     variation=variation, extra_seeds=seeds,
                     space=site_masked_space(codec),
                     default_constraints=constraints, optimize_defaults=dict(OPTIMIZE_DEFAULTS))


def load_flow(request: FlowRequest) -> DomainFlow:
    """A crystal MODEL_DIR's flow for constrained fine-tuning (CPU only: its whitening and surrogate take no device):
    the property-conditioned CFM with its whitening encoder, the structures payload, and for the built-ins the
    surrogate, judge, CHGNet formation energy and, for ``crystals.surrogate_error``, the condition's value (else
    the lowest training value). Conditions: one value of the property in its units (no class ids).

    Raises:
        ValueError: a device other than the CPU, or a class id / several values as the condition.
    """
    from flowevo.devices import require_cpu
    from flowevo.domains.crystals.diversity import composition_key
    from flowevo.domains.crystals.fitting import load_crystal_models
    from flowevo.domains.crystals.objectives import structure_projection, structures_payload

    require_cpu(request.device, "constrained fine-tuning of a crystal model", "its Whitening encoder takes no device")
    models = load_crystal_models(request.model_dir)
    model = models.model
    extra = {"representation": model.representation, "source_structures": None, "surrogate": models.surrogate,
             "judge": models.independent, "formation": models.formation, "thresholds": models.thresholds,
             "property": model.property, "target_value": models.lowest}

    def condition(label: int | None, values: Any):
        if label is not None or values is None or len(values) != 1:
            raise ValueError(f"cfo.condition: a crystal model is conditioned on one value of {model.property!r}; give "
                             "values=[V] or leave it out (the null condition)")
        extra["target_value"] = float(values[0])
        return model.condition([float(values[0])])

    return DomainFlow("crystals", "crystals", (int(model.dim),), (int(model.residual_dim),), model.velocity, 0, 1,
                      condition, encoder=model.encoder, payload=structures_payload(model.representation), extra=extra,
                      project=structure_projection(model.representation), diversity_key=composition_key)


# ------------------------------------------------------------------------------------- output writer
def write_outputs(run: DomainRun, run_dir: Path, best: Tensor, violation: Tensor) -> dict[str, Any]:
    """Each source's kept edit (its best candidate where it met every constraint) as CIFs and pictures, with
    ``edits.csv`` and ``crystals.json`` (:func:`~.outputs.write_edit_outputs`); returns the figures for
    ``metrics.json``: SR5/10/15 (share of sources whose kept edit the saved judge puts below each saved
    threshold), the thresholds, the kept and valid shares, mean sites changed, target and skipped sources."""
    import numpy as np

    from flowevo.domains.crystals.objectives import structures_payload
    from flowevo.domains.crystals.outputs import write_edit_outputs

    e = run.extra
    built = structures_payload(e["representation"])(best)["structures"]
    kept = [s if v == 0 and s is not None else None for s, v in zip(built, violation.tolist())]
    predictors: dict[str, Any] = {}
    if e.get("surrogate") is not None:
        predictors["surrogate"] = e["surrogate"].predict
    if e.get("judge") is not None:
        predictors["judge"] = e["judge"].predict
    if e.get("formation") is not None:
        predictors["chgnet_formation"] = e["formation"]
    prop = e["property"]
    rows = write_edit_outputs(run_dir, e["source_structures"], kept, violation, predictors,
                              {"id": e.get("source_ids") or [None] * len(kept), f"{prop}_before": e["property_before"],
                               f"{prop}_target": e["target_value"]}, csv_name="edits.csv", pictures=PICTURES)
    n = max(len(rows), 1)
    done = [r for r in rows if r["formula_after"] is not None]
    figures: dict[str, Any] = {
        "property": prop, "target_value": e["target_value"], "budget_option": e.get("budget", "any"),
        "kept_rate": len(done) / n, "kept_valid_rate": float(np.mean([r["valid"] for r in done])) if done else None,
        "mean_sites_changed": float(np.mean([r["sites_changed"] for r in done])) if done else None,
        "skipped_sources": e.get("skipped_sources", []), "edits_csv": "edits.csv",
    }
    if e.get("judge") is not None and e.get("thresholds"):
        judged = [r["judge_after"] for r in done]
        figures.update({k: float(sum(v < t for v in judged) / n) for k, t in e["thresholds"].items()})
        figures["thresholds"] = dict(e["thresholds"])
        figures["judge"] = (f"the MODEL_DIR's independent judge ({JUDGE_FILE}: gradient boosting), never optimised "
                            f"against; SR = share of sources whose kept edit it puts below the training percentile")
    return figures


# ------------------------------------------------------------------------------------- trainer
def _recognises_data(path: Path) -> bool:
    if path.suffix.lower() != ".csv":
        return False
    with path.open(newline="") as fh:
        header = next(csv.reader(fh), [])
    return "cif" in header


def train(request: TrainRequest, show_progress: bool = True, log: Callable[[str], None] = lambda s: None) -> Trained:
    """The models of a crystal editing run (:func:`~.fitting.fit_crystal_models`, the benchmark's settings by
    default) on the training part of ``request.data``, saved as MODEL_DIR (:func:`~.fitting.save_crystal_models`),
    with the held-out rows copied to ``MODEL_DIR/holdout.csv``.

    Reads from ``request.settings``: ``property`` (default ``heat_ref``), ``max_rows``, ``holdout`` (share held out,
    default 0.1: the benchmark's 90/10 split by the seed; 0 trains on every row), ``steps`` (CFM, default 3000),
    ``batch_size`` (256), ``hidden`` (128), ``lr``, ``depth``, ``condition_dropout``, ``judge`` (the independent
    judge and, for ``heat_ref``, the CHGNet references; default on), ``judge_steps`` (surrogate, default 3000).
    """
    import numpy as np
    import torch

    from flowevo.domains.crystals.data import load_cdvae_csv, split_indices, write_csv_rows
    from flowevo.domains.crystals.fitting import fit_crystal_models, save_crystal_models
    from flowevo.flow import FixedGrid

    t, seed = dict(request.settings), request.seed
    prop = t.get("property") or DEFAULT_PROPERTY
    start = time.perf_counter()
    full = load_cdvae_csv(request.data, properties=(prop,), limit=t.get("max_rows"))
    holdout = float(t.get("holdout") if t.get("holdout") is not None else 0.1)
    if holdout > 0:
        tr, ho = split_indices(len(full), (1 - holdout, holdout), seed)
        if len(tr) == 0:
            raise ValueError(f"{request.data}: too few rows ({len(full)}) to hold out {holdout:.0%}")
    else:
        tr, ho = np.arange(len(full)), np.arange(0)
    table, held = full.subset(tr), full.subset(ho)
    n = len(table)
    batch = t.get("batch_size") or min(256, n)
    steps = t.get("steps") or TRAIN_DEFAULTS["steps"]
    judge_steps = t.get("judge_steps") or TRAIN_DEFAULTS["judge_steps"]
    hidden = t.get("hidden") or TRAIN_DEFAULTS["hidden"]
    judge = bool(t.get("judge", True))
    chgnet_rows = TRAIN_DEFAULTS["chgnet_rows"] if judge and prop == "heat_ref" else 0
    log(f"{n} training crystals of {len(full)} in {request.data} ({len(held)} held out); conditioned on {prop!r}")
    flow_options = {"batch_size": batch, "lr": t.get("lr", 2e-3), "hidden": hidden, "depth": t.get("depth", 3),
                    "condition_dropout": t.get("condition_dropout", 0.1)}
    models = fit_crystal_models(table, prop, seed, cfm_steps=steps, surrogate_steps=judge_steps,
                                gbr_estimators=TRAIN_DEFAULTS["gbr_estimators"] if judge else None,
                                chgnet_rows=chgnet_rows, flow_options=flow_options, log=log,
                                show_progress=show_progress)
    out = Path(request.out)
    holdout_csv = None
    if len(held):
        holdout_csv = write_csv_rows(held, out / HOLDOUT_FILE)
    save_crystal_models(models, out, {"data": str(Path(request.data).resolve()), "seed": seed, "train_rows": n,
                                      "holdout_rows": len(held), "holdout": holdout,
                                      "split": f"split_indices(rows, ({1 - holdout:g}, {holdout:g}), seed={seed})"
                                               if holdout > 0 else "none: every row trains",
                                      "settings": {"steps": steps, "batch_size": batch, "hidden": hidden,
                                                   "judge_steps": judge_steps, **flow_options}})
    model = models.model
    scores: dict[str, Any] = {"kind": "surrogate (MLP) + independent judge (gradient boosting)" if judge
                              else "surrogate (MLP)", "holdout_size": len(held)}
    if len(held):
        y = np.asarray(held.properties[prop], dtype=np.float64)
        for name, p in (("surrogate", models.surrogate), ("judge", models.independent)):
            if p is None:
                continue
            pred = p.predict(held.structures, held.formulas)
            scores[f"{name}_holdout_mae"] = float(np.abs(pred - y).mean())
            scores[f"{name}_holdout_r2"] = float(1 - ((pred - y) ** 2).sum() / max(((y - y.mean()) ** 2).sum(), 1e-12))
        scores["holdout_r2"] = [scores.get("judge_holdout_r2", scores.get("surrogate_holdout_r2"))]
    x = model.encode(table.structures[:64], table.formulas[:64])
    c = model.condition(table.properties[prop][:64])
    with torch.inference_mode():
        rt = {f"rk4_{k}_median_rel_error": float(model.codec(FixedGrid("rk4", k)).roundtrip_error(x, c).median())
              for k in (10, 20)}
        rmse = float(((model.encoder.decode(model.encoder.encode(x)) - x) ** 2).mean().sqrt()) if model.encoder else 0.0
    wall = time.perf_counter() - start
    log(f"trained in {wall:.0f} s; thresholds {', '.join(f'{k} {v:.3f}' for k, v in models.thresholds.items())}; "
        f"default target {models.lowest:.3f}" + (f"; held-out sources: {holdout_csv}" if holdout_csv else ""))
    summary = {"model_dir": str(out), "kind": "crystals", "shape": [model.dim], "flow_shape": [model.residual_dim],
               "num_classes": 0, "value_dim": 1, "property": prop, "train_rows": n, "holdout_rows": len(held),
               "holdout_csv": None if holdout_csv is None else str(holdout_csv),
               "encoder": {"kind": "whitening" if model.encoder else "none", "reconstruction_rmse": rmse},
               "steps": steps, "final_loss": model.info["final_loss"], "judge": scores, "roundtrip": rt,
               "thresholds": models.thresholds, "default_target": models.lowest, "wall_s": wall}
    resolved = {"steps": steps, "batch_size": batch, "hidden": hidden, "judge_steps": judge_steps, "property": prop,
                "holdout": holdout}
    return Trained(summary, resolved, list(model.info.get("losses") or []), steps)


DOMAIN = Domain(
    "crystals", BUILTINS,
    recognises_model=is_crystal_model, load_run=load_run, model_hint=CRYSTAL_CHECKPOINT,
    recognises_data=_recognises_data, train=train,
    data_hint="a CDVAE-format .csv (a cif column and the property column)",
    write_outputs=write_outputs, default_objectives=default_objectives, load_flow=load_flow,
    default_target="the lowest training value of the property (training.json 'lowest'), as the benchmark's REO",
)
"""The crystal domain (perovskites and other fixed-size crystals from CDVAE-format CSVs)."""
