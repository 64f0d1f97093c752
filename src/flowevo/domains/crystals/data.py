"""Loading CDVAE-format crystal CSVs (e.g. Perov-5) and deterministic splits.

The CSV has (at least) the columns ``material_id``, ``cif`` and the requested
property columns; ``formula`` is optional (CDVAE's Perov-5 lists A then B).
Parsing uses the stdlib :mod:`csv` module and pymatgen's CIF reader.
"""

from __future__ import annotations

import csv
import math
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["CrystalTable", "load_cdvae_csv", "load_edit_split", "split_indices", "write_csv_rows"]


@dataclass
class CrystalTable:
    """Parsed crystals with aligned metadata.

    ``structures[i]``, ``ids[i]``, ``formulas[i]`` and ``properties[k][i]``
    refer to the same material; ``properties[k]`` has shape (N,) float64.
    ``skipped`` lists ``(row id, reason)`` for every row that was dropped; ``rows[i]`` is the data-row
    number (0-based, header excluded) of ``structures[i]`` in the file at ``path`` (empty when not read
    from a file).
    """

    structures: list  # list[pymatgen.core.Structure]
    ids: list[str]
    formulas: list[str]
    properties: dict[str, np.ndarray]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    path: str = ""
    rows: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.structures)

    def subset(self, indices: Sequence[int] | np.ndarray) -> CrystalTable:
        """Rows ``indices`` as a new table (``skipped`` is carried over)."""
        idx = [int(i) for i in np.asarray(indices).reshape(-1)]
        return CrystalTable(
            structures=[self.structures[i] for i in idx],
            ids=[self.ids[i] for i in idx],
            formulas=[self.formulas[i] for i in idx],
            properties={k: v[idx] for k, v in self.properties.items()},
            skipped=list(self.skipped),
            path=self.path,
            rows=[self.rows[i] for i in idx] if self.rows else [],
        )


_CELL_KEYS = tuple(
    "_cell_length_" + k for k in "abc"
) + tuple("_cell_angle_" + k for k in ("alpha", "beta", "gamma"))


def _num(token: str) -> float:
    """CIF number, dropping a standard uncertainty such as ``1.23(4)``."""
    return float(token.split("(", 1)[0])


def _parse_p1_cif(text: str):
    """Fast reader for simple P1 CIFs as written by pymatgen, else ``None``.

    Handles one data block, symmetry operation ``x, y, z`` only, and one
    ``_atom_site_`` loop with full occupancy; anything else returns ``None``
    so the caller falls back to pymatgen's full CIF parser.  Sites keep the
    CIF order.
    """
    from pymatgen.core import Lattice, Structure

    lines = [ln.strip() for ln in text.splitlines()]
    if sum(ln.startswith("data_") for ln in lines) != 1:
        return None
    cell: dict[str, float] = {}
    i, n = 0, len(lines)
    atoms: list[list[str]] = []
    header: list[str] = []
    while i < n:
        ln = lines[i]
        if ln.startswith("_cell_"):
            key, *rest = ln.split()
            if key in _CELL_KEYS and rest:
                cell[key] = _num(rest[0])
        elif ln == "loop_":
            cols = []
            i += 1
            while i < n and lines[i].startswith("_"):
                cols.append(lines[i].split()[0])
                i += 1
            body = []
            while i < n and lines[i] and not lines[i].startswith(("_", "loop_", "data_", "#")):
                body.append(lines[i])
                i += 1
            if any(c.startswith("_symmetry_equiv_pos") or c.startswith("_space_group_symop") for c in cols):
                ops = [b.split(None, 1)[-1].strip("'\" ").replace(" ", "").lower() for b in body]
                if ops != ["x,y,z"]:
                    return None
            elif cols and cols[0].startswith("_atom_site_") and not cols[0].startswith("_atom_site_aniso"):
                if atoms:
                    return None
                header, atoms = cols, [b.split() for b in body]
            continue
        i += 1
    need = ("_atom_site_type_symbol", "_atom_site_fract_x", "_atom_site_fract_y", "_atom_site_fract_z")
    if len(cell) != 6 or not atoms or any(c not in header for c in need):
        return None
    col = {c: j for j, c in enumerate(header)}
    species, coords = [], []
    for a in atoms:
        if len(a) != len(header):
            return None
        occ = col.get("_atom_site_occupancy")
        if occ is not None and abs(_num(a[occ]) - 1.0) > 1e-6:
            return None
        species.append(a[col["_atom_site_type_symbol"]])
        coords.append([_num(a[col[c]]) for c in need[1:]])
    lat = Lattice.from_parameters(*(cell[k] for k in _CELL_KEYS))
    return Structure(lat, species, coords)


