"""``flowevo train`` as a function: configuration -> MODEL_DIR (model, resolved config, loss plot)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Callable

from flowevo.config import Config, ConfigError, config_to_dict, validate_config, write_resolved
from flowevo.domains.generic import GenericModel, GenericTrainConfig, load_npz, save_model, train_generic

__all__ = ["run_train", "train_config"]


def train_config(config: Config) -> GenericTrainConfig:
    """The domain's training settings from the ``[train]`` section and the seed."""
    t = config.train
    fields = {k: getattr(t, k) for k in ("encoder", "latent", "steps", "batch_size", "lr", "hidden", "depth",
                                         "condition_dropout", "encoder_steps", "judge", "judge_steps", "holdout")}
    return GenericTrainConfig(**fields, seed=config.seed)


def run_train(config: Config, show_progress: bool = True, log: Callable[[str], None] = lambda s: None) -> dict:
    """Train on ``config.train.data`` and write ``config.train.out``; returns a summary (also in MODEL_DIR/model.json).

    Example:
        >>> cfg = load_config(flags={"train.data": "blobs.npz", "train.out": "models/blobs"})   # doctest: +SKIP
        >>> summary = run_train(cfg)                                                            # doctest: +SKIP
    """
    if config.train.data is None:
        raise ConfigError("train.data: required (give --data FILE or set it in the config file)")
    if config.train.out is None:
        raise ConfigError("train.out: required (give --out MODEL_DIR or set it in the config file)")
    data = load_npz(config.train.data)
    settings = train_config(config).resolve(data)
    log(f"{len(data)} {data.kind} of shape {data.shape}; classes {data.num_classes}, float conditions "
        f"{data.value_dim}; encoder {settings.encoder}, {settings.steps} flow steps")
    model = train_generic(data, settings, show_progress=show_progress)
    out = Path(config.train.out)
    save_model(model, out)
    data_dict = config_to_dict(config)
    data_dict["train"].update({k: v for k, v in asdict(GenericTrainConfig(**model.info["train"])).items()
                               if k in data_dict["train"]})
    data_dict["train"]["data"] = str(Path(config.train.data).resolve())
    data_dict["train"]["out"] = str(out.resolve())
    write_resolved(validate_config(data_dict), out)
    _plot_losses(model, out / "training.png")
    return summary(model, out)


def summary(model: GenericModel, out: Path) -> dict:
    """The figures a user wants after training."""
    info = model.info
    return {"model_dir": str(out), "kind": info["kind"], "shape": info["shape"], "flow_shape": info["flow_shape"],
            "num_classes": info["num_classes"], "value_dim": info["value_dim"], "encoder": info["encoder"],
            "steps": info["train"]["steps"], "final_loss": info["flow"]["final_loss"], "judge": info["judge"],
            "roundtrip": info["roundtrip"], "wall_s": info["wall_s"]}


def _plot_losses(model: GenericModel, path: Path) -> None:
    from flowevo.report.plots import plot_losses

    plot_losses(model.info["flow"]["losses"], model.info["train"]["steps"], path)


