"""What a crystal edit run writes: CIFs of sources and edits, and one row of figures per edit.

* :func:`write_cifs`: ``directory/<prefix><i>.cif`` for every Structure that is not ``None``
  (pymatgen's ``CifWriter``; the one place CIFs are written).
* :func:`edit_rows`: per source, the before/after figures of its edit: formulas, sites changed, space
  groups, validity (:func:`~.validity.crystal_valid`, SMACT setting :data:`~.validity.SMACT_SET`), the
  constraint verdict (``feasible``, when violations are given), any predictor's value before and after
  (e.g. the surrogate, an independent judge, CHGNet formation energy) and per-source columns.
* :func:`write_edit_outputs`: both, the layout of a run directory: ``cif/source_<i>.cif``,
  ``cif/edit_<i>.cif`` and ``crystals.json`` (the rows, with each row's CIF paths); optionally pictures of
  both cells next to the CIFs (``cif/source_<i>.png``, ``cif/edit_<i>.png``, :mod:`~.pictures`) and the same
  rows as a CSV with source/edit column names (:func:`csv_columns`, e.g. ``edits.csv``).

A missing edit (``None``: nothing feasible, or nothing that could be built) has ``None`` for every
"after" figure, ``valid`` False and no edit CIF.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from flowevo.jsonio import strict_json

from .validity import SMACT_SET, CompositionCheck, crystal_valid, sites_changed, space_group

__all__ = ["csv_columns", "edit_rows", "write_cifs", "write_edit_outputs"]

_CSV_FIRST = ("index", "source_formula", "edit_formula", "edit_cif", "sites_changed", "b_kept", "valid", "feasible",
              "sites_source", "sites_edit")

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


def _b_kept(src: Any, new: Any) -> bool | None:
    a, b = [sp.symbol for sp in src.species], [sp.symbol for sp in new.species]
    return a[1] == b[1] if len(a) > 1 and len(b) > 1 else None


def csv_columns(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row of :func:`edit_rows` / :func:`write_edit_outputs` under source/edit names, for CSV files:
    ``formula_before`` -> ``source_formula``, ``formula_after`` -> ``edit_formula``, ``<x>_before`` ->
    ``<x>_source``, ``<x>_after`` -> ``<x>_edit``; the other keys as they are. Order: index, source_formula,
    edit_formula, edit_cif, sites_changed, b_kept, valid, feasible, sites_source, sites_edit, then the rest as in
    ``row``."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        if k in ("formula_before", "formula_after"):
            k = "source_formula" if k.endswith("before") else "edit_formula"
        elif k.endswith("_before"):
            k = k[: -len("_before")] + "_source"
        elif k.endswith("_after"):
            k = k[: -len("_after")] + "_edit"
        out[k] = v
    first = {k: out[k] for k in _CSV_FIRST if k in out}
    return {**first, **{k: v for k, v in out.items() if k not in first}}


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
            once, on the sources followed by the edits there are.
        columns: name -> ``(B,)`` values or one value for every row, added as they are (e.g. the sources'
            DFT property, the target).
        composition: the composition check of ``valid`` (default: :data:`~.validity.SMACT_SET`).

    Keys in order: ``index, formula_before, formula_after, sites_before, sites_after`` (the elements in site
    order, e.g. ``"Sr Ti O O O"`` for [A, B, X, X, X]: reduced formulas do not say which element is A),
    ``sites_changed, b_kept`` (the B-site element unchanged), ``space_group_before, space_group_after``, the
    predictors' pairs, ``valid``, ``feasible`` (with ``violation``), the columns.
    """
    if len(edits) != len(sources):
        raise ValueError(f"{len(edits)} edits for {len(sources)} sources")
    check = composition or CompositionCheck(SMACT_SET)
    viol = None if violation is None else [float(v) for v in np.asarray(violation, dtype=np.float64).reshape(-1)]
    if viol is not None and len(viol) != len(sources):
        raise ValueError(f"{len(viol)} violations for {len(sources)} sources")
    predicted: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    have = [i for i, e in enumerate(edits) if e is not None]
    for name, fn in (predictors or {}).items():  # one call per predictor: sources, then the edits there are
        v = np.asarray(fn(list(sources) + [edits[i] for i in have]), dtype=np.float64).reshape(-1)
        after = np.full(len(sources), np.nan)
        after[have] = v[len(sources):]
        predicted[name] = (v[: len(sources)], after)
    rows = []
    for i, (src, new) in enumerate(zip(sources, edits)):
        row: dict[str, Any] = {
            "index": i, "formula_before": src.composition.reduced_formula,
            "formula_after": new.composition.reduced_formula if new is not None else None,
            "sites_before": " ".join(sp.symbol for sp in src.species),
            "sites_after": " ".join(sp.symbol for sp in new.species) if new is not None else None,
            "sites_changed": sites_changed(src, new) if new is not None else None,
            "b_kept": _b_kept(src, new) if new is not None else None,
            "space_group_before": _space_group(src),
            "space_group_after": _space_group(new) if new is not None else None,
        }
        for name, (before, after) in predicted.items():
            row[f"{name}_before"] = float(before[i])
            row[f"{name}_after"] = float(after[i]) if new is not None else None
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
                       table: str | None = "crystals.json", composition: CompositionCheck | None = None,
                       csv_name: str | None = None, pictures: int = 0) -> list[dict[str, Any]]:
    """Write ``run_dir/<cif_dir>/source_<i>.cif``, ``edit_<i>.cif`` (kept edits) and ``run_dir/<table>``;
    return the rows of :func:`edit_rows` with ``source_cif`` / ``edit_cif`` (paths relative to ``run_dir``,
    ``edit_cif`` None without an edit). ``table=None`` writes no JSON.

    ``pictures``: also draw the first ``pictures`` sources and their edits (:func:`~.pictures.draw_edit_pictures`,
    changed sites ringed) as ``<cif_dir>/source_<i>.png`` / ``edit_<i>.png``; the rows get ``source_png`` /
    ``edit_png`` (None where not drawn). ``csv_name``: also write the rows as ``run_dir/<csv_name>`` under
    :func:`csv_columns` names (one line per source; empty cells for missing values).

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
    if pictures > 0:
        from .pictures import draw_edit_pictures

        k = min(pictures, len(rows))
        src_png, edit_png = draw_edit_pictures(run_dir / cif_dir, sources[:k], edits[:k])
        for i, row in enumerate(rows):
            row["source_png"] = f"{cif_dir}/{src_png[i]}" if i < k else None
            row["edit_png"] = f"{cif_dir}/{edit_png[i]}" if i < k and edit_png[i] is not None else None
    if table is not None:
        (run_dir / table).write_text(json.dumps(rows, indent=2))
    if csv_name is not None:
        out = [csv_columns(r) for r in rows]
        with (run_dir / csv_name).open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(out[0]) if out else list(_CSV_FIRST))
            writer.writeheader()
            writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in out)
    return rows
