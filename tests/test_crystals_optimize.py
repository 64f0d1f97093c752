"""Crystals through the same commands: `flowevo train` fits the benchmark's models into MODEL_DIR, `flowevo optimize`
runs the site-masked REO with the benchmark's defaults and writes edits.csv, pictures and SR by the saved judge."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from flowevo.cli import app

VAL_CSV = Path(__file__).resolve().parents[1] / "../shared/data/perov_5/val.csv"
pytestmark = pytest.mark.skipif(not VAL_CSV.is_file(), reason=f"Perov-5 data not found at {VAL_CSV}")
runner = CliRunner()
BUDGET = "crystals.budget@budget=k2_bkept<=0"


def _ok(*args):
    out = runner.invoke(app, [str(a) for a in args])
    assert out.exit_code == 0, out.output
    return out


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A small crystal MODEL_DIR trained through the CLI on the first 200 rows (180 train, 20 held out)."""
    pytest.importorskip("pymatgen")
    out = tmp_path_factory.mktemp("crystal_model") / "model"
    s = json.loads(_ok("train", "--data", VAL_CSV, "--out", out, "--steps", 150, "--set", "train.max_rows=200",
                       "--set", "train.judge_steps=150", "--quiet", "--json").stdout)
    return out, s


def _flags(model, sources, run_dir, **extra):
    from flowevo.config.flags import parse_constraint_flag

    return {"optimize.model": str(model), "optimize.sources": str(sources), "optimize.run_dir": str(run_dir),
            "optimize.constraints": [parse_constraint_flag(BUDGET)], "optimize.report": False, **extra}


def test_train_writes_the_benchmark_models_and_the_held_out_rows(model_dir):
    from flowevo.domains.crystals.data import load_cdvae_csv, split_indices
    from flowevo.domains.crystals.fitting import load_crystal_models

    out, s = model_dir
    assert s["kind"] == "crystals" and s["flow_shape"] == [22] and (s["train_rows"], s["holdout_rows"]) == (180, 20)
    for f in ("crystal_flow.pt", "surrogate.json", "judge.json", "chgnet_references.json", "training.json",
              "holdout.csv", "training.png"):
        assert (out / f).is_file(), f
    info = json.loads((out / "training.json").read_text())
    full = load_cdvae_csv(VAL_CSV, limit=200)
    train_idx, held_idx = split_indices(len(full), (0.9, 0.1), 0)  # the benchmark's split
    y = full.properties["heat_ref"][train_idx]
    assert info["thresholds"]["sr10"] == pytest.approx(np.percentile(y, 10))
    assert info["lowest"] == pytest.approx(y.min())
    assert info["percentiles"] == {"sr5": 5, "sr10": 10, "sr15": 15} and info["chgnet_rows"] == 180
    held = load_cdvae_csv(out / "holdout.csv")
    assert held.ids == [full.ids[i] for i in held_idx]  # the held-out rows, copied as they are
    m = load_crystal_models(out)
    assert m.independent is not None and m.independent.kind == "gbr" and m.surrogate.kind == "mlp"
    assert m.formation is not None and m.thresholds == info["thresholds"]
    assert 0 < s["judge"]["judge_holdout_mae"] < 1 and s["judge"]["surrogate_holdout_mae"] < 1
    resolved = json.loads((out / "config.resolved.json").read_text())["train"]
    assert (resolved["steps"], resolved["judge_steps"], resolved["batch_size"]) == (150, 150, 180)


