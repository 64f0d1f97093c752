"""Probability paths for flow-matching training.

The conditional optimal-transport path joins noise ``x0 ~ N(0, I)`` (t = 0) to data
``x1`` (t = 1) on a straight line: ``x_t = (1 - t) x0 + t x1`` with target velocity
``u = x1 - x0``. Optional minibatch-OT coupling re-pairs noise and data inside a batch
(Hungarian assignment on squared distances) for straighter paths.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor


@dataclass(frozen=True)
class PathSample:
    """A training sample from a path: ``t (N,)``, ``x_t (N, *S)``, target velocity ``u (N, *S)``."""

    t: Tensor
    x_t: Tensor
    u: Tensor


class CondOTPath:
    """Conditional OT (rectified-flow) path, optionally with minibatch-OT coupling.

    Args:
        ot_coupling: pair noise to data by exact minibatch OT before interpolating.

    Example:
        >>> path = CondOTPath()
        >>> s = path.sample(torch.zeros(8, 2), torch.ones(8, 2), torch.full((8,), 0.25))
        >>> s.x_t[0].tolist(), s.u[0].tolist()
        ([0.25, 0.25], [1.0, 1.0])
    """

    def __init__(self, ot_coupling: bool = False) -> None:
        self.ot_coupling = ot_coupling

    @staticmethod
    def couple(x0: Tensor, x1: Tensor) -> Tensor:
        """Permute ``x0 (N, *S)`` so that ``sum ||x0[i] - x1[i]||^2`` is minimal."""
        cost = torch.cdist(x0.reshape(len(x0), -1).double(), x1.reshape(len(x1), -1).double()) ** 2
        rows, cols = linear_sum_assignment(cost.cpu().numpy())
        perm = torch.empty(len(x0), dtype=torch.long)
        perm[torch.as_tensor(cols)] = torch.as_tensor(rows)
        return x0[perm.to(x0.device)]

    def sample(self, x0: Tensor, x1: Tensor, t: Tensor) -> PathSample:
        """Interpolate noise ``x0 (N, *S)`` and data ``x1 (N, *S)`` at times ``t (N,)``."""
        if x0.shape != x1.shape or t.shape != (x0.shape[0],):
            raise ValueError(f"shape mismatch: x0 {tuple(x0.shape)}, x1 {tuple(x1.shape)}, t {tuple(t.shape)}")
        if self.ot_coupling:
            x0 = self.couple(x0, x1)
        tb = t.reshape(-1, *([1] * (x1.ndim - 1)))
        return PathSample(t=t, x_t=(1 - tb) * x0 + tb * x1, u=x1 - x0)
