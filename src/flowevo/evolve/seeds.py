"""Generation-0 seeds beyond a source's own residual (passed to the Evolver as ``extra_seeds``)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["slerp_ladder"]


def slerp_ladder(start: Tensor, end: Tensor, weights: Sequence[float] = (0.15, 0.3, 0.45, 0.6, 0.75, 0.9)) -> Tensor:
    """Per row ``(B, 1 + len(weights), *S)``: ``start`` and spherical interpolations from it toward ``end`` by
    ``weights`` (directions slerped, norms interpolated linearly).

    With ``start`` = the source inverted under the *target* condition (it decodes to ~the source, wrong
    class) and ``end`` = its own residual (the swap edit), the ladder crosses the decision boundary near
    the source.

    Args:
        start, end: ``(B, *S)`` residuals.
    """
    if start.shape != end.shape:
        raise ValueError(f"start and end must have the same shape, got {tuple(start.shape)} and {tuple(end.shape)}")
    a, b = start.flatten(1), end.flatten(1)
    na, nb = a.norm(dim=1, keepdim=True), b.norm(dim=1, keepdim=True)
    omega = ((a / na) * (b / nb)).sum(1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7).acos()
    rungs = [((torch.sin((1 - w) * omega) * a / na + torch.sin(w * omega) * b / nb) / omega.sin()) * ((1 - w) * na + w * nb)
             for w in weights]
    return torch.stack([a, *rungs], dim=1).reshape(len(start), len(weights) + 1, *start.shape[1:])
