"""What a crystal edit run writes: CIFs of sources and edits, and one row of figures per edit.

* :func:`write_cifs`: ``directory/<prefix><i>.cif`` for every Structure that is not ``None``
  (pymatgen's ``CifWriter``; the one place CIFs are written).
* :func:`edit_rows`: per source, the before/after figures of its edit: formulas, sites changed, space
  groups, validity (:func:`~.validity.crystal_valid`, SMACT setting :data:`~.validity.SMACT_SET`), the
  constraint verdict (``feasible``, when violations are given), any predictor's value before and after
  (e.g. the surrogate, an independent judge, CHGNet formation energy) and per-source columns.
* :func:`write_edit_outputs`: both, the layout of a run directory: ``cif/source_<i>.cif``,
  ``cif/edit_<i>.cif`` and ``crystals.json`` (the rows, with each row's CIF paths).

A missing edit (``None``: nothing feasible, or nothing that could be built) has ``None`` for every
"after" figure, ``valid`` False and no edit CIF.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from flowevo.jsonio import strict_json

from .validity import SMACT_SET, CompositionCheck, crystal_valid, sites_changed, space_group

__all__ = ["edit_rows", "write_cifs", "write_edit_outputs"]

Predictor = Callable[[list], Any]  # structures -> (N,) values


def write_cifs(directory: str | Path, structures: Sequence[Any], prefix: str = "") -> list[str | None]:
    """``directory/<prefix><i>.cif`` for every ``structures[i]`` that is not ``None``; returns each file's
    name (``None`` where nothing was written)."""
    from pymatgen.io.cif import CifWriter

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    names: list[str | None] = []
    for i, s in enumerate(structures):
        if s is None:
            names.append(None)
            continue
        name = f"{prefix}{i}.cif"
        CifWriter(s).write_file(str(directory / name))
        names.append(name)
    return names


def _space_group(s: Any) -> int | None:
    try:
        return int(space_group(s))
    except Exception:  # spglib fails on degenerate cells
        return None


def edit_rows(sources: Sequence[Any], edits: Sequence[Any], violation: Sequence[float] | Any | None = None,
              predictors: Mapping[str, Predictor] | None = None,
              columns: Mapping[str, Sequence[Any] | Any] | None = None,
              composition: CompositionCheck | None = None) -> list[dict[str, Any]]:
    """One dict per source: the before/after figures of its edit (see the module doc).

    Args:
        sources: canonical source Structures ``(B,)``.
        edits: each source's edit Structure, or ``None`` (no edit kept).
        violation: ``(B,)`` constraint violation of each edit (adds ``feasible``: violation 0 and an edit).
        predictors: name -> ``structures -> (N,)`` values (e.g. ``{"surrogate": surrogate.predict,
            "chgnet_formation": formation}``); adds ``<name>_before`` / ``<name>_after``. Each is called
            on ``[source, edit]`` per row.
        columns: name -> ``(B,)`` values or one value for every row, added as they are (e.g. the sources'
            DFT property, the target).
        composition: the composition check of ``valid`` (default: :data:`~.validity.SMACT_SET`).

    Keys in order: ``index, formula_before, formula_after, sites_changed, space_group_before,
    space_group_after``, the predictors' pairs, ``valid``, ``feasible`` (with ``violation``), the columns.
    """
    if len(edits) != len(sources):
        raise ValueError(f"{len(edits)} edits for {len(sources)} sources")
    check = composition or CompositionCheck(SMACT_SET)
    viol = None if violation is None else [float(v) for v in np.asarray(violation, dtype=np.float64).reshape(-1)]
    if viol is not None and len(viol) != len(sources):
        raise ValueError(f"{len(viol)} violations for {len(sources)} sources")
    rows = []
    for i, (src, new) in enumerate(zip(sources, edits)):
        row: dict[str, Any] = {
            "index": i, "formula_before": src.composition.reduced_formula,
            "formula_after": new.composition.reduced_formula if new is not None else None,
            "sites_changed": sites_changed(src, new) if new is not None else None,
            "space_group_before": _space_group(src),
            "space_group_after": _space_group(new) if new is not None else None,
        }
        pair = [src] + ([new] if new is not None else [])
        for name, fn in (predictors or {}).items():
            v = np.asarray(fn(pair), dtype=np.float64).reshape(-1)
            row[f"{name}_before"] = float(v[0])
            row[f"{name}_after"] = float(v[1]) if new is not None else None
        row["valid"] = bool(crystal_valid(new, check))
        if viol is not None:
            row["feasible"] = bool(new is not None and viol[i] == 0)
        for name, col in (columns or {}).items():
            row[name] = col[i] if isinstance(col, (list, tuple, np.ndarray)) else col
        rows.append(strict_json(row))
    return rows


def write_edit_outputs(run_dir: str | Path, sources: Sequence[Any], edits: Sequence[Any],
                       violation: Sequence[float] | Any | None = None,
                       predictors: Mapping[str, Predictor] | None = None,
                       columns: Mapping[str, Sequence[Any] | Any] | None = None, cif_dir: str = "cif",
                       table: str | None = "crystals.json", composition: CompositionCheck | None = None
                       ) -> list[dict[str, Any]]:
    """Write ``run_dir/<cif_dir>/source_<i>.cif``, ``edit_<i>.cif`` (kept edits) and ``run_dir/<table>``;
    return the rows of :func:`edit_rows` with ``source_cif`` / ``edit_cif`` (paths relative to ``run_dir``,
    ``edit_cif`` None without an edit). ``table=None`` writes no JSON.

    Example (``sources`` and ``edits`` from a site-masked REO run, ``violation = result.best.violation``)::

        write_edit_outputs(run_dir, sources, edits, violation, {"surrogate": surrogate.predict},
                           {"heat_ref_before": list(table.properties["heat_ref"]), "heat_ref_target": -1.0})
    """
    run_dir = Path(run_dir)
    rows = edit_rows(sources, edits, violation, predictors, columns, composition)
    src_names = write_cifs(run_dir / cif_dir, sources, "source_")
    edit_names = write_cifs(run_dir / cif_dir, edits, "edit_")
    for row, s, e in zip(rows, src_names, edit_names):
        row["source_cif"] = f"{cif_dir}/{s}"
        row["edit_cif"] = f"{cif_dir}/{e}" if e is not None else None
    if table is not None:
        (run_dir / table).write_text(json.dumps(rows, indent=2))
    return rows
