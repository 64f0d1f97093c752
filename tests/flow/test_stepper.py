"""flowevo's fixed-grid stepper against torchdiffeq's fixed-grid methods, and its call counting."""

import math

import pytest
import torch
from torchdiffeq import odeint

from flowevo.flow import Condition, FixedGrid, MLPVelocity, ODESolver, ResidualCodec
from flowevo.flow.stepper import STAGES, grid, integrate_fixed

METHODS = sorted(STAGES)


def _torchdiffeq(v, x, c, t0, t1, steps, method):
    n = x.shape[0]
    times = torch.linspace(t0, t1, steps + 1, dtype=x.dtype)
    return odeint(lambda t, y: v(y, t.expand(n).to(y.dtype), c), x, times, method=method)[-1]


def _field(x, t, c):
    # nonlinear, time-dependent, different per row: every stage's time and state matter
    return torch.sin(3 * x) * torch.cos(2 * t)[:, None] + 0.5 * x.roll(1, dims=1) * t[:, None]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("t0,t1,steps", [(0.0, 1.0, 7), (1.0, 0.0, 7), (0.3, 1.0, 5), (1.0, 0.45, 3)])
def test_matches_torchdiffeq_float64(method, t0, t1, steps):
    x = torch.randn(33, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ours = integrate_fixed(
        lambda t, y: _field(y, torch.full((y.shape[0],), t, dtype=y.dtype), None), x, t0, t1, steps, method
    )
    ref = _torchdiffeq(_field, x, None, t0, t1, steps, method)
    assert (ours - x).abs().max() > 0.01  # the flow moved the state
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_matches_torchdiffeq_on_a_conditional_mlp_float32(method):
    net = MLPVelocity((16,), num_classes=4, value_dim=2, hidden=64, depth=2).eval()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(128, 16, generator=g)
    c = Condition(labels=torch.randint(0, 4, (128,), generator=g), values=torch.randn(128, 2, generator=g))
    with torch.inference_mode():
        for t0, t1 in ((0.0, 1.0), (1.0, 0.0)):
            ours = ODESolver(FixedGrid(method, 10)).integrate(net, x, c, t0, t1)
            ref = _torchdiffeq(net, x, c, t0, t1, 10, method)
            torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def test_given_first_stage_is_not_called_again():
    calls = []

    def f(t, y):
        calls.append(t)
        return -y

    x = torch.ones(4, 2, dtype=torch.float64)
    full = integrate_fixed(f, x, 0.0, 1.0, 3, "rk4")
    assert len(calls) == 12 and calls[0] == 0.0
    calls.clear()
    again = integrate_fixed(f, x, 0.0, 1.0, 3, "rk4", k0=-x)
    assert len(calls) == 11 and calls[0] != 0.0
    assert torch.equal(full, again)
    assert torch.allclose(full, x * math.exp(-1.0), rtol=1e-3)


def test_grid_is_equal_steps_with_exact_ends():
    assert grid(1.0, 0.0, 4) == [1.0, 0.75, 0.5, 0.25, 0.0]
    assert grid(0.3, 1.0, 7)[-1] == 1.0
    with pytest.raises(ValueError):
        grid(0.0, 1.0, 0)
    with pytest.raises(ValueError, match="unknown fixed-grid method"):
        integrate_fixed(lambda t, y: y, torch.ones(1, 1), 0.0, 1.0, 2, "dopri5")


@pytest.mark.parametrize("method", METHODS)
def test_solver_counts_one_batched_call_per_stage_partial_interval(method):
    calls = []

    def v(x, t, c):
        calls.append((x.shape[0], t.shape, float(t[0])))
        return torch.zeros_like(x)

    solver = ODESolver(FixedGrid(method, 10))
    solver.integrate(v, torch.zeros(50, 3), None, 1.0, 0.3)  # 7 of 10 steps
    assert solver.nfe == len(calls) == 7 * STAGES[method]
    assert all(n == 50 and s == (50,) for n, s, _ in calls)
    last_stage = {"euler": 0.4, "midpoint": 0.35, "rk4": 0.3}[method]  # the last step starts at 0.4
    assert calls[0][2] == 1.0 and min(t for *_, t in calls) == pytest.approx(last_stage, abs=1e-6)


def test_codec_hook_counts_calls_for_every_method():
    net = MLPVelocity((4,), num_classes=2, hidden=16, depth=1).eval()
    seen = []
    handle = net.register_forward_hook(lambda m, i, o: seen.append(i[0].shape[0]))
    try:
        for method in METHODS:
            codec = ResidualCodec(net, FixedGrid(method, 3))
            seen.clear()
            with torch.inference_mode():
                codec.roundtrip_error(torch.randn(20, 4), Condition.from_labels([0, 1] * 10))
            assert seen == [20] * (2 * 3 * STAGES[method]) and codec.nfe == len(seen)
    finally:
        handle.remove()
