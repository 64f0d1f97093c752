"""A class-conditional Gaussian mixture in d dimensions: the toy domain for tests and benchmarks."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class ToyMixture:
    """``num_classes`` classes, each a mixture of ``modes`` isotropic Gaussians in ``dim`` dimensions.

    Mode centres are drawn once from ``seed`` on a sphere of radius ``spread``; samples are
    centre + ``scale`` * N(0, I).

    Example:
        >>> toy = ToyMixture(dim=2, num_classes=3)
        >>> x, y = toy.sample(6, torch.Generator().manual_seed(0))
        >>> x.shape, y.shape
        (torch.Size([6, 2]), torch.Size([6]))
    """

    dim: int = 2
    num_classes: int = 3
    modes: int = 2
    spread: float = 3.0
    scale: float = 0.4
    seed: int = 0

    @property
    def centres(self) -> Tensor:
        """``(num_classes, modes, dim)`` mode centres."""
        g = torch.Generator().manual_seed(self.seed)
        c = torch.randn(self.num_classes, self.modes, self.dim, generator=g)
        return self.spread * c / c.norm(dim=-1, keepdim=True)

    def sample(self, n: int, generator: torch.Generator, labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``n`` samples ``(n, dim)`` and their labels ``(n,)`` (uniform classes unless given)."""
        if labels is None:
            labels = torch.randint(0, self.num_classes, (n,), generator=generator)
        mode = torch.randint(0, self.modes, (n,), generator=generator)
        noise = torch.randn(n, self.dim, generator=generator)
        return self.centres[labels, mode] + self.scale * noise, labels
