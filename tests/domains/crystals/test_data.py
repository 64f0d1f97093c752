"""Tests for flowevo.domains.crystals.data (CDVAE CSV loading, splits)."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pymatgen")

from flowevo.domains.crystals.data import CrystalTable, load_cdvae_csv, split_indices, write_csv_rows  # noqa: E402

VAL_CSV = Path(__file__).resolve().parents[3] / "../shared/data/perov_5/val.csv"
needs_val = pytest.mark.skipif(not VAL_CSV.is_file(), reason=f"Perov-5 data not found at {VAL_CSV}")

GOOD_CIF = """# generated using pymatgen
data_SrTiO3
_symmetry_space_group_name_H-M   'P 1'
_cell_length_a   3.905
_cell_length_b   3.905
_cell_length_c   3.905
_cell_angle_alpha   90.0
_cell_angle_beta   90.0
_cell_angle_gamma   90.0
_symmetry_Int_Tables_number   1
loop_
 _symmetry_equiv_pos_site_id
 _symmetry_equiv_pos_as_xyz
  1  'x, y, z'
loop_
 _atom_site_type_symbol
 _atom_site_label
 _atom_site_symmetry_multiplicity
 _atom_site_fract_x
 _atom_site_fract_y
 _atom_site_fract_z
 _atom_site_occupancy
  Sr  Sr0  1  0.0  0.0  0.0  1
  Ti  Ti1  1  0.5  0.5  0.5  1
  O  O2  1  0.5  0.5  0.0  1
  O  O3  1  0.5  0.0  0.5  1
  O  O4  1  0.0  0.5  0.5  1