def test_optimize_defaults_edits_csv_pictures_and_success_rates(model_dir, tmp_path):
    out, _ = model_dir
    m = json.loads(_ok("optimize", "--model", out, "--sources", out / "holdout.csv", "--rows", 4, "--generations", 2,
                       "--constraint", BUDGET, "--run-dir", tmp_path / "run", "--quiet", "--json").stdout)
    run = tmp_path / "run"
    resolved = json.loads((run / "config.resolved.json").read_text())["optimize"]
    assert resolved["population"] == 4 and resolved["generations"] == 2 and resolved["target"] is None
    assert [c["use"] for c in resolved["constraints"]] == ["crystals.structure_valid", "crystals.composition_valid",
                                                           "crystals.budget"]
    assert [o["name"] for o in m["objectives"]] == ["crystals.surrogate"] and m["evaluations"] == 4 * 4 * 3
    info = json.loads((out / "training.json").read_text())
    assert m["target_value"] == pytest.approx(info["lowest"]) and m["thresholds"] == info["thresholds"]
    with (run / "edits.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4
    for col in ("index", "source_formula", "edit_formula", "edit_cif", "sites_changed", "b_kept", "valid",
                "surrogate_source", "surrogate_edit", "judge_edit", "chgnet_formation_edit", "source_png"):
        assert col in rows[0], col
    kept = [r for r in rows if r["edit_cif"]]
    assert kept and len(kept) / 4 == m["kept_rate"]
    for r in kept:  # every kept edit valid and within the budget, its CIF and picture written
        assert r["valid"] == "True" and r["b_kept"] == "True" and int(r["sites_changed"]) <= 2
        assert (run / r["edit_cif"]).read_text().startswith("# generated") and (run / r["edit_png"]).is_file()
    from flowevo.domains.crystals.predictors import load_predictor

    judged = [float(r["judge_edit"]) for r in kept]
    for k, t in info["thresholds"].items():
        assert m[k] == pytest.approx(sum(v < t for v in judged) / 4)
    from pymatgen.core import Structure

    read = Structure.from_file(str(run / kept[0]["edit_cif"]))
    order: list[int] = []  # a CIF keeps the sites but not their order (which one is A): restore it from sites_edit
    for symbol in kept[0]["sites_edit"].split():
        order.append(next(i for i, s in enumerate(read) if s.specie.symbol == symbol and i not in order))
    edit = Structure.from_sites([read[i] for i in order])
    assert load_predictor(out / "judge.json").predict([edit])[0] == pytest.approx(judged[0], abs=1e-6)
    html = (run / "report.html").read_text()
    assert 'href="cif/source_0.cif"' in html and 'src="cif/source_0.png"' in html and "CHGNet formation" in html
    assert "SR10" in html


def test_optimize_is_the_library_site_masked_reo(model_dir, tmp_path):
    """Same seed, same evaluations: `flowevo optimize` = site_masked_reo with the benchmark's evaluator."""
    from flowevo.config import load_config
    from flowevo.domains.crystals._threads import torch_threads
    from flowevo.domains.crystals.data import load_cdvae_csv
    from flowevo.domains.crystals.editing import edit_evaluator, site_masked_reo
    from flowevo.domains.crystals.fitting import load_crystal_models
    from flowevo.domains.crystals.objectives import canonical_sources
    from flowevo.workflows import run_optimize

    out, _ = model_dir
    with torch_threads(1):  # as site_masked_reo runs
        metrics = run_optimize(load_config(flags=_flags(out, out / "holdout.csv", tmp_path / "run", **{
            "optimize.rows": 5, "optimize.generations": 2, "seed": 3})), show_progress=False)
    m = load_crystal_models(out)
    src = load_cdvae_csv(out / "holdout.csv").subset(range(5))
    evaluator = edit_evaluator(m.surrogate, canonical_sources(src, m.representation), "k2_bkept")
    ref = site_masked_reo(m.model, m.model.encode(src.structures, src.formulas), src.properties["heat_ref"], m.lowest,
                          evaluator, population=4, generations=2, seed=3)
    assert np.array_equal(np.array(metrics["best_values"]), ref.best.values.numpy())
    pop = np.load(tmp_path / "run" / "population.npz")
    assert np.array_equal(pop["values"], ref.population.values.numpy())
    assert np.array_equal(pop["violation"], ref.population.violation.numpy())


def test_interrupted_crystal_run_resumes_to_the_same_result(model_dir, tmp_path):
    from flowevo.config import load_config
    from flowevo.workflows import resume_optimize, run_optimize

    out, _ = model_dir
    flags = {"optimize.rows": 3, "optimize.generations": 4, "seed": 1}

    class Killed(Exception):
        pass

    def kill(evolver):
        if evolver.generation == 2:
            raise Killed

    run_optimize(load_config(flags=_flags(out, out / "holdout.csv", tmp_path / "full", **flags)), show_progress=False)
    with pytest.raises(Killed):
        run_optimize(load_config(flags=_flags(out, out / "holdout.csv", tmp_path / "killed", **flags)),
                     show_progress=False, callbacks=[kill])
    resume_optimize(tmp_path / "killed", show_progress=False)
    a, b = np.load(tmp_path / "full" / "population.npz"), np.load(tmp_path / "killed" / "population.npz")
    for key in ("decoded", "residuals", "values", "violation", "born"):
        assert np.array_equal(a[key], b[key]), key
    assert (tmp_path / "full" / "edits.csv").read_text() == (tmp_path / "killed" / "edits.csv").read_text()
    import torch

    state = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)
    assert state["state"]["variation"]["inner"]["seen"], "the SiteVariation archive is checkpointed"


def test_loader_options_targets_and_bad_inputs(model_dir, tmp_path):
    from flowevo.domains import RunRequest
    from flowevo.domains.crystals.registration import load_run

    out, _ = model_dir
    req = dict(model_dir=out, sources=out / "holdout.csv", rows=2)
    run = load_run(RunRequest(**req, options={"budget": "k1"}))
    assert run.default_constraints[-1] == {"use": "crystals.budget", "params": {"budget": "k1"}, "upper": 0}
    assert run.optimize_defaults == {"population": 4, "generations": 11} and run.extra_seeds([]).shape == (2, 12, 49)
    assert len(load_run(RunRequest(**req)).default_constraints) == 2  # budget "any": validity only
    assert load_run(RunRequest(**req, target_values=[0.25])).extra["target_value"] == 0.25
    for bad, words in (({"options": {"budget": "k9"}}, "k9"), ({"options": {"colour": 1}}, "colour"),
                       ({"target_class": 1}, "values=V"), ({"strength": 0.5}, "strength 1")):
        with pytest.raises(ValueError, match=words):
            load_run(RunRequest(**req, **bad))
    bad = runner.invoke(app, ["optimize", "--model", str(out), "--sources", str(VAL_CSV), "--target", "2",
                              "--run-dir", str(tmp_path / "r2"), "--quiet"])
    assert bad.exit_code == 2 and "heat_ref" in bad.output and "values=" in bad.output


