"""Digit objectives: the classifier as a black box, pixel preservation, morphometric targets.

The black-box classifier is wrapped in :class:`ClassifierOracle`, which counts queries and
exposes only hard labels and probabilities (never gradients). Objectives and constraints
read ``Candidates.x`` as images ``(N, 28, 28)`` in [0, 1] and ``Candidates.target.labels``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from flowevo.domains.digits.morphometrics import METRICS, measure_batch
from flowevo.objectives import Candidates, Constraint, FunctionObjective


@dataclass
class ClassifierOracle:
    """A classifier behind a query counter: ``probs(images (N, 28, 28)) -> (N, 10)``, no gradients."""

    model: nn.Module
    batch_size: int = 4096
    queries: int = field(default=0, init=False)

    @torch.inference_mode()
    def probs(self, images: Tensor) -> Tensor:
        self.queries += int(images.shape[0])
        device = next(self.model.parameters()).device
        out = [torch.softmax(self.model(images[i:i + self.batch_size].to(device).float()), dim=1)
               for i in range(0, images.shape[0], self.batch_size)]
        return torch.cat(out).cpu() if out else torch.zeros(0, 10)

    def labels(self, images: Tensor) -> Tensor:
        """Hard labels ``(N,)``."""
        return self.probs(images).argmax(dim=1)


def pixel_distance(candidates: Candidates, references: Tensor) -> Tensor:
    """L2 distance in pixel space between each candidate and its row's reference image: ``(N,)``."""
    ref = references.to(candidates.x.device)[candidates.source_index]
    return (candidates.x - ref).flatten(1).norm(dim=1)


def target_confidence_constraint(oracle: ClassifierOracle, tau: float) -> Constraint:
    """Feasible iff the black box's hard label is the target and its target probability >= ``tau``.

    ``g = 1[label != target] + max(0, tau - p_target)``, bound 0: the violation says how far off.
    """

    def g(c: Candidates) -> Tensor:
        p = oracle.probs(c.x)
        target = c.target.labels.cpu()
        p_t = p.gather(1, target[:, None]).squeeze(1)
        return (p.argmax(dim=1) != target).double() + (tau - p_t).clamp_min(0).double()

    return Constraint(f"label_is_target_p>={tau:g}", g, bound=0.0)


def counterfactual_objectives(references: Tensor) -> list[FunctionObjective]:
    """Preservation (min): pixel L2 to the row's reference (the source's VAE reconstruction)."""
    return [FunctionObjective("pixel_distance", "min", lambda c: pixel_distance(c, references))]


def thickness_objective(target: float, processes: int | None = None) -> FunctionObjective:
    """|thickness - target| from the Morpho-MNIST measurement (not differentiable), ``min``."""
    col = METRICS.index("thickness")

    def f(c: Candidates) -> Tensor:
        m = measure_batch(c.x.detach().cpu().numpy(), processes=processes)
        return torch.as_tensor(np.abs(m[:, col] - target))

    return FunctionObjective(f"thickness_to_{target:g}", "min", f)


def keep_class_constraint(oracle: ClassifierOracle) -> Constraint:
    """Feasible iff the black box still reads the row's target label (for attribute edits, the source class)."""
    return Constraint("keeps_class", lambda c: (oracle.labels(c.x) != c.target.labels.cpu()).double(), bound=0.0)
