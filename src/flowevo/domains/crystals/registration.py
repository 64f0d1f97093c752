"""The crystal domain's registration: ``crystals.*`` built-ins, the crystal MODEL_DIR loader, the CDVAE ``.csv``
trainer and the CIF output writer.

- **MODEL_DIR** (``crystal_flow.pt``, from ``flowevo train --data FILE.csv``): sources are a CDVAE-format
  CSV of crystals; the target is a value of the conditioning property; decoded candidates carry
  pymatgen structures (``Candidates.extra["structures"]``); the best edits are written as CIFs with
  ``crystals.json`` for the report.
- **training** (a ``.csv`` with a ``cif`` column): the property-conditioned flow plus an MLP surrogate
  of the property (``surrogate.json``) that the ``crystals.surrogate*`` built-ins read.

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
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from flowevo.domains.plugin import (BatchFn, Builtin, BuiltinContext, Domain, DomainRun, RunRequest, Trained,
                                    TrainRequest)

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["BUILTINS", "CRYSTAL_CHECKPOINT", "DEFAULT_PROPERTY", "DOMAIN", "SURROGATE_FILE", "is_crystal_model",
           "load_run", "train", "write_outputs"]

CRYSTAL_CHECKPOINT = "crystal_flow.pt"
SURROGATE_FILE = "surrogate.json"
DEFAULT_PROPERTY = "heat_ref"


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
                                        "1 where distances < min_dist or volume < min_volume (constraint: <= 0)"),
    "crystals.composition_valid": Builtin(_c_constraint("composition_validity"), "min", "other",
                                          "1 where SMACT rejects the composition (constraint: <= 0)"),
    "crystals.space_group": Builtin(_c_space_group(False), "max", "other", "spglib space-group number"),
    "crystals.space_group_changed": Builtin(_c_space_group(True), "min", "preservation",
                                            "1 where the space group differs from the source's"),
    "crystals.sites_changed": Builtin(_c_sites_changed, "min", "preservation", "sites changed vs the source (0..5)"),
    "crystals.fingerprint_distance": Builtin(_c_fingerprint, "min", "preservation",
                                             "distance of lattice + species fingerprints to the source"),
    "crystals.budget": Builtin(_c_budget, "min", "other", "edit-budget violation; params: budget (k1, k2, k1_bkept, "
                                                          "k2_bkept); constraint: <= 0"),
}


def default_objectives(ctx: BuiltinContext, has_class: bool, has_values: bool) -> list[str]:
    """The surrogate's distance to the target value and the fingerprint distance to the source.

    Raises:
        ValueError: the model folder has no surrogate.
    """
    if ctx.extra.get("surrogate") is None:
        raise ValueError("no objectives given and the crystal model has no surrogate.json: pass --objective "
                         "(a crystals.* built-in, package.module:function or path/file.py:function)")
    return ["crystals.surrogate_error", "crystals.fingerprint_distance"]


# ------------------------------------------------------------------------------------- model loader
def is_crystal_model(folder: str | Path) -> bool:
    """True for a MODEL_DIR written by the crystal training (``crystal_flow.pt``)."""
    return (Path(folder) / CRYSTAL_CHECKPOINT).is_file()


def load_run(request: RunRequest) -> DomainRun:
    """A crystal MODEL_DIR and a CDVAE-format CSV of sources -> the run's sources, conditions, codec and payload.

    ``extra`` holds what the ``crystals.*`` built-ins and :func:`write_outputs` read: ``representation``,
    ``source_structures`` (canonical, per row), ``surrogate`` (or None), ``property``, ``property_before``
    (per row) and ``target_value``.

    Raises:
        ValueError: sources that are not a CSV, or a target that is not one value of the property.
    """
    import numpy as np
    import torch

    from flowevo.domains.crystals.data import load_cdvae_csv
    from flowevo.domains.crystals.model import load_crystal_model
    from flowevo.domains.crystals.objectives import canonical_sources, structures_payload
    from flowevo.domains.crystals.predictors import load_predictor
    from flowevo.flow import FixedGrid

    r = request
    model = load_crystal_model(r.model_dir)
    sources = Path(r.sources)
    if sources.suffix.lower() != ".csv":
        raise ValueError(f"{sources}: a crystal model edits crystals from a CDVAE-format CSV (columns cif, "
                         f"{model.property}), not a {sources.suffix or 'suffix-less'} file")
    table = load_cdvae_csv(sources, properties=(model.property,), limit=None)
    if r.rows is not None:
        table = table.subset(list(range(min(r.rows, len(table)))))
    if r.target_class is not None or r.target_values is None or len(r.target_values) != 1:
        raise ValueError(f"optimize.target: a crystal model is conditioned on one value of {model.property!r}; "
                         f"give values=V (e.g. --target values=-0.5)")
    b = len(table)
    target_value = float(r.target_values[0])
    x = model.encode(table.structures, table.formulas)
    source = model.condition(table.properties[model.property])
    target = model.condition([r.target_values[0]] * b)
    codec = model.codec(FixedGrid(r.solver, r.solver_steps), guidance=r.guidance, strength=r.strength)
    surrogate_path = Path(r.model_dir) / SURROGATE_FILE
    surrogate = load_predictor(surrogate_path) if surrogate_path.is_file() else None
    extra = {"representation": model.representation, "source_structures": canonical_sources(table, model.representation),
             "surrogate": surrogate, "property": model.property, "target_value": target_value,
             "property_before": [float(v) for v in table.properties[model.property]]}
    physical = torch.as_tensor(np.asarray(table.properties[model.property], dtype=np.float32))[:, None]
    return DomainRun("crystals", "crystals", (int(model.dim),), x, None, physical, source, target, codec, model,
                     payload=structures_payload(model.representation), extra=extra)


# ------------------------------------------------------------------------------------- output writer
def write_outputs(run: DomainRun, run_dir: Path, best: Tensor, violation: Tensor) -> None:
    """CIFs of every source and best edit, and ``crystals.json`` (one row per source) for the report."""
    e = run.extra
    _write_crystals(run_dir, e["source_structures"], run.model.decode_structures(best), violation, e["surrogate"],
                    e["property"], e["property_before"], e["target_value"])


def _write_crystals(run_dir: Path, sources: list, edits: list, violation: Tensor, surrogate: Any, prop: str,
                    prop_before: list[float], target: float) -> None:
    """CIFs of every source and best edit, and ``crystals.json`` (one row per source) for the report."""
    from pymatgen.io.cif import CifWriter

    from flowevo.domains.crystals.validity import composition_valid, sites_changed, space_group, structure_valid
    from flowevo.jsonio import write_json

    def sg(s: Any) -> int | None:
        try:
            return int(space_group(s))
        except Exception:
            return None

    def symbols(s: Any) -> list[str]:
        return [sp.symbol for sp in s.species]

    (run_dir / "cif").mkdir(exist_ok=True)
    rows = []
    for i, (s, e) in enumerate(zip(sources, edits)):
        CifWriter(s).write_file(str(run_dir / "cif" / f"source_{i}.cif"))
        row: dict[str, Any] = {"index": i, "formula_before": s.composition.reduced_formula, "formula_after": None,
                               f"{prop}_before": prop_before[i], f"{prop}_target": target,
                               "sites_changed": None, "space_group_before": sg(s), "space_group_after": None,
                               "valid": False, "feasible": bool(violation[i] == 0),
                               "source_cif": f"cif/source_{i}.cif", "edit_cif": None}
        if e is not None:
            CifWriter(e).write_file(str(run_dir / "cif" / f"edit_{i}.cif"))
            row.update(formula_after=e.composition.reduced_formula, sites_changed=sites_changed(symbols(s), symbols(e)),
                       space_group_after=sg(e), valid=bool(structure_valid(e) and composition_valid(e)),
                       edit_cif=f"cif/edit_{i}.cif")
        if surrogate is not None:
            pair = [s] + ([e] if e is not None else [])
            pred = surrogate.predict(pair)
            row["surrogate_before"] = float(pred[0])
            row["surrogate_after"] = float(pred[1]) if e is not None else None
        rows.append(row)
    write_json(run_dir / "crystals.json", rows)


# ------------------------------------------------------------------------------------- trainer
def _recognises_data(path: Path) -> bool:
    if path.suffix.lower() != ".csv":
        return False
    with path.open(newline="") as fh:
        header = next(csv.reader(fh), [])
    return "cif" in header


def train(request: TrainRequest, show_progress: bool = True, log: Callable[[str], None] = lambda s: None) -> Trained:
    """The property-conditioned crystal flow, plus (``judge``) an MLP surrogate of the property, into MODEL_DIR.

    Reads ``property`` (default ``heat_ref``), ``max_rows``, ``steps``, ``batch_size``, ``hidden``, ``lr``, ``depth``,
    ``condition_dropout``, ``judge``, ``judge_steps`` and ``holdout`` from ``request.settings``.
    """
    import numpy as np
    import torch

    from flowevo.domains.crystals.data import load_cdvae_csv, split_indices
    from flowevo.domains.crystals.model import save_crystal_model, train_crystal_flow
    from flowevo.domains.crystals.predictors import fit_surrogate
    from flowevo.flow import FixedGrid

    t, seed = dict(request.settings), request.seed
    prop = t.get("property") or DEFAULT_PROPERTY
    start = time.perf_counter()
    table = load_cdvae_csv(request.data, properties=(prop,), limit=t.get("max_rows"))
    n = len(table)
    batch = t.get("batch_size") or min(256, n)
    steps = t.get("steps") or int(min(max(round(40 * n / batch), 500), 4000))
    hidden = t.get("hidden") or 128
    log(f"{n} crystals from {request.data}; conditioned on {prop!r}; {steps} flow steps")
    model = train_crystal_flow(table, property=prop, seed=seed, steps=steps, batch_size=batch, lr=t.get("lr", 2e-3),
                               hidden=hidden, depth=t.get("depth", 3), condition_dropout=t.get("condition_dropout", 0.1),
                               show_progress=show_progress)
    out = Path(request.out)
    out.mkdir(parents=True, exist_ok=True)
    save_crystal_model(model, out)
    judge = None
    judge_steps = None
    if t.get("judge", True):
        holdout = t.get("holdout", 0.1)
        judge_steps = t.get("judge_steps") or int(min(max(round(20 * n / batch), 300), 2000))
        tr, _, ho = split_indices(n, (1 - holdout, 0.0, holdout), seed=seed)
        surrogate = fit_surrogate(table.subset(tr), prop, seed, steps=judge_steps)
        surrogate.save(out / SURROGATE_FILE)
        judge = {"kind": "surrogate (MLP)", "holdout_size": len(ho)}
        if len(ho):
            held = table.subset(ho)
            pred = surrogate.predict(held.structures, held.formulas)
            y = np.asarray(held.properties[prop], dtype=np.float64)
            judge["holdout_mae"] = float(np.abs(pred - y).mean())
            judge["holdout_r2"] = [float(1 - ((pred - y) ** 2).sum() / max(((y - y.mean()) ** 2).sum(), 1e-12))]
    x = model.encode(table.structures[:64], table.formulas[:64])
    c = model.condition(table.properties[prop][:64])
    with torch.inference_mode():
        rt = {f"rk4_{k}_median_rel_error": float(model.codec(FixedGrid("rk4", k)).roundtrip_error(x, c).median())
              for k in (10, 20)}
        rmse = float(((model.encoder.decode(model.encoder.encode(x)) - x) ** 2).mean().sqrt()) if model.encoder else 0.0
    summary = {"model_dir": str(out), "kind": "crystals", "shape": [model.dim], "flow_shape": [model.residual_dim],
               "num_classes": 0, "value_dim": 1, "property": prop,
               "encoder": {"kind": "whitening" if model.encoder else "none", "reconstruction_rmse": rmse},
               "steps": steps, "final_loss": model.info["final_loss"], "judge": judge, "roundtrip": rt,
               "wall_s": time.perf_counter() - start}
    resolved = {"steps": steps, "batch_size": batch, "hidden": hidden, "judge_steps": judge_steps, "property": prop}
    return Trained(summary, resolved, list(model.info.get("losses") or []), steps)


DOMAIN = Domain(
    "crystals", BUILTINS,
    recognises_model=is_crystal_model, load_run=load_run, model_hint=CRYSTAL_CHECKPOINT,
    recognises_data=_recognises_data, train=train,
    data_hint="a CDVAE-format .csv (a cif column and the property column)",
    write_outputs=write_outputs, default_objectives=default_objectives,
)
"""The crystal domain (perovskites and other fixed-size crystals from CDVAE-format CSVs)."""
