"""The crystal edits table of a report, from the rows a crystal run writes (``crystals.json``).

One compact row per source, fitting a 1280 px page: the source and its kept edit as small pictures of their
cells (changed sites ringed, ``source_png`` / ``edit_png``) above their formulas (each linked to its CIF) and
which element sits on A and on B; sites changed (and whether the B site was kept); space group before ->
after; every predictor's value before -> after (``<name>_before`` / ``<name>_after``: the surrogate, the
judge, CHGNet formation energy); the source's own property value; validity. Reads the rows only (no crystal
code), so the demo and the optimize run report show the same table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flowevo.report.html import Report

__all__ = ["PREDICTOR_NAMES", "crystal_edits_table"]

PREDICTOR_NAMES = {"surrogate": "surrogate", "judge": "judge", "independent": "judge (independent)",
                   "chgnet_formation": "CHGNet formation"}
"""Column titles of known predictors (others: their name with spaces)."""

_FIXED = {"index", "formula_before", "formula_after", "sites_before", "sites_after", "sites_changed", "b_kept",
          "space_group_before", "space_group_after", "valid", "feasible", "source_cif", "edit_cif", "source_png",
          "edit_png", "id"}


def _num(v: Any) -> str:
    return "–" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))


def _pair(a: Any, b: Any) -> str:
    return f"{_num(a)} → {_num(b)}" if b is not None else f"{_num(a)} → –"


def crystal_edits_table(r: Report, rows: Sequence[dict[str, Any]], unit: str = "eV/atom") -> None:
    """Add the table of ``rows`` (see the module doc) and a note on how to read it to ``r``."""
    if not rows:
        r.text("No sources were edited.")
        return
    keys = list(rows[0])
    predictors = [k[: -len("_before")] for k in keys if k.endswith("_before") and f"{k[:-7]}_after" in keys
                  and k not in _FIXED and not k.startswith(("formula", "space_group"))]
    columns = [k for k in keys if k not in _FIXED and not k.endswith(("_before", "_after", "_target"))
               and not any(k == f"{p}_before" for p in predictors)]
    own = [k for k in keys if k.endswith("_before") and k[: -len("_before")] not in predictors
           and k not in _FIXED]  # e.g. the source's DFT property
    table = []
    def roles(sites: Any) -> str | None:  # "Sr Ti O O O" -> "A Sr · B Ti": a reduced formula does not say
        parts = str(sites).split() if sites else []
        return f"A {parts[0]} · B {parts[1]}" if len(parts) >= 2 else None

    for e in rows:
        row: dict[str, Any] = {
            "#": e["index"],
            "source": e["formula_before"], "source_href": e.get("source_cif"), "source_img": e.get("source_png"),
            "source_note": roles(e.get("sites_before")),
            "edit": e["formula_after"] or "no edit kept", "edit_href": e.get("edit_cif"), "edit_img": e.get("edit_png"),
            "edit_note": roles(e.get("sites_after")) if e["formula_after"] else "no candidate met every constraint",
            "sites changed": _num(e.get("sites_changed")),
            "sites_note": None if e.get("b_kept") is None else ("B kept" if e["b_kept"] else "B changed"),
            "space group": _pair(e.get("space_group_before"), e.get("space_group_after")),
        }
        for p in predictors:
            row[PREDICTOR_NAMES.get(p, p.replace("_", " "))] = _pair(e.get(f"{p}_before"), e.get(f"{p}_after"))
        for k in own:
            row[k[: -len("_before")].replace("_", " ") + " (source)"] = _num(e.get(k))
        for k in columns:
            row[k.replace("_", " ")] = _num(e.get(k))
        row["valid"] = "yes" if e.get("valid") else "no"
        table.append(row)
    r.table(table, links={"source": "source_href", "edit": "edit_href"},
            images={"source": "source_img", "edit": "edit_img"},
            notes={"source": "source_note", "edit": "edit_note", "sites changed": "sites_note"}, compact=True)
    shown = ", ".join(PREDICTOR_NAMES.get(p, p) for p in predictors)
    r.text(f"Each source (left) and its kept edit: the best candidate that met every constraint (else none is kept). "
           f"Pictures: the unit cell, atoms coloured by element (VESTA colours), changed sites ringed in magenta; a "
           f"click on a formula opens its CIF (VESTA, pymatgen, ASE read it). Values before → after ({unit}): "
           f"{shown or 'none'}. Valid: distances and volume physical and SMACT accepts the composition.", note=True)
