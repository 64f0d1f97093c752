"""A property-conditioned flow over :class:`CrystalRepresentation` tensors.

:func:`train_crystal_flow` fits a :class:`~flowevo.flow.MLPVelocity` by conditional flow
matching on the ``(N, D)`` representation of a :class:`CrystalTable`, conditioned on one
standardised property (``Condition.from_values((y - mean) / std)``, K = 1), with condition
dropout so classifier-free guidance works.  :class:`CrystalModel` bundles the velocity
model, the fitted representation and the property scaling; it saves to one checkpoint
(weights via :func:`~flowevo.flow.save_checkpoint`, everything else as JSON-able meta).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from flowevo.flow import (
    Condition,
    FixedGrid,
    GuidedVelocity,
    MLPVelocity,
    ResidualCodec,
    TrainConfig,
    load_checkpoint,
    save_checkpoint,
    train_flow,
)
from flowevo.flow.solver import Discretisation

from ._threads import torch_threads
from .data import CrystalTable
from .files import CRYSTAL_CHECKPOINT
from .representation import CrystalRepresentation

__all__ = [
    "CrystalModel", "Whitening", "train_crystal_flow", "save_crystal_model", "load_crystal_model", "CHECKPOINT_NAME",
]

CHECKPOINT_NAME = CRYSTAL_CHECKPOINT
_KIND = "flowevo.crystals.CrystalModel/1"


class Whitening:
    """PCA whitening onto the data's active subspace: an :class:`~flowevo.flow.Encoder`.

    Perov-5's 56 columns have rank 22 (cubic angles, fixed y/z coordinates and a = b = c
    are constant or collinear), so the flow lives in ``L`` = rank dimensions where
    residuals of real crystals look like N(0, I_L) (norm ~ sqrt(L)).
    ``encode: (N, D) -> (N, L)``, ``decode: (N, L) -> (N, D)``; exact on the subspace.

    Args:
        mean: ``(D,)``; components: ``(L, D)`` orthonormal rows; scale: ``(L,)`` stds.
    """

    def __init__(self, mean: Tensor, components: Tensor, scale: Tensor) -> None:
        self.mean, self.components, self.scale = mean.float(), components.float(), scale.float()

    @classmethod
    def fit(cls, x: Tensor, tol: float = 1e-4) -> Whitening:
        """Fit on data ``(N, D)``; keep directions with std > ``tol``."""
        x64 = x.double()
        mean = x64.mean(0)
        _, s, vh = torch.linalg.svd(x64 - mean, full_matrices=False)
        std = s / max(len(x) - 1, 1) ** 0.5
        keep = std > tol
        if not keep.any():
            raise ValueError("data has no direction with variance above tol")
        return cls(mean, vh[keep], std[keep])

    @property
    def dim(self) -> int:
        """Latent width L."""
        return int(self.scale.shape[0])

    def encode(self, x: Tensor) -> Tensor:
        """``(N, D) -> (N, L)``."""
        return ((x.float() - self.mean) @ self.components.T) / self.scale

    def decode(self, z: Tensor) -> Tensor:
        """``(N, L) -> (N, D)``."""
        return (z.float() * self.scale) @ self.components + self.mean

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state."""
        return {"mean": self.mean.tolist(), "components": self.components.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Whitening:
        """Inverse of :meth:`state_dict`."""
        return cls(*(torch.tensor(state[k], dtype=torch.float32) for k in ("mean", "components", "scale")))


@dataclass
class CrystalModel:
    """A trained crystal flow.

    Attributes:
        velocity: ``model(z (N, L), t (N,), c) -> (N, L)``, conditioned on one scaled value;
            ``z = encoder.encode(x)`` (L = D without an encoder).
        representation: the fitted structure <-> tensor codec (D = ``representation.dim``).
        property: name of the conditioning property (e.g. ``"heat_ref"``).
        prop_mean, prop_std: condition scaling, ``c = (y - prop_mean) / prop_std``.
        encoder: optional :class:`Whitening` between data ``(N, D)`` and flow space ``(N, L)``.
        info: training record (config, wall time, final loss).
    """

    velocity: nn.Module
    representation: CrystalRepresentation
    property: str
    prop_mean: float
    prop_std: float
    encoder: Whitening | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        """Representation width D."""
        return self.representation.dim

    @property
    def residual_dim(self) -> int:
        """Flow-space (residual) width L."""
        return self.encoder.dim if self.encoder is not None else self.dim

    def condition(self, values: Sequence[float] | np.ndarray | Tensor) -> Condition:
        """Property values ``(N,)`` in physical units -> a scaled ``Condition`` of batch N."""
        v = torch.as_tensor(np.asarray(values, dtype=np.float64), dtype=torch.float32).reshape(-1)
        return Condition.from_values((v - self.prop_mean) / self.prop_std)

    def encode(self, structures: Sequence[Any], formulas: Sequence[str] | None = None, ordered: bool = False) -> Tensor:
        """Structures -> float32 tensor ``(N, D)`` (see :meth:`CrystalRepresentation.encode`)."""
        return torch.from_numpy(self.representation.encode(structures, formulas, ordered=ordered))

    def decode_structures(self, x: Tensor) -> list[Any]:
        """Tensor ``(N, D)`` -> canonical Structures [A, B, X, X, X]."""
        return self.representation.decode(x.detach().cpu().double().numpy())

    def codec(
        self,
        discretisation: Discretisation = FixedGrid("rk4", 20),
        guidance: float = 1.0,
        strength: float = 1.0,
    ) -> ResidualCodec:
        """A :class:`ResidualCodec`: data ``(N, D)`` <-> residuals ``(N, L)`` (``guidance`` = CFG scale)."""
        model = self.velocity if guidance == 1.0 else GuidedVelocity(self.velocity, guidance)
        return ResidualCodec(model, discretisation, encoder=self.encoder, strength=strength)

    @torch.no_grad()
    def sample(
        self,
        values: Sequence[float] | np.ndarray,
        generator: torch.Generator,
        discretisation: Discretisation = FixedGrid("rk4", 20),
        guidance: float = 1.0,
    ) -> Tensor:
        """Decode ``r ~ N(0, I_L)`` under property ``values (N,)`` -> tensors ``(N, D)``."""
        c = self.condition(values)
        r = torch.randn((len(c), self.residual_dim), generator=generator)
        return self.codec(discretisation, guidance).decode(r, c)

    def meta(self) -> dict[str, Any]:
        """JSON-able description (everything but the weights)."""
        return {
            "kind": _KIND,
            "property": self.property,
            "prop_mean": float(self.prop_mean),
            "prop_std": float(self.prop_std),
            "representation": self.representation.state_dict(),
            "encoder": None if self.encoder is None else self.encoder.state_dict(),
            "info": {k: v for k, v in self.info.items() if k != "losses"},
        }


def _noisy_copies(x: Tensor, copies: int, noise: float, generator: torch.Generator) -> Tensor:
    """``(N, D)`` -> ``(copies * N, D)``: the data plus ``copies - 1`` jittered copies (std ``noise``)."""
    if copies <= 1 or noise <= 0:
        return x
    jitter = [x] + [x + noise * torch.randn(x.shape, generator=generator) for _ in range(copies - 1)]
    return torch.cat(jitter)


def train_crystal_flow(
    table: CrystalTable,
    property: str = "heat_ref",
    seed: int = 0,
    steps: int = 4000,
    batch_size: int = 256,
    lr: float = 2e-3,
    hidden: int = 128,
    depth: int = 3,
    condition_dropout: float = 0.1,
    noise: float = 0.0,
    noise_copies: int = 4,
    representation: CrystalRepresentation | None = None,
    whiten: bool = True,
    num_threads: int | None = 1,
    show_progress: bool = False,
) -> CrystalModel:
    """Train a property-conditioned CFM on ``table``'s structures.

    Args:
        table: training crystals (``table.formulas`` fix the A/B roles).
        property: conditioning column of ``table.properties``.
        seed: seeds weight initialisation, batches, noise and dropout.
        steps, batch_size, lr: flow-matching training (see :class:`TrainConfig`).
        hidden, depth: :class:`MLPVelocity` size.
        condition_dropout: null-condition rate (for guidance / unconditional use).
        noise, noise_copies: optional dequantisation, training on ``noise_copies`` jittered
            copies of the data (std ``noise`` in standardised units); 0 = off.
        representation: a fitted representation to reuse; fitted on ``table`` if None.
        whiten: train in the :class:`Whitening` latent space of the data (recommended:
            residuals then have the full-rank N(0, I) geometry the evolution operators assume).
        num_threads: torch intra-op threads while training (None: leave as is).
    """
    if property not in table.properties:
        raise KeyError(f"property {property!r} not in table (has {sorted(table.properties)})")
    rep = representation or CrystalRepresentation().fit(table.structures, table.formulas)
    y = np.asarray(table.properties[property], dtype=np.float64)
    mean, std = float(y.mean()), float(max(y.std(), 1e-8))
    x = torch.from_numpy(rep.encode(table.structures, table.formulas))
    encoder = Whitening.fit(x) if whiten else None
    if encoder is not None:
        x = encoder.encode(x)
    c_vals = torch.as_tensor((y - mean) / std, dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed + 7919)
    xs = _noisy_copies(x, noise_copies, noise, gen)
    reps = xs.shape[0] // x.shape[0]
    c = Condition.from_values(c_vals.repeat(reps))
    config = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, condition_dropout=condition_dropout, seed=seed)
    start = time.perf_counter()
    with torch_threads(num_threads):
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            net = MLPVelocity((x.shape[1],), value_dim=1, hidden=hidden, depth=depth)
        result = train_flow(net, xs, c, config, show_progress=show_progress)
    info = {
        "train_config": result.config,
        "noise": noise, "noise_copies": noise_copies if noise > 0 else 1,
        "n_train": len(table), "wall_s": time.perf_counter() - start,
        "final_loss": float(np.mean(result.losses[-100:])),
        "losses": list(result.losses),  # kept in memory for plots, not saved (see meta)
    }
    return CrystalModel(result.model, rep, property, mean, std, encoder, info)


def save_crystal_model(model: CrystalModel, directory: str | Path) -> Path:
    """Write ``directory/crystal_flow.pt`` (weights + JSON-able meta); returns its path."""
    return save_checkpoint(Path(directory) / CHECKPOINT_NAME, model.velocity, model.meta())


def load_crystal_model(directory: str | Path, device: str | torch.device = "cpu") -> CrystalModel:
    """Read a model written by :func:`save_crystal_model` (a directory or the .pt file itself)."""
    path = Path(directory)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    velocity, meta = load_checkpoint(path, device)
    if meta.get("kind") != _KIND:
        raise ValueError(f"{path}: not a crystal flow checkpoint (meta kind {meta.get('kind')!r})")
    rep = CrystalRepresentation.from_state_dict(meta["representation"])
    enc = None if meta.get("encoder") is None else Whitening.from_state_dict(meta["encoder"])
    return CrystalModel(
        velocity, rep, meta["property"], meta["prop_mean"], meta["prop_std"], enc, dict(meta.get("info", {}))
    )
