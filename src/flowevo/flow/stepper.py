"""A fixed-grid ODE stepper (euler, midpoint, rk4) with no host synchronisation in its loop.

The same update rules as torchdiffeq's fixed-grid methods (rk4 is its 3/8-rule variant), over
``steps`` equal steps from ``t0`` to ``t1`` in either time direction. The loop is plain tensor
arithmetic with the grid held as Python floats, so it can be captured as a CUDA graph or traced
by ``torch.compile``; torchdiffeq's loop compares tensors in Python and cannot.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

StageFn = Callable[[float, Tensor], Tensor]
"""``f(t, y)``: the velocity at time ``t`` (a float) of the state ``y (N, *S)``, shape ``(N, *S)``."""

STAGES = {"euler": 1, "midpoint": 2, "rk4": 4}


def grid(t0: float, t1: float, steps: int) -> list[float]:
    """``steps + 1`` equally spaced times from ``t0`` to ``t1`` (exact end points)."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    return [t0 + (t1 - t0) * i / steps for i in range(steps)] + [t1]


def integrate_fixed(
    f: StageFn, y: Tensor, t0: float, t1: float, steps: int, method: str, k0: Tensor | None = None
) -> Tensor:
    """Integrate ``dy/dt = f(t, y)`` over ``steps`` equal steps from ``t0`` to ``t1``.

    Args:
        f: the stage function; called once per stage (``STAGES[method]`` times per step).
        y: the state at ``t0``, ``(N, *S)``.
        method: ``euler``, ``midpoint`` or ``rk4``.
        k0: ``f(t0, y)`` if already evaluated (the first stage is then not called again).

    Returns:
        The state at ``t1``, ``(N, *S)``.
    """
    if method not in STAGES:
        raise ValueError(f"unknown fixed-grid method {method!r}; use one of {sorted(STAGES)}")
    times = grid(t0, t1, steps)
    for i in range(steps):
        ta, tb = times[i], times[i + 1]
        dt = tb - ta
        k1 = k0 if (i == 0 and k0 is not None) else f(ta, y)
        if method == "euler":
            y = y + dt * k1
        elif method == "midpoint":
            y = y + dt * f(ta + 0.5 * dt, y + (0.5 * dt) * k1)
        else:  # rk4, the 3/8 rule (torchdiffeq's "rk4")
            k2 = f(ta + dt / 3, y + (dt / 3) * k1)
            k3 = f(ta + dt * 2 / 3, y + dt * (k2 - k1 / 3))
            k4 = f(tb, y + dt * (k1 - k2 + k3))
            y = y + (k1 + 3 * (k2 + k3) + k4) * (dt * 0.125)
    return y
