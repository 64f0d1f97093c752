"""``flowevo train`` as a function: configuration -> MODEL_DIR (model, resolved config, loss plot).

``.npz`` data trains the generic domain (encoder, flow, judge); a ``.csv`` of crystals
(CDVAE format: ``cif`` and the property column) trains the crystal domain's property-conditioned
flow plus an MLP surrogate of the property (``surrogate.json``) for the ``crystals.*`` built-ins.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np

from flowevo.config import Config, ConfigError, config_to_dict, validate_config, write_resolved
from flowevo.domains.generic import GenericModel, GenericTrainConfig, load_npz, save_model, train_generic
from flowevo.flow import FixedGrid

__all__ = ["run_train", "train_config"]


def train_config(config: Config) -> GenericTrainConfig:
    """The generic domain's training settings from the ``[train]`` section and the seed."""
    t = config.train
    fields = {k: getattr(t, k) for k in ("encoder", "latent", "steps", "batch_size", "lr", "hidden", "depth",
                                         "condition_dropout", "encoder_steps", "judge", "judge_steps", "holdout")}
    return GenericTrainConfig(**fields, seed=config.seed)


def run_train(config: Config, show_progress: bool = True, log: Callable[[str], None] = lambda s: None) -> dict:
    """Train on ``config.train.data`` and write ``config.train.out``; returns a summary.

    Example:
        >>> cfg = load_config(flags={"train.data": "blobs.npz", "train.out": "models/blobs"})   # doctest: +SKIP
        >>> summary = run_train(cfg)                                                            # doctest: +SKIP
    """
    if config.train.data is None:
        raise ConfigError("train.data: required (give --data FILE or set it in the config file)")
    if config.train.out is None:
        raise ConfigError("train.out: required (give --out MODEL_DIR or set it in the config file)")
    if Path(config.train.data).suffix.lower() == ".csv":
        return _train_crystals(config, show_progress, log)
    data = load_npz(config.train.data)
    settings = train_config(config).resolve(data)
    log(f"{len(data)} {data.kind} of shape {data.shape}; classes {data.num_classes}, float conditions "
        f"{data.value_dim}; encoder {settings.encoder}, {settings.steps} flow steps")
    model = train_generic(data, settings, show_progress=show_progress)
    out = Path(config.train.out)
    save_model(model, out)
    resolved = {k: v for k, v in asdict(GenericTrainConfig(**model.info["train"])).items() if k != "seed"}
    _write_resolved(config, out, resolved)
    _plot_losses(model.info["flow"]["losses"], model.info["train"]["steps"], out / "training.png")
    return summary(model, out)


def _write_resolved(config: Config, out: Path, train: dict) -> None:
    data = config_to_dict(config)
    data["train"].update({k: v for k, v in train.items() if k in data["train"]})
    data["train"]["data"] = str(Path(config.train.data).resolve())
    data["train"]["out"] = str(out.resolve())
    write_resolved(validate_config(data), out)


def summary(model: GenericModel, out: Path) -> dict:
    """The figures a user wants after training."""
    info = model.info
    return {"model_dir": str(out), "kind": info["kind"], "shape": info["shape"], "flow_shape": info["flow_shape"],
            "num_classes": info["num_classes"], "value_dim": info["value_dim"], "encoder": info["encoder"],
            "steps": info["train"]["steps"], "final_loss": info["flow"]["final_loss"], "judge": info["judge"],
            "roundtrip": info["roundtrip"], "wall_s": info["wall_s"]}


def _plot_losses(losses: list[float], steps: int, path: Path) -> None:
    from flowevo.report.plots import plot_losses

    plot_losses(losses, steps, path)


def _train_crystals(config: Config, show_progress: bool, log: Callable[[str], None]) -> dict:
    import torch

    from flowevo.domains.crystals.data import load_cdvae_csv, split_indices
    from flowevo.domains.crystals.model import save_crystal_model, train_crystal_flow
    from flowevo.domains.crystals.predictors import fit_surrogate
    from flowevo.workflows.domains import SURROGATE_FILE

    t, seed = config.train, config.seed
    start = time.perf_counter()
    table = load_cdvae_csv(t.data, properties=(t.property,), limit=t.max_rows)
    n = len(table)
    batch = t.batch_size or min(256, n)
    steps = t.steps or int(min(max(round(40 * n / batch), 500), 4000))
    hidden = t.hidden or 128
    log(f"{n} crystals from {t.data}; conditioned on {t.property!r}; {steps} flow steps")
    model = train_crystal_flow(table, property=t.property, seed=seed, steps=steps, batch_size=batch, lr=t.lr,
                               hidden=hidden, depth=t.depth, condition_dropout=t.condition_dropout,
                               show_progress=show_progress)
    out = Path(t.out)
    out.mkdir(parents=True, exist_ok=True)
    save_crystal_model(model, out)
    judge = None
    judge_steps = None
    if t.judge:
        judge_steps = t.judge_steps or int(min(max(round(20 * n / batch), 300), 2000))
        tr, _, ho = split_indices(n, (1 - t.holdout, 0.0, t.holdout), seed=seed)
        surrogate = fit_surrogate(table.subset(tr), t.property, seed, steps=judge_steps)
        surrogate.save(out / SURROGATE_FILE)
        judge = {"kind": "surrogate (MLP)", "holdout_size": int(len(ho))}
        if len(ho):
            held = table.subset(ho)
            pred = surrogate.predict(held.structures, held.formulas)
            y = np.asarray(held.properties[t.property], dtype=np.float64)
            judge["holdout_mae"] = float(np.abs(pred - y).mean())
            judge["holdout_r2"] = [float(1 - ((pred - y) ** 2).sum() / max(((y - y.mean()) ** 2).sum(), 1e-12))]
    x = model.encode(table.structures[:64], table.formulas[:64])
    c = model.condition(table.properties[t.property][:64])
    with torch.inference_mode():
        rt = {f"rk4_{k}_median_rel_error": float(model.codec(FixedGrid("rk4", k)).roundtrip_error(x, c).median()) for k in (10, 20)}
        rmse = float(((model.encoder.decode(model.encoder.encode(x)) - x) ** 2).mean().sqrt()) if model.encoder else 0.0
    _write_resolved(config, out, {"steps": steps, "batch_size": batch, "hidden": hidden, "judge_steps": judge_steps})
    losses = model.info.get("losses") or []
    if losses:
        _plot_losses(losses, steps, out / "training.png")
    return {"model_dir": str(out), "kind": "crystals", "shape": [model.dim], "flow_shape": [model.residual_dim],
            "num_classes": 0, "value_dim": 1, "property": t.property,
            "encoder": {"kind": "whitening" if model.encoder else "none", "reconstruction_rmse": rmse}, "steps": steps,
            "final_loss": model.info["final_loss"], "judge": judge, "roundtrip": rt,
            "wall_s": time.perf_counter() - start}
