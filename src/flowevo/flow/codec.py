"""ResidualCodec: the one place that knows ODE direction, solver and optional encoder.

``invert(x, c)`` integrates the flow backward (t = 1 -> 0) under the sample's own condition
and gives its **residual** (noise-space point); ``decode(r, c)`` integrates forward
(0 -> 1) under any condition. With ``strength < 1`` inversion stops at ``t = 1 - strength``
(a partial residual) and decoding starts there: gentler edits.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from flowevo.flow.condition import Condition
from flowevo.flow.solver import FixedGrid, ODESolver, Discretisation


@runtime_checkable
class Encoder(Protocol):
    """An autoencoder in front of the flow: ``encode: (N, *D) -> (N, *L)``, ``decode`` back."""

    def encode(self, x: Tensor) -> Tensor: ...

    def decode(self, z: Tensor) -> Tensor: ...


class ResidualCodec:
    """Map data to residuals and residuals to data with a conditional velocity model.

    Args:
        model: velocity model ``model(x, t, c)`` on the flow's space ``(N, *S)``.
        discretisation: :class:`FixedGrid` or :class:`Adaptive` (the only place the step count is set).
        encoder: optional autoencoder; the flow then lives in its latent space.
        strength: edit strength in ``(0, 1]``: invert to ``t = 1 - strength`` (1 = to pure noise).

    Example:
        >>> from flowevo.flow import MLPVelocity, Condition
        >>> codec = ResidualCodec(MLPVelocity((2,), num_classes=2), FixedGrid("rk4", 8))
        >>> c = Condition.from_labels([0, 1])
        >>> r = codec.invert(torch.randn(2, 2), c)
        >>> codec.decode(r, c).shape
        torch.Size([2, 2])
    """

    def __init__(
        self,
        model: nn.Module,
        discretisation: Discretisation = FixedGrid("rk4", 10),
        encoder: Encoder | None = None,
        strength: float = 1.0,
    ) -> None:
        if not 0.0 < strength <= 1.0:
            raise ValueError(f"strength must be in (0, 1], got {strength}")
        self.model, self.encoder, self.strength = model, encoder, float(strength)
        self.solver = ODESolver(discretisation)

    @property
    def t_residual(self) -> float:
        """The time at which residuals live (0.0 for full inversion)."""
        return 1.0 - self.strength

    @property
    def nfe(self) -> int:
        """Batched velocity-model calls made so far by this codec."""
        return self.solver.nfe

    def _check(self, x: Tensor, c: Condition) -> None:
        if len(c) != x.shape[0]:
            raise ValueError(f"{x.shape[0]} samples but {len(c)} conditions")
        if not torch.isfinite(x).all():
            raise ValueError("input contains NaN or inf")

    def to_flow_space(self, x: Tensor) -> Tensor:
        """Data ``(N, *D)`` -> the flow's space ``(N, *S)`` (through the encoder if any)."""
        return self.encoder.encode(x) if self.encoder is not None else x

    def from_flow_space(self, z: Tensor) -> Tensor:
        """The flow's space ``(N, *S)`` -> data ``(N, *D)``."""
        return self.encoder.decode(z) if self.encoder is not None else z

    def invert_latent(self, z: Tensor, c: Condition) -> Tensor:
        """Flow-space point ``z (N, *S)`` at t = 1 -> residual ``(N, *S)`` at ``t_residual``."""
        self._check(z, c)
        return self.solver.integrate(self.model, z, c, 1.0, self.t_residual)

    def decode_latent(self, r: Tensor, c: Condition) -> Tensor:
        """Residual ``r (N, *S)`` -> flow-space point ``(N, *S)`` at t = 1 under ``c``."""
        self._check(r, c)
        return self.solver.integrate(self.model, r, c, self.t_residual, 1.0)

    def invert(self, x: Tensor, c: Condition) -> Tensor:
        """Data ``x (N, *D)`` under its own condition ``c`` -> residual ``(N, *S)``."""
        self._check(x, c)
        return self.invert_latent(self.to_flow_space(x), c)

    def decode(self, r: Tensor, c: Condition) -> Tensor:
        """Residual ``r (N, *S)`` under condition ``c`` -> data ``(N, *D)``."""
        return self.from_flow_space(self.decode_latent(r, c))

    def roundtrip_error(self, x: Tensor, c: Condition) -> Tensor:
        """Relative round-trip error in the flow's space, ``(N,)``: ``|decode(invert(z)) - z| / |z|``."""
        z = self.to_flow_space(x)
        z2 = self.decode_latent(self.invert_latent(z, c), c)
        dims = tuple(range(1, z.ndim))
        return (z2 - z).norm(dim=dims) / z.norm(dim=dims).clamp_min(1e-12)
