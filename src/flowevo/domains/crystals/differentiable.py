"""A differentiable relaxation of the MLP surrogate on crystal tensors (for the white-box gradient reference).

The surrogate reads discrete elements; decoding snaps each site's continuous species code to the
nearest allowed element. :class:`SoftSurrogate` replaces the snap by a softmax over the allowed
elements (``p ∝ exp(-|code - code_e|^2 / temperature)``), builds the surrogate's descriptors from
the expected element properties (anion mean / min / max, anion counts, tolerance factor; see
:class:`~.predictors.ABXFeaturizer`) and runs the surrogate's own MLP weights. As the temperature
goes to 0 it equals ``predictor.predict`` on the decoded structures.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from .predictors import DESCRIPTOR_PROPERTIES, PropertyPredictor, _element_vector, _mlp
from .representation import CrystalRepresentation

__all__ = ["SoftSurrogate"]


class SoftSurrogate(nn.Module):
    """``x (N, D)`` standardised crystal tensors -> surrogate property ``(N,)``, differentiable in ``x``.

    Args:
        predictor: an ``"mlp"`` :class:`PropertyPredictor` (the optimised surrogate).
        representation: the fitted representation the tensors come from.
        temperature: softmax temperature in squared standardised code units.
    """

    def __init__(self, predictor: PropertyPredictor, representation: CrystalRepresentation,
                 temperature: float = 0.05) -> None:
        super().__init__()
        if predictor.kind != "mlp":
            raise ValueError(f"SoftSurrogate needs the MLP surrogate, got a {predictor.kind!r} predictor")
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        sp = representation.species
        if sp.allowed is None:
            raise ValueError("SoftSurrogate needs a representation with per-site allowed elements")
        self.temperature = float(temperature)
        self.slices = [representation.species_slice(s) for s in range(5)]
        self.register_buffer("mean", torch.as_tensor(representation.mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(representation.std, dtype=torch.float32))
        code_table = (sp.table - sp.mean) / sp.std
        self.allowed = [list(a) for a in sp.allowed]
        for s, names in enumerate(self.allowed):
            idx = [sp.elements.index(e) for e in names]
            self.register_buffer(f"codes{s}", torch.as_tensor(code_table[idx], dtype=torch.float32))
            props = np.array([_element_vector(e) for e in names], dtype=np.float64)
            if not np.all(np.isfinite(props)):
                raise ValueError(f"site {s}: an allowed element lacks a descriptor property")
            self.register_buffer(f"props{s}", torch.as_tensor(props, dtype=torch.float32))
        anions = predictor.featurizer.anions
        onehot = np.array([[1.0 if e == a else 0.0 for a in anions] for e in self.allowed[2]])
        self.register_buffer("anion_onehot", torch.as_tensor(onehot, dtype=torch.float32))
        self.register_buffer("x_mean", torch.as_tensor(predictor.x_mean, dtype=torch.float32))
        self.register_buffer("x_std", torch.as_tensor(predictor.x_std, dtype=torch.float32))
        self.y_mean, self.y_std = float(predictor.y_mean), float(predictor.y_std)
        self.ri = DESCRIPTOR_PROPERTIES.index("average_ionic_radius")
        self.net = _mlp(len(predictor.x_mean), int(predictor.params["hidden"]))
        self.net.load_state_dict({k: torch.tensor(v, dtype=torch.float32) for k, v in predictor.params["weights"].items()})
        for p in self.net.parameters():
            p.requires_grad_(False)

    def probabilities(self, x: Tensor, site: int) -> Tensor:
        """``(N, D) -> (N, V_site)`` soft element assignment of one site."""
        raw = x[:, self.slices[site]] * self.std[self.slices[site]] + self.mean[self.slices[site]]
        codes = getattr(self, f"codes{site}")
        d2 = ((raw[:, None, :] - codes[None]) ** 2).sum(-1)
        return torch.softmax(-d2 / self.temperature, dim=1)

    def features(self, x: Tensor) -> Tensor:
        """``(N, D) -> (N, F)`` the surrogate's raw descriptors from expected element properties."""
        p = [self.probabilities(x, s) for s in range(5)]
        fa, fb = p[0] @ self.props0, p[1] @ self.props1
        fx = torch.stack([p[s] @ self.props2 for s in (2, 3, 4)], dim=1)  # anion sites share one vocabulary
        counts = sum(p[s] @ self.anion_onehot for s in (2, 3, 4))
        rx = fx[:, :, self.ri].mean(dim=1)
        tol = (fa[:, self.ri] + rx) / (2.0**0.5 * (fb[:, self.ri] + rx))
        return torch.cat([fa, fb, fx.mean(1), fx.min(1).values, fx.max(1).values, counts, tol[:, None]], dim=1)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, D) -> (N,)`` predicted property (physical units)."""
        z = (self.features(x.float()) - self.x_mean) / self.x_std
        return self.net(z).squeeze(1) * self.y_std + self.y_mean
