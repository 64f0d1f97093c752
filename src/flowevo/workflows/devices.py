"""Resuming a run on another device than the one that wrote its checkpoint.

A checkpoint holds the state of the run's random generator, which lives on the run's device. A
CPU generator's state cannot be loaded into a CUDA generator (nor the reverse), and the two draw
different numbers from the same seed. So:

- **same device type** (cpu -> cpu, cuda -> cuda): the checkpoint is restored as written; the resumed
  run ends **exactly** as an uninterrupted one (``tests/test_resume_cli.py``, ``tests/workflows``);
- **another device type** (cpu -> cuda, cuda -> cpu): population, history, step sizes, constraint
  multipliers and counters are restored as written; the generator is re-seeded from the run seed and
  the generation (deterministically: the same resume gives the same continuation), so the rest of the
  run is a correct continuation that is **statistically equivalent** to the uninterrupted one (same
  quality within seed spread), not identical. ``tests/gpu/test_commands_cuda.py`` checks both directions.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from flowevo.evolve import Evolver, load_run_state

__all__ = ["reseeded_generator_state", "restore_run_state"]


def reseeded_generator_state(device: torch.device, seed: int, generation: int) -> torch.Tensor:
    """The state of a generator on ``device`` seeded from the run ``seed`` and the ``generation`` resumed after."""
    g = torch.Generator(device=device)
    g.manual_seed((int(seed) * 1_000_003 + int(generation) + 1) % (2**63))
    return g.get_state()


def restore_run_state(evolver: Evolver, path: Path | str, seed: int) -> str | None:
    """Restore ``evolver`` from the checkpoint at ``path``; returns None, or a note when the checkpoint was written
    on another device type and the generator was re-seeded (see the module docstring). The file is not changed.

    Raises:
        FileNotFoundError / ValueError: as :func:`~flowevo.evolve.load_run_state`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        saved = payload["state"]["generator"]
    except Exception:  # a corrupt or foreign file: load_run_state says what is wrong with it
        return load_run_state(evolver, path)
    if saved.numel() == evolver.generator.get_state().numel():
        return load_run_state(evolver, path)
    generation = int(payload["state"]["generation"])
    payload["state"]["generator"] = reseeded_generator_state(evolver.device, seed, generation)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".device.tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        load_run_state(evolver, tmp)
    finally:
        os.unlink(tmp)
    return (f"checkpoint written on another device type: resuming on {evolver.device} after generation {generation} "
            "with re-seeded random draws (a statistically equivalent continuation, not an identical one)")
