"""An edit task: rows of (source sample, its condition, the target condition)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from flowevo.flow.condition import Condition


@dataclass(frozen=True)
class EditTask:
    """What to edit, row by row: each row is one source sample and its target condition.

    Args:
        sources: ``(B, *D)`` source samples in data space.
        source_condition: the sources' own conditions (batch B), used for inversion.
        target_condition: the conditions to decode under (batch B).

    Example:
        >>> task = EditTask(torch.randn(4, 2), Condition.from_labels([0] * 4), Condition.from_labels([1] * 4))
        >>> len(task)
        4
    """

    sources: Tensor
    source_condition: Condition
    target_condition: Condition

    def __post_init__(self) -> None:
        b = self.sources.shape[0]
        if b == 0:
            raise ValueError("an edit task needs at least one source")
        if len(self.source_condition) != b or len(self.target_condition) != b:
            raise ValueError(
                f"{b} sources but {len(self.source_condition)} source and {len(self.target_condition)} target conditions"
            )
        if not torch.isfinite(self.sources).all():
            raise ValueError("sources contain NaN or inf")

    def __len__(self) -> int:
        return int(self.sources.shape[0])
