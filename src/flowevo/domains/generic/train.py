"""Train a conditional flow (plus encoder and judge) on a user's data with defaults scaled to it.

:class:`GenericTrainConfig` fields left as ``None`` (or ``"auto"``) are filled from the data by
:meth:`GenericTrainConfig.resolve`: the encoder kind and width, step counts, batch size and
network width. :func:`train_generic` then fits, in order, the encoder, the flow (by
conditional flow matching through :func:`~flowevo.flow.train_flow`) and the judge, each with
a progress bar, and measures the round-trip error (invert, then decode) on 64 of the training samples.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from flowevo.domains.generic.data import UserData
from flowevo.domains.generic.encoder import Standardizer, fit_autoencoder, fit_pca
from flowevo.domains.generic.judge import fit_judge
from flowevo.domains.generic.model import GenericModel, ScaledConditions
from flowevo.flow import MLPVelocity, TrainConfig, train_flow

__all__ = ["EncoderKind", "GenericTrainConfig", "train_generic"]

EncoderKind = Literal["auto", "none", "pca", "autoencoder"]
MAX_RAW_DIM = 64  # above this many features, "auto" puts an encoder in front of the flow


def _clip(v: float, lo: int, hi: int) -> int:
    return int(min(max(round(v), lo), hi))


@dataclass(frozen=True)
class GenericTrainConfig:
    """Training settings; ``None`` / ``"auto"`` means "scaled to the data" (see :meth:`resolve`).

    Args:
        encoder: ``"none"`` (flow on standardised data), ``"pca"`` (whitened principal
            components), ``"autoencoder"`` (MLP autoencoder), or ``"auto"``: PCA for images
            and for vectors wider than 64 features, else none.
        latent: encoder width L (auto: PCA keeps 95% of the variance, at most 64; autoencoder 16).
        steps: flow-matching steps (auto: about 40 epochs, 500 .. 4000).
        batch_size: samples per step (auto: min(256, N)).
        lr: flow learning rate.
        hidden, depth: :class:`~flowevo.flow.MLPVelocity` width (auto: 128 up to 8 flow
            dimensions, else 256) and residual blocks.
        condition_dropout: null-condition rate (classifier-free guidance).
        encoder_steps: autoencoder steps (auto: about 30 epochs, 500 .. 3000).
        judge: also train the :class:`~flowevo.domains.generic.judge.ConditionPredictor`.
        judge_steps: its steps (auto: about 20 epochs, 300 .. 2000).
        holdout: fraction of samples kept out of judge training to measure the judge (the flow trains on all).
        device: where the flow trains (``cpu``, ``cuda``, ``cuda:N``); the encoder and the judge (small) train on
            the CPU, and the model is returned on the CPU. Same seed and device, same weights.
        seed: seeds every part (same seed, same weights).

    Example:
        >>> GenericTrainConfig(steps=200).steps
        200
    """

    encoder: EncoderKind = "auto"
    latent: int | None = None
    steps: int | None = None
    batch_size: int | None = None
    lr: float = 2e-3
    hidden: int | None = None
    depth: int = 3
    condition_dropout: float = 0.1
    encoder_steps: int | None = None
    judge: bool = True
    judge_steps: int | None = None
    holdout: float = 0.1
    seed: int = 0
    device: str = "cpu"

    def resolve(self, data: UserData) -> GenericTrainConfig:
        """Fill every automatic field from ``data`` (size, kind, dimension)."""
        n, d = len(data), math.prod(data.shape)
        batch = self.batch_size or min(256, n)
        enc = self.encoder
        if enc == "auto":
            enc = "pca" if data.kind == "images" or d > MAX_RAW_DIM else "none"
        latent = self.latent
        if enc == "autoencoder" and latent is None:
            latent = min(16, d)
        epochs = lambda e, lo, hi: _clip(e * n / batch, lo, hi)  # noqa: E731
        return replace(
            self, encoder=enc, latent=latent, batch_size=batch,
            steps=self.steps or epochs(40, 500, 4000),
            encoder_steps=(self.encoder_steps or epochs(30, 500, 3000)) if enc == "autoencoder" else None,
            judge_steps=(self.judge_steps or epochs(20, 300, 2000)) if self.judge else None,
        )


def _file_sha256(path: str) -> str | None:
    p = Path(path)
    if not p.is_file():
        return None
    h = hashlib.sha256()
    with p.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def train_generic(data: UserData, config: GenericTrainConfig = GenericTrainConfig(),
                  show_progress: bool = True) -> GenericModel:
    """Fit encoder, flow and (optionally) judge on ``data``; returns a :class:`GenericModel`.

    Example:
        >>> import numpy as np, tempfile, os
        >>> from flowevo.domains.generic import load_npz
        >>> f = os.path.join(tempfile.mkdtemp(), "d.npz")
        >>> rng = np.random.default_rng(0)
        >>> np.savez(f, x=rng.normal(size=(64, 2)) + np.repeat([[0, 0], [4, 0]], 32, 0), c=np.repeat([0, 1], 32))
        >>> model = train_generic(load_npz(f), GenericTrainConfig(steps=50, judge_steps=20), show_progress=False)
        >>> model.num_classes, model.shape
        (2, (2,))
    """
    cfg = config.resolve(data)
    if cfg.condition_dropout < 0 or cfg.condition_dropout >= 1:
        raise ValueError(f"condition_dropout must be in [0, 1), got {cfg.condition_dropout}")
    start = time.perf_counter()
    x = data.x
    clamp = [float(x.min()), float(x.max())] if data.kind == "images" else None
    per_feature = data.kind == "vectors"
    info_enc: dict = {"kind": cfg.encoder}
    if cfg.encoder == "none":
        encoder = Standardizer.fit(x, per_feature=per_feature, clamp=clamp)
    elif cfg.encoder == "pca":
        encoder = fit_pca(x, latent=cfg.latent, clamp=clamp, seed=cfg.seed)
        info_enc["explained_variance"] = float(encoder.explained)
    elif cfg.encoder == "autoencoder":
        encoder, ae_losses = fit_autoencoder(x, cfg.latent, cfg.encoder_steps, batch_size=cfg.batch_size,
                                             per_feature=per_feature, clamp=clamp, seed=cfg.seed,
                                             show_progress=show_progress)
        info_enc["final_loss"] = float(np.mean(ae_losses[-50:]))
    else:
        raise ValueError(f"unknown encoder {cfg.encoder!r}; use auto, none, pca or autoencoder")
    encoder.requires_grad_(False)
    with torch.no_grad():
        z = torch.cat([encoder.encode(x[i:i + 4096]) for i in range(0, len(x), 4096)])
        info_enc["reconstruction_rmse"] = float(((encoder.decode(z[:2048]) - x[:2048]) ** 2).mean().sqrt())
    flow_shape = tuple(z.shape[1:])
    hidden = cfg.hidden or (128 if math.prod(flow_shape) <= 8 else 256)
    cfg = replace(cfg, latent=cfg.latent if cfg.encoder == "none" else int(math.prod(flow_shape)), hidden=hidden)

    v_mean = v_std = None
    values = data.values
    if values is not None:
        v_mean, v_std = values.mean(0), values.std(0, unbiased=False).clamp_min(1e-6)
    cond_scaled = data.condition()
    if values is not None:
        cond_scaled = type(cond_scaled)(labels=data.labels, values=(values - v_mean) / v_std)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        net = MLPVelocity(flow_shape, num_classes=data.num_classes, value_dim=data.value_dim, hidden=hidden, depth=cfg.depth)
    tc = TrainConfig(steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, condition_dropout=cfg.condition_dropout,
                     seed=cfg.seed)
    device = torch.device(cfg.device)
    trained = train_flow(net.to(device), z.to(device), cond_scaled.to(device), tc, show_progress=show_progress)
    velocity = trained.model.cpu().requires_grad_(False)
    if values is not None:
        velocity = ScaledConditions(velocity, v_mean, v_std).eval()

    judge = None
    info_judge = None
    if cfg.judge:
        fit = fit_judge(x, data.labels, data.values, cfg.judge_steps, batch_size=cfg.batch_size,
                        holdout=cfg.holdout, seed=cfg.seed, show_progress=show_progress)
        judge = fit.model
        info_judge = {"holdout_accuracy": fit.holdout_accuracy, "holdout_r2": fit.holdout_r2,
                      "holdout_size": fit.holdout_size}

    info = {
        "kind": data.kind, "shape": list(data.shape), "flow_shape": list(flow_shape),
        "num_classes": data.num_classes, "value_dim": data.value_dim,
        "value_mean": None if v_mean is None else v_mean.tolist(),
        "value_std": None if v_std is None else v_std.tolist(),
        "class_names": None if data.class_names is None else list(data.class_names),
        "data_range": [float(x.min()), float(x.max())],
        "data": {"path": str(Path(data.path).resolve()), "sha256": _file_sha256(data.path), "n": len(data)},
        "encoder": info_enc, "judge": info_judge,
        "train": asdict(cfg),
        "flow": {"final_loss": float(np.mean(trained.losses[-50:])),
                 "losses": trained.losses[:: max(1, len(trained.losses) // 200)]},
    }
    model = GenericModel(velocity, encoder.eval(), judge, info)
    info["roundtrip"] = _roundtrip(model, data, cfg.seed)
    info["wall_s"] = time.perf_counter() - start
    return model


def _roundtrip(model: GenericModel, data: UserData, seed: int, n: int = 64) -> dict:
    """Median relative round-trip error (invert then decode, rk4 with 10 and 20 steps) on up to ``n`` samples."""
    idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed + 1))[:n]
    sub = data.subset(idx)
    out = {}
    with torch.inference_mode():
        for steps in (10, 20):
            err = model.codec(steps=steps).roundtrip_error(sub.x, sub.condition())
            out[f"rk4_{steps}_median_rel_error"] = float(err.median())
    return out
