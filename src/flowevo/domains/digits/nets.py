"""Small digit networks: a CNN classifier (the black box), an MLP classifier (an independent
judge, for evaluation only) and an MLP VAE whose latent space the flow lives in.

Every network keeps its constructor arguments in ``config`` and is registered for
:func:`flowevo.flow.load_checkpoint`. Images are float ``[0, 1]``, ``(N, 28, 28)`` or ``(N, 1, 28, 28)``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from flowevo.flow import register_model

__all__ = ["CNNClassifier", "MLPClassifier", "VAE"]

PIXELS = 28 * 28


def _flat(x: Tensor) -> Tensor:
    """``(N, 28, 28)``, ``(N, 1, 28, 28)`` or ``(N, 784)`` -> ``(N, 784)``."""
    if x.ndim < 2 or x[0].numel() != PIXELS:
        raise ValueError(f"expected images of shape (N, 28, 28), got {tuple(x.shape)}")
    return x.reshape(x.shape[0], PIXELS)


@register_model
class CNNClassifier(nn.Module):
    """Two conv blocks (conv 3x3 -> ReLU -> max-pool 2) and a two-layer head.

    Args:
        channels: output channels of the two conv layers.
        hidden: width of the hidden dense layer.
        num_classes: number of classes.
    """

    def __init__(self, channels: tuple[int, int] = (16, 32), hidden: int = 128, num_classes: int = 10) -> None:
        super().__init__()
        c1, c2 = (int(c) for c in channels)
        self.config: dict[str, Any] = dict(channels=[c1, c2], hidden=hidden, num_classes=num_classes)
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c2 * 7 * 7, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))

    def forward(self, images: Tensor) -> Tensor:
        """Images ``(N, 28, 28)`` or ``(N, 1, 28, 28)`` in [0, 1] -> logits ``(N, num_classes)``."""
        x = _flat(images).reshape(-1, 1, 28, 28)
        return self.head(self.features(x))


@register_model
class MLPClassifier(nn.Module):
    """A plain MLP classifier ``784 -> hidden... -> num_classes`` (ReLU).

    Args:
        hidden: widths of the hidden layers.
        num_classes: number of classes.
    """

    def __init__(self, hidden: tuple[int, ...] = (256, 128), num_classes: int = 10) -> None:
        super().__init__()
        widths = [PIXELS, *(int(h) for h in hidden)]
        self.config: dict[str, Any] = dict(hidden=widths[1:], num_classes=num_classes)
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Linear(widths[-1], num_classes))

    def forward(self, images: Tensor) -> Tensor:
        """Images ``(N, 28, 28)`` or ``(N, 1, 28, 28)`` in [0, 1] -> logits ``(N, num_classes)``."""
        return self.net(_flat(images))


def _mlp(widths: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


@register_model
class VAE(nn.Module):
    """MLP VAE ``784 -> hidden -> (mu, logvar) in R^latent_dim -> reversed hidden -> 784`` (sigmoid).

    ``encode``/``decode`` make it a :class:`flowevo.flow.Encoder`: ``encode`` gives the posterior
    mean, so encoding is deterministic.

    Args:
        latent_dim: latent width d.
        hidden: encoder hidden widths (the decoder mirrors them).
    """

    def __init__(self, latent_dim: int = 16, hidden: tuple[int, ...] = (512, 256)) -> None:
        super().__init__()
        widths = [int(h) for h in hidden]
        self.latent_dim = int(latent_dim)
        self.config: dict[str, Any] = dict(latent_dim=self.latent_dim, hidden=widths)
        self.encoder = _mlp([PIXELS, *widths])
        self.to_stats = nn.Linear(widths[-1], 2 * self.latent_dim)
        self.decoder = nn.Sequential(_mlp([self.latent_dim, *widths[::-1]]), nn.Linear(widths[0], PIXELS))

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Images ``(N, 28, 28)`` in [0, 1] -> ``(mu, logvar)``, each ``(N, latent_dim)``."""
        mu, logvar = self.to_stats(self.encoder(_flat(x))).chunk(2, dim=1)
        return mu, logvar.clamp(-12.0, 8.0)

    def encode(self, x: Tensor) -> Tensor:
        """Images ``(N, 28, 28)`` in [0, 1] -> posterior mean ``(N, latent_dim)``."""
        return self.posterior(x)[0]

    def decode_logits(self, z: Tensor) -> Tensor:
        """Latents ``(N, latent_dim)`` -> pixel logits ``(N, 28, 28)``."""
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"expected latents of shape (N, {self.latent_dim}), got {tuple(z.shape)}")
        return self.decoder(z).reshape(-1, 28, 28)

    def decode(self, z: Tensor) -> Tensor:
        """Latents ``(N, latent_dim)`` -> images ``(N, 28, 28)`` in [0, 1]."""
        return torch.sigmoid(self.decode_logits(z))

    def forward(self, x: Tensor) -> Tensor:
        """Reconstruct through the posterior mean: ``(N, 28, 28)`` -> ``(N, 28, 28)`` in [0, 1]."""
        return self.decode(self.encode(x))

    def loss(self, x: Tensor, generator: torch.Generator | None = None, beta: float = 1.0) -> tuple[Tensor, Tensor, Tensor]:
        """Negative ELBO per image for ``x (N, 28, 28)`` in [0, 1]: ``(total, reconstruction BCE, KL)``, each scalar.

        The latent sample ``z = mu + sigma * eps`` draws ``eps`` from ``generator``.
        """
        mu, logvar = self.posterior(x)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + (0.5 * logvar).exp() * eps
        target = _flat(x)
        recon = F.binary_cross_entropy_with_logits(self.decoder(z), target, reduction="sum") / x.shape[0]
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum() / x.shape[0]
        return recon + beta * kl, recon, kl
