"""The one CIF / edit-row writer: CIFs round-trip through pymatgen, rows hold the before/after figures."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("pymatgen")

from pymatgen.core import Structure  # noqa: E402

from flowevo.domains.crystals.outputs import edit_rows, write_cifs, write_edit_outputs  # noqa: E402


def _z(structures):
    return np.array([float(s.species[0].Z) for s in structures])


def test_write_edit_outputs_round_trips_through_pymatgen(tmp_path, perovskite):
    sources = [perovskite("Sr", "Ti", ("O", "O", "O"), 3.9), perovskite("Ba", "Zr", ("O", "O", "N"), 4.2)]
    edits = [perovskite("Ca", "Ti", ("O", "O", "F"), 3.9), None]
    rows = write_edit_outputs(tmp_path, sources, edits, [0.0, 1.0], {"surrogate": _z},
                              {"heat_ref_before": [0.5, 0.7], "heat_ref_target": -1.0})
    assert (tmp_path / "crystals.json").is_file() and json.loads((tmp_path / "crystals.json").read_text()) == rows
    for i, s in enumerate(sources):
        back = Structure.from_file(str(tmp_path / rows[i]["source_cif"]))
        assert back.composition == s.composition and np.allclose(back.lattice.abc, s.lattice.abc)
        assert rows[i]["source_cif"] == f"cif/source_{i}.cif"
    back = Structure.from_file(str(tmp_path / rows[0]["edit_cif"]))
    assert back.composition.reduced_formula == "CaTiO2F" and back.composition == edits[0].composition
    assert rows[1]["edit_cif"] is None and not (tmp_path / "cif" / "edit_1.cif").exists()
    r0, r1 = rows
    assert (r0["formula_before"], r0["formula_after"], r0["sites_changed"]) == ("SrTiO3", "CaTiO2F", 2)
    assert r0["surrogate_before"] == 38.0 and r0["surrogate_after"] == 20.0
    assert r0["space_group_before"] == 221 and r0["feasible"] and r0["heat_ref_target"] == -1.0
    assert (r1["formula_after"], r1["sites_changed"], r1["space_group_after"], r1["surrogate_after"]) == (None,) * 4
    assert r1["valid"] is False and r1["feasible"] is False and r1["heat_ref_before"] == 0.7


def test_validity_uses_the_one_stated_setting(perovskite):
    src = perovskite("Sr", "Ti")
    # KTiO3 needs Ti(+5) or O(-1): SMACT's icsd24 table accepts it, the stated setting (icsd24_common) does
    # not, nor an alloy; SrTiO3 passes
    rows = edit_rows([src] * 3, [perovskite("Sr", "Ti", ("O", "O", "O")), perovskite("K", "Ti", ("O", "O", "O")),
                                 perovskite("Cu", "Zn", ("Al", "Al", "Al"))])
    assert [r["valid"] for r in rows] == [True, False, False] and "feasible" not in rows[0]
    with pytest.raises(ValueError, match="edits"):
        edit_rows([src], [])


def test_write_cifs_names_only_what_exists(tmp_path, perovskite):
    names = write_cifs(tmp_path / "d", [perovskite(), None, perovskite("Ba")], prefix="x_")
    assert names == ["x_0.cif", None, "x_2.cif"] and sorted(p.name for p in (tmp_path / "d").iterdir()) == names[::2]


def test_edits_csv_and_pictures(tmp_path, perovskite):
    import csv

    sources = [perovskite("Sr", "Ti"), perovskite("Ba", "Zr"), perovskite("Ca", "Ti")]
    edits = [perovskite("Sr", "Nb", ("O", "O", "N")), None, perovskite("Ba", "Ti", ("O", "F", "O"))]
    rows = write_edit_outputs(tmp_path, sources, edits, [0.0, 1.0, 0.0], {"judge": _z}, {"id": ["a", "b", "c"]},
                              csv_name="edits.csv", pictures=2)
    assert [r["b_kept"] for r in rows] == [False, None, True]
    assert [r["source_png"] for r in rows] == ["cif/source_0.png", "cif/source_1.png", None]
    assert [r["edit_png"] for r in rows] == ["cif/edit_0.png", None, None]  # only the first two drawn
    assert (tmp_path / "cif" / "edit_0.png").is_file() and not (tmp_path / "cif" / "edit_2.png").exists()
    with (tmp_path / "edits.csv").open(newline="") as fh:
        lines = list(csv.DictReader(fh))
    assert list(lines[0])[:8] == ["index", "source_formula", "edit_formula", "edit_cif", "sites_changed", "b_kept",
                                  "valid", "feasible"]
    assert {"judge_source", "judge_edit", "space_group_source", "space_group_edit", "id", "source_cif"} <= set(lines[0])
    first = (lines[0]["source_formula"], lines[0]["edit_formula"], lines[0]["sites_changed"])
    assert first == ("SrTiO3", "SrNbNO2", "2")
    assert (lines[0]["sites_source"], lines[0]["sites_edit"]) == ("Sr Ti O O O", "Sr Nb O O N")  # A and B by place
    assert lines[1]["edit_formula"] == "" and lines[1]["judge_edit"] == "" and lines[1]["feasible"] == "False"
    assert float(lines[2]["judge_edit"]) == 56.0 and lines[2]["judge_source"] == "20.0" and lines[2]["id"] == "c"


def test_predictors_are_called_once_on_sources_then_edits(perovskite):
    calls = []

    def judge(structures):
        calls.append([s.composition.reduced_formula for s in structures])
        return _z(structures)

    rows = edit_rows([perovskite("Sr"), perovskite("Ba")], [None, perovskite("Ca")], predictors={"judge": judge})
    assert calls == [["SrTiO3", "BaTiO3", "CaTiO3"]]
    assert (rows[0]["judge_after"], rows[1]["judge_before"], rows[1]["judge_after"]) == (None, 56.0, 20.0)
