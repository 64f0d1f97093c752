"""Crystals benchmark and demo end to end on tiny settings, and their CLI input errors."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowevo.cli import app

VAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "perov_5" / "val.csv"
needs_data = pytest.mark.skipif(not VAL.is_file(), reason="Perov-5 val.csv not available")
runner = CliRunner()
TINY = dict(cfm_steps=150, surrogate_steps=200, gbr_estimators=30, chgnet_rows=40, max_rows=500)


@pytest.mark.parametrize("cmd", [["demo", "crystals"], ["benchmark", "crystals"]])
def test_help_shows_examples(cmd):
    out = runner.invoke(app, cmd + ["--help"])
    assert out.exit_code == 0 and "Example" in out.output


def test_missing_or_malformed_data_exits_2(tmp_path):
    out = runner.invoke(app, ["benchmark", "crystals", "--data", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o")])
    assert out.exit_code == 2 and "nope.csv" in out.output and "Traceback" not in out.output
    bad = tmp_path / "bad.csv"
    bad.write_text("material_id,cif,heat_ref\nx,not a cif,0.1\n")
    out = runner.invoke(app, ["demo", "crystals", "--data", str(bad), "--run-dir", str(tmp_path / "r"), "--quiet"])
    assert out.exit_code == 2 and "Traceback" not in out.output


@needs_data
def test_tiny_benchmark_writes_metrics_and_cifs(tmp_path):
    from flowevo.benchmarks.crystals import BUDGET_NAMES, run_crystals_benchmark

    run_crystals_benchmark(tmp_path, VAL, n=2, population=4, generations=3, log=lambda s: None, **TINY)
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert set(m["thresholds"]) == {"sr5", "sr10", "sr15"}
    assert set(m["methods"]) == {"reo", "masked_random", "random", "cma", "leap", "gradient", "exhaustive"}
    for name, r in m["methods"].items():
        for k in ("valid_rate", "composition_valid_rate", "chgnet_energy_change", "diversity", "evaluations", "wall_s"):
            assert k in r, (name, k)
        assert set(r["budgets"]) == set(BUDGET_NAMES)
        for b in r["budgets"].values():
            for k in ("sr5", "sr10", "sr15", "sr5_chgnet", "sr10_chgnet", "sr15_chgnet", "sites_changed",
                      "copy_rate", "evaluations"):
                assert k in b
    assert m["methods"]["exhaustive"]["budgets"]["k1_bkept"]["sites_changed"] <= 1
    assert list((tmp_path / "cif" / "exhaustive" / "k2_bkept").glob("*.cif"))
    assert (tmp_path / "sr_by_budget.png").is_file() and (tmp_path / "sr_vs_evaluations.png").is_file()
    curve = m["methods"]["reo"]["budgets"]["k2_bkept"]["curve"]  # SR after every generation
    assert [c["evaluations"] for c in curve] == [4, 8, 12, 16]
    assert m["methods"]["reo"]["budgets"]["k1"]["evaluations"] < m["methods"]["reo"]["budgets"]["k2"]["evaluations"]
    for name in ("reo", "random", "cma", "leap", "gradient"):  # the same evaluations per source
        assert m["methods"][name]["budgets"]["k2_bkept"]["evaluations"] == 16, name
    for name in ("reo", "masked_random"):  # kept edits meet the budget
        r = m["methods"][name]["budgets"]["k1_bkept"]
        assert r["sites_changed"] is None or r["sites_changed"] <= 1


@needs_data
def test_sources_csv_and_dev_split_via_cli(tmp_path):
    """--sources takes crystals the models never saw (any CDVAE CSV); --dev cannot be combined with it."""
    import csv

    with VAL.open(newline="") as fh:
        rows = list(csv.reader(fh))  # (CIFs span lines inside quoted fields)
    src, small = tmp_path / "sources.csv", tmp_path / "train.csv"
    for path, part in ((src, rows[-3:]), (small, rows[1:401])):  # sources: rows the training file lacks
        with path.open("w", newline="") as fh:
            csv.writer(fh).writerows([rows[0]] + part)
    out = runner.invoke(app, ["benchmark", "crystals", "--data", str(small), "--sources", str(src), "--n", "2",
                              "--out", str(tmp_path / "o"), "--quiet", "--json", "--dev"])
    assert out.exit_code == 2 and "--dev" in out.output and "Traceback" not in out.output
    from flowevo.benchmarks.crystals import run_crystals_benchmark

    m = run_crystals_benchmark(tmp_path / "b", small, sources=src, n=2, population=4, generations=1,
                               methods=("reo", "exhaustive"), budgets=("k1_bkept",), log=lambda s: None, **TINY)
    assert m["n_sources"] == 2 and m["sources"] == str(src) and m["train_rows"] == 400 and m["skipped_sources"] == []
    assert set(m["methods"]) == {"reo", "exhaustive"} and set(m["methods"]["reo"]["budgets"]) == {"k1_bkept"}


@needs_data
def test_tiny_demo_writes_report(tmp_path):
    from flowevo.demos.crystals import run_crystals_demo

    m = run_crystals_demo(tmp_path, VAL, n=2, population=4, generations=1, **TINY)
    assert (tmp_path / "report.html").is_file() and (tmp_path / "property.png").is_file()
    assert json.loads((tmp_path / "metrics.json").read_text())["n"] == 2
    html = (tmp_path / "report.html").read_text()
    assert "cif/source_0.cif" in html and m["edits"][0]["formula_before"] in html
