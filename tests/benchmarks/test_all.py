"""``benchmark all``: part selection, the machine block, tables, and a failing part."""

import json
import sys

import pytest
from typer.testing import CliRunner

from flowevo.benchmarks import all as bench_all
from flowevo.cli import app

runner = CliRunner()

TOY = {"command": "flowevo benchmark toy --out X", "roundtrip_rel_error": {"rk4_10": {"nfe": 40, "mean": 1e-4, "max": 3e-3}},
       "methods": {"reo": {"success_rate": 1.0, "evaluations_to_target": 160, "best_projection_mean": 2.1, "wall_s": 1.5}}}


def test_parse_parts():
    assert "crystals" not in bench_all.parse_parts(None, None)
    assert "crystals" in bench_all.parse_parts(None, "val.csv")
    assert bench_all.parse_parts("toy, cost,toy", None) == ["toy", "cost"]
    with pytest.raises(ValueError, match="unknown part"):
        bench_all.parse_parts("toy,bogus", None)
    with pytest.raises(ValueError, match="--data"):
        bench_all.parse_parts("crystals", None)


def test_all_only_toy_writes_machine_block_and_tables(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr("flowevo.benchmarks.toy.run_toy_benchmark",
                        lambda out, seed, device="cpu": calls.append((out, seed)) or TOY)
    args = ["benchmark", "all", "--out", str(tmp_path), "--only", "toy", "--seed", "3", "--quiet"]
    monkeypatch.setattr(sys, "argv", ["flowevo", *args])  # what the command records
    out = runner.invoke(app, args)
    assert out.exit_code == 0, out.output
    assert calls == [(tmp_path / "toy", 3)]
    m = json.loads((tmp_path / "metrics.json").read_text())
    mc = m["machine"]
    for key in ("cores", "torch_threads", "blas", "cpu_model", "parallel_info", "load_average_start", "load_average_end"):
        assert key in mc
    assert mc["cores"] >= 1 and mc["torch_threads"] >= 1
    assert "benchmark all" in m["command"] and "--only toy" in m["command"]
    assert list(m["parts"]) == ["toy"] and m["parts"]["toy"]["metrics"] == TOY and m["parts"]["toy"]["wall_s"] >= 0
    tables = (tmp_path / "tables.md").read_text()
    assert "## toy" in tables and "| rk4_10 | 40 | 1.0e-04 | 3.0e-03 |" in tables and "| reo | 1.00 | 160 |" in tables


def test_a_failing_part_is_recorded_and_the_rest_runs(tmp_path, monkeypatch):
    def boom(out, seed, device="cpu"):
        raise RuntimeError("solver exploded")

    monkeypatch.setattr("flowevo.benchmarks.toy.run_toy_benchmark", boom)
    monkeypatch.setattr("flowevo.benchmarks.scaling.run_scaling_benchmark",
                        lambda out, seed: {"command": "c",
                                           "backends": {"inprocess": {"1": {"candidates_per_s": 20.0, "overhead_ms": 0.001}}}})
    out = runner.invoke(app, ["benchmark", "all", "--out", str(tmp_path), "--only", "toy,scaling", "--quiet"])
    assert out.exit_code == 1
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert "solver exploded" in m["parts"]["toy"]["error"] and "metrics" in m["parts"]["scaling"]
    assert "| inprocess | 1 | 20.0 | 0.001 |" in (tmp_path / "tables.md").read_text()


def test_bad_options_exit_2_in_one_line(tmp_path):
    for args in (["all", "--only", "nope"], ["all", "--only", "crystals"], ["queries", "--tasks", "toys"]):
        out = runner.invoke(app, ["benchmark", *args, "--out", str(tmp_path)])
        assert out.exit_code == 2 and "Traceback" not in out.output
