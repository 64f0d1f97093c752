"""The constrained benchmark: the exact frontier of the synthetic task, and a tiny CLI run."""

import json
import math
from dataclasses import replace

import pytest
import torch
from typer.testing import CliRunner

from flowevo.benchmarks.constrained import (
    VARIANTS,
    SyntheticTask,
    bar_check,
    default_configs,
    frontier_reward_at,
    optimum_frontier,
    run_variants,
    summarise,
)
from flowevo.cli import app


def test_frontier_by_hand():
    task = SyntheticTask()
    assert task.hard_optimum() == {"point": [1.0, 0.0], "reward": -2.0}
    free = optimum_frontier(task, None, [1e6, 1.0, 0.2], n=200_000)
    x = task.sample(200_000, torch.Generator().manual_seed(0))
    assert free[0]["kl"] == pytest.approx(0.0, abs=1e-6)                       # alpha -> inf: p* = p0
    assert free[0]["reward"] == pytest.approx(float(task.reward(x).mean()), abs=0.02)
    assert free[0]["violation"] == pytest.approx(0.25, abs=0.01)              # half of two of four modes
    assert free[1]["reward"] < free[2]["reward"] and free[1]["kl"] < free[2]["kl"]
    con = optimum_frontier(task, 0.02, [1e6, 1.0, 0.2], n=200_000)
    for c, f in zip(con, free):
        assert c["violation"] == pytest.approx(0.02, rel=1e-6) and c["nu"] > 0
        assert c["reward"] < f["reward"]                                       # the constraint costs reward
    # alpha -> inf with the constraint: p0 with the infeasible mass scaled down; KL in closed form
    q, d = 0.25 * 0 + free[0]["violation"], 0.02
    expected_kl = (1 - d) * math.log((1 - d) / (1 - q)) + d * math.log(d / q)
    assert con[0]["kl"] == pytest.approx(expected_kl, abs=2e-3)
    assert frontier_reward_at(con, con[1]["kl"]) == pytest.approx(con[1]["reward"])


