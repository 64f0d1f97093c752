"""Crystals task of ``flowevo benchmark queries``: prefix counting, exhaustive count, judge trust, bad --data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowevo.cli import app

VAL_CSV = Path(__file__).resolve().parents[2] / "../shared/data/perov_5/val.csv"
runner = CliRunner()


@pytest.fixture(scope="module")
def tiny():
    """One seed of every method on 4 sources, tiny models (BO on the first 2 sources; no CHGNet)."""
    pytest.importorskip("pymatgen")
    pytest.importorskip("botorch")
    if not VAL_CSV.is_file():
        pytest.skip(f"Perov-5 data not found at {VAL_CSV}")
    from flowevo.benchmarks.query_crystals import run_crystals_queries
    from flowevo.domains.crystals._threads import torch_threads

    with torch_threads(1):
        return run_crystals_queries(str(VAL_CSV), [0], n=4, bo_rows=2, chgnet=False, max_rows=400, cfm_steps=60,
                                    surrogate_steps=60, gbr_estimators=10, evaluations=16)


def test_every_call_counts_and_the_best_after_more_evaluations_is_never_worse_by_the_surrogate(tiny):
    assert tiny["at"] == [8, 16] and tiny["judges"] == ["surrogate", "independent", "element", "dft"]
    for m in ("reo", "masked_random", "cma", "bo"):
        for b in tiny["budgets"]:
            run = tiny["runs"][m][b][0]
            assert run["evaluations_per_source"] == 16 and run["max_evaluations_per_source"] == 16
            assert run["rows"] == (2 if m == "bo" else 4)
            s8, s16 = tiny["per_seed"][m][b][0]["8"], tiny["per_seed"][m][b][0]["16"]
            assert s16["kept_rate"] >= s8["kept_rate"]
            for sr in ("sr5", "sr10", "sr15"):  # a prefix: the kept edit by the surrogate only improves
                assert s16["surrogate"][sr] >= s8["surrogate"][sr]
            if m != "bo":  # scored on BO's rows too, for a like-for-like comparison
                assert s16["first_sources"]["rows"] == 2


def test_exhaustive_runs_at_its_full_count(tiny):
    full = {b: tiny["per_seed"]["exhaustive"][b][0]["full"] for b in tiny["budgets"]}
    counts = {b: tiny["runs"]["exhaustive"][b][0]["evaluations_per_source"] for b in tiny["budgets"]}
    assert all(full[b]["evaluations"] == counts[b] > 16 for b in counts)
    assert counts["k2_bkept"] > counts["k1_bkept"]  # two sites may change: more substitutions
    assert "full" in tiny["summary"]["exhaustive"]["k2_bkept"]


def test_judge_trust_has_one_row_per_judge_on_rows_none_trained_on(tiny):
    trust = tiny["judge_trust"]["judges"]
    assert [r["judge"] for r in trust] == ["surrogate", "independent", "element"]
    split = tiny["split"]
    assert split["model_rows"] + split["judge_rows"] == split["training_rows"]
    assert all(r["n"] == split["held_out_rows"] for r in trust)


def test_edit_trust_groups_the_labelled_kept_edits_by_who_trained_on_them(tiny):
    groups = tiny["edit_trust"]["groups"]
    assert list(groups) == ["no judge", "surrogate's rows", "element judge's rows"]
    labelled = sum(g["n"] for g in groups.values())
    assert labelled > 0  # some kept edit landed on a composition of the data
    for g in groups.values():
        assert all(r["n"] == g["n"] for r in g["judges"])
        assert [r["judge"] for r in g["judges"]] == ([] if g["n"] == 0 else ["surrogate", "independent", "element"])


def test_tables_name_every_method_and_judge(tiny):
    from flowevo.benchmarks.query_crystals import crystal_tables

    text = crystal_tables(tiny)
    for name in ("reo", "masked_random", "cma", "bo", "exhaustive", "element", "how far each judge"):
        assert name in text


def test_bad_crystal_data_exits_2_in_one_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("formula,heat_ref\nSrTiO3,0.1\n")
    for args in (["--tasks", "crystals", "--data", str(bad)], ["--tasks", "crystals"],
                 ["--tasks", "digits", "--sources", str(bad)]):
        out = runner.invoke(app, ["benchmark", "queries", "--out", str(tmp_path / "o"), *args])
        assert out.exit_code == 2, out.output
        assert "Traceback" not in out.output and len(out.output.strip().splitlines()) == 1
    assert not (tmp_path / "o" / "metrics.json").exists()


def test_metrics_hold_the_crystals_task_and_its_figure(tmp_path, monkeypatch, tiny):
    from flowevo.benchmarks import query_crystals, query_efficiency

    monkeypatch.setattr(query_crystals, "run_crystals_queries", lambda *a, **k: tiny)
    m = query_efficiency.run_query_benchmark(tmp_path, seeds=[0], tasks=["crystals"], data=str(VAL_CSV))
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["tasks"]["crystals"]["judge_trust"]["judges"][0]["judge"] == "surrogate"
    assert (tmp_path / "crystals_queries.png").stat().st_size > 0 and not (tmp_path / "queries.png").exists()
    assert "SR10 after e evaluations" in query_efficiency.query_tables(m)


def test_cli_passes_the_crystal_options_and_prints_sr10_rows(tmp_path, monkeypatch, tiny):
    from flowevo.benchmarks import query_efficiency

    seen = {}

    def fake(out, **kw):
        seen.update(kw)
        return {"tasks": {"crystals": tiny}}

    monkeypatch.setattr(query_efficiency, "run_query_benchmark", fake)
    out = runner.invoke(app, ["benchmark", "queries", "--out", str(tmp_path), "--data", str(VAL_CSV), "--seeds", "2",
                              "--crystal-split-seed", "11", "--crystal-bo-rows", "7", "--no-chgnet", "--crystal-n", "9"])
    assert out.exit_code == 0, out.output
    assert seen["tasks"] == ["toy", "digits", "crystals"]  # --data adds crystals to the default tasks
    assert seen["crystal_options"] == {"bo_rows": 7, "chgnet": False, "split_seed": 11} and seen["crystal_n"] == 9
    assert "k2_bkept SR10: reo" in out.output and "crystals judge element vs DFT" in out.output


def test_reo_and_masked_random_run_at_the_library_population():
    from flowevo.benchmarks import query_crystals
    from flowevo.domains.crystals import editing

    assert query_crystals.POPULATION == editing.POPULATION
    assert editing.POPULATION * (editing.GENERATIONS + 1) == query_crystals.AT[-1]  # 48 evaluations per source
