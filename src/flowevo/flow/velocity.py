"""Velocity models ``v(x, t, c)``: the protocol, an MLP, and classifier-free guidance.

Every model in flowevo has the signature ``model(x, t, c)`` with ``x: (N, *S)``,
``t: (N,)`` in ``[0, 1]`` (0 = noise, 1 = data) and ``c`` a :class:`Condition` of batch N,
and returns a velocity of shape ``(N, *S)``.
"""

from __future__ import annotations

import math
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from flowevo.flow.condition import Condition, ConditionEmbedding


@runtime_checkable
class VelocityModel(Protocol):
    """Anything callable as ``model(x, t, c) -> v`` with ``x, v: (N, *S)``, ``t: (N,)`` (0 = noise, 1 = data) and
    ``c`` a :class:`Condition` of batch N. An ``nn.Module`` is best (its weights give the device and the
    checkpoint identity); a model with another signature or time convention is adapted by
    :class:`~flowevo.flow.adapter.VelocityAdapter`."""

    def __call__(self, x: Tensor, t: Tensor, c: Condition) -> Tensor: ...


def time_features(t: Tensor, dim: int) -> Tensor:
    """Sine/cosine features of time: ``(N,) -> (N, dim)`` (dim even), 0.5 .. 16 cycles per unit time.

    Low frequencies keep the learned field smooth in t, so adaptive solvers take few steps.
    """
    half = dim // 2
    freqs = torch.exp(torch.linspace(math.log(0.5), math.log(16.0), half, device=t.device))
    angles = t[:, None].float() * freqs[None, :] * 2 * math.pi
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class MLPVelocity(nn.Module):
    """A conditional MLP velocity field with residual blocks.

    Args:
        shape: trailing data shape S (e.g. ``(2,)`` or ``(16,)``); flattened internally.
        num_classes: number of class ids (0 if unconditioned on classes).
        value_dim: width of continuous condition vectors (0 if none).
        hidden: hidden width.
        depth: number of residual blocks.
        time_dim: width of the sine/cosine time features.

    Example:
        >>> net = MLPVelocity(shape=(2,), num_classes=3)
        >>> net(torch.zeros(4, 2), torch.rand(4), Condition.from_labels([0, 1, 2, 0])).shape
        torch.Size([4, 2])
    """

    def __init__(
        self,
        shape: tuple[int, ...],
        num_classes: int = 0,
        value_dim: int = 0,
        hidden: int = 256,
        depth: int = 3,
        time_dim: int = 32,
    ) -> None:
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        self.config: dict[str, Any] = dict(
            shape=list(self.shape), num_classes=num_classes, value_dim=value_dim,
            hidden=hidden, depth=depth, time_dim=time_dim,
        )
        d = math.prod(self.shape)
        self.time_dim = time_dim
        self.condition_embedding = ConditionEmbedding(num_classes, value_dim, hidden)
        self.input = nn.Linear(d + time_dim, hidden)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
            for _ in range(depth)
        )
        self.output = nn.Sequential(nn.LayerNorm(hidden), nn.SiLU(), nn.Linear(hidden, d))

    def forward(self, x: Tensor, t: Tensor, c: Condition) -> Tensor:
        """``x: (N, *S)``, ``t: (N,)``, ``c``: batch N -> velocity ``(N, *S)``."""
        if tuple(x.shape[1:]) != self.shape:
            raise ValueError(f"expected x of shape (N, {self.shape}), got {tuple(x.shape)}")
        n = x.shape[0]
        if t.shape != (n,) or len(c) != n:
            raise ValueError(f"batch sizes disagree: x {n}, t {tuple(t.shape)}, c {len(c)}")
        h = self.input(torch.cat([x.reshape(n, -1), time_features(t, self.time_dim)], dim=1))
        h = h + self.condition_embedding(c)
        for block in self.blocks:
            h = h + block(h)
        return self.output(h).reshape(x.shape)


class GuidedVelocity(nn.Module):
    """Classifier-free guidance: ``v = v(x,t,null) + scale * (v(x,t,c) - v(x,t,null))``.

    One batched call of the wrapped model per evaluation (conditional and null halves are
    concatenated), so a solver step stays one model call. ``scale = 1`` is the plain model.

    Example:
        >>> guided = GuidedVelocity(MLPVelocity((2,), num_classes=3), scale=2.0)
        >>> guided(torch.zeros(4, 2), torch.rand(4), Condition.from_labels([0, 1, 2, 0])).shape
        torch.Size([4, 2])
    """

    def __init__(self, model: nn.Module, scale: float) -> None:
        super().__init__()
        self.model, self.scale = model, float(scale)

    def forward(self, x: Tensor, t: Tensor, c: Condition) -> Tensor:
        """Same shapes as the wrapped model."""
        if self.scale == 1.0:
            return self.model(x, t, c)
        both = self.model(torch.cat([x, x]), torch.cat([t, t]), Condition.cat([c, Condition.null_like(c)]))
        v_cond, v_null = both.chunk(2)
        return v_null + self.scale * (v_cond - v_null)


_REGISTRY: dict[str, type[nn.Module]] = {"MLPVelocity": MLPVelocity}


def build_model(spec: dict[str, Any]) -> nn.Module:
    """Rebuild a model from ``{"class": name, "config": {...}}`` (as stored in checkpoints)."""
    name = spec.get("class")
    if name not in _REGISTRY:
        raise ValueError(f"unknown velocity model class {name!r}; known: {sorted(_REGISTRY)}")
    return _REGISTRY[name](**spec["config"])


def register_model(cls: type[nn.Module]) -> type[nn.Module]:
    """Make any model class (with a ``config`` dict of its constructor arguments) loadable from checkpoints.

    Velocity models, classifiers and autoencoders alike: ``load_checkpoint`` rebuilds by class name.
    """
    _REGISTRY[cls.__name__] = cls
    return cls
