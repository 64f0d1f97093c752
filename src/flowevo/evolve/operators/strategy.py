"""The variation interface the Evolver drives: generation-0 variants, offspring, and what was scored.

Any object with these members can breed a population: :class:`~flowevo.evolve.operators.Variation`
(self- and cross-pollination with repair) and domain strategies such as the site-masked crystal
variation. The Evolver never reaches into a strategy's operators.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from flowevo.evolve.population import Population


@runtime_checkable
class VariationStrategy(Protocol):
    """Makes the individuals an Evolver evaluates (residuals ``(N, *S)``, rows in equal blocks)."""

    def initial(self, residuals: Tensor, count: int, generator: torch.Generator) -> Tensor:
        """Generation-0 variants: each row's own residual ``(B, *S)`` -> ``(B, count, *S)`` variants of it."""
        ...

    def offspring(self, population: Population, rows: int, per_row: int, generator: torch.Generator,
                  step: Tensor | None = None) -> Population:
        """Children ``(rows * per_row)`` of a population laid out as ``rows`` equal blocks, each sorted
        best first; ``step (rows,)`` is the Evolver's per-row step-size scale."""
        ...

    def observe(self, evaluated: Population) -> None:
        """Called with every newly scored batch (values, violation and decoded filled in)."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """What the strategy learned during the run (plain data and tensors; checkpointed with it)."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        ...