def test_benchmark_cli_tiny(tmp_path):
    runner = CliRunner()
    out = runner.invoke(app, ["benchmark", "constrained", "--out", str(tmp_path), "--tasks", "synthetic", "--seeds", "3",
                              "--rounds", "1", "--samples", "64", "--pretrain-steps", "100", "--quiet", "--json"])
    assert out.exit_code == 0, out.output
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["seeds"] == [3] and set(m["runs"]) == {"3"} and m["command"]
    for sd in ("3",):
        t = m["runs"][sd]["tasks"]["synthetic"]
        assert set(t) == {"pretrained", "unconstrained", "fixed_small", "fixed_large", "cfo"}
        for v in t.values():
            assert {"reward_mean", "constraint_satisfaction", "kl_or_distance_to_pretrained", "rounds", "trace"} <= set(v)
        assert t["cfo"]["rounds"] == 1 and len(t["cfo"]["trace"]) == 2 and t["pretrained"]["rounds"] == 0
        assert json.loads((tmp_path / f"seed_{sd}" / "metrics.json").read_text())["seed"] == int(sd)
        assert {p.name for p in (tmp_path / f"seed_{sd}").glob("*.png")} == {
            "synthetic_rounds.png", "synthetic_samples.png", "synthetic_frontier.png"}
        assert (tmp_path / f"seed_{sd}" / "checkpoints" / "synthetic" / "round_001.pt").is_file()
        assert set(m["bars"]["synthetic"]["per_seed"][sd]) >= {"met", "satisfaction_met", "fixed_penalties_better_on_both"}
    s = m["summary"]["synthetic"]["cfo"]["reward_mean"]
    assert s["per_seed"] == {"3": m["runs"]["3"]["tasks"]["synthetic"]["cfo"]["reward_mean"]} and s["std"] is None
    assert (tmp_path / "synthetic_seeds.png").is_file()
    bad = runner.invoke(app, ["benchmark", "constrained", "--out", str(tmp_path), "--tasks", "molecules"])
    assert bad.exit_code == 2 and "molecules" in bad.output
    for seeds in ("0,x", "1,1", ","):
        bad = runner.invoke(app, ["benchmark", "constrained", "--out", str(tmp_path), "--seeds", seeds])
        assert bad.exit_code == 2 and "--seeds" in bad.output
    missing = runner.invoke(app, ["benchmark", "constrained", "--out", str(tmp_path), "--tasks", "crystals",
                                  "--data", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2 and "nope.csv" in missing.output


def test_summary_over_seeds():
    def run(r, sat):
        return {"tasks": {"crystals": {v: {"reward_mean": r, "constraint_satisfaction": sat, "judge_mean": None}
                                       for v in VARIANTS}}}

    s = summarise({"0": run(1.0, 0.9), "1": run(2.0, math.nan), "2": run(4.0, 1.0)})["crystals"]["cfo"]
    assert s["reward_mean"]["mean"] == pytest.approx(7 / 3) and s["reward_mean"]["min"] == 1.0
    assert s["reward_mean"]["std"] == pytest.approx(float(torch.tensor([1.0, 2.0, 4.0]).std()))
    assert s["constraint_satisfaction"]["mean"] == pytest.approx(0.95)      # NaN seeds are left out, and shown as None
    assert s["constraint_satisfaction"]["per_seed"] == {"0": 0.9, "1": None, "2": 1.0}
    assert "judge_mean" not in s                                          # never measured: no row


def _variant(reward, sat, judge=None, dft=None, distinct=None, top=None):
    return {"reward_mean": reward, "constraint_satisfaction": sat, "judge_mean": judge, "dft_mean_labelled": dft,
            "feasible_distinct": distinct, "feasible_top_share": top, "rounds": 8}


def test_crystal_bar_by_hand():
    m = {"pretrained": _variant(0.0, 0.4, 0.1, 0.05, 200, 0.02), "unconstrained": _variant(2.0, 0.6, 1.1, 1.0, 60, 0.1),
         "fixed_small": _variant(1.5, 0.7, 0.9, 0.5, 80, 0.1), "fixed_large": _variant(0.9, 0.97, 0.5, 0.2, 90, 0.1),
         "cfo": _variant(1.0, 0.95, 0.6, 0.4, 85, 0.08)}
    b = bar_check("crystals", m)
    assert b["met"] and b["surrogate_gain"] == pytest.approx(1.0) and b["judge_gain_unconstrained"] == pytest.approx(1.0)
    for key, value, flag in (("judge_mean", 0.5, "judge_half_gain_met"), ("feasible_top_share", 0.25, "diverse"),
                             ("feasible_distinct", 49, "diverse"), ("dft_mean_labelled", 0.05, "dft_above_pretrained"),
                             ("constraint_satisfaction", 0.89, "satisfaction_met"),
                             ("reward_mean", 0.99, "surrogate_half_gain_met")):
        worse = {**m, "cfo": {**m["cfo"], key: value}}
        b = bar_check("crystals", worse)
        assert not b[flag] and not b["met"], key
    better = {**m, "fixed_large": _variant(1.1, 0.96)}                  # a fixed penalty better on both
    assert bar_check("crystals", better)["fixed_penalties_better_on_both"] == ["fixed_large"]
    assert not bar_check("crystals", better)["met"]


def test_default_configs_crystals_annealed_bound():
    cfg = default_configs(3)
    # crystals: temperature 0.5, the bound annealed from 0.2 over 4 rounds, kappa = 1 and 8 neighbours, chosen on the
    # development seeds 11-14 (issue 16); synthetic unchanged
    assert (cfg["crystals"].anneal_from, cfg["crystals"].anneal_rounds) == (0.2, 4)
    assert cfg["crystals"].target_feedback == 1.0 and cfg["crystals"].target_floor == 0.1
    assert cfg["crystals"].neighbours == 8 and cfg["synthetic"].neighbours == 4
    assert cfg["synthetic"].anneal_from is None
    assert default_configs(3, rounds=2)["crystals"].anneal_rounds == 2
    assert cfg["crystals"].trust_region == "total" and cfg["crystals"].target_tolerance == 0.0
    assert cfg["crystals"].temperature == 0.5 and cfg["synthetic"].temperature == 1.0
    assert cfg["synthetic"].target_feedback == 1.0
    assert cfg["crystals"].max_violation == 0.02 and cfg["crystals"].rounds == 8 and cfg["crystals"].seed == 3
    # crystals CFO (issue 16, tenth pass): an archive of 96 feasible elites and a 5% weight floor; synthetic without
    assert (cfg["crystals"].replay, cfg["crystals"].feasible_floor) == (96, 0.05)
    assert (cfg["synthetic"].replay, cfg["synthetic"].feasible_floor) == (0, 0.0)


def test_fixed_penalties_keep_none_of_cfos_own_mechanisms(monkeypatch):
    """The fixed-penalty baselines stay what they were: no annealing, archive, floor, nor projection unless listed."""
    import flowevo.benchmarks.constrained as bench

    made = {}
    real = bench.ConstrainedFlowOptimiser

    class Recording(real):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made[self.config.fixed_multiplier] = (self.config, self.project)

    monkeypatch.setattr(bench, "ConstrainedFlowOptimiser", Recording)
    task = SyntheticTask()
    model = task.pretrain(0, steps=50)
    cfg = replace(default_configs(0, rounds=1, samples=64)["synthetic"], kl_samples=0, anneal_from=0.2, anneal_rounds=1,
                  replay=8, feasible_floor=0.1, finetune=replace(default_configs(0)["synthetic"].finetune, steps=5))
    project = lambda x: x  # noqa: E731
    run_variants(model, task.evaluator(), None, cfg, None, variants=("fixed_large", "cfo"), log=lambda s: None,
                 project=project, projected=("cfo",))
    fixed, fixed_project = made[10.0]
    ours, our_project = made[None]
    assert (fixed.anneal_from, fixed.replay, fixed.feasible_floor, fixed_project) == (None, 0, 0.0, None)
    assert (ours.anneal_from, ours.replay, ours.feasible_floor, our_project) == (0.2, 8, 0.1, project)
