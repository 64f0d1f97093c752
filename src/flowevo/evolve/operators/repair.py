"""Repair: keep residuals in the high-density shell of N(0, I) (``||r|| ≈ sqrt(d)``)."""

from __future__ import annotations

from dataclasses import dataclass

from scipy.stats import chi
from torch import Tensor


@dataclass(frozen=True)
class ShellRepair:
    """Clamp each residual's norm into the central ``[q, 1 - q]`` band of the chi(d) distribution.

    The norm of a d-dimensional standard normal follows chi(d); its mass concentrates near
    ``sqrt(d)``. Residuals outside the band are rescaled radially onto its nearest edge
    (direction kept); those inside are untouched.

    Args:
        tail: probability ``q`` left out on each side.

    Example:
        >>> r = ShellRepair(0.01)(torch.zeros(2, 16) + 10.0)
        >>> bool((r.norm(dim=1) < 10.0 * 4).all())
        True
    """

    tail: float = 0.01

    def __post_init__(self) -> None:
        if not 0 < self.tail < 0.5:
            raise ValueError(f"tail must be in (0, 0.5), got {self.tail}")

    def band(self, d: int) -> tuple[float, float]:
        """The allowed norm interval for dimension ``d``."""
        return float(chi.ppf(self.tail, d)), float(chi.ppf(1 - self.tail, d))

    def __call__(self, residuals: Tensor) -> Tensor:
        """``(N, *S) -> (N, *S)`` with norms inside :meth:`band`."""
        n = residuals.shape[0]
        r = residuals.reshape(n, -1)
        lo, hi = self.band(r.shape[1])
        norm = r.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return (r * norm.clamp(lo, hi) / norm).reshape(residuals.shape)