def test_explicit_objectives_target_and_population_win(model_dir, tmp_path):
    out, _ = model_dir
    m = json.loads(_ok("optimize", "--model", out, "--sources", VAL_CSV, "--rows", 2, "--target", "values=-1.0",
                       "--constraint", "crystals.structure_valid<=0", "--constraint", "crystals.budget@budget=k2<=0",
                       "--objective", "crystals.surrogate@min", "--objective", "crystals.sites_changed",
                       "--generations", 1, "--population", 4, "--run-dir", tmp_path / "run", "--quiet",
                       "--json").stdout)
    assert [o["role"] for o in m["objectives"]] == ["alignment", "preservation"] and m["failures"] == 0
    assert m["constraints"] == ["crystals.composition_valid", "crystals.structure_valid", "crystals.budget"]
    assert m["evaluations"] == 2 * 4 * 2 and m["target_value"] == -1.0
    rows = json.loads((tmp_path / "run" / "crystals.json").read_text())
    for r in rows:
        if r["feasible"]:
            assert r["sites_changed"] <= 2 and (tmp_path / "run" / r["edit_cif"]).is_file()


def test_baseline_strategy_searches_the_site_masked_genome_space(model_dir, tmp_path):
    from flowevo.baselines import SearchSpace
    from flowevo.domains import RunRequest
    from flowevo.domains.crystals.registration import load_run

    out, _ = model_dir
    assert isinstance(load_run(RunRequest(model_dir=out, sources=out / "holdout.csv", rows=2)).space, SearchSpace)
    m = json.loads(_ok("optimize", "--model", out, "--sources", out / "holdout.csv", "--rows", 2, "--strategy", "cma",
                       "--generations", 1, "--population", 4, "--constraint", BUDGET, "--run-dir", tmp_path / "cma",
                       "--no-report", "--quiet", "--json").stdout)
    assert m["strategy"] == "cma" and m["evaluations_per_source"] == 4 * 2 and m["evaluations"] == 2 * 4 * 2
    rows = json.loads((tmp_path / "cma" / "crystals.json").read_text())
    assert len(rows) == 2


def test_the_crystal_reo_is_pre_screened_and_refuses_a_second_screen(model_dir, tmp_path):
    from flowevo.domains import RunRequest
    from flowevo.domains.crystals.registration import load_run
    from flowevo.evolve import PreScreen

    out, _ = model_dir
    run = load_run(RunRequest(model_dir=out, sources=out / "holdout.csv", rows=2))
    assert isinstance(run.variation, PreScreen) and run.variation.pool and run.variation.inner.archive == "scored"
    bad = runner.invoke(app, ["optimize", "--model", str(out), "--sources", str(out / "holdout.csv"), "--rows", "2",
                              "--prescreen", "4", "--run-dir", str(tmp_path / "r"), "--quiet"])
    assert bad.exit_code == 2 and "pre-screens already" in bad.output


def test_cfo_on_a_crystal_model_with_the_benchmarks_archive_floor_and_projection(model_dir, tmp_path):
    """`flowevo cfo` on a crystal MODEL_DIR: the domain's composition key reaches the optimiser, so the archive keeps
    one elite per reduced formula, and the run with projection, archive and floor ends with a full record."""
    from flowevo.domains.crystals.diversity import composition_key
    from flowevo.workflows.cfo_flow import load_flow

    model, _ = model_dir
    _, flow = load_flow(model, "cpu")
    assert flow.diversity_key is composition_key and flow.project is not None
    out = _ok("cfo", "--model", model, "--reward", "crystals.surrogate@min", "--constraint",
              "crystals.structure_valid<=0", "--rounds", 2, "--run-dir", tmp_path / "cfo", "--set", "cfo.samples=48",
              "--set", "cfo.kl_samples=0", "--set", "cfo.finetune_steps=5", "--set", "cfo.replay=16",
              "--set", "cfo.feasible_floor=0.05", "--set", "cfo.project=true", "--quiet", "--json")
    m = json.loads(out.stdout)
    assert len(m["rounds"]) == 3 and m["final"]["satisfaction"] >= 0
    resolved = json.loads((tmp_path / "cfo" / "config.resolved.json").read_text())["cfo"]
    assert (resolved["replay"], resolved["feasible_floor"], resolved["project"]) == (16, 0.05, True)
