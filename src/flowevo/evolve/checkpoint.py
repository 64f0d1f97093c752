"""Checkpoints of an evolution run: population, history and every random-generator state.

Written atomically (temporary file + rename) after each generation by :class:`Checkpointer`;
:func:`load_run_state` restores an :class:`Evolver` so that the rest of the run is identical to
an uninterrupted one with the same seed. The model's identity (a hash of its weights) is
stored and checked, so a checkpoint is never resumed with a different model.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from flowevo.evolve.evolver import Evolver

FORMAT = "flowevo.run-state/1"


def save_run_state(evolver: Evolver, path: Path | str) -> Path:
    """Write the evolver's state (between generations) atomically to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "model": evolver.codec.identity(), "state": evolver.state_dict()}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_run_state(evolver: Evolver, path: Path | str) -> None:
    """Restore ``evolver`` from a checkpoint written by :func:`save_run_state`.

    Raises:
        FileNotFoundError: no checkpoint at ``path``.
        ValueError: the file is corrupt, not a flowevo run state, or was made with another model.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: corrupt checkpoint, cannot resume ({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not a flowevo run checkpoint (expected format {FORMAT!r})")
    if payload["model"] != evolver.codec.identity():
        raise ValueError(f"{path}: the checkpoint was made with a different model (weights hash differs)")
    evolver.load_state_dict(payload["state"])


class Checkpointer:
    """Evolver callback: save the run state to ``path`` after every generation."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def __call__(self, evolver: Evolver) -> None:
        save_run_state(evolver, self.path)
