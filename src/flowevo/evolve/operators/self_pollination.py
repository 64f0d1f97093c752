"""Self-pollination: local, norm-preserving perturbation of one residual."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


def _flat(r: Tensor) -> Tensor:
    return r.reshape(r.shape[0], -1)


@dataclass(frozen=True)
class SelfPollination:
    """Rotate each residual by a random angle toward a random orthogonal direction.

    The norm ``||r||`` is kept exactly, so the residual stays on its shell and near its
    identity: with angle ``theta`` the new residual is
    ``||r|| (cos(theta) r/||r|| + sin(theta) u)`` for a random unit ``u`` orthogonal to ``r``.
    Angles are ``angle * |xi|`` with ``xi ~ N(0, 1)`` per individual (a mix of small and larger steps).

    Args:
        angle: typical rotation angle in radians.

    Example:
        >>> op = SelfPollination(angle=0.2)
        >>> r = torch.randn(5, 16)
        >>> out = op(r, torch.Generator().manual_seed(0))
        >>> torch.allclose(out.norm(dim=1), r.norm(dim=1), atol=1e-5)
        True
    """

    angle: float = 0.3

    def __post_init__(self) -> None:
        if not self.angle > 0:
            raise ValueError(f"angle must be positive, got {self.angle}")

    def __call__(self, residuals: Tensor, generator: torch.Generator, scale: Tensor | None = None) -> Tensor:
        """``(N, *S) -> (N, *S)`` with the same per-row norms; ``scale (N,)`` multiplies the angle."""
        r = _flat(residuals)
        norm = r.norm(dim=1, keepdim=True).clamp_min(1e-12)
        unit = r / norm
        noise = torch.randn(r.shape, generator=generator, device=r.device, dtype=r.dtype)
        ortho = noise - (noise * unit).sum(dim=1, keepdim=True) * unit
        ortho = ortho / ortho.norm(dim=1, keepdim=True).clamp_min(1e-12)
        theta = self.angle * torch.randn(r.shape[0], 1, generator=generator, device=r.device, dtype=r.dtype).abs()
        if scale is not None:
            theta = (theta * scale.reshape(-1, 1).to(theta)).clamp(max=torch.pi / 2)
        return (norm * (theta.cos() * unit + theta.sin() * ortho)).reshape(residuals.shape)
