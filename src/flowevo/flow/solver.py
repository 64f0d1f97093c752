"""ODE solving in either time direction.

Discretisation is chosen by exactly one typed object:

- :class:`FixedGrid` (``euler``, ``midpoint``, ``rk4``): ``steps`` equal steps; no tolerances.
  Solved by flowevo's own stepper (:mod:`flowevo.flow.stepper`, the update rules of torchdiffeq's
  fixed-grid methods, tested against them), whose loop never waits for the device, so it can be
  captured as a CUDA graph or compiled (``capture``), at a chosen ``precision``.
- :class:`Adaptive` (``dopri5``, ``dopri8``, ``bosh3``, ...): ``rtol``/``atol``; no step count.
  Solved by torchdiffeq.

Each solver step evaluates the velocity once per stage on the **whole batch**;
:attr:`ODESolver.nfe` counts those batched calls. The condition is checked on the first call of
each solve only (:func:`~flowevo.flow.condition.unchecked_conditions` for the rest).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor
from torchdiffeq import odeint

from flowevo.flow.capture import Capture, CaptureCache, capture_graph, check_capture, resolve_capture
from flowevo.flow.condition import Condition, unchecked_conditions
from flowevo.flow.precision import Precision, check_precision, precision_context
from flowevo.flow.stepper import STAGES, StageFn, integrate_fixed

VelocityFn = Callable[[Tensor, Tensor, Condition], Tensor]

_FIXED_STAGES = STAGES
_ADAPTIVE = ("dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun")


@dataclass(frozen=True)
class FixedGrid:
    """Fixed-step solver: ``steps`` equal steps over the integration interval.

    A partial interval (edit strength s) gets ``max(1, round(steps * s))`` steps, so the step
    length stays the same.

    Args:
        method: ``euler``, ``midpoint`` or ``rk4`` (torchdiffeq's 3/8-rule rk4).
        steps: steps over the full interval [0, 1].
        capture: ``auto`` (a CUDA graph on CUDA, eager elsewhere), ``none``, ``graph``,
            ``compile`` or ``graph+compile``; see :mod:`flowevo.flow.capture`. Applies to solves
            without autograd; the results equal eager ones to float rounding.
        precision: ``fp32``, ``tf32`` (CUDA matmuls on TF32 units) or ``bf16`` (autocast); see
            :mod:`flowevo.flow.precision`.
    """

    method: Literal["euler", "midpoint", "rk4"] = "rk4"
    steps: int = 10
    capture: Capture = "auto"
    precision: Precision = "fp32"

    def __post_init__(self) -> None:
        if self.method not in _FIXED_STAGES:
            raise ValueError(f"unknown fixed-grid method {self.method!r}; use one of {sorted(_FIXED_STAGES)}")
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"steps must be a positive integer, got {self.steps!r}")
        check_capture(self.capture)
        check_precision(self.precision)

    @property
    def nfe(self) -> int:
        """Velocity evaluations for the full interval [0, 1]."""
        return self.steps * _FIXED_STAGES[self.method]


@dataclass(frozen=True)
class Adaptive:
    """Adaptive-step solver with per-element error control (``rtol``, ``atol``)."""

    method: str = "dopri5"
    rtol: float = 1e-5
    atol: float = 1e-5

    def __post_init__(self) -> None:
        if self.method not in _ADAPTIVE:
            raise ValueError(f"unknown adaptive method {self.method!r}; use one of {list(_ADAPTIVE)}")
        if not (self.rtol > 0 and self.atol > 0):
            raise ValueError("rtol and atol must be positive")


Discretisation = FixedGrid | Adaptive


class ODESolver:
    """Integrate ``dx/dt = v(x, t, c)`` from ``t0`` to ``t1`` (either direction).

    Args:
        discretisation: a :class:`FixedGrid` or an :class:`Adaptive`.

    Example:
        >>> solver = ODESolver(FixedGrid("rk4", steps=4))
        >>> v = lambda x, t, c: x                     # dx/dt = x  ->  x(1) = e * x(0)
        >>> x1 = solver.integrate(v, torch.ones(3, 1), None, 0.0, 1.0)
        >>> round(float(x1[0]), 4)
        2.7183
    """

    def __init__(self, discretisation: Discretisation = FixedGrid()) -> None:
        if not isinstance(discretisation, (FixedGrid, Adaptive)):
            raise TypeError(f"discretisation must be FixedGrid or Adaptive, got {type(discretisation).__name__}")
        self.discretisation = discretisation
        self.nfe = 0
        self.captured = CaptureCache()

    def integrate(self, velocity: VelocityFn, x: Tensor, c: Condition | None, t0: float, t1: float) -> Tensor:
        """Solve from ``x (N, *S)`` at time ``t0`` to time ``t1``; returns ``(N, *S)``."""
        if not torch.isfinite(x).all():
            raise ValueError("ODE initial state contains NaN or inf")
        if t0 == t1:
            return x
        d = self.discretisation
        if isinstance(d, FixedGrid):
            return self._fixed(d, velocity, x, c, float(t0), float(t1))
        n, first = x.shape[0], [True]

        def f(t: Tensor, y: Tensor) -> Tensor:
            self.nfe += 1
            if first[0]:  # the condition is checked on the first call of the solve only
                first[0] = False
                return velocity(y, t.expand(n).to(y.dtype), c)
            with unchecked_conditions():
                return velocity(y, t.expand(n).to(y.dtype), c)

        span = torch.tensor([t0, t1], dtype=x.dtype, device=x.device)
        # error control per element (max norm), not the RMS over the whole batch: every
        # sample meets the tolerance, however many are solved together
        return odeint(f, x, span, method=d.method, rtol=d.rtol, atol=d.atol, options={"norm": _max_norm})[-1]

    def _fixed(self, d: FixedGrid, velocity: VelocityFn, x: Tensor, c: Condition | None, t0: float,
               t1: float) -> Tensor:
        steps = max(1, round(d.steps * abs(t1 - t0)))
        calls = steps * _FIXED_STAGES[d.method]
        mode = resolve_capture(d.capture, x.device)
        with precision_context(d.precision, x.device):
            k0 = _stage_fn(velocity, c, x.shape[0], x.dtype)(t0, x)  # checks the condition (waits for the device)
        self.nfe += 1
        key: tuple = ()
        if mode != "none":
            key = CaptureCache.key(velocity, x, c, t0, t1, steps, d.method, d.precision, mode)
            if not self.captured.seen_before(key):
                mode = "none"  # captured or compiled from the second solve with this key on
        model = self.captured.compiled(velocity) if "compile" in mode else velocity

        def rest(y: Tensor, k: Tensor, cond: Condition | None) -> Tensor:
            with unchecked_conditions(), precision_context(d.precision, y.device):
                return integrate_fixed(_stage_fn(model, cond, y.shape[0], y.dtype), y, t0, t1, steps, d.method, k0=k)

        graph = self._graph(d, key, velocity, rest, x, k0, c) if "graph" in mode else None
        out = graph.replay(x, k0, c) if graph is not None else rest(x, k0, c)
        self.nfe += calls - 1
        return out

    def _graph(self, d: FixedGrid, key: tuple, velocity: VelocityFn, rest, x: Tensor, k0: Tensor,
               c: Condition | None):
        """The CUDA graph for ``key``: captured now if new (one warm-up solve, then the capture; neither
        is counted in ``nfe``); None where capturing failed under ``capture="auto"``."""
        graph = self.captured.graph(key)
        if graph is not None or self.captured.failed(key):
            return graph
        try:
            graph = capture_graph(velocity, rest, x, k0, c)
        except Exception as exc:  # e.g. a velocity that waits for the device inside its forward
            if d.capture != "auto":
                raise ValueError(f"could not capture the solve as a CUDA graph ({type(exc).__name__}: {exc}); "
                                 "use FixedGrid(capture='none') for this velocity model") from exc
            warnings.warn(f"flowevo: this solve could not be captured as a CUDA graph ({type(exc).__name__}: {exc}); "
                          "it runs eagerly", RuntimeWarning, stacklevel=4)
            self.captured.add_failure(key)
            return None
        self.captured.add_graph(key, graph)
        return graph


def _stage_fn(velocity: VelocityFn, c: Condition | None, n: int, dtype: torch.dtype) -> StageFn:
    """``f(t, y) = velocity(y, t (N,), c)`` in the state's dtype (autocast may return bfloat16)."""

    def f(t: float, y: Tensor) -> Tensor:
        return velocity(y, torch.full((n,), t, dtype=dtype, device=y.device), c).to(dtype)

    return f


def _max_norm(t: Tensor) -> Tensor:
    return t.abs().max()
