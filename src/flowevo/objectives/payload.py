"""Ship a :class:`Candidates` batch to another process as plain numpy: no tensors, no run state.

:func:`to_payload` turns every tensor in the batch (``x``, ``sources``, ``source_index``, the
fields of a target ``Condition``, tensors inside ``extra``) into a CPU numpy array, recursing
through dataclasses, dicts, lists and tuples; other objects (e.g. pymatgen structures) travel
as they are and must be picklable. :func:`from_payload` rebuilds the batch on the worker.
Tensors are not pickled directly because torch's multiprocessing reductions move them
through shared-memory file descriptors, which is fragile across pools and clusters.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from flowevo.objectives.base import Candidates


@dataclass(frozen=True)
class _Array:
    """A tensor in transit: its numpy data and original torch dtype name."""

    data: np.ndarray
    dtype: str


@dataclass(frozen=True)
class _Record:
    """A dataclass instance in transit: its class and packed init fields."""

    cls: type
    fields: dict[str, Any]


@dataclass(frozen=True)
class Payload:
    """A picklable, numpy-only batch (the packed fields of a :class:`Candidates`)."""

    x: Any
    source_index: Any
    sources: Any
    target: Any
    extra: dict[str, Any]

    def __len__(self) -> int:
        return int(self.x.data.shape[0])


def pack(obj: Any) -> Any:
    """Replace tensors in ``obj`` (recursively) by numpy arrays that :func:`unpack` restores."""
    if isinstance(obj, Tensor):
        t = obj.detach().cpu()
        dtype = str(t.dtype).removeprefix("torch.")
        if t.dtype == torch.bfloat16:  # numpy has no bfloat16
            t = t.float()
        return _Array(t.numpy(), dtype)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _Record(type(obj), {f.name: pack(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init})
    if isinstance(obj, dict):
        return {k: pack(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(pack(v) for v in obj)
    return obj


def unpack(obj: Any) -> Any:
    """Inverse of :func:`pack`: numpy arrays back to CPU tensors, records back to dataclasses."""
    if isinstance(obj, _Array):
        data = obj.data if obj.data.flags.writeable else obj.data.copy()
        return torch.from_numpy(data).to(getattr(torch, obj.dtype))
    if isinstance(obj, _Record):
        return obj.cls(**{k: unpack(v) for k, v in obj.fields.items()})
    if isinstance(obj, dict):
        return {k: unpack(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(unpack(v) for v in obj)
    return obj


def to_payload(batch: Candidates) -> Payload:
    """Pack a batch of N candidates for shipping."""
    return Payload(
        x=pack(batch.x), source_index=pack(batch.source_index), sources=pack(batch.sources),
        target=pack(batch.target), extra=pack(dict(batch.extra)),
    )


def from_payload(payload: Payload) -> Candidates:
    """Rebuild the :class:`Candidates` batch (CPU tensors) from a :class:`Payload`."""
    return Candidates(
        x=unpack(payload.x), source_index=unpack(payload.source_index), sources=unpack(payload.sources),
        target=unpack(payload.target), extra=unpack(payload.extra),
    )
