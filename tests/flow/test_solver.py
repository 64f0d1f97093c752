"""Closed-form checks of the ODE solvers in both directions."""

import math

import pytest
import torch

from flowevo.flow import Adaptive, FixedGrid, ODESolver

SOLVERS = [FixedGrid("euler", 2000), FixedGrid("midpoint", 200), FixedGrid("rk4", 50), Adaptive("dopri5", 1e-8, 1e-8)]
RTOL = {"euler": 2e-3, "midpoint": 1e-4, "rk4": 1e-6, "dopri5": 1e-6}  # first, second, fourth order, adaptive


@pytest.mark.parametrize("disc", SOLVERS, ids=str)
def test_exponential_growth_forward_and_back(disc):
    # dx/dt = x  ->  x(1) = e x(0); backward from 1 to 0 divides by e
    x0 = torch.tensor([[1.0], [2.0], [-0.5]], dtype=torch.float64)
    solver = ODESolver(disc)
    x1 = solver.integrate(lambda x, t, c: x, x0, None, 0.0, 1.0)
    assert torch.allclose(x1, x0 * math.e, rtol=RTOL[disc.method])
    back = solver.integrate(lambda x, t, c: x, x1, None, 1.0, 0.0)
    assert torch.allclose(back, x0, rtol=RTOL[disc.method])


@pytest.mark.parametrize("disc", SOLVERS, ids=str)
def test_time_dependent_field(disc):
    # dx/dt = 3 t^2  ->  x(t1) - x(t0) = t1^3 - t0^3, the field reads the time the solver passes
    x0 = torch.zeros(4, 2, dtype=torch.float64)
    out = ODESolver(disc).integrate(lambda x, t, c: (3 * t**2)[:, None].expand_as(x), x0, None, 0.2, 0.9)
    assert torch.allclose(out, torch.full_like(x0, 0.9**3 - 0.2**3), atol=2e-3 if disc.method == "euler" else 1e-7)


def test_rotation_preserves_norm_and_angle():
    # dx/dt = A x with A the 2-D rotation generator: exact solution rotates by the elapsed time
    A = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64)
    x0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    x1 = ODESolver(FixedGrid("rk4", 100)).integrate(lambda x, t, c: x @ A.T, x0, None, 0.0, 1.0)
    assert torch.allclose(x1, torch.tensor([[math.cos(1.0), math.sin(1.0)]], dtype=torch.float64), atol=1e-9)


def test_fixed_grid_counts_one_batched_call_per_stage():
    calls = []

    def v(x, t, c):
        calls.append((x.shape[0], t.shape))
        return torch.zeros_like(x)

    solver = ODESolver(FixedGrid("rk4", 7))
    solver.integrate(v, torch.zeros(300, 3), None, 0.0, 1.0)
    assert solver.nfe == len(calls) == 7 * 4 == FixedGrid("rk4", 7).nfe
    assert all(n == 300 and s == (300,) for n, s in calls)


def test_partial_interval_keeps_step_length():
    solver = ODESolver(FixedGrid("euler", 10))
    solver.integrate(lambda x, t, c: x, torch.ones(1, 1), None, 1.0, 0.5)
    assert solver.nfe == 5


@pytest.mark.parametrize("bad", [lambda: FixedGrid("rk4", 0), lambda: FixedGrid("dopri5", 10),
                                 lambda: FixedGrid("rk4", 2.5), lambda: Adaptive("rk4"), lambda: Adaptive(rtol=0)])
def test_one_way_to_set_discretisation(bad):
    with pytest.raises(ValueError):
        bad()


def test_solver_rejects_non_discretisation_and_nan():
    with pytest.raises(TypeError):
        ODESolver({"method": "rk4", "steps": 10})
    with pytest.raises(ValueError, match="NaN"):
        ODESolver().integrate(lambda x, t, c: x, torch.tensor([[float("nan")]]), None, 0.0, 1.0)
