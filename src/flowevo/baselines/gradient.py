"""Gradient latent optimisation: a white-box reference that differentiates through the objective.

Optimises flow-space points ``z`` (e.g. a VAE latent) with AdamW on
``loss(decode(z)) + weight * ||z - z0||^2`` per row, and freezes a row once ``done(x)``
says it reached its goal (e.g. the classifier's target probability passed a threshold).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import Tensor

from flowevo.baselines.budgeted import final_edits
from flowevo.evolve.result import EditResult


def gradient_search(z0: Tensor, decode: Callable[[Tensor], Tensor], loss: Callable[[Tensor], Tensor],
                    done: Callable[[Tensor], Tensor], steps: int = 1000, lr: float = 0.05,
                    weight: float = 0.01) -> EditResult:
    """Minimise ``loss(decode(z)) (B,)`` from ``z0 (B, *S)``; rows with ``done(x) (B,)`` True stop moving.

    Returns an :class:`~flowevo.evolve.EditResult` (``"gradient"``): the final edit per row (residual:
    the optimised ``z``), gradient steps per row as evaluations."""
    start = time.perf_counter()
    z = z0.detach().clone().requires_grad_(True)
    opt = torch.optim.AdamW([z], lr=lr, weight_decay=0.0)
    active = torch.ones(len(z0), dtype=torch.bool, device=z0.device)
    used = torch.zeros(len(z0), dtype=torch.long)
    for _ in range(steps):
        with torch.enable_grad():
            x = decode(z)
            with torch.no_grad():
                active &= ~done(x)
            if not active.any():
                break
            per_row = loss(x) + weight * (z - z0).flatten(1).pow(2).sum(dim=1)
            opt.zero_grad(set_to_none=True)
            (per_row * active).sum().backward()
        z.grad[~active] = 0  # frozen rows do not move (AdamW's state would otherwise drift them)
        keep = z.detach()[~active].clone()
        opt.step()
        with torch.no_grad():
            z[~active] = keep
        used[active.cpu()] += 1
    with torch.no_grad():
        x = decode(z)
    return final_edits("gradient", z.detach(), x.detach(), used, time.perf_counter() - start)
