"""Your own flow behind ``path/to/file.py:factory``: what the factory returns and how it is loaded.

Example factory (``my_flow.py``)::

    from flowevo.domains.external import ExternalModel
    from flowevo.flow import VelocityAdapter

    def factory() -> ExternalModel:
        net = MyNet()
        net.load_state_dict(torch.load("my_flow.pt"))
        velocity = VelocityAdapter(net, condition={"y": "labels"}, data_at=0, num_classes=2)
        return ExternalModel(velocity, shape=(2,), num_classes=2)

then ``flowevo optimize --model my_flow.py:factory --sources sources.npz --target 1 --objective ...``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from flowevo.domains.external.registration import recognises_factory
from flowevo.flow import Condition, Encoder, VelocityModel

__all__ = ["ExternalModel", "load_external"]

@dataclass
class ExternalModel:
    """What a factory returns: an outside flow and what ``flowevo optimize`` needs to know about it.

    Attributes:
        velocity: the velocity model in flowevo's convention, ``v(z (N, *S), t (N,), c) -> (N, *S)`` with t = 0
            noise and t = 1 data; wrap an outside model in :class:`~flowevo.flow.VelocityAdapter`.
        shape: the shape ``D`` of one sample in data space (what the sources' ``x`` hold).
        num_classes: class ids the flow is conditioned on (0: none).
        value_dim: width of its float conditions (0: none); values are passed as the sources hold them.
        encoder: optional :class:`~flowevo.flow.codec.Encoder` (``encode (N, *D) -> (N, *S)``, ``decode`` back),
            e.g. a :class:`~flowevo.flow.CallableEncoder`; None: the flow lives in data space.
        data_kind: ``"vectors"`` or ``"images"`` (reports and built-ins read it).
        class_names: names of the class ids, if any.
        judge: optional classifier / regressor with ``predict(x) -> (probs, values)`` and a ``config`` dict, read by
            the judge built-ins (``target_probability`` ...); None: pass your own objectives.
    """

    velocity: VelocityModel
    shape: Sequence[int]
    num_classes: int = 0
    value_dim: int = 0
    encoder: Encoder | None = None
    data_kind: str = "vectors"
    class_names: list[str] | None = None
    judge: Any = None

    def __post_init__(self) -> None:
        if not callable(self.velocity):
            raise TypeError("ExternalModel.velocity must be a velocity model v(x, t, c), got "
                            f"{type(self.velocity).__name__}")
        self.shape = tuple(int(s) for s in self.shape)
        if not self.shape or any(s < 1 for s in self.shape):
            raise ValueError(f"ExternalModel.shape must be the positive shape of one sample, got {self.shape}")
        if self.num_classes < 0 or self.value_dim < 0 or not (self.num_classes or self.value_dim):
            raise ValueError("ExternalModel: give num_classes > 0 and/or value_dim > 0 (the condition layout)")

    def to(self, device: str | torch.device) -> ExternalModel:
        """The velocity, encoder and judge (those that are modules) moved to ``device``; returns self."""
        for name in ("velocity", "encoder", "judge"):
            part = getattr(self, name)
            if isinstance(part, nn.Module):
                setattr(self, name, part.to(device))
        return self

    def condition(self, labels: Tensor | Sequence[int] | None, values: Tensor | Sequence[Sequence[float]] | None,
                  what: str) -> Condition:
        """A checked :class:`Condition` of this model's layout from class ids ``(N,)`` and / or values ``(N, K)``.

        Raises:
            ValueError: a part the model needs is missing (``what`` names where from), a class id out of range, or
                values of the wrong width.
        """
        lab = None if labels is None or not self.num_classes else torch.as_tensor(labels, dtype=torch.long).reshape(-1)
        val = None if values is None or not self.value_dim else torch.as_tensor(values, dtype=torch.float32)
        if self.num_classes and lab is None:
            raise ValueError(f"{what}: the model is conditioned on class ids (0..{self.num_classes - 1}); give them")
        if self.value_dim and val is None:
            raise ValueError(f"{what}: the model is conditioned on {self.value_dim} float value(s); give them")
        if lab is not None and lab.numel() and bool(((lab < 0) | (lab >= self.num_classes)).any()):
            bad = sorted({int(i) for i in lab.tolist() if not 0 <= i < self.num_classes})
            raise ValueError(f"{what}: unknown class id(s) {bad}; the model knows classes 0..{self.num_classes - 1}")
        if val is not None:
            val = val[:, None] if val.ndim == 1 else val
            if val.shape[1] != self.value_dim:
                raise ValueError(f"{what}: {val.shape[1]} float value(s) per sample, the model takes {self.value_dim}")
        return Condition(labels=lab, values=val)


def load_external(spec: str | Path, device: str | torch.device = "cpu") -> ExternalModel:
    """Call the factory at ``spec`` and return its :class:`ExternalModel` on ``device`` (weights frozen, eval mode).

    Raises:
        ValueError: ``spec`` is not ``file.py:factory`` / ``module:factory``, cannot be imported, or the factory fails.
        TypeError: the factory returns something other than an :class:`ExternalModel`.
    """
    from flowevo.objectives.resolve import resolve_callable

    if not recognises_factory(spec):
        raise ValueError(f"{spec}: expected path/to/file.py:factory or package.module:factory")
    factory = resolve_callable(str(spec))
    try:
        with torch.random.fork_rng(devices=[]):  # a factory that draws random numbers leaves the caller's untouched
            model = factory()
    except Exception as exc:
        raise ValueError(f"{spec}: the factory raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(model, ExternalModel):
        raise TypeError(f"{spec}: the factory returned a {type(model).__name__}; return a "
                        "flowevo.domains.external.ExternalModel(velocity, shape, num_classes=..., value_dim=...)")
    model.to(device)
    for part in (model.velocity, model.encoder, model.judge):
        if isinstance(part, nn.Module):
            part.eval().requires_grad_(False)
    return model
