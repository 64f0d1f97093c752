"""Codecs between data and residuals: the :class:`Codec` protocol and :class:`ResidualCodec`.

A **codec** is what every search method needs of a flow: ``invert(x, c)`` maps a sample under
its own condition to its **residual** (its noise-space point), ``decode(r, c)`` maps residuals
to data under any condition, and it tells its ``device``, the ``residual_shape`` of a sample
and an ``identity`` of its weights (so checkpoints are never resumed with another model).

:class:`ResidualCodec` is the plain one and the one place that knows ODE direction, solver and
optional encoder: ``invert`` integrates the flow backward (t = 1 -> 0), ``decode`` forward
(0 -> 1). With ``strength < 1`` inversion stops at ``t = 1 - strength`` (a partial residual)
and decoding starts there: gentler edits. Domain codecs (e.g. the site-masked crystal codec,
whose residuals carry an edit region) implement the same protocol.
"""

from __future__ import annotations

import hashlib
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from flowevo.flow.condition import Condition
from flowevo.flow.solver import Discretisation, FixedGrid, ODESolver
from flowevo.flow.velocity import VelocityModel


def weights_identity(*modules: object) -> str:
    """SHA-256 over the names, shapes, dtypes and bytes of the state dicts of ``modules``
    (objects that are not ``nn.Module`` are skipped): the identity of a codec's weights."""
    h = hashlib.sha256()
    for i, module in enumerate(modules):
        if not isinstance(module, nn.Module):
            continue
        for name, t in sorted(module.state_dict().items()):
            t = t.detach().cpu().contiguous()
            h.update(f"{i}.{name}:{tuple(t.shape)}:{t.dtype}".encode())
            h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


def module_device(*modules: object) -> torch.device:
    """The device of the first parameter or buffer among ``modules`` (CPU when they have none)."""
    for module in modules:
        if isinstance(module, nn.Module):
            for t in (*module.parameters(), *module.buffers()):
                return t.device
    return torch.device("cpu")


@runtime_checkable
class Codec(Protocol):
    """What a search method needs of a decoder between data ``(N, *D)`` and residuals ``(N, *S)``.

    Implemented by :class:`ResidualCodec` and by domain codecs; the Evolver and every baseline
    talk to a codec only through these members.
    """

    @property
    def device(self) -> torch.device:
        """Where residuals, conditions and decoded data live."""
        ...

    def residual_shape(self, x: Tensor) -> tuple[int, ...]:
        """The residual shape ``S`` of samples like ``x (N, *D)``."""
        ...

    def invert(self, x: Tensor, c: Condition) -> Tensor:
        """Data ``x (N, *D)`` under its own condition ``c`` (batch N) -> residuals ``(N, *S)``."""
        ...

    def decode(self, r: Tensor, c: Condition) -> Tensor:
        """Residuals ``r (N, *S)`` under condition ``c`` (batch N) -> data ``(N, *D)``."""
        ...

    def identity(self) -> str:
        """A hash of the weights that decide this codec's outputs (see :func:`weights_identity`)."""
        ...


@runtime_checkable
class Encoder(Protocol):
    """An autoencoder in front of the flow: ``encode: (N, *D) -> (N, *L)``, ``decode`` back."""

    def encode(self, x: Tensor) -> Tensor: ...

    def decode(self, z: Tensor) -> Tensor: ...


class ResidualCodec:
    """Map data to residuals and residuals to data with a conditional velocity model.

    Args:
        model: a :class:`~flowevo.flow.velocity.VelocityModel` ``model(x, t, c)`` on the flow's space ``(N, *S)``
            (t = 0 noise, t = 1 data); an outside model goes through :class:`~flowevo.flow.adapter.VelocityAdapter`.
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
        model: VelocityModel,
        discretisation: Discretisation = FixedGrid("rk4", 10),
        encoder: Encoder | None = None,
        strength: float = 1.0,
    ) -> None:
        if not 0.0 < strength <= 1.0:
            raise ValueError(f"strength must be in (0, 1], got {strength}")
        self.model, self.encoder, self.strength = model, encoder, float(strength)
        self.solver = ODESolver(discretisation)

    @property
    def device(self) -> torch.device:
        """The device of the velocity model's weights (CPU for a model without any)."""
        return module_device(self.model, self.encoder)

    def residual_shape(self, x: Tensor) -> tuple[int, ...]:
        """The flow-space shape ``S`` of samples like ``x (N, *D)`` (through the encoder if any)."""
        with torch.inference_mode():
            return tuple(self.to_flow_space(x[:1]).shape[1:])

    def identity(self) -> str:
        """Hash of the velocity model's (and encoder's) weights."""
        return weights_identity(self.model, self.encoder)

    def with_strength(self, strength: float) -> ResidualCodec:
        """The same model, solver and encoder with another edit ``strength`` (partial inversion)."""
        return ResidualCodec(self.model, self.solver.discretisation, self.encoder, strength)

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
