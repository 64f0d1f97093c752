"""Shift robustness of a counterfactual: does the black box still read the edit as its target once it moves?

An edit the black box reads as its target only at its exact pixel position lies on a thin sliver of the
black box's decision region; a reader of another family (a person, an independent classifier) reads it
as ambiguous. :class:`ShiftCheck` asks the black box about copies of an edit shifted by a few pixels and
calls the edit robust when the least target probability over the copies reaches ``level``. It costs one
black-box query per shifted copy, so the caller budgets for it (:meth:`DigitCounterfactuals.kept
<flowevo.domains.digits.counterfactuals.DigitCounterfactuals.kept>` spends at most ``budget`` queries per
digit, pooled over the digits, and REO leaves that many evaluations out of its search).

Chosen on development splits (issue 15, tenth pass; docs/benchmarks.md): four copies shifted 2 px along
both diagonals, level 0.8, at most 16 candidates per digit in order of closeness.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from flowevo.domains.digits.objectives import ClassifierOracle

__all__ = ["DIAGONAL_2PX", "ShiftCheck", "shift_images"]

DIAGONAL_2PX: tuple[tuple[int, int], ...] = ((2, 2), (-2, -2), (2, -2), (-2, 2))


def shift_images(images: Tensor, dx: int, dy: int) -> Tensor:
    """``images (N, H, W)`` moved ``dx`` pixels right and ``dy`` down, zeros shifted in: ``(N, H, W)``."""
    h, w = images.shape[-2:]
    pad = max(abs(dx), abs(dy))
    if pad == 0:
        return images.clone()
    padded = F.pad(images, (pad, pad, pad, pad))
    return padded[:, pad - dy:pad - dy + h, pad - dx:pad - dx + w].contiguous()


@dataclass(frozen=True)
class ShiftCheck:
    """The black box's reading of an edit's shifted copies.

    Args:
        offsets: ``(dx, dy)`` pixel shifts, one shifted copy (one black-box query) each.
        level: an edit passes when its least target probability over the copies is at least this.
        candidates: at most this many edits checked per digit (closest first).
        budget: black-box queries per digit for the checks, on average: the budget is pooled over the
            digits of a task (a digit whose first candidate passes leaves queries to one that needs more).
    """

    offsets: tuple[tuple[int, int], ...] = DIAGONAL_2PX
    level: float = 0.8
    candidates: int = 16
    budget: int = 24

    def __post_init__(self) -> None:
        if not self.offsets:
            raise ValueError("ShiftCheck needs at least one offset")
        if not 0.0 <= self.level <= 1.0:
            raise ValueError(f"level must be a probability in [0, 1], got {self.level}")
        if self.candidates < 1 or self.budget < 0:
            raise ValueError(f"candidates must be >= 1 and budget >= 0, got {self.candidates} and {self.budget}")

    @property
    def cost(self) -> int:
        """Black-box queries per edit checked (one per offset)."""
        return len(self.offsets)

    def worst(self, oracle: ClassifierOracle, images: Tensor, targets: Tensor) -> Tensor:
        """``(N,)``: the least target probability the black box gives the shifted copies of ``images (N, H, W)``
        (``targets (N,)``), in one batched call of ``N * cost`` queries."""
        if len(images) == 0:
            return torch.zeros(0, dtype=torch.float64)
        copies = torch.cat([shift_images(images, dx, dy) for dx, dy in self.offsets])
        p = oracle.probs(copies).view(self.cost, len(images), -1)
        t = targets.cpu().long()
        return p.gather(2, t[None, :, None].expand(self.cost, -1, 1)).squeeze(2).min(0).values.double()
