"""Cross-pollination: recombine a residual with a donor residual from another sample."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Slerp:
    """Spherical interpolation toward the donor by a weight ``w ~ U(0, max_weight)``.

    Directions are slerped and norms interpolated linearly, so two residuals on the shell
    give a child on the shell.
    """

    max_weight: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.max_weight <= 1:
            raise ValueError(f"max_weight must be in (0, 1], got {self.max_weight}")

    def __call__(self, r: Tensor, donor: Tensor, generator: torch.Generator) -> Tensor:
        """``(N, d), (N, d) -> (N, d)``."""
        w = self.max_weight * torch.rand(r.shape[0], 1, generator=generator, device=r.device, dtype=r.dtype)
        na, nb = r.norm(dim=1, keepdim=True).clamp_min(1e-12), donor.norm(dim=1, keepdim=True).clamp_min(1e-12)
        a, b = r / na, donor / nb
        omega = (a * b).sum(dim=1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7).acos()
        so = omega.sin()
        direction = (torch.sin((1 - w) * omega) * a + torch.sin(w * omega) * b) / so
        return direction * ((1 - w) * na + w * nb)


@dataclass(frozen=True)
class UniformMask:
    """Take each coordinate from the donor with probability ``rate``."""

    rate: float = 0.25

    def __post_init__(self) -> None:
        if not 0 < self.rate < 1:
            raise ValueError(f"rate must be in (0, 1), got {self.rate}")

    def __call__(self, r: Tensor, donor: Tensor, generator: torch.Generator) -> Tensor:
        """``(N, d), (N, d) -> (N, d)``."""
        mask = torch.rand(r.shape, generator=generator, device=r.device) < self.rate
        return torch.where(mask, donor, r)


@dataclass(frozen=True)
class BlockMask:
    """Take one contiguous (circular) block of ``fraction * d`` coordinates from the donor."""

    fraction: float = 0.25

    def __post_init__(self) -> None:
        if not 0 < self.fraction < 1:
            raise ValueError(f"fraction must be in (0, 1), got {self.fraction}")

    def __call__(self, r: Tensor, donor: Tensor, generator: torch.Generator) -> Tensor:
        """``(N, d), (N, d) -> (N, d)``."""
        n, d = r.shape
        length = max(1, round(self.fraction * d))
        start = torch.randint(0, d, (n, 1), generator=generator, device=r.device)
        pos = (torch.arange(d, device=r.device)[None, :] - start) % d
        return torch.where(pos < length, donor, r)


Mixing = Slerp | UniformMask | BlockMask


@dataclass(frozen=True)
class CrossPollination:
    """Recombine residuals with donors (residuals of other samples) by a mixing strategy.

    Args:
        mix: :class:`Slerp`, :class:`UniformMask` or :class:`BlockMask`.

    Example:
        >>> op = CrossPollination(Slerp(0.5))
        >>> g = torch.Generator().manual_seed(0)
        >>> op(torch.randn(4, 8), torch.randn(4, 8), g).shape
        torch.Size([4, 8])
    """

    mix: Mixing = Slerp()

    def __call__(self, residuals: Tensor, donors: Tensor, generator: torch.Generator) -> Tensor:
        """``(N, *S)`` residuals and ``(N, *S)`` donors -> ``(N, *S)`` children."""
        if residuals.shape != donors.shape:
            raise ValueError(f"residuals {tuple(residuals.shape)} and donors {tuple(donors.shape)} differ in shape")
        n = residuals.shape[0]
        return self.mix(residuals.reshape(n, -1), donors.reshape(n, -1), generator).reshape(residuals.shape)
