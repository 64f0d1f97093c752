"""The domain part of an optimisation run: the registered domain that reads MODEL_DIR loads model and sources.

:func:`load_domain` turns ``[optimize]`` into a plain :class:`~flowevo.domains.RunRequest`, finds the
domain whose ``recognises_model`` claims the folder (:func:`flowevo.domains.domain_for_model`) and
returns its :class:`~flowevo.domains.DomainRun`. Which domains exist is the registry's business.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from flowevo.config import Config, ConfigError
from flowevo.devices import resolve_device
from flowevo.domains import Domain, DomainRun, RunRequest, domain_for_model

__all__ = ["load_domain", "run_request"]


def _required(value: Any, key: str, flag: str) -> Any:
    if value is None:
        raise ConfigError(f"{key}: required (give {flag} or set it in the config file)")
    return value


def run_request(config: Config, target_optional: bool = False) -> RunRequest:
    """The loader's arguments from ``config.optimize`` (raises ConfigError for a missing model, sources or target;
    ``target_optional``: no target is fine, the domain has a default)."""
    o = config.optimize
    model_dir = Path(_required(o.model, "optimize.model", "--model MODEL_DIR (or path/file.py:factory)"))
    sources = Path(_required(o.sources, "optimize.sources", "--sources FILE"))
    t = o.target if target_optional else _required(o.target, "optimize.target",
                                                   "--target (e.g. --target 2 or --target values=0.5)")
    return RunRequest(model_dir, sources, target_class=None if t is None else t.class_,
                      target_values=None if t is None or t.values is None else list(t.values),
                      rows=o.rows, solver=o.solver, solver_steps=o.solver_steps, strength=o.strength,
                      guidance=o.guidance, device=o.device)


def load_domain(config: Config) -> tuple[Domain, DomainRun]:
    """The domain that reads ``config.optimize.model`` and the run its loader builds (sources, conditions, codec),
    with the codec on ``config.optimize.device``. The target may be left out when the domain has a
    ``default_target``.

    Raises:
        ValueError: the device is not available here, or the domain's loader left the model elsewhere.
    """
    request = run_request(config, target_optional=True)
    device = resolve_device(request.device)  # one line before any loading when CUDA is asked for but absent
    domain = domain_for_model(request.model_dir)
    if not domain.default_target and request.target_class is None and request.target_values is None:
        run_request(config)  # raises the ConfigError naming --target
    assert domain.load_run is not None  # domain_for_model only returns domains with a loader
    run = domain.load_run(request)
    if run.kind != domain.name:
        raise TypeError(f"domain {domain.name!r}: its loader returned a run of kind {run.kind!r}; set kind={domain.name!r}")
    if not _same_device(run.codec.device, device):
        raise ValueError(f"optimize.device = {request.device!r}: the {domain.name} domain's loader put the model on "
                         f"{run.codec.device} (it does not read RunRequest.device yet); use device = 'cpu'")
    return domain, run


def _same_device(a: torch.device, b: torch.device) -> bool:
    if a.type != b.type or a.type != "cuda":
        return a.type == b.type
    return (a.index or 0) == (b.index if b.index is not None else torch.cuda.current_device())