def _parse_cif(text: str):
    """One pymatgen Structure from CIF text (ordered, no primitive reduction).

    Tries :func:`_parse_p1_cif` first (about 10x faster), then pymatgen's
    ``CifParser``.
    """
    from pymatgen.io.cif import CifParser

    try:
        fast = _parse_p1_cif(text)
    except (ValueError, KeyError, IndexError):
        fast = None
    if fast is not None:
        return fast

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen warns about rounding etc.
        structures = CifParser.from_str(text).parse_structures(primitive=False)
    if not structures:
        raise ValueError("CIF holds no structure")
    return structures[0]


def load_cdvae_csv(
    path: str | Path,
    properties: Sequence[str] = ("heat_ref",),
    limit: int | None = None,
) -> CrystalTable:
    """Read a CDVAE-format CSV into a :class:`CrystalTable`.

    Rows with an unparsable/empty CIF, a missing or non-finite property, or a
    number of sites different from the first good row are skipped, recorded
    in ``skipped`` and summarised by one ``warnings.warn``.  ``limit`` caps
    the number of CSV rows read (not the number kept).

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` when the
    ``cif``/property columns are missing or no row is usable.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"crystal CSV not found: {p}")
    properties = tuple(properties)
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    with p.open(newline="") as fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        if "cif" not in columns:
            raise ValueError(f"{p}: no 'cif' column (columns: {columns})")
        missing = [k for k in properties if k not in columns]
        if missing:
            raise ValueError(f"{p}: missing property column(s) {missing} (columns: {columns})")
        rows = []
        for i, row in enumerate(reader):
            if limit is not None and i >= limit:
                break
            rows.append((i, row))

    structures, ids, formulas, kept = [], [], [], []
    values: dict[str, list[float]] = {k: [] for k in properties}
    skipped: list[tuple[str, str]] = []
    n_sites: int | None = None
    for i, row in rows:
        rid = (row.get("material_id") or "").strip() or f"row{i}"
        reason = None
        vals: dict[str, float] = {}
        for k in properties:
            raw = (row.get(k) or "").strip()
            try:
                v = float(raw)
            except ValueError:
                reason = f"property {k!r} is missing or not a number ({raw!r})"
                break
            if not math.isfinite(v):
                reason = f"property {k!r} is not finite ({raw!r})"
                break
            vals[k] = v
        if reason is None:
            try:
                s = _parse_cif(row.get("cif") or "")
                if n_sites is None:
                    n_sites = len(s)
                elif len(s) != n_sites:
                    reason = f"{len(s)} sites, expected {n_sites} (as in the first row)"
            except Exception as exc:  # pymatgen raises many types on bad CIFs
                reason = f"CIF does not parse: {type(exc).__name__}: {exc}"[:300]
        if reason is not None:
            skipped.append((rid, reason))
            continue
        structures.append(s)
        kept.append(i)
        ids.append(rid)
        formulas.append((row.get("formula") or "").strip() or s.composition.formula.replace(" ", ""))
        for k in properties:
            values[k].append(vals[k])

    if skipped:
        shown = "; ".join(f"{r}: {why}" for r, why in skipped[:5])
        more = f" (and {len(skipped) - 5} more)" if len(skipped) > 5 else ""
        warnings.warn(f"{p}: skipped {len(skipped)} of {len(rows)} rows: {shown}{more}", stacklevel=2)
    if not structures:
        raise ValueError(f"{p}: no usable rows ({len(rows)} read, {len(skipped)} skipped)")
    return CrystalTable(
        structures=structures,
        ids=ids,
        formulas=formulas,
        properties={k: np.asarray(v, dtype=np.float64) for k, v in values.items()},
        skipped=skipped,
        path=str(p),
        rows=kept,
    )


def write_csv_rows(table: CrystalTable, out: str | Path) -> Path:
    """Copy ``table``'s rows, exactly as they are in its source CSV (``table.path``; every column, the CIF
    text unchanged), to the CSV ``out``, in ``table``'s order; returns ``out``.

    Raises:
        ValueError: ``table`` was not read from a file (no ``path`` / ``rows``).
    """
    if not table.path or len(table.rows) != len(table):
        raise ValueError("write_csv_rows needs a table read by load_cdvae_csv (it copies rows of table.path)")
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    wanted = set(table.rows)
    with Path(table.path).open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        found = {i: row for i, row in enumerate(reader) if i in wanted}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(found[i] for i in table.rows)
    return out


def split_indices(
    n: int, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0
) -> tuple[np.ndarray, ...]:
    """Deterministic random split of ``range(n)`` into len(fractions) index arrays.

    Sizes are ``floor(f * n)`` plus the remainder by largest fractional part;
    every index appears exactly once.  Each array is sorted, dtype int64.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    f = np.asarray(fractions, dtype=np.float64)
    if f.ndim != 1 or len(f) == 0 or np.any(f < 0) or not np.isclose(f.sum(), 1.0):
        raise ValueError(f"fractions must be non-negative and sum to 1, got {tuple(fractions)}")
    sizes = np.floor(f * n).astype(np.int64)
    order = np.argsort(-(f * n - sizes), kind="stable")  # largest remainders first
    sizes[order[: int(n - sizes.sum())]] += 1
    perm = np.random.default_rng(seed).permutation(n)
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    return tuple(np.sort(perm[bounds[j] : bounds[j + 1]]) for j in range(len(sizes)))


