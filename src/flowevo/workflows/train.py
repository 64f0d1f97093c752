"""``flowevo train`` as a function: configuration -> MODEL_DIR (model, resolved config, loss plot).

The registered domain whose ``recognises_data`` claims ``train.data`` trains
(:func:`flowevo.domains.domain_for_data`) and writes MODEL_DIR; this module records the resolved
configuration and plots the losses.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from flowevo.config import Config, ConfigError, config_to_dict, validate_config, write_resolved
from flowevo.devices import resolve_device
from flowevo.domains import TrainRequest, domain_for_data

__all__ = ["run_train", "train_request"]


def train_request(config: Config) -> TrainRequest:
    """The trainer's arguments from ``[train]`` and the seed (raises ConfigError for a missing data or out)."""
    t = config.train
    if t.data is None:
        raise ConfigError("train.data: required (give --data FILE or set it in the config file)")
    if t.out is None:
        raise ConfigError("train.out: required (give --out MODEL_DIR or set it in the config file)")
    settings = {k: v for k, v in t.model_dump().items() if k not in ("data", "out")}
    return TrainRequest(Path(t.data), Path(t.out), config.seed, settings)


def run_train(config: Config, show_progress: bool = True, log: Callable[[str], None] = lambda s: None) -> dict:
    """Train on ``config.train.data`` and write ``config.train.out``; returns a summary.

    Example:
        >>> cfg = load_config(flags={"train.data": "blobs.npz", "train.out": "models/blobs"})   # doctest: +SKIP
        >>> summary = run_train(cfg)                                                            # doctest: +SKIP
    """
    request = train_request(config)
    resolve_device(config.train.device)  # one line before any loading when CUDA is asked for but absent
    domain = domain_for_data(request.data)
    assert domain.train is not None  # domain_for_data only returns domains with a trainer
    trained = domain.train(request, show_progress, log)
    _write_resolved(config, request.out, trained.resolved)
    if trained.losses:
        from flowevo.report.plots import plot_losses

        plot_losses(trained.losses, trained.loss_steps or len(trained.losses), request.out / "training.png")
    return trained.summary


def _write_resolved(config: Config, out: Path, train: dict[str, Any]) -> None:
    data = config_to_dict(config)
    data["train"].update({k: v for k, v in train.items() if k in data["train"]})
    data["train"]["data"] = str(Path(config.train.data).resolve())
    data["train"]["out"] = str(out.resolve())
    write_resolved(validate_config(data), out)
