"""Train a small conditional flow on a :class:`ToyMixture`."""

from __future__ import annotations

import torch
from torch import nn

from flowevo.domains.toy.mixture import ToyMixture
from flowevo.flow import Condition, MLPVelocity, TrainConfig, train_flow


def train_toy_flow(
    toy: ToyMixture,
    n: int = 8192,
    config: TrainConfig = TrainConfig(steps=1500, batch_size=256, lr=2e-3),
    hidden: int = 128,
    depth: int = 3,
    device: str | torch.device = "cpu",
    show_progress: bool = False,
) -> nn.Module:
    """Sample ``n`` points from ``toy`` (seeded by ``config.seed``) and fit a class-conditional MLP flow."""
    x, y = toy.sample(n, torch.Generator().manual_seed(config.seed))
    with torch.random.fork_rng():  # seeded weight initialisation without touching the global state
        torch.manual_seed(config.seed)
        model = MLPVelocity((toy.dim,), num_classes=toy.num_classes, hidden=hidden, depth=depth).to(device)
    return train_flow(model, x.to(device), Condition.from_labels(y, device=device), config, show_progress).model
