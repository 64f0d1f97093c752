"""``optimize.strategy``: every search method runs through ``flowevo optimize`` on a tiny generic model with REO's
budget per source and writes the same outputs; ``optimize.prescreen`` wraps REO's variation; bad settings are
one-line errors."""

import importlib.util
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from flowevo.cli import app
from flowevo.config import ConfigError, load_config

runner = CliRunner()
ROWS, POP, GENS = 3, 4, 2
BUDGET = POP * (GENS + 1)  # what REO spends per source, generation 0 included


def _dataset(path, n=300, seed=0):
    rng = np.random.default_rng(seed)
    c = np.arange(n) % 3
    x = rng.normal(size=(n, 4)) * 0.4 + 3.0 * np.eye(3, 4)[c]
    np.savez(path, x=x.astype(np.float32), c=c)


def _invoke(*args):
    out = runner.invoke(app, [str(a) for a in args])
    assert out.exit_code == 0, out.output
    return out


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("strategies")
    _dataset(root / "train.npz")
    _dataset(root / "sources.npz", n=9, seed=1)
    _invoke("train", "--data", root / "train.npz", "--out", root / "model", "--steps", 150,
            "--set", "train.judge_steps=60", "--quiet", "--json")
    return root


def _optimize(root, run, *extra, cheap=False):
    out = _invoke("optimize", "--model", root / "model", "--sources", root / "sources.npz", "--target", "2",
                  "--run-dir", root / run, "--rows", ROWS, "--generations", GENS, "--population", POP, "--seed", 1,
                  "--objective", "target_probability",
                  "--objective", "distance_to_source" + ("@cheap" if cheap else ""),
                  "--constraint", "distance_to_source@name=moved<=8", "--no-report", "--quiet", "--json", *extra)
    return json.loads(out.stdout)


STRATEGIES = ["reo", "cma", "nsga2", "random",
              pytest.param("bo", marks=pytest.mark.skipif(importlib.util.find_spec("botorch") is None,
                                                          reason="botorch is not installed"))]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_each_strategy_runs_through_optimize_with_reos_budget(model, strategy):
    m = _optimize(model, f"run_{strategy}", "--strategy", strategy)
    run = model / f"run_{strategy}"
    written = json.loads((run / "metrics.json").read_text())
    assert written["strategy"] == strategy and written["method"] == strategy
    assert written["evaluations_per_source"] == BUDGET and written["evaluations"] == ROWS * BUDGET
    assert m["evaluations"] == written["evaluations"]
    assert [o["name"] for o in written["objectives"]] == ["target_probability", "distance_to_source"]
    pop, src = np.load(run / "population.npz"), np.load(run / "sources.npz")
    assert set(pop["row"].tolist()) == set(range(ROWS)) and src["best"].shape == (ROWS, 4)
    assert np.isfinite(pop["values"]).all()
    info = json.loads((run / "run.json").read_text())
    assert info["strategy"] == strategy and info["evaluations_per_source"] == BUDGET
    assert (run / "checkpoint.pt").exists() == (strategy == "reo")


def test_prescreen_wraps_reo_and_costs_no_evaluation(model):
    plain = _optimize(model, "run_plain")
    screened = _optimize(model, "run_screened", "--prescreen", 4, cheap=True)  # the distance computed exactly
    assert screened["evaluations"] == plain["evaluations"] == ROWS * BUDGET
    v = screened["variation"]
    assert v["sent"] == ROWS * POP * GENS and v["screened"] == 4 * v["sent"] and v["screen_s"] > 0
    assert "variation" not in plain
    a, b = np.load(model / "run_plain" / "population.npz"), np.load(model / "run_screened" / "population.npz")
    assert not np.array_equal(a["residuals"], b["residuals"])  # the screen changed which children were evaluated


def test_cheap_marks_objectives_and_constraints_but_not_commands():
    from flowevo.config.flags import parse_constraint_flag, parse_objective_flag

    cfg = load_config(flags={"optimize.objectives": [parse_objective_flag("distance_to_source@min,cheap")],
                             "optimize.constraints": [parse_constraint_flag("distance_to_source@cheap,name=d<=3")]})
    assert cfg.optimize.objectives[0].cheap and cfg.optimize.constraints[0].cheap
    with pytest.raises(ConfigError, match="cheap"):
        load_config(flags={"optimize.objectives": [{"command": ["x", "{input}"], "name": "x", "sense": "min",
                                                    "cheap": True}]})


def test_bad_strategy_settings_are_clear_errors(model):
    with pytest.raises(ConfigError, match="prescreen"):
        load_config(flags={"optimize.strategy": "cma", "optimize.prescreen": 8})
    with pytest.raises(ConfigError, match="strategy"):
        load_config(flags={"optimize.strategy": "lbfgs"})
    out = runner.invoke(app, ["optimize", "--model", str(model / "model"), "--sources", str(model / "sources.npz"),
                              "--target", "2", "--run-dir", str(model / "bad"), "--strategy", "nope"])
    assert out.exit_code == 2 and len(out.output.strip().splitlines()) == 1, out.output


def test_a_baseline_run_has_a_report_and_resume_reruns_it_identically(model):
    out = _invoke("optimize", "--model", model / "model", "--sources", model / "sources.npz", "--target", "2",
                  "--run-dir", model / "run_report", "--rows", ROWS, "--generations", GENS, "--population", POP,
                  "--strategy", "random", "--quiet", "--json")
    assert json.loads(out.stdout)["report"].endswith("report.html")
    first = np.load(model / "run_report" / "population.npz")["residuals"]
    _invoke("resume", model / "run_report", "--quiet", "--json")  # no checkpoint: run again, same seed
    assert np.array_equal(first, np.load(model / "run_report" / "population.npz")["residuals"])


def test_ranked_init_starts_reo_from_the_flows_ranked_seed_pool(model):
    import torch

    from flowevo.evolve import rank_seeds, seed_pool
    from flowevo.workflows import prepare

    m = _optimize(model, "run_ranked", "--init", "ranked")
    assert m["evaluations"] == ROWS * BUDGET
    assert json.loads((model / "run_ranked" / "run.json").read_text())["init"] == "ranked"
    cfg = load_config(flags={"optimize.model": str(model / "model"), "optimize.sources": str(model / "sources.npz"),
                             "optimize.target": {"class": 2}, "optimize.run_dir": str(model / "run_ranked_p"),
                             "optimize.rows": ROWS, "optimize.population": POP, "optimize.init": "ranked"})
    p = prepare(cfg)
    try:
        p.evolver.ask()
        first = p.evolver.pending.residuals.reshape(ROWS, POP, -1)
        expected = rank_seeds(p.codec, p.task, seed_pool(p.codec, p.task), POP, classes=3)
        assert torch.allclose(first, expected.reshape(ROWS, POP, -1))  # generation 0 is the ranked pool, best first
    finally:
        p.close()
    with pytest.raises(ConfigError, match="init"):
        load_config(flags={"optimize.strategy": "cma", "optimize.init": "ranked"})
