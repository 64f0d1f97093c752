"""Cost scaling: the line fit, one timed generation, and the round-trip error curve."""

import math

import pytest
import torch

from flowevo.benchmarks.cost_scaling import convergence_order, generation_time, linear_fit, roundtrip_curve
from flowevo.benchmarks.throughput import linear_flops_per_sample
from flowevo.flow import Condition, MLPVelocity


def test_linear_fit_recovers_slope_intercept_and_r2():
    x = [256, 512, 1024, 2048, 4096]
    fit = linear_fit(x, [2e-4 * v + 0.05 for v in x])
    assert fit["slope"] == pytest.approx(2e-4) and fit["intercept"] == pytest.approx(0.05) and fit["r2"] == pytest.approx(1.0)
    noisy = linear_fit(x, [2e-4 * v + 0.05 + (0.02 if i % 2 else -0.02) for i, v in enumerate(x)])
    assert noisy["slope"] == pytest.approx(2e-4, rel=0.1) and 0.9 < noisy["r2"] < 1.0
    assert linear_fit(x, [v * v for v in x])["r2"] < 0.97  # a parabola is not a line
    with pytest.raises(ValueError):
        linear_fit([3, 3], [1, 2])


def test_convergence_order_is_the_log_log_slope_above_the_floor():
    pts = [{"nfe": n, "mean": 5.0 * n**-4} for n in (4, 8, 16, 32)] + [{"nfe": 64, "mean": 1e-7}]
    assert convergence_order(pts, floor=1e-6) == pytest.approx(-4.0)
    assert convergence_order(pts[-1:]) is None


def test_generation_time_counts_candidates_nfe_and_flops():
    arch = {"hidden": 8, "depth": 1, "time_dim": 4}
    r = generation_time(dim=4, rows=3, per_row=2, steps=2, arch=arch, generations=2)
    flops = linear_flops_per_sample(MLPVelocity((4,), num_classes=10, hidden=8, depth=1, time_dim=4))
    assert r["candidates"] == 6 and r["nfe"] == 8 and r["flops"] == 6 * 8 * flops
    assert 0 < r["seconds"] <= r["seconds_median"] and r["ask_s"] <= r["seconds"]


def test_roundtrip_error_falls_with_nfe_at_the_methods_order(toy16):
    toy, model = toy16
    x, y = toy.sample(64, torch.Generator().manual_seed(1))
    curve = roundtrip_curve(model, x, Condition.from_labels(y), steps={"euler": (4, 16, 64), "rk4": (1, 2, 4)}, tols=(1e-4,))
    euler = [p for p in curve if p["method"] == "euler"]
    assert [p["nfe"] for p in euler] == [4, 16, 64]
    assert euler[0]["mean"] > euler[1]["mean"] > euler[2]["mean"]
    assert -1.5 < convergence_order(euler) < -0.5  # first order
    rk4 = [p for p in curve if p["method"] == "rk4"]
    assert convergence_order(rk4) < -2.5  # fourth order, give or take the trained field
    dopri = [p for p in curve if p["method"] == "dopri5"][0]
    assert dopri["tol"] == 1e-4 and dopri["nfe"] > 0 and math.isfinite(dopri["mean"])
