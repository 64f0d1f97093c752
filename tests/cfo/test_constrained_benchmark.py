"""The constrained benchmark: the exact frontier of the synthetic task, and a tiny CLI run."""

import json
import math

import pytest
import torch
from typer.testing import CliRunner

from flowevo.benchmarks.constrained import SyntheticTask, frontier_reward_at, optimum_frontier
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
    out = runner.invoke(app, ["benchmark", "constrained", "--out", str(tmp_path), "--tasks", "synthetic",
                              "--rounds", "1", "--samples", "64", "--pretrain-steps", "100", "--quiet", "--json"])
    assert out.exit_code == 0, out.output
    m = json.loads((tmp_path / "metrics.json").read_text())
    t = m["tasks"]["synthetic"]
    assert set(t) == {"pretrained", "unconstrained", "fixed_small", "fixed_large", "cfo"}
    for v in t.values():
        assert {"reward_mean", "constraint_satisfaction", "kl_or_distance_to_pretrained", "rounds", "trace"} <= set(v)
    assert t["cfo"]["rounds"] == 1 and len(t["cfo"]["trace"]) == 2 and t["pretrained"]["rounds"] == 0
    assert m["command"]
    assert {p.name for p in tmp_path.glob("*.png")} == {"synthetic_rounds.png", "synthetic_samples.png",
                                                        "synthetic_frontier.png"}
    assert (tmp_path / "checkpoints" / "synthetic" / "round_001.pt").is_file()
    bad = runner.invoke(app, ["benchmark", "constrained", "--out", str(tmp_path), "--tasks", "molecules"])
    assert bad.exit_code == 2 and "molecules" in bad.output
    missing = runner.invoke(app, ["benchmark", "constrained", "--out", str(tmp_path), "--tasks", "crystals",
                                  "--data", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2 and "nope.csv" in missing.output
