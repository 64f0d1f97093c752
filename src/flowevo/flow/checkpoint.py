"""Checkpoints: weights plus the config that built them, loaded with ``weights_only=True``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from flowevo.flow.velocity import build_model

FORMAT = "flowevo.checkpoint/1"


def save_checkpoint(path: str | Path, model: nn.Module, meta: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (its class name, ``model.config`` and weights) and ``meta`` atomically.

    ``meta`` holds plain data only (numbers, strings, lists, dicts, tensors): e.g. the
    training config, data scaling, class names.
    """
    if not hasattr(model, "config"):
        raise TypeError(f"{type(model).__name__} has no `config` dict; cannot checkpoint it")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "model": {"class": type(model).__name__, "config": model.config},
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": meta or {},
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    torch.save(payload, tmp)
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; checkpoints are meant to be shared and shipped
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model from a checkpoint; returns ``(model in eval mode, meta)``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # corrupt, truncated or not a torch file
        raise ValueError(f"{path}: not a readable flowevo checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not a flowevo checkpoint (expected format {FORMAT!r})")
    with torch.random.fork_rng(devices=[]):  # building the module must not move the caller's global RNG
        model = build_model(payload["model"])
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval(), payload["meta"]
