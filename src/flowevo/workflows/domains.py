"""What an optimisation run needs from its domain, for the two kinds of MODEL_DIR.

- **generic** (``model.json``, from ``flowevo train --data FILE.npz``): sources are an ``.npz``
  (``x`` and their own ``c`` / ``v``); targets are a class and/or float values.
- **crystals** (``crystal_flow.pt``, from ``flowevo train --data FILE.csv``, a CDVAE-format CSV):
  sources are a CSV of crystals; the target is a value of the conditioning property; decoded
  candidates carry pymatgen structures (``Candidates.extra["structures"]``), best edits are
  written as CIFs with a table for the report.

:func:`load_domain` picks the kind from the folder's files.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn

from flowevo.config import Config, ConfigError
from flowevo.domains.generic import GenericModel, UserData, load_model, load_npz
from flowevo.flow import Condition, FixedGrid, ResidualCodec

__all__ = ["DomainRun", "load_domain", "is_crystal_model"]

CRYSTAL_CHECKPOINT = "crystal_flow.pt"
SURROGATE_FILE = "surrogate.json"


@dataclass
class DomainRun:
    """A domain's part of a run.

    Attributes:
        kind: ``"generic"`` or ``"crystals"``; data_kind: ``"vectors"``, ``"images"`` or ``"crystals"``.
        x: ``(B, *D)`` sources in data space; source / target: their conditions (batch B).
        codec: data <-> residuals; payload: the Evolver's payload hook (or None).
        judge / model: what built-ins read; extra: domain things for built-ins (representation,
            source structures, surrogate).
        write_outputs: ``fn(run_dir, best_decoded (B, *D), best_violation (B,)) -> None`` for domain files.
    """

    kind: str
    data_kind: str
    shape: tuple[int, ...]
    x: Tensor
    labels: Tensor | None
    values: Tensor | None
    source: Condition
    target: Condition
    codec: ResidualCodec
    model: Any
    judge: nn.Module | None = None
    payload: Callable[[Tensor], dict] | None = None
    class_names: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    write_outputs: Callable[[Path, Tensor, Tensor], None] = lambda run_dir, best, violation: None


def is_crystal_model(folder: str | Path) -> bool:
    """True for a MODEL_DIR written by the crystal training (``crystal_flow.pt``)."""
    return (Path(folder) / CRYSTAL_CHECKPOINT).is_file()


def _required(value: Any, key: str, flag: str) -> Any:
    if value is None:
        raise ConfigError(f"{key}: required (give {flag} or set it in the config file)")
    return value


def load_domain(config: Config) -> DomainRun:
    """Load model and sources named by ``config.optimize``; build conditions and codec."""
    o = config.optimize
    model_dir = Path(_required(o.model, "optimize.model", "--model MODEL_DIR"))
    sources = Path(_required(o.sources, "optimize.sources", "--sources FILE"))
    _required(o.target, "optimize.target", "--target (e.g. --target 2 or --target values=0.5)")
    if is_crystal_model(model_dir):
        return _crystals(config, model_dir, sources)
    return _generic(config, model_dir, sources)


# ------------------------------------------------------------------------------------- generic
def _source_condition(model: GenericModel, src: UserData) -> Condition:
    for key, what, need, have in (("c", "class ids", model.num_classes, src.labels),
                                  ("v", "float values", model.value_dim, src.values)):
        if need and have is None:
            raise ValueError(f"{src.path}: missing key {key!r}: the sources' own {what} are needed to invert them "
                             "(the model is conditioned on them)")
    try:
        return model.condition(labels=src.labels, values=src.values)
    except ValueError as exc:
        key = "c" if "class" in str(exc) else "v"
        raise ValueError(f"{src.path}: key {key!r}: {exc}") from None


def _generic(config: Config, model_dir: Path, sources: Path) -> DomainRun:
    o, t = config.optimize, config.optimize.target
    model = load_model(model_dir)
    src = load_npz(sources, require_condition=False)
    if src.shape != model.shape:
        raise ValueError(f"{src.path}: key 'x' holds samples of shape {src.shape}, but the model at {model_dir} "
                         f"was trained on {model.shape}")
    if o.rows is not None:
        src = src.subset(list(range(min(o.rows, len(src)))))
    source = _source_condition(model, src)
    if t.class_ is not None and not model.num_classes:
        raise ConfigError(f"optimize.target.class: this model has no classes (it is conditioned on "
                          f"{model.value_dim} float value(s)); give values=...")
    if t.values is not None and not model.value_dim:
        raise ConfigError("optimize.target.values: this model has no float conditions; give a class")
    b = len(src)
    try:
        target = model.condition(labels=None if t.class_ is None else [t.class_] * b,
                                 values=None if t.values is None else [t.values] * b)
    except ValueError as exc:
        raise ConfigError(f"optimize.target: {exc}") from None
    codec = model.codec(steps=o.solver_steps, method=o.solver, strength=o.strength, guidance=o.guidance)
    return DomainRun("generic", model.kind, model.shape, src.x, src.labels, src.values, source, target, codec, model,
                     judge=model.judge, class_names=model.class_names)


# ------------------------------------------------------------------------------------- crystals
def _crystals(config: Config, model_dir: Path, sources: Path) -> DomainRun:
    from flowevo.domains.crystals.data import load_cdvae_csv
    from flowevo.domains.crystals.model import load_crystal_model
    from flowevo.domains.crystals.objectives import canonical_sources, structures_payload
    from flowevo.domains.crystals.predictors import load_predictor

    o, t = config.optimize, config.optimize.target
    model = load_crystal_model(model_dir)
    if sources.suffix.lower() != ".csv":
        raise ValueError(f"{sources}: a crystal model edits crystals from a CDVAE-format CSV (columns cif, "
                         f"{model.property}), not a {sources.suffix or 'suffix-less'} file")
    table = load_cdvae_csv(sources, properties=(model.property,), limit=None)
    if o.rows is not None:
        table = table.subset(list(range(min(o.rows, len(table)))))
    if t.class_ is not None or t.values is None or len(t.values) != 1:
        raise ConfigError(f"optimize.target: a crystal model is conditioned on one value of {model.property!r}; "
                          f"give values=V (e.g. --target values=-0.5)")
    b = len(table)
    x = model.encode(table.structures, table.formulas)
    source = model.condition(table.properties[model.property])
    target = model.condition([t.values[0]] * b)
    codec = model.codec(FixedGrid(o.solver, o.solver_steps), guidance=o.guidance, strength=o.strength)
    surrogate_path = model_dir / SURROGATE_FILE
    surrogate = load_predictor(surrogate_path) if surrogate_path.is_file() else None
    src_structs = canonical_sources(table, model.representation)
    extra = {"representation": model.representation, "source_structures": src_structs, "surrogate": surrogate,
             "property": model.property}

    def write_outputs(run_dir: Path, best: Tensor, violation: Tensor) -> None:
        _write_crystals(run_dir, src_structs, model.decode_structures(best), violation, surrogate, model.property,
                        [float(v) for v in table.properties[model.property]], t.values[0])

    physical = torch.as_tensor(np.asarray(table.properties[model.property], dtype=np.float32))[:, None]
    return DomainRun("crystals", "crystals", (int(model.dim),), x, None, physical, source, target, codec, model,
                     payload=structures_payload(model.representation), extra=extra, write_outputs=write_outputs)


def _write_crystals(run_dir: Path, sources: list, edits: list, violation: Tensor, surrogate: Any, prop: str,
                    prop_before: list[float], target: float) -> None:
    """CIFs of every source and best edit, and ``crystals.json`` (one row per source) for the report."""
    from pymatgen.io.cif import CifWriter

    from flowevo.domains.crystals.validity import composition_valid, sites_changed, space_group, structure_valid

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
        rows.append({k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in _plain(row).items()})
    (run_dir / "crystals.json").write_text(json.dumps(rows, indent=2))


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """numpy scalars -> Python."""
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
