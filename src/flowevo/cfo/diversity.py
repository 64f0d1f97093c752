"""Keeping a round's weights spread over distinct samples: what the fine-tuning may not pile onto.

A user-given key (e.g. a crystal's composition) says which samples are "the same". Two
tools act on the softmax weights of a round (:mod:`flowevo.cfo.finetune`):

* :func:`diversity_offset`: the log-weight ``-gamma * log(count)`` (``count``: the round's samples
  sharing the key), so a key's total weight grows with ``count^(1 - gamma)`` instead of ``count``
  (``gamma = 1``: not at all): the compounding "many samples of the best key -> more weight ->
  more samples" stops;
* :class:`GroupCap`: no key may carry more than ``share`` of the weights (water-filling: capped keys
  are scaled down, the rest scaled up, until no key exceeds the cap);
* :func:`feasible_floor`: a share of the weights spread evenly over the feasible keys (then evenly over each
  key's feasible samples), so every feasible key the round found keeps some mass in the fitted flow.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor


def key_groups(keys: Sequence[Hashable]) -> Tensor:
    """Group index per sample ``(N,)`` long: equal keys share an index (``None`` keys are all one group)."""
    index: dict[Hashable, int] = {}
    return torch.tensor([index.setdefault(k, len(index)) for k in keys], dtype=torch.long)


def diversity_offset(keys: Sequence[Hashable], gamma: float) -> Tensor:
    """``-gamma * log(count of the sample's key among keys)`` per sample: ``(N,)`` float64."""
    counts = Counter(keys)
    return -gamma * torch.log(torch.tensor([float(counts[k]) for k in keys], dtype=torch.float64))


@dataclass(frozen=True)
class GroupCap:
    """Cap each group's share of the weights at ``share`` (``groups (N,)`` long from :func:`key_groups`).

    Where fewer than ``1 / share`` groups carry weight, the cap is raised to ``1 / (groups with weight)``
    (the weights then spread evenly over those groups).
    """

    groups: Tensor
    share: float

    def __post_init__(self) -> None:
        if not 0 < self.share <= 1:
            raise ValueError(f"share must be in (0, 1], got {self.share}")

    def __call__(self, w: Tensor) -> Tensor:
        """``w (N,)`` (sums to 1) -> capped weights ``(N,)`` (sum 1, no group above the cap)."""
        g = self.groups.to(w.device)
        n_groups = int(g.max()) + 1 if g.numel() else 0
        w = w.double() / w.sum()
        totals = torch.zeros(n_groups, dtype=w.dtype, device=w.device).index_add_(0, g, w)
        cap = max(self.share, 1.0 / max(int((totals > 0).sum()), 1))
        capped = torch.zeros(n_groups, dtype=torch.bool, device=w.device)
        for _ in range(n_groups + 1):
            over = (totals > cap * (1 + 1e-9)) & ~capped
            if not over.any():
                break
            capped |= over
            free = (~capped) & (totals > 0)
            scale = torch.ones_like(totals)
            scale[capped] = cap / totals[capped]
            left = 1.0 - cap * int(capped.sum())
            if free.any() and totals[free].sum() > 0:
                scale[free] = left / totals[free].sum()
            w = w * scale[g]
            totals = totals * scale
        return w / w.sum()


def feasible_floor(w: Tensor, feasible: Tensor, share: float, groups: Tensor | None = None) -> Tensor:
    """``(1 - share) * w + share * u``: ``w (N,)`` weights, ``feasible (N,)`` bool, ``u`` uniform over the feasible
    groups (``groups (N,)`` long from :func:`key_groups`; None: every sample its own group) and, within a group, over
    its feasible samples. Returns ``(N,)`` float64 summing to 1; ``w`` unchanged (normalised) without a feasible
    sample or at ``share = 0``."""
    if not 0 <= share <= 1:
        raise ValueError(f"share must be in [0, 1], got {share}")
    w = w.double() / w.sum()
    feasible = feasible.to(w.device).bool()
    if share == 0 or not feasible.any():
        return w
    g = torch.arange(w.shape[0], device=w.device) if groups is None else groups.to(w.device).long()
    counts = torch.zeros(int(g.max()) + 1, dtype=w.dtype, device=w.device).index_add_(0, g, feasible.double())
    u = torch.where(feasible, 1.0 / counts[g].clamp(min=1), torch.zeros_like(w))
    u = u / u.sum()
    return (1 - share) * w + share * u
