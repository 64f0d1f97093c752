"""Sampling a flow: noise decoded in one batched call, and conditions stored as plain data."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from flowevo.flow import Condition, Encoder, FixedGrid, ResidualCodec
from flowevo.flow.solver import Discretisation


def residual_shape(model: nn.Module) -> tuple[int, ...]:
    """The flow-space shape ``S`` of a velocity model (its ``shape`` attribute or ``config["shape"]``)."""
    shape = getattr(model, "shape", None) or getattr(model, "config", {}).get("shape")
    if not shape:
        raise ValueError(f"{type(model).__name__} exposes no residual shape (`shape` or config['shape'])")
    return tuple(int(s) for s in shape)


def batch_condition(c: Condition, n: int) -> Condition:
    """A condition of batch 1 repeated to ``n``, or one of batch ``n`` as is."""
    if len(c) == n:
        return c
    if len(c) == 1:
        return c.repeat_interleave(n)
    raise ValueError(f"condition has batch {len(c)}; expected 1 or {n}")


@torch.no_grad()
def sample_flow(model: nn.Module, n: int, condition: Condition, generator: torch.Generator,
                discretisation: Discretisation = FixedGrid("rk4", 10), encoder: Encoder | None = None,
                batch_size: int = 4096) -> tuple[Tensor, Tensor]:
    """``n`` samples: ``(z (n, *S) in flow space, x (n, *D) in data space)``.

    Residuals ``r ~ N(0, I)`` are drawn from ``generator`` and decoded under ``condition``
    (batch 1 or ``n``) by a :class:`ResidualCodec`, up to ``batch_size`` at a time (one
    velocity-model call per solver step per chunk).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    device = next(model.parameters()).device
    shape = residual_shape(model)
    c = batch_condition(condition.to(device), n)
    codec = ResidualCodec(model, discretisation, encoder=encoder)
    r = torch.randn((n, *shape), generator=generator, device=generator.device).to(device)
    zs = [codec.decode_latent(r[i:i + batch_size], c[i:i + batch_size]) for i in range(0, n, batch_size)]
    z = torch.cat(zs)
    return z, codec.from_flow_space(z)


def condition_to_dict(c: Condition) -> dict[str, Any]:
    """A condition of batch 1 as plain data (for checkpoint meta): ``{"labels", "values", "null"}``."""
    if len(c) != 1:
        raise ValueError(f"only a batch-1 condition can be stored, got batch {len(c)}")
    return {"labels": None if c.labels is None else c.labels.tolist(),
            "values": None if c.values is None else c.values.tolist(),
            "null": bool(c.null_mask()[0])}


def condition_from_dict(d: dict[str, Any]) -> Condition:
    """Inverse of :func:`condition_to_dict`."""
    labels = None if d.get("labels") is None else torch.tensor(d["labels"], dtype=torch.long)
    values = None if d.get("values") is None else torch.tensor(d["values"], dtype=torch.float32)
    null = torch.tensor([bool(d.get("null", False))])
    return Condition(labels, values, null)


def null_condition(model: nn.Module) -> Condition:
    """The null (unconditional) condition of batch 1 for a model built with a ``ConditionEmbedding``."""
    cfg = getattr(model, "config", {})
    labels = torch.zeros(1, dtype=torch.long) if cfg.get("num_classes", 0) > 0 else None
    values = torch.zeros(1, int(cfg["value_dim"])) if cfg.get("value_dim", 0) > 0 else None
    if labels is None and values is None:
        raise ValueError(f"{type(model).__name__}: cannot tell its condition layout (config has no num_classes/value_dim)")
    return Condition(labels, values, torch.ones(1, dtype=torch.bool))


def finite_mean(x: Tensor) -> float:
    """Mean over finite entries (NaN if none)."""
    ok = torch.isfinite(x)
    return float(x[ok].double().mean()) if ok.any() else math.nan