def load_edit_split(
    data: str | Path,
    sources: str | Path | None = None,
    n: int = 100,
    seed: int = 0,
    max_rows: int | None = None,
    dev: bool = False,
    properties: Sequence[str] = ("heat_ref",),
) -> tuple[CrystalTable, CrystalTable, CrystalTable]:
    """``(full table, training table, sources)`` of an editing run on a CDVAE CSV.

    Without ``sources``: a 90/10 split of ``data`` (:func:`split_indices`, ``seed``); the sources are the
    first ``n`` held-out rows. With ``sources`` (another CSV): all of ``data`` trains, the sources are its
    first ``n`` rows. ``dev=True``: the training part is split again 90/10 (``seed + 1``); models train on
    the first part and the sources are the first ``n`` rows of the second (the held-out rows stay unseen,
    and the full table holds only the dev part). ``max_rows`` caps the rows read from ``data``.
    """
    if n < 1:
        raise ValueError(f"--n must be at least 1, got {n}")
    table = load_cdvae_csv(data, properties, limit=max_rows)
    if sources is not None:
        if dev:
            raise ValueError("--dev splits --data itself; it cannot be combined with --sources")
        src = load_cdvae_csv(sources, properties)
        return table, table, src.subset(range(min(n, len(src))))
    train_idx, held = split_indices(len(table), (0.9, 0.1), seed)
    if dev:
        inner, held_in = split_indices(len(train_idx), (0.9, 0.1), seed + 1)
        train_idx, held = train_idx[inner], train_idx[held_in]
        table = table.subset(train_idx.tolist() + held.tolist())  # labels only from the dev part
        train_idx, held = np.arange(len(inner)), np.arange(len(inner), len(inner) + len(held))
    if len(held) == 0:
        raise ValueError(f"{data}: too few rows ({len(table)}) to hold out sources")
    return table, table.subset(train_idx), table.subset(held[:n])