"""


def _write(path: Path, rows: list[dict], columns=("", "material_id", "cif", "formula", "heat_ref")) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns))
        w.writeheader()
        for r in rows:
            w.writerow(r)
    return path


def _row(i: int, mid: str, cif: str = GOOD_CIF, heat: str = "1.5") -> dict:
    return {"": str(i), "material_id": mid, "cif": cif, "formula": "SrTiO3", "heat_ref": heat}


@needs_val
def test_loads_val_csv():
    t0 = time.perf_counter()
    table = load_cdvae_csv(VAL_CSV, properties=("heat_ref", "dir_gap"))
    elapsed = time.perf_counter() - t0
    assert len(table) == 3787 and not table.skipped
    assert len(table.ids) == len(table.formulas) == len(table.structures) == 3787
    assert table.properties["heat_ref"].shape == (3787,) and np.isfinite(table.properties["dir_gap"]).all()
    assert all(len(s) == 5 for s in table.structures)
    assert len(set(table.ids)) == 3787
    assert elapsed < 20.0  # about 0.7 s with the fast P1 reader
    sub = table.subset([0, 2])
    assert sub.ids == [table.ids[0], table.ids[2]]


@needs_val
def test_limit_and_fast_reader_agree_with_pymatgen():
    import warnings

    from pymatgen.io.cif import CifParser

    table = load_cdvae_csv(VAL_CSV, limit=40)
    assert len(table) == 40
    with VAL_CSV.open(newline="") as fh:
        cifs = [r["cif"] for _, r in zip(range(40), csv.DictReader(fh))]
    for s, cif in zip(table.structures, cifs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = CifParser.from_str(cif).parse_structures(primitive=False)[0]
        assert np.allclose(s.lattice.matrix, ref.lattice.matrix, atol=1e-6)
        key = lambda st: sorted((x.specie.symbol, *np.round(x.frac_coords % 1.0, 3)) for x in st)  # noqa: E731
        assert [k[0] for k in key(s)] == [k[0] for k in key(ref)]
        assert np.allclose([k[1:] for k in key(s)], [k[1:] for k in key(ref)], atol=2e-3)


def test_malformed_rows_reported_and_skipped(tmp_path):
    six_sites = GOOD_CIF.replace("  O  O4  1  0.0  0.5  0.5  1\n", "  O  O4  1  0.0  0.5  0.5  1\n  O  O5  1  0.2  0.2  0.2  1\n")
    path = _write(
        tmp_path / "bad.csv",
        [
            _row(0, "good1"),
            _row(1, "brokencif", cif="data_x\n_cell_length_a  oops\nthis is not a cif"),
            _row(2, "nanprop", heat="nan"),
            _row(3, "emptyprop", heat=""),
            _row(4, "sixsites", cif=six_sites),
            _row(5, "good2"),
        ],
    )
    with pytest.warns(UserWarning, match="skipped 4 of 6 rows") as rec:
        table = load_cdvae_csv(path)
    message = str(rec[0].message)
    assert "brokencif" in message and "nanprop" in message and str(path) in message
    assert table.ids == ["good1", "good2"]
    reasons = dict(table.skipped)
    assert set(reasons) == {"brokencif", "nanprop", "emptyprop", "sixsites"}
    assert "CIF" in reasons["brokencif"] and "heat_ref" in reasons["nanprop"] and "6 sites" in reasons["sixsites"]
    assert table.properties["heat_ref"].tolist() == [1.5, 1.5]


def test_write_csv_rows_copies_kept_rows_verbatim(tmp_path):
    path = _write(tmp_path / "in.csv", [_row(0, "good1"), _row(1, "bad", heat="nan"), _row(2, "good2"),
                                        _row(3, "good3")])
    with pytest.warns(UserWarning):
        table = load_cdvae_csv(path)
    assert table.rows == [0, 2, 3] and table.subset([2, 0]).rows == [3, 0]
    out = write_csv_rows(table.subset([2, 0]), tmp_path / "sub" / "out.csv")
    with path.open(newline="") as fh:
        original = list(csv.reader(fh))
    with out.open(newline="") as fh:
        copied = list(csv.reader(fh))
    assert copied == [original[0], original[4], original[1]]  # header, good3, good1: every cell as it was
    assert load_cdvae_csv(out).ids == ["good3", "good1"]
    with pytest.raises(ValueError, match="load_cdvae_csv"):
        write_csv_rows(CrystalTable([], [], [], {}), tmp_path / "x.csv")


def test_no_usable_rows_raises(tmp_path):
    path = _write(tmp_path / "allbad.csv", [_row(0, "a", heat="nan"), _row(1, "b", cif="garbage")])
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="no usable rows") as err:
        load_cdvae_csv(path)
    assert "allbad.csv" in str(err.value)


def test_missing_file_and_columns_raise(tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        load_cdvae_csv(missing)
    no_cif = _write(tmp_path / "nocif.csv", [], columns=("material_id", "heat_ref"))
    with pytest.raises(ValueError, match="nocif.csv.*'cif'"):
        load_cdvae_csv(no_cif)
    ok = _write(tmp_path / "ok.csv", [_row(0, "a")])
    with pytest.raises(ValueError, match="band_gap"):
        load_cdvae_csv(ok, properties=("heat_ref", "band_gap"))


def test_split_indices_deterministic_partition():
    parts = split_indices(101, (0.8, 0.1, 0.1), seed=3)
    assert [len(p) for p in parts] == [81, 10, 10]
    joined = np.concatenate(parts)
    assert sorted(joined.tolist()) == list(range(101))
    again = split_indices(101, (0.8, 0.1, 0.1), seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    other = split_indices(101, (0.8, 0.1, 0.1), seed=4)
    assert not np.array_equal(parts[1], other[1])
    assert [len(p) for p in split_indices(7, (0.5, 0.5, 0.0))] == [4, 3, 0]
    with pytest.raises(ValueError):
        split_indices(10, (0.5, 0.2))


@needs_val
def test_edit_split_holds_sources_out_and_dev_holds_them_out_too():
    from flowevo.domains.crystals.data import load_edit_split

    table, train, src = load_edit_split(VAL_CSV, n=5, seed=0, max_rows=200)
    assert len(table) == 200 and len(train) == 180 and len(src) == 5 and not set(src.ids) & set(train.ids)
    _, train_d, src_d = load_edit_split(VAL_CSV, n=5, seed=0, max_rows=200, dev=True)
    held = set(table.ids) - set(train.ids)
    assert len(train_d) == 162 and set(train_d.ids) | set(src_d.ids) <= set(train.ids)  # the benchmark rows stay unseen
    assert not set(src_d.ids) & set(train_d.ids) and not held & set(src_d.ids)
    with pytest.raises(ValueError, match="--dev"):
        load_edit_split(VAL_CSV, sources=VAL_CSV, n=5, dev=True, max_rows=50)
    with pytest.raises(ValueError, match="at least 1"):
        load_edit_split(VAL_CSV, n=0)
