"""A trained generic model and its folder format (MODEL_DIR).

MODEL_DIR holds:

- ``model.json``: format tag, data kind and shape, condition layout (classes, float-condition
  width and scaling, class names), encoder kind, data range, the resolved training settings
  and what training measured (losses, judge hold-out accuracy / R^2, round-trip error);
- ``flow.pt``: the velocity model (:func:`~flowevo.flow.save_checkpoint`);
- ``encoder.pt``: the encoder (:class:`Standardizer`, :class:`PCAEncoder` or :class:`Autoencoder`);
- ``judge.pt`` (optional): the :class:`ConditionPredictor` used by built-in objectives.

Float conditions are given and returned **in data units** everywhere: the velocity model is
wrapped in :class:`ScaledConditions`, which standardises them on the way in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

# registers the encoder / judge classes with the checkpoint loader
from flowevo.domains.generic import encoder as _encoder  # noqa: F401
from flowevo.domains.generic.judge import ConditionPredictor
from flowevo.flow import Condition, FixedGrid, GuidedVelocity, ResidualCodec, load_checkpoint, save_checkpoint
from flowevo.flow.solver import Discretisation
from flowevo.jsonio import read_json, write_json

__all__ = ["FORMAT", "GenericModel", "ScaledConditions", "load_model", "save_model"]

FORMAT = "flowevo.generic-model/1"


class ScaledConditions(nn.Module):
    """Wrap a velocity model trained on standardised float conditions so callers use data units.

    ``forward(x, t, c)`` replaces ``c.values`` by ``(c.values - mean) / std`` and calls the model.

    Example:
        >>> from flowevo.flow import MLPVelocity
        >>> v = ScaledConditions(MLPVelocity((2,), value_dim=1, hidden=8), torch.tensor([300.0]), torch.tensor([20.0]))
        >>> v(torch.zeros(1, 2), torch.zeros(1), Condition.from_values([310.0])).shape   # 310 K, in data units
        torch.Size([1, 2])
    """

    def __init__(self, model: nn.Module, mean: Tensor, std: Tensor) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", mean.float().reshape(-1))
        self.register_buffer("std", std.float().reshape(-1))

    def forward(self, x: Tensor, t: Tensor, c: Condition) -> Tensor:
        """Same shapes as the wrapped model."""
        if c.values is not None:
            c = Condition(c.labels, (c.values - self.mean) / self.std, c.null)
        return self.model(x, t, c)


@dataclass
class GenericModel:
    """A conditional flow over a user's data, with its encoder and (optionally) a judge.

    Attributes:
        velocity: ``velocity(z (N, *S), t (N,), c) -> (N, *S)`` in the encoder's space; float
            conditions in data units.
        encoder: data ``(N, *D)`` <-> flow space ``(N, *S)``.
        judge: predicts class / float conditions of samples, or None.
        info: the contents of ``model.json``.

    Example:
        >>> model = load_model("models/blobs")                             # doctest: +SKIP
        >>> codec = model.codec(steps=10)                                  # doctest: +SKIP
        >>> r = codec.invert(x, model.condition(labels=[0, 0]))            # doctest: +SKIP
        >>> edits = codec.decode(r, model.condition(labels=[2, 2]))        # doctest: +SKIP
    """

    velocity: nn.Module
    encoder: nn.Module
    judge: ConditionPredictor | None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """``"vectors"`` or ``"images"``."""
        return self.info["kind"]

    @property
    def shape(self) -> tuple[int, ...]:
        """Sample shape D."""
        return tuple(self.info["shape"])

    @property
    def num_classes(self) -> int:
        return int(self.info["num_classes"])

    @property
    def value_dim(self) -> int:
        return int(self.info["value_dim"])

    @property
    def class_names(self) -> list[str] | None:
        return self.info.get("class_names")

    def condition(self, labels: Sequence[int] | Tensor | None = None,
                  values: Sequence[Sequence[float]] | Tensor | None = None) -> Condition:
        """A validated :class:`Condition` batch: ``labels (N,)`` class ids, ``values (N, K)`` in data units.

        Raises:
            ValueError: a part the model needs is missing, a class id is unknown, or K is wrong.
        """
        lab = None if labels is None else torch.as_tensor(labels, dtype=torch.long).reshape(-1)
        val = None if values is None else torch.as_tensor(values, dtype=torch.float32)
        if val is not None and val.ndim == 1:
            val = val[:, None]
        if self.num_classes and lab is None:
            raise ValueError(f"this model is conditioned on class ids (0..{self.num_classes - 1}); give a class")
        if self.value_dim and val is None:
            raise ValueError(f"this model is conditioned on {self.value_dim} float value(s); give them")
        if not self.num_classes:
            lab = None
        if not self.value_dim:
            val = None
        if lab is not None and lab.numel() and (lab.min() < 0 or lab.max() >= self.num_classes):
            bad = sorted({int(i) for i in lab.tolist() if not 0 <= i < self.num_classes})
            raise ValueError(f"unknown class id(s) {bad}: the model knows classes 0..{self.num_classes - 1}")
        if val is not None and val.shape[1] != self.value_dim:
            raise ValueError(f"expected {self.value_dim} float condition value(s) per sample, got {val.shape[1]}")
        return Condition(labels=lab, values=val)

    def codec(self, steps: int = 10, method: str = "rk4", strength: float = 1.0, guidance: float = 1.0,
              discretisation: Discretisation | None = None) -> ResidualCodec:
        """A :class:`ResidualCodec`: data ``(N, *D)`` <-> residuals ``(N, *S)`` (``guidance``: CFG scale)."""
        model = self.velocity if guidance == 1.0 else GuidedVelocity(self.velocity, guidance)
        return ResidualCodec(model, discretisation or FixedGrid(method, steps), encoder=self.encoder, strength=strength)


def save_model(model: GenericModel, directory: str | Path) -> Path:
    """Write MODEL_DIR (``model.json``, ``flow.pt``, ``encoder.pt``, ``judge.pt``); returns the folder."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    inner = model.velocity.model if isinstance(model.velocity, ScaledConditions) else model.velocity
    save_checkpoint(out / "flow.pt", inner, {"format": FORMAT})
    save_checkpoint(out / "encoder.pt", model.encoder, {"format": FORMAT})
    if model.judge is not None:
        save_checkpoint(out / "judge.pt", model.judge, {"format": FORMAT})
    elif (out / "judge.pt").exists():
        (out / "judge.pt").unlink()
    write_json(out / "model.json", {"format": FORMAT, **model.info})
    return out


