"""One place that turns a ``device`` setting into a usable ``torch.device`` (used by every layer).

Every command and entry point that runs a model takes ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:N"``,
``"mps"``); models, data, conditions and random generators then live there, and results come back
to the CPU only at the edges (metrics, files). :func:`resolve_device` checks the device once, where a
run starts, and fails with one line when it is not there.

Randomness and devices: a seeded ``torch.Generator`` draws the same numbers every time **on the same
device type**; a CUDA generator draws other numbers than a CPU one with the same seed. So a run is
reproduced exactly on the same device, and is statistically equivalent (same distribution, same
quality within seed spread) on another one.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["DEVICE_RE", "check_device_name", "require_cpu", "resolve_device"]

DEVICE_RE = re.compile(r"^(cpu|cuda(:[0-9]+)?|mps)$")


def check_device_name(device: str) -> str:
    """``device`` if it is spelled as flowevo accepts it (``cpu``, ``cuda``, ``cuda:N``, ``mps``), else ValueError."""
    if not isinstance(device, str) or not DEVICE_RE.match(device.strip()):
        raise ValueError(f"device {device!r}: use cpu, cuda, cuda:N or mps")
    return device.strip()


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The ``torch.device`` for ``device`` (None: CPU), after checking that torch can use it.

    Raises:
        ValueError: a misspelt device, CUDA asked for on a machine (or torch build) without it, a CUDA index past
            the devices torch sees, or MPS where it is unavailable. The message is one line.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    import torch

    if device is None:
        return torch.device("cpu")
    name = check_device_name(str(device))
    dev = torch.device(name)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA device is visible"
            raise ValueError(f"device {name!r} asked for, but torch sees no CUDA device ({why}); use --device cpu")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ValueError(f"device {name!r} asked for, but torch sees {count} CUDA device(s) "
                             f"(cuda:0..cuda:{count - 1})")
    elif dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device {name!r} asked for, but MPS is not available here; use --device cpu")
    return dev


def require_cpu(device: str | torch.device | None, what: str, why: str) -> None:
    """Raise a one-line ValueError when ``device`` is not the CPU: ``what`` runs on the CPU only (``why``).

    For parts of flowevo that take no device yet, so that ``--device cuda`` fails clearly instead of half-running.
    """
    name = "cpu" if device is None else str(device)
    if check_device_name(name) != "cpu":
        raise ValueError(f"{what} runs on the CPU only for now ({why}); use --device cpu")
