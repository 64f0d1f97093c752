"""A small predictor of the conditions from a sample: the default black box for a user's data.

:class:`ConditionPredictor` reads a sample ``(N, *D)`` and predicts its class (logits
``(N, C)``) and/or its float conditions ``(N, K)`` (in data units). Trained on the user's
training data next to the flow, it gives built-in objectives something to judge edits with
(``target_probability``, ``target_label``, ``target_value_error``) without any user code; it
is a black box to the evolution (only its outputs are read, never its gradients).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from flowevo.flow import register_model
from flowevo.progress import progress_bar

__all__ = ["ConditionPredictor", "JudgeFit", "fit_judge"]


@register_model
class ConditionPredictor(nn.Module):
    """MLP ``(N, *D) -> (logits (N, C) or None, values (N, K) or None)``.

    Args:
        shape: sample shape D.
        num_classes: classes C (0: no class head).
        value_dim: float conditions K (0: no value head).
        hidden: hidden width.

    Example:
        >>> net = ConditionPredictor([4], num_classes=3, value_dim=1, hidden=16)
        >>> logits, values = net(torch.randn(2, 4))
        >>> logits.shape, values.shape
        (torch.Size([2, 3]), torch.Size([2, 1]))
    """

    def __init__(self, shape: list[int], num_classes: int, value_dim: int, hidden: int = 256) -> None:
        super().__init__()
        if num_classes <= 0 and value_dim <= 0:
            raise ValueError("a ConditionPredictor needs num_classes > 0 or value_dim > 0")
        self.config: dict[str, Any] = dict(shape=[int(s) for s in shape], num_classes=num_classes,
                                           value_dim=value_dim, hidden=hidden)
        d = math.prod(shape)
        self.register_buffer("x_mean", torch.zeros(d))
        self.register_buffer("x_std", torch.ones(d))
        self.register_buffer("v_mean", torch.zeros(max(value_dim, 1)))
        self.register_buffer("v_std", torch.ones(max(value_dim, 1)))
        self.body = nn.Sequential(nn.Linear(d, hidden), nn.SiLU(), nn.Dropout(0.1), nn.Linear(hidden, hidden), nn.SiLU())
        self.head = nn.Linear(hidden, num_classes + value_dim)

    def forward(self, x: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """``x (N, *D)`` -> ``(logits (N, C) | None, values (N, K) in data units | None)``."""
        c, k = self.config["num_classes"], self.config["value_dim"]
        h = self.head(self.body((x.reshape(x.shape[0], -1).float() - self.x_mean) / self.x_std))
        logits = h[:, :c] if c else None
        values = h[:, c:] * self.v_std[:k] + self.v_mean[:k] if k else None
        return logits, values

    @torch.inference_mode()
    def predict(self, x: Tensor, batch_size: int = 4096) -> tuple[Tensor | None, Tensor | None]:
        """Batched, no gradients: ``(probabilities (N, C) | None, values (N, K) | None)`` on the CPU."""
        probs, vals = [], []
        device = self.x_mean.device
        for i in range(0, x.shape[0], batch_size):
            lg, v = self(x[i:i + batch_size].to(device))
            probs.append(None if lg is None else torch.softmax(lg, 1).cpu())
            vals.append(None if v is None else v.cpu())
        cat = lambda parts: None if not parts or parts[0] is None else torch.cat(parts)  # noqa: E731
        return cat(probs), cat(vals)


@dataclass(frozen=True)
class JudgeFit:
    """A trained judge and its held-out quality (accuracy for classes, R^2 per value column)."""

    model: ConditionPredictor
    holdout_accuracy: float | None
    holdout_r2: list[float] | None
    holdout_size: int


def fit_judge(x: Tensor, labels: Tensor | None, values: Tensor | None, steps: int, batch_size: int = 256,
              lr: float = 1e-3, hidden: int = 256, holdout: float = 0.1, seed: int = 0,
              show_progress: bool = True) -> JudgeFit:
    """Train a :class:`ConditionPredictor` on ``x (N, *D)`` with ``labels (N,)`` / ``values (N, K)``.

    A seeded ``holdout`` fraction (at least one sample when N >= 10) is kept out of training
    and measured; the returned model is in eval mode.
    """
    n = x.shape[0]
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=gen)
    n_hold = int(round(holdout * n)) if n >= 10 else 0
    hold, train = perm[:n_hold], perm[n_hold:]
    num_classes = 0 if labels is None else int(labels.max()) + 1
    value_dim = 0 if values is None else int(values.shape[1])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = ConditionPredictor(list(x.shape[1:]), num_classes, value_dim, hidden)
    flat = x.reshape(n, -1).float()
    net.x_mean.copy_(flat[train].mean(0))
    net.x_std.copy_(flat[train].std(0, unbiased=False).clamp_min(1e-3 * max(float(flat.std()), 1e-6)))
    if values is not None:
        net.v_mean.copy_(values[train].mean(0))
        net.v_std.copy_(values[train].std(0, unbiased=False).clamp_min(1e-6))
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps, eta_min=lr * 0.05)
    net.train()
    # dropout draws from torch's global generator: seed it here, and leave the caller's state alone
    with torch.random.fork_rng(devices=[]), progress_bar("training judge", total=steps, enabled=show_progress) as advance:
        torch.manual_seed(seed + 1)
        for _ in range(steps):
            idx = train[torch.randint(0, len(train), (min(batch_size, len(train)),), generator=gen)]
            logits, pred = net(x[idx])
            loss = torch.zeros(())
            if logits is not None:
                loss = loss + F.cross_entropy(logits, labels[idx])
            if pred is not None:
                loss = loss + (((pred - values[idx]) / net.v_std[:value_dim]) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            advance(1, loss=loss.item())
    net.eval().requires_grad_(False)
    acc = r2 = None
    if n_hold:
        probs, pred = net.predict(x[hold])
        if probs is not None:
            acc = float((probs.argmax(1) == labels[hold]).double().mean())
        if pred is not None:
            y = values[hold]
            ss_res = ((pred - y) ** 2).sum(0)
            ss_tot = ((y - y.mean(0)) ** 2).sum(0).clamp_min(1e-12)
            r2 = (1 - ss_res / ss_tot).tolist()
    return JudgeFit(net, acc, r2, n_hold)
