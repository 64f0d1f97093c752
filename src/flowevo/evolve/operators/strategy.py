"""The variation interface the Evolver drives: generation-0 variants, offspring, and what was scored.

Any object with these members can breed a population: :class:`~flowevo.evolve.operators.Variation`
(self- and cross-pollination with repair) and domain strategies such as the site-masked crystal
variation. The Evolver never reaches into a strategy's operators.

A strategy that needs to know the run (the codec to decode with, the task's rows and targets, the
objectives and constraints) may also define ``bind(context: SearchContext) -> None``: the Evolver
calls it once, when it is built, before anything else (e.g. :class:`~flowevo.evolve.operators.PreScreen`
decodes and screens children; wrappers pass ``bind`` on to the strategy they wrap).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from flowevo.evolve.population import Population
from flowevo.evolve.task import EditTask


@dataclass(frozen=True)
class SearchContext:
    """What a run tells a strategy that asks (``bind``): read-only.

    Attributes:
        codec: the run's :class:`~flowevo.flow.Codec` (decode under ``task.target_condition[row]``).
        task: the rows being edited.
        objectives: the evaluator's objectives (names, senses; those with ``cheap=True`` may be called directly).
        constraints: the evaluator's constraints (bounds; ``cheap`` as for objectives).
        payload: the run's ``fn(x (N, *D)) -> {name: list of N}`` domain payload, or None.
    """

    codec: Any
    task: EditTask
    objectives: Sequence[Any]
    constraints: Sequence[Any]
    payload: Callable[[Tensor], dict] | None = None


def bind_strategy(strategy: Any, context: SearchContext) -> None:
    """Call ``strategy.bind(context)`` if the strategy defines it (strategies without it need nothing)."""
    bind = getattr(strategy, "bind", None)
    if callable(bind):
        bind(context)


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