def load_model(directory: str | Path, device: str | torch.device = "cpu") -> GenericModel:
    """Read a MODEL_DIR written by :func:`save_model` (e.g. by ``flowevo train``).

    Raises:
        FileNotFoundError: the folder or one of its files is missing.
        ValueError: a file is corrupt or not a flowevo generic model.
    """
    folder = Path(directory)
    meta_path = folder / "model.json"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such model folder (train one with: flowevo train --data FILE --out {folder})")
    if not meta_path.is_file():
        raise FileNotFoundError(f"{folder}: not a flowevo model folder (no model.json); train one with flowevo train")
    info = read_json(meta_path)
    if info.get("format") != FORMAT:
        raise ValueError(f"{meta_path}: not a flowevo generic model (expected format {FORMAT!r})")
    info.pop("format")
    with torch.random.fork_rng(devices=[]):
        flow, _ = load_checkpoint(folder / "flow.pt", device)
        encoder, _ = load_checkpoint(folder / "encoder.pt", device)
        judge = load_checkpoint(folder / "judge.pt", device)[0] if (folder / "judge.pt").is_file() else None
    flow.requires_grad_(False)
    encoder.requires_grad_(False)
    k = int(info["value_dim"])
    velocity: nn.Module = flow
    if k:
        velocity = ScaledConditions(flow, torch.tensor(info["value_mean"]), torch.tensor(info["value_std"])).to(device)
    if judge is not None and not isinstance(judge, ConditionPredictor):
        raise ValueError(f"{folder / 'judge.pt'}: holds a {type(judge).__name__}, expected a ConditionPredictor")
    return GenericModel(velocity.eval(), encoder.eval(), None if judge is None else judge.eval().requires_grad_(False), info)
