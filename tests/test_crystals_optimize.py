"""Crystals through the same commands: train on a CDVAE CSV, optimise with crystals.* built-ins, CIFs in the report."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowevo.cli import app

VAL_CSV = Path(__file__).resolve().parents[1] / "../shared/data/perov_5/val.csv"
pytestmark = pytest.mark.skipif(not VAL_CSV.is_file(), reason=f"Perov-5 data not found at {VAL_CSV}")
runner = CliRunner()


def _ok(*args):
    out = runner.invoke(app, [str(a) for a in args])
    assert out.exit_code == 0, out.output
    return out


def test_crystal_train_optimize_report(tmp_path):
    pytest.importorskip("pymatgen")
    s = json.loads(_ok("train", "--data", VAL_CSV, "--out", tmp_path / "model", "--steps", 150,
                       "--set", "train.max_rows=200", "--set", "train.judge_steps=150", "--quiet", "--json").stdout)
    assert s["kind"] == "crystals" and s["flow_shape"] == [22] and s["judge"]["holdout_size"] == 20
    assert (tmp_path / "model" / "crystal_flow.pt").is_file() and (tmp_path / "model" / "surrogate.json").is_file()
    m = json.loads(_ok("optimize", "--model", tmp_path / "model", "--sources", VAL_CSV, "--rows", 2,
                       "--target", "values=-1.0", "--constraint", "crystals.structure_valid<=0",
                       "--constraint", "crystals.budget@budget=k2<=0", "--objective", "crystals.surrogate@min",
                       "--objective", "crystals.sites_changed", "--generations", 2, "--population", 4,
                       "--run-dir", tmp_path / "run", "--quiet", "--json").stdout)
    assert [o["role"] for o in m["objectives"]] == ["alignment", "preservation"] and m["failures"] == 0
    rows = json.loads((tmp_path / "run" / "crystals.json").read_text())
    assert len(rows) == 2 and all((tmp_path / "run" / r["source_cif"]).is_file() for r in rows)
    for r in rows:
        if r["feasible"] and r["edit_cif"]:
            assert r["sites_changed"] <= 2 and (tmp_path / "run" / r["edit_cif"]).read_text().startswith("# generated")
    html = (tmp_path / "run" / "report.html").read_text()
    assert 'href="cif/source_0.cif"' in html and "formula before" in html
    bad = runner.invoke(app, ["optimize", "--model", str(tmp_path / "model"), "--sources", str(VAL_CSV),
                              "--target", "2", "--run-dir", str(tmp_path / "r2"), "--quiet"])
    assert bad.exit_code == 2 and "heat_ref" in bad.output and "values=" in bad.output
