"""Flow-matching training: AdamW, optional EMA, condition dropout (for guidance), progress bar.

``train_flow(model, x, c, config)`` regresses ``model(x_t, t, c)`` onto the path's target
velocity. Randomness (batches, noise, times, dropout) comes from one seeded generator:
same seed, same weights.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor, nn

from flowevo.flow.condition import Condition
from flowevo.flow.path import CondOTPath
from flowevo.progress import progress_bar


@dataclass(frozen=True)
class TrainConfig:
    """Flow-matching training settings.

    Args:
        steps: optimiser steps.
        batch_size: samples per step.
        lr: AdamW learning rate (cosine-decayed to 10% over ``steps``).
        weight_decay: AdamW weight decay.
        ema_decay: keep an exponential moving average of the weights (None: off). The
            returned model carries the EMA weights when on.
        condition_dropout: probability of replacing a condition by the null condition
            (trains the null model for classifier-free guidance).
        ot_coupling: minibatch-OT coupling of noise and data.
        seed: seed of the training generator.
    """

    steps: int = 2000
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    ema_decay: float | None = 0.999
    condition_dropout: float = 0.1
    ot_coupling: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("steps, batch_size and lr must be positive")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in (0, 1) or None, got {self.ema_decay}")
        if not 0 <= self.condition_dropout < 1:
            raise ValueError(f"condition_dropout must be in [0, 1), got {self.condition_dropout}")


@dataclass
class TrainResult:
    """What training returns: the trained model, the loss per step and the wall time."""

    model: nn.Module
    losses: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    config: dict = field(default_factory=dict)


def flow_matching_loss(model: nn.Module, path: CondOTPath, x1: Tensor, c: Condition, generator: torch.Generator) -> Tensor:
    """Mean squared error between ``model(x_t, t, c)`` and the path's target velocity."""
    x0 = torch.randn(x1.shape, generator=generator, device=x1.device)
    t = torch.rand(x1.shape[0], generator=generator, device=x1.device)
    s = path.sample(x0, x1, t)
    return ((model(s.x_t, s.t, c) - s.u) ** 2).mean()


def train_flow(
    model: nn.Module,
    x: Tensor,
    c: Condition,
    config: TrainConfig = TrainConfig(),
    show_progress: bool = True,
    weights: Tensor | None = None,
) -> TrainResult:
    """Train ``model`` by conditional flow matching on data ``x (N, *S)`` with conditions ``c``.

    Args:
        weights: optional ``(N,)`` non-negative sampling weights (reward-weighted training).

    Returns:
        :class:`TrainResult`; ``result.model`` is ``model`` itself, holding the EMA weights
        if ``config.ema_decay`` is set.
    """
    if len(c) != x.shape[0]:
        raise ValueError(f"{x.shape[0]} samples but {len(c)} conditions")
    if not torch.isfinite(x).all():
        raise ValueError("training data contains NaN or inf")
    device = x.device
    gen = torch.Generator(device=device).manual_seed(config.seed)
    path = CondOTPath(ot_coupling=config.ot_coupling)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, config.steps, eta_min=config.lr * 0.1)
    ema = copy.deepcopy(model).requires_grad_(False) if config.ema_decay is not None else None
    probs = None if weights is None else (weights / weights.sum()).to(device)
    losses: list[float] = []
    model.train()
    start = time.perf_counter()
    with progress_bar("training flow", total=config.steps, enabled=show_progress) as advance:
        for step in range(config.steps):
            if probs is None:
                idx = torch.randint(0, x.shape[0], (config.batch_size,), generator=gen, device=device)
            else:
                idx = torch.multinomial(probs, config.batch_size, replacement=True, generator=gen)
            cb = c[idx]
            if config.condition_dropout > 0:
                cb = cb.with_null(torch.rand(len(idx), generator=gen, device=device) < config.condition_dropout)
            loss = flow_matching_loss(model, path, x[idx], cb, gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if ema is not None:  # warm-up so early (random) weights do not dominate short runs
                decay = min(config.ema_decay, (1 + step) / (10 + step))
                with torch.no_grad():
                    for pe, pm in zip(ema.parameters(), model.parameters()):
                        pe.lerp_(pm, 1 - decay)
            losses.append(loss.item())
            advance(1, loss=losses[-1])
    if ema is not None:
        model.load_state_dict(ema.state_dict())
    model.eval()
    return TrainResult(model=model, losses=losses, wall_s=time.perf_counter() - start, config=asdict(config))
