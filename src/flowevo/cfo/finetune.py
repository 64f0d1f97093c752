"""One round of reward-weighted flow matching with a pull toward the pretrained velocity field.

Given samples ``z (N, *S)`` of the current flow and weights ``w (N,)`` (a softmax of the
pseudo-reward), each step draws a batch of samples with probability ``w``, fresh noise and
times, and minimises

    || v_theta(x_t, t, c) - (x1 - x0) ||^2  +  anchor * || v_theta(x_t, t, c) - v_pretrained(x_t, t, c) ||^2

on the same interpolants ``x_t = (1 - t) x0 + t x1``: the first term moves the flow toward the
reweighted samples, the second keeps its velocity field near the pretrained one (the
"stay close to the pretrained flow" term; ``anchor = 0`` switches it off). Randomness comes
from one seeded generator.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from flowevo.flow import Condition
from flowevo.flow.path import CondOTPath


@dataclass(frozen=True)
class FinetuneConfig:
    """Settings of one fine-tuning round.

    Args:
        steps: optimiser steps per round.
        batch_size: samples per step (drawn with replacement, probability = weight).
        lr: AdamW learning rate (constant within a round).
        weight_decay: AdamW weight decay.
        anchor: weight of the velocity regression toward the pretrained model.
    """

    steps: int = 300
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    anchor: float = 0.5

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.lr <= 0 or self.anchor < 0:
            raise ValueError("steps, batch_size and lr must be positive and anchor >= 0")


def softmax_weights(pseudo: Tensor, temperature: float, offset: Tensor | None = None,
                    cap: Callable[[Tensor], Tensor] | None = None) -> Tensor:
    """``softmax(pseudo / temperature + offset)`` over finite entries; NaN (failed) samples get weight 0.
    ``(N,) -> (N,)``; ``offset (N,)`` (default 0) is a log-weight that the temperature does not scale;
    ``cap`` (e.g. :class:`~flowevo.cfo.diversity.GroupCap`) reshapes the result."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    ok = torch.isfinite(pseudo)
    if not ok.any():
        raise ValueError("no sample has a finite pseudo-reward (every evaluation failed)")
    logits = pseudo.double() / temperature
    if offset is not None:
        logits = logits + offset.double()
    logits = torch.where(ok, logits, torch.full_like(logits, -torch.inf))
    w = torch.softmax(logits, dim=0)
    return w if cap is None else cap(w)


def trust_region_weights(pseudo: Tensor, temperature: float, min_ess: float, offset: Tensor | None = None,
                         cap: Callable[[Tensor], Tensor] | None = None) -> tuple[Tensor, float]:
    """:func:`softmax_weights` at the lowest temperature ``>= temperature`` whose weights keep an effective
    sample size of at least ``min_ess`` times the finite samples (a per-round trust region: one sample with
    an outlying reward cannot take all the weight). Returns ``(weights (N,), temperature used)``."""
    if not 0 <= min_ess <= 1:
        raise ValueError(f"min_ess must be in [0, 1], got {min_ess}")

    def ess(t: float) -> float:
        return effective_sample_size(softmax_weights(pseudo, t, offset, cap))

    w = softmax_weights(pseudo, temperature, offset, cap)
    need = min_ess * int(torch.isfinite(pseudo).sum())
    if effective_sample_size(w) >= need:
        return w, float(temperature)
    lo, hi = math.log(temperature), math.log(temperature) + 1.0
    while ess(math.exp(hi)) < need and hi < math.log(temperature) + 40:
        lo, hi = hi, hi + 1.0
    for _ in range(40):  # ESS grows with the temperature: bisect on log(temperature)
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ess(math.exp(mid)) < need else (lo, mid)
    return softmax_weights(pseudo, math.exp(hi), offset, cap), math.exp(hi)


def effective_sample_size(w: Tensor) -> float:
    """``(sum w)^2 / sum w^2``: how many equally weighted samples ``w (N,)`` is worth."""
    return float(w.sum() ** 2 / (w ** 2).sum().clamp_min(1e-300))


def effective_group_count(w: Tensor, groups: Tensor) -> float:
    """:func:`effective_sample_size` of the groups' total weights: ``1 / sum_g W_g^2`` with ``W_g`` the share of
    ``w (N,)`` on group ``g`` (``groups (N,)`` long): how many equally weighted groups the weights are worth
    (never more than the sample-level figure)."""
    g = groups.to(w.device).long()
    totals = torch.zeros(int(g.max()) + 1 if g.numel() else 0, dtype=w.dtype, device=w.device).index_add_(0, g, w)
    return effective_sample_size(totals)


def finetune_round(model: nn.Module, pretrained: nn.Module, z: Tensor, c: Condition, weights: Tensor,
                   config: FinetuneConfig, seed: int) -> list[float]:
    """Fine-tune ``model`` in place on samples ``z (N, *S)`` under ``c`` (batch N) with ``weights (N,)``.

    Returns the loss per step. ``pretrained`` is only evaluated (no gradients).
    """
    if len(c) != z.shape[0] or weights.shape != (z.shape[0],):
        raise ValueError(f"{z.shape[0]} samples, {len(c)} conditions, weights {tuple(weights.shape)}")
    device = z.device
    gen = torch.Generator(device=device).manual_seed(seed)
    path = CondOTPath()
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    probs = (weights / weights.sum()).float().to(device)
    losses: list[float] = []
    model.train()
    for _ in range(config.steps):
        idx = torch.multinomial(probs, config.batch_size, replacement=True, generator=gen)
        x1, cb = z[idx], c[idx]
        x0 = torch.randn(x1.shape, generator=gen, device=device)
        t = torch.rand(x1.shape[0], generator=gen, device=device)
        s = path.sample(x0, x1, t)
        v = model(s.x_t, s.t, cb)
        loss = ((v - s.u) ** 2).mean()
        if config.anchor > 0:
            with torch.no_grad():
                v0 = pretrained(s.x_t, s.t, cb)
            loss = loss + config.anchor * ((v - v0) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    return losses
