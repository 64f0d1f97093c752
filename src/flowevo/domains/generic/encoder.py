"""Encoders between a user's data space ``(N, *D)`` and the flow's space.

All three implement :class:`~flowevo.flow.Encoder` (``encode`` / ``decode``), keep their
constructor arguments in ``config`` and their fitted statistics as buffers, so
:func:`~flowevo.flow.save_checkpoint` / ``load_checkpoint`` store and rebuild them.

- :class:`Standardizer`: no reduction; ``(x - mean) / std`` (per feature for vectors, one
  scalar for images). The flow lives in the data's own shape.
- :class:`PCAEncoder`: whitened principal components, ``(N, *D) -> (N, L)``; exact on the
  kept subspace, deterministic, no training.
- :class:`Autoencoder`: an MLP autoencoder trained by MSE, ``(N, *D) -> (N, L)``, latent
  standardised to unit variance.

``clamp`` (images): decoded samples are clipped to the training data's range.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from flowevo.flow import register_model
from flowevo.progress import progress_bar

__all__ = ["Autoencoder", "PCAEncoder", "Standardizer", "fit_autoencoder", "fit_pca"]


def _clamp(x: Tensor, clamp: list[float] | None) -> Tensor:
    return x if clamp is None else x.clamp(clamp[0], clamp[1])


@register_model
class Standardizer(nn.Module):
    """``encode: (N, *D) -> (N, *D)`` standardised; ``decode`` back (clamped for images).

    Args:
        shape: the sample shape D.
        per_feature: one mean/std per feature (vectors) or one scalar pair (images).
        clamp: ``[lo, hi]`` range of decoded samples, or None.

    Example:
        >>> s = Standardizer.fit(torch.randn(100, 3) * 5 + 2)
        >>> s.encode(torch.full((1, 3), 2.0)).abs().max() < 0.5
        tensor(True)
    """

    def __init__(self, shape: list[int], per_feature: bool = True, clamp: list[float] | None = None) -> None:
        super().__init__()
        self.config: dict[str, Any] = dict(shape=[int(s) for s in shape], per_feature=per_feature, clamp=clamp)
        stat = tuple(shape) if per_feature else ()
        self.register_buffer("mean", torch.zeros(stat))
        self.register_buffer("std", torch.ones(stat))

    @classmethod
    def fit(cls, x: Tensor, per_feature: bool = True, clamp: list[float] | None = None) -> Standardizer:
        """Fit on data ``(N, *D)``."""
        enc = cls(list(x.shape[1:]), per_feature, clamp)
        xd = x.double()
        if per_feature:
            enc.mean.copy_(xd.mean(0))
            enc.std.copy_(xd.std(0, unbiased=False).clamp_min(1e-6))
        else:
            enc.mean.fill_(float(xd.mean()))
            enc.std.fill_(max(float(xd.std(unbiased=False)), 1e-6))
        return enc

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return tuple(self.config["shape"])

    def encode(self, x: Tensor) -> Tensor:
        """``(N, *D) -> (N, *D)``."""
        return (x.float() - self.mean) / self.std

    def decode(self, z: Tensor) -> Tensor:
        """``(N, *D) -> (N, *D)`` in data units."""
        return _clamp(z.float() * self.std + self.mean, self.config["clamp"])


@register_model
class PCAEncoder(nn.Module):
    """Whitened PCA: ``encode: (N, *D) -> (N, L)``, ``decode: (N, L) -> (N, *D)``.

    Args:
        shape: the sample shape D.
        latent: kept components L.
        clamp: ``[lo, hi]`` range of decoded samples, or None.

    Example:
        >>> x = torch.randn(200, 2) @ torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, 1.0]])   # rank 2 in 3-D
        >>> pca = fit_pca(x, latent=2)
        >>> float((pca.decode(pca.encode(x)) - x).abs().max()) < 1e-4
        True
    """

    def __init__(self, shape: list[int], latent: int, clamp: list[float] | None = None) -> None:
        super().__init__()
        self.config: dict[str, Any] = dict(shape=[int(s) for s in shape], latent=int(latent), clamp=clamp)
        d = math.prod(shape)
        self.register_buffer("mean", torch.zeros(d))
        self.register_buffer("components", torch.zeros(latent, d))
        self.register_buffer("scale", torch.ones(latent))
        self.register_buffer("explained", torch.zeros(()))  # fraction of variance kept

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (self.config["latent"],)

    def encode(self, x: Tensor) -> Tensor:
        """``(N, *D) -> (N, L)``."""
        return ((x.reshape(x.shape[0], -1).float() - self.mean) @ self.components.T) / self.scale

    def decode(self, z: Tensor) -> Tensor:
        """``(N, L) -> (N, *D)`` in data units."""
        x = (z.float() * self.scale) @ self.components + self.mean
        return _clamp(x.reshape(z.shape[0], *self.config["shape"]), self.config["clamp"])


def fit_pca(x: Tensor, latent: int | None = None, variance: float = 0.95, max_latent: int = 64,
            clamp: list[float] | None = None, max_rows: int = 20000, seed: int = 0) -> PCAEncoder:
    """Fit :class:`PCAEncoder` on ``x (N, *D)``.

    Args:
        latent: components to keep; None: the fewest explaining ``variance`` of the variance,
            capped at ``max_latent`` (and at the data's rank).
        max_rows: fit on a seeded random subset of at most this many rows.
    """
    flat = x.reshape(x.shape[0], -1).double()
    if flat.shape[0] > max_rows:
        idx = torch.randperm(flat.shape[0], generator=torch.Generator().manual_seed(seed))[:max_rows]
        flat = flat[idx]
    mean = flat.mean(0)
    _, s, vh = torch.linalg.svd(flat - mean, full_matrices=False)
    std = s / max(flat.shape[0] - 1, 1) ** 0.5
    rank = int((std > 1e-6 * max(float(std[0]), 1e-12)).sum())
    if rank == 0:
        raise ValueError("the data has no variance: every sample is the same")
    frac = torch.cumsum(std**2, 0) / (std**2).sum()
    if latent is None:
        latent = int((frac < variance).sum()) + 1
        latent = max(1, min(latent, max_latent))
    latent = min(int(latent), rank)
    enc = PCAEncoder(list(x.shape[1:]), latent, clamp)
    enc.mean.copy_(mean)
    enc.components.copy_(vh[:latent])
    enc.scale.copy_(std[:latent])
    enc.explained.fill_(float(frac[latent - 1]))
    return enc


@register_model
class Autoencoder(nn.Module):
    """MLP autoencoder with a standardised latent: ``(N, *D) -> (N, L) -> (N, *D)``.

    Inputs are standardised by one scalar (images) or per feature (vectors) before the
    encoder network; the latent is shifted and scaled to zero mean, unit variance after training.

    Args:
        shape: the sample shape D.
        latent: latent width L.
        hidden: widths of the hidden layers (mirrored in the decoder).
        clamp: ``[lo, hi]`` range of decoded samples, or None.

    Example:
        >>> ae = Autoencoder([8], latent=2, hidden=[16])
        >>> ae.decode(ae.encode(torch.randn(5, 8))).shape
        torch.Size([5, 8])
    """

    def __init__(self, shape: list[int], latent: int, hidden: list[int] = (512, 256), clamp: list[float] | None = None,
                 per_feature: bool = True) -> None:
        super().__init__()
        hidden = [int(h) for h in hidden]
        self.config: dict[str, Any] = dict(shape=[int(s) for s in shape], latent=int(latent), hidden=hidden,
                                           clamp=clamp, per_feature=per_feature)
        d = math.prod(shape)
        stat = (d,) if per_feature else ()
        self.register_buffer("x_mean", torch.zeros(stat))
        self.register_buffer("x_std", torch.ones(stat))
        self.register_buffer("z_mean", torch.zeros(latent))
        self.register_buffer("z_std", torch.ones(latent))
        widths = [d, *hidden, latent]
        enc: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            enc += [nn.Linear(a, b), nn.SiLU()]
        self.encoder = nn.Sequential(*enc[:-1])
        dec: list[nn.Module] = []
        rev = widths[::-1]
        for a, b in zip(rev[:-1], rev[1:]):
            dec += [nn.Linear(a, b), nn.SiLU()]
        self.decoder = nn.Sequential(*dec[:-1])

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (self.config["latent"],)

    def _raw_encode(self, x: Tensor) -> Tensor:
        return self.encoder((x.reshape(x.shape[0], -1).float() - self.x_mean) / self.x_std)

    def _raw_decode(self, h: Tensor) -> Tensor:
        return self.decoder(h) * self.x_std + self.x_mean

    def encode(self, x: Tensor) -> Tensor:
        """``(N, *D) -> (N, L)`` standardised latent."""
        return (self._raw_encode(x) - self.z_mean) / self.z_std

    def decode(self, z: Tensor) -> Tensor:
        """``(N, L) -> (N, *D)`` in data units."""
        x = self._raw_decode(z.float() * self.z_std + self.z_mean)
        return _clamp(x.reshape(z.shape[0], *self.config["shape"]), self.config["clamp"])


def fit_autoencoder(x: Tensor, latent: int, steps: int, batch_size: int = 256, lr: float = 1e-3,
                    hidden: list[int] = (512, 256), per_feature: bool = True, clamp: list[float] | None = None,
                    seed: int = 0, show_progress: bool = True) -> tuple[Autoencoder, list[float]]:
    """Train an :class:`Autoencoder` on ``x (N, *D)`` by MSE (AdamW, cosine LR); returns it (eval mode) and the losses."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        ae = Autoencoder(list(x.shape[1:]), latent, list(hidden), clamp, per_feature)
    flat = x.reshape(x.shape[0], -1).float()
    if per_feature:
        ae.x_mean.copy_(flat.mean(0))
        ae.x_std.copy_(flat.std(0, unbiased=False).clamp_min(1e-6))
    else:
        ae.x_mean.fill_(float(flat.mean()))
        ae.x_std.fill_(max(float(flat.std(unbiased=False)), 1e-6))
    target = (flat - ae.x_mean) / ae.x_std
    opt = torch.optim.AdamW(ae.parameters(), lr=lr, weight_decay=1e-5)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=lr * 0.05)
    losses: list[float] = []
    ae.train()
    with progress_bar("training autoencoder", total=steps, enabled=show_progress) as advance:
        for _ in range(steps):
            idx = torch.randint(0, flat.shape[0], (min(batch_size, flat.shape[0]),), generator=gen)
            xb = target[idx]
            loss = ((ae.decoder(ae.encoder(xb)) - xb) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            advance(1, loss=losses[-1])
    ae.eval().requires_grad_(False)
    with torch.no_grad():
        h = torch.cat([ae._raw_encode(flat[i:i + 4096]) for i in range(0, flat.shape[0], 4096)])
        ae.z_mean.copy_(h.mean(0))
        ae.z_std.copy_(h.std(0, unbiased=False).clamp_min(1e-6))
    return ae, losses
