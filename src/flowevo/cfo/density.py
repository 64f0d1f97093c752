"""Log-densities of a flow (instantaneous change of variables) and a Monte Carlo KL between two flows.

A flow ``dz/dt = v(z, t, c)`` from ``z_0 ~ N(0, I)`` (t = 0) to data (t = 1) has
``d log p_t(z_t) / dt = -div v(z_t, t, c)``. Integrating ``(v, div v)`` together with torchdiffeq
gives exact log-densities up to solver error. The divergence is exact (one autograd pass per
dimension) for ``d <= exact_max_dim`` and Hutchinson's unbiased estimate (one Rademacher probe
per step, seeded) above; either way each solver stage is **one** velocity-model call for the
whole batch.

:func:`kl_divergence` estimates ``KL(p || q) = E_p[log p(z) - log q(z)]`` from ``n`` samples of
``p`` (the fine-tuned flow) scored under both flows, with its standard error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torchdiffeq import odeint

from flowevo.cfo.sampling import batch_condition, residual_shape
from flowevo.flow import Condition, FixedGrid

EXACT_MAX_DIM = 8


def _divergence(v: Tensor, z: Tensor, probe: Tensor | None) -> Tensor:
    """``div_z v`` per row, ``(N,)``: exact (``probe`` None) or Hutchinson ``probe^T (dv/dz) probe``."""
    flat_v, n = v.reshape(v.shape[0], -1), v.shape[0]
    if probe is None:
        div = torch.zeros(n, dtype=v.dtype, device=v.device)
        for i in range(flat_v.shape[1]):
            (grad,) = torch.autograd.grad(flat_v[:, i].sum(), z, retain_graph=True)
            div = div + grad.reshape(n, -1)[:, i]
        return div
    (grad,) = torch.autograd.grad(v, z, grad_outputs=probe, retain_graph=False)
    return (grad * probe).reshape(n, -1).sum(1)


def _integrate(model: nn.Module, z: Tensor, c: Condition, t0: float, t1: float, steps: int, method: str,
               generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
    """Integrate ``(z, a)`` with ``dz/dt = v``, ``da/dt = div v`` from ``t0`` to ``t1``; returns ``(z(t1), a(t1))``."""
    exact = z[0].numel() <= EXACT_MAX_DIM

    def f(t: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        y = state[0].detach().requires_grad_(True)
        with torch.enable_grad():
            v = model(y, t.expand(y.shape[0]).to(y.dtype), c)
            probe = None
            if not exact:
                probe = (torch.randint(0, 2, y.shape, generator=generator, device=y.device) * 2 - 1).to(y.dtype)
            div = _divergence(v, y, probe)
        return v.detach(), div.detach()

    grid = torch.linspace(t0, t1, steps + 1, dtype=z.dtype, device=z.device)
    a0 = torch.zeros(z.shape[0], dtype=z.dtype, device=z.device)
    zs, as_ = odeint(f, (z, a0), grid, method=method)
    return zs[-1], as_[-1]


def _log_normal(z: Tensor) -> Tensor:
    flat = z.reshape(z.shape[0], -1)
    return -0.5 * (flat ** 2).sum(1) - 0.5 * flat.shape[1] * math.log(2 * math.pi)


def sample_with_log_density(model: nn.Module, noise: Tensor, c: Condition, grid: FixedGrid = FixedGrid("rk4", 20),
                            generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Decode ``noise (N, *S)`` under ``c`` and return ``(z (N, *S), log p(z) (N,))`` (nats, flow space)."""
    z1, a = _integrate(model, noise, c, 0.0, 1.0, grid.steps, grid.method, generator)
    return z1, _log_normal(noise) - a


def log_density(model: nn.Module, z: Tensor, c: Condition, grid: FixedGrid = FixedGrid("rk4", 20),
                generator: torch.Generator | None = None) -> Tensor:
    """``log p(z | c)`` of flow-space points ``z (N, *S)`` under ``model``: ``(N,)`` nats."""
    z0, a = _integrate(model, z, c, 1.0, 0.0, grid.steps, grid.method, generator)
    return _log_normal(z0) + a


@dataclass(frozen=True)
class KLEstimate:
    """``KL(p || q)`` in nats with its Monte Carlo standard error, from ``n`` samples of ``p``."""

    value: float
    stderr: float
    n: int


def kl_divergence(p: nn.Module, q: nn.Module, n: int, c: Condition, generator: torch.Generator,
                  grid: FixedGrid = FixedGrid("rk4", 20)) -> KLEstimate:
    """Monte Carlo ``KL(p || q)`` between two flows on one space under condition ``c`` (batch 1 or ``n``).

    Samples ``z ~ p`` with their log-density by the forward change of variables, then scores
    them under ``q`` by integrating ``q`` backward. ``p == q`` gives 0 up to solver error.
    """
    if n < 2:
        raise ValueError(f"need at least 2 samples for a KL estimate, got {n}")
    shape = residual_shape(p)
    cn = batch_condition(c, n)
    device = next(p.parameters()).device
    draws = generator.device if generator is not None else device  # draw where the generator lives, then move
    noise = torch.randn((n, *shape), generator=generator, device=draws).to(device)
    seed = torch.randint(0, 2**31 - 1, (1,), generator=generator, device=draws)
    probe_gen = torch.Generator(device=device).manual_seed(int(seed))
    z, log_p = sample_with_log_density(p, noise, cn, grid, probe_gen)
    log_q = log_density(q, z, cn, grid, probe_gen)
    d = (log_p - log_q).double()
    return KLEstimate(float(d.mean()), float(d.std() / math.sqrt(n)), n)
