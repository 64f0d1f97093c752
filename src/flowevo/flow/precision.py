"""Arithmetic precision of velocity calls: float32, TF32 matmuls, or bfloat16 autocast.

- ``fp32``: float32 throughout (TF32 matmuls off on CUDA while the velocity runs).
- ``tf32``: float32 tensors, matmuls on CUDA's TF32 units (10-bit mantissa products, float32
  sums). No effect on the CPU, which has no TF32 mode.
- ``bf16``: the velocity model runs under ``torch.autocast(dtype=torch.bfloat16)`` (matmuls and
  linear layers in bfloat16); its output is cast back to the state's dtype, so the solver's
  state and step sums stay float32.

The setting is scoped: the global TF32 flag is restored when the call ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Literal

import torch

Precision = Literal["fp32", "tf32", "bf16"]
PRECISIONS: tuple[str, ...] = ("fp32", "tf32", "bf16")


def check_precision(precision: str) -> None:
    """Raise ValueError unless ``precision`` is one of :data:`PRECISIONS`."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; use one of {list(PRECISIONS)}")


@contextmanager
def _cuda_tf32(enabled: bool) -> Iterator[None]:
    # the legacy flag sets the legacy and the new (torch >= 2.9) state together, so code that reads
    # either (torch.compile's inductor reads the legacy one) sees one consistent answer
    matmul = torch.backends.cuda.matmul
    previous = matmul.allow_tf32
    if previous == enabled:
        yield
        return
    matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        matmul.allow_tf32 = previous


def precision_context(precision: Precision, device: torch.device | str) -> AbstractContextManager[None]:
    """The context a velocity call runs in at ``precision`` on ``device``."""
    check_precision(precision)
    device = torch.device(device)
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=False)  # no weight cache: capturable
    if device.type == "cuda":
        return _cuda_tf32(precision == "tf32")
    return nullcontext()
