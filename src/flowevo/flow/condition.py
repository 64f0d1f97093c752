"""Conditions: class ids, float vectors, or both, with a null condition.

A :class:`Condition` is a batch: ``labels`` is ``(N,)`` long, ``values`` is ``(N, K)`` float,
``null`` is ``(N,)`` bool (True rows are the null condition, used for classifier-free
guidance and unconditional sampling). :class:`ConditionEmbedding` maps a batch to ``(N, E)``.

Checks that read tensor contents (NaN values, unknown class ids) wait for the device. They run
where a condition enters the library: a :class:`Condition` built by the caller, a velocity model
called directly, and the first velocity call of each ODE solve. Inside a solve the remaining
calls run under :func:`unchecked_conditions`, so no solver stage waits for the device.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

_CHECKS = threading.local()


def condition_checks_enabled() -> bool:
    """False inside :func:`unchecked_conditions` (in this thread), else True."""
    return getattr(_CHECKS, "enabled", True)


@contextmanager
def unchecked_conditions() -> Iterator[None]:
    """Skip the content checks of conditions (NaN values, class ids) in this thread.

    For solvers: a condition is checked on the first velocity call of a solve; later calls
    with the same condition skip the checks, which would wait for the device at every stage.
    Shape and layout checks still run (they need no device data).
    """
    previous = condition_checks_enabled()
    _CHECKS.enabled = False
    try:
        yield
    finally:
        _CHECKS.enabled = previous


@dataclass(frozen=True)
class Condition:
    """A batch of conditions.

    Args:
        labels: ``(N,)`` long class ids in ``[0, num_classes)``, or None.
        values: ``(N, K)`` float condition vector (e.g. a scaled property), or None.
        null: ``(N,)`` bool, True where the row is the null (unconditional) condition.

    Example:
        >>> c = Condition.from_labels([3, 7])
        >>> len(c), c.labels.tolist()
        (2, [3, 7])
    """

    labels: Tensor | None = None
    values: Tensor | None = None
    null: Tensor | None = None

    def __post_init__(self) -> None:
        if self.labels is None and self.values is None and self.null is None:
            raise ValueError("a Condition needs labels, values or a null mask")
        sizes = {t.shape[0] for t in (self.labels, self.values, self.null) if t is not None}
        if len(sizes) != 1:
            raise ValueError(f"condition parts disagree on batch size: {sorted(sizes)}")
        if self.labels is not None and (self.labels.ndim != 1 or self.labels.is_floating_point()):
            raise ValueError(f"labels must be a 1-D integer tensor, got {tuple(self.labels.shape)} {self.labels.dtype}")
        if self.values is not None:
            if self.values.ndim != 2 or not self.values.is_floating_point():
                raise ValueError(f"values must be a 2-D float tensor (N, K), got {tuple(self.values.shape)}")
            if condition_checks_enabled() and not torch.isfinite(self.values).all():
                raise ValueError("condition values contain NaN or inf")

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def from_labels(cls, labels: Tensor | list[int], device: torch.device | str | None = None) -> Condition:
        """Class-id condition from a list or ``(N,)`` tensor."""
        return cls(labels=torch.as_tensor(labels, dtype=torch.long, device=device))

    @classmethod
    def from_values(cls, values: Tensor, device: torch.device | str | None = None) -> Condition:
        """Continuous condition from ``(N, K)`` (or ``(N,)``, read as K = 1) floats."""
        v = torch.as_tensor(values, dtype=torch.float32, device=device)
        return cls(values=v[:, None] if v.ndim == 1 else v)

    @classmethod
    def null_like(cls, c: Condition) -> Condition:
        """The null condition with the same batch size and layout as ``c``."""
        return cls._derived(c.labels, c.values, torch.ones(len(c), dtype=torch.bool, device=c.device))

    # -- batch operations ------------------------------------------------------------------------
    def __len__(self) -> int:
        for t in (self.labels, self.values, self.null):
            if t is not None:
                return int(t.shape[0])
        return 0  # unreachable: __post_init__ forbids an empty condition

    @property
    def device(self) -> torch.device:
        return next(t for t in (self.labels, self.values, self.null) if t is not None).device

    @classmethod
    def _derived(cls, labels: Tensor | None, values: Tensor | None, null: Tensor | None) -> Condition:
        """A condition made from parts of checked conditions: layout checks only (no device wait)."""
        with unchecked_conditions():
            return cls(labels, values, null)

    def _map(self, fn) -> Condition:
        return Condition._derived(*(None if t is None else fn(t) for t in (self.labels, self.values, self.null)))

    def __getitem__(self, index: Tensor | slice | int) -> Condition:
        if isinstance(index, int):
            index = slice(index, index + 1)
        return self._map(lambda t: t[index])

    def to(self, device: torch.device | str) -> Condition:
        return self._map(lambda t: t.to(device))

    def repeat_interleave(self, k: int) -> Condition:
        """Each row repeated ``k`` times in place: ``(N,) -> (N*k,)``."""
        return self._map(lambda t: t.repeat_interleave(k, dim=0))

    def null_mask(self) -> Tensor:
        """``(N,)`` bool: rows that are the null condition."""
        return self.null if self.null is not None else torch.zeros(len(self), dtype=torch.bool, device=self.device)

    def with_null(self, mask: Tensor) -> Condition:
        """Copy with rows where ``mask`` is True set to null (OR-ed with existing null rows)."""
        return Condition._derived(self.labels, self.values, self.null_mask() | mask)

    @staticmethod
    def cat(conditions: list[Condition]) -> Condition:
        """Concatenate condition batches with the same layout."""
        parts = []
        for name in ("labels", "values", "null"):
            ts = [getattr(c, name) for c in conditions]
            if name == "null" and any(t is not None for t in ts):
                ts = [c.null_mask() for c in conditions]
            if any((t is None) != (ts[0] is None) for t in ts):
                raise ValueError(f"cannot concatenate conditions with and without {name}")
            parts.append(None if ts[0] is None else torch.cat(ts))
        return Condition._derived(*parts)


class ConditionEmbedding(nn.Module):
    """Embed a :class:`Condition` into ``(N, dim)``; learned null tokens for the null condition.

    Args:
        num_classes: number of class ids (0 for none).
        value_dim: width K of continuous condition vectors (0 for none).
        dim: embedding width.

    Example:
        >>> emb = ConditionEmbedding(num_classes=10, value_dim=0, dim=32)
        >>> emb(Condition.from_labels([1, 2])).shape
        torch.Size([2, 32])
    """

    def __init__(self, num_classes: int, value_dim: int, dim: int) -> None:
        super().__init__()
        if num_classes <= 0 and value_dim <= 0:
            raise ValueError("a conditional model needs num_classes > 0 or value_dim > 0")
        self.num_classes, self.value_dim, self.dim = num_classes, value_dim, dim
        self.label_embedding = nn.Embedding(num_classes + 1, dim) if num_classes > 0 else None  # last row: null
        self.value_projection = (
            nn.Sequential(nn.Linear(value_dim, dim), nn.SiLU(), nn.Linear(dim, dim)) if value_dim > 0 else None
        )
        self.null_value = nn.Parameter(torch.zeros(dim)) if value_dim > 0 else None

    def validate(self, c: Condition) -> None:
        """Raise ValueError if ``c`` does not fit this embedding (unknown class, wrong width).

        Reads the class ids, so it waits for the device; :meth:`forward` calls it except under
        :func:`unchecked_conditions` (solver stages after the first).
        """
        null = c.null_mask()
        if self.label_embedding is not None and c.labels is None and not null.all():
            raise ValueError("this model is conditioned on class labels; the condition has none")
        if self.value_projection is not None and c.values is None and not null.all():
            raise ValueError(f"this model expects condition values of width {self.value_dim}; the condition has none")
        if self.label_embedding is not None and c.labels is not None:
            valid = c.labels[~null]
            if valid.numel() and (valid.min() < 0 or valid.max() >= self.num_classes):
                bad = valid[(valid < 0) | (valid >= self.num_classes)].unique().tolist()
                raise ValueError(f"unknown class id(s) {bad}: the model knows classes 0..{self.num_classes - 1}")
        if self.value_projection is not None and c.values is not None and c.values.shape[1] != self.value_dim:
            raise ValueError(f"this model expects condition values of width {self.value_dim}, got {c.values.shape[1]}")

    def forward(self, c: Condition) -> Tensor:
        """``Condition`` of batch N -> ``(N, dim)``."""
        if condition_checks_enabled():
            self.validate(c)
        null = c.null_mask()
        out = torch.zeros(len(c), self.dim, device=null.device)
        if self.label_embedding is not None:
            ids = torch.full((len(c),), self.num_classes, dtype=torch.long, device=null.device)
            if c.labels is not None:
                ids = torch.where(null, ids, c.labels.clamp(0, self.num_classes - 1))
            out = out + self.label_embedding(ids)
        if self.value_projection is not None:
            nulls = self.null_value.expand(len(c), self.dim)
            out = out + (nulls if c.values is None else torch.where(null[:, None], nulls, self.value_projection(c.values)))
        return out
