"""The flow a constrained fine-tuning run trains, from any registered domain, and its round checkpoints.

:func:`load_flow` asks the domain that claims the model (:func:`flowevo.domains.domain_for_model`) for its
:class:`~flowevo.domains.DomainFlow` (``Domain.load_flow``). :class:`TunedVelocity` is what the optimiser trains
and checkpoints: the domain's velocity with its flow-space shape and condition layout. A round checkpoint
(``RUN_DIR/checkpoints/round_<k>.pt``) holds the weights and, under ``meta["cfo_run"]``, the model it was
fine-tuned from, so :func:`load_round` rebuilds the flow (encoder, payload, condition layout) from the
domain and puts the round's weights in: ``flowevo sample`` reads any round this way. This module names no domain.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from flowevo.devices import resolve_device
from flowevo.domains import Domain, DomainFlow, FlowRequest, domain_for_model
from flowevo.flow import Condition

__all__ = ["TunedVelocity", "is_cfo_round", "load_flow", "load_round", "null_condition_of", "round_meta", "tuned"]


class TunedVelocity(nn.Module):
    """A domain's velocity as the constrained optimiser sees it: ``forward(z (N, *S), t (N,), c) -> (N, *S)``
    delegates; ``shape`` (= ``S``) and ``config`` (shape, class count, value width) describe it.

    Args:
        velocity: the domain's velocity module. flow_shape: ``S``. num_classes / value_dim: the condition layout.
    """

    def __init__(self, velocity: nn.Module, flow_shape: Sequence[int], num_classes: int, value_dim: int) -> None:
        super().__init__()
        self.velocity = velocity
        self.shape = tuple(int(s) for s in flow_shape)
        self.config = {"shape": list(self.shape), "num_classes": int(num_classes), "value_dim": int(value_dim)}

    def forward(self, x: Tensor, t: Tensor, c: Condition) -> Tensor:
        """Same shapes as the wrapped velocity."""
        return self.velocity(x, t, c)


def load_flow(model: str | Path, device: str = "cpu") -> tuple[Domain, DomainFlow]:
    """The domain that reads ``model`` (MODEL_DIR or ``path/file.py:factory``) and its flow on ``device``.

    Raises:
        ValueError: no domain (or two) reads it, the domain cannot load a flow for fine-tuning, or the device is
            not available here.
    """
    resolve_device(device)
    path = Path(model)
    domain = domain_for_model(path)
    if domain.load_flow is None:
        raise ValueError(f"{model}: the {domain.name} domain offers no flow for constrained fine-tuning (its "
                         "registration has no load_flow)")
    flow = domain.load_flow(FlowRequest(path, device))
    if flow.kind != domain.name:
        raise TypeError(f"domain {domain.name!r}: its load_flow returned a flow of kind {flow.kind!r}")
    return domain, flow


def null_condition_of(flow: DomainFlow) -> Condition:
    """The null (unconditional) condition of batch 1 in ``flow``'s layout."""
    labels = torch.zeros(1, dtype=torch.long) if flow.num_classes else None
    values = torch.zeros(1, flow.value_dim) if flow.value_dim else None
    return Condition(labels, values, torch.ones(1, dtype=torch.bool))


def tuned(flow: DomainFlow) -> TunedVelocity:
    """``flow``'s velocity wrapped for the optimiser, its parameters trainable (loaders may freeze them)."""
    return TunedVelocity(flow.velocity, flow.flow_shape, flow.num_classes, flow.value_dim).requires_grad_(True)


def round_meta(path: str | Path) -> dict[str, Any] | None:
    """The ``meta`` of a checkpoint written by ``flowevo cfo`` (None for any other file or checkpoint)."""
    try:
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 (not ours: the caller's own loader reports it)
        return None
    meta = payload.get("meta") if isinstance(payload, dict) else None
    return meta if isinstance(meta, dict) and isinstance(meta.get("cfo_run"), dict) else None


def is_cfo_round(path: str | Path) -> bool:
    """True for a round checkpoint of ``flowevo cfo`` (``RUN_DIR/checkpoints/round_<k>.pt``)."""
    return Path(path).is_file() and round_meta(path) is not None


def load_round(path: str | Path, device: str = "cpu") -> tuple[TunedVelocity, DomainFlow, Condition, dict[str, Any]]:
    """A round checkpoint of ``flowevo cfo`` -> ``(velocity with the round's weights, the domain's flow, the
    condition the run sampled under, meta)``; the model it was fine-tuned from must still be where the run read it.

    Raises:
        ValueError: not a ``flowevo cfo`` round checkpoint, or its weights do not fit the model it names.
    """
    from flowevo.cfo import condition_from_dict

    meta = round_meta(path)
    if meta is None:
        raise ValueError(f"{path}: not a round checkpoint of flowevo cfo")
    _, flow = load_flow(meta["cfo_run"]["model"], device)
    velocity = tuned(flow)
    payload = torch.load(Path(path), map_location=device, weights_only=True)
    try:
        velocity.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise ValueError(f"{path}: its weights do not fit {meta['cfo_run']['model']} (changed since the run?): "
                         f"{' '.join(str(exc).split())[:300]}") from None
    condition = condition_from_dict(meta["cfo"]["condition"]) if "cfo" in meta else null_condition_of(flow)
    return velocity.eval(), flow, condition, meta
