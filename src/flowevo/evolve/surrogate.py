"""Online surrogates for pre-screening: what each task row has had scored, and a batched GP on it.

:class:`RowArchive` keeps, per task row, the surrogate inputs (features ``(n, d)``) and outputs
(``(n, T)``: objectives in minimisation form, then raw constraint values) of every candidate the
black box scored for that row (the most recent ``capacity``), and each row's feasible
non-dominated front of *all* its scored points.

:class:`RowGP` is exact Gaussian-process regression with fixed hyperparameters, one independent
GP per row and output, batched over rows: an RBF kernel whose lengthscale is the median pairwise
distance of the row's points (times ``lengthscale_factor``), outputs standardised per row.
Conditioning costs one ``(n, n)`` Cholesky per row. Hyperparameters are not fitted: on this
project's 2 CPU cores a batched marginal-likelihood fit over 100 rows took minutes, and the
median heuristic was enough on the development splits (docs/benchmarks.md, "Query efficiency").

Rows whose black box is the same function of the features (e.g. rows sharing a target class,
when the black box scores the decoded candidate alone) can pool their archives: :meth:`RowGP.fit`
then receives the pooled points per group and the lengthscale measured *within* rows (pooled
points of different sources lie far apart; their median distance would over-smooth each row).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from flowevo.evolve.survival import non_dominated

__all__ = ["RowArchive", "RowGP", "median_lengthscale"]


def median_lengthscale(x: Tensor, valid: Tensor) -> Tensor:
    """``x (R, n, d)``, ``valid (R, n)`` bool -> ``(R,)`` median pairwise distance of each row's valid points
    (1.0 for a row with fewer than two)."""
    d = torch.cdist(x, x)
    pair = valid[:, :, None] & valid[:, None, :] & ~torch.eye(x.shape[1], dtype=torch.bool, device=x.device)[None]
    d = torch.where(pair, d, torch.full_like(d, math.nan))
    med = torch.nanmedian(d.flatten(1), dim=1).values
    return torch.nan_to_num(med, nan=1.0).clamp_min(1e-3)


class RowGP:
    """Batched exact GP regression with fixed hyperparameters, one GP per row and output column.

    Args:
        noise: observation noise variance relative to the (standardised) signal variance.
        lengthscale_factor: multiplies the median-heuristic lengthscale.

    Example:
        >>> gp = RowGP()
        >>> x = torch.randn(3, 10, 2, dtype=torch.float64)
        >>> gp.fit(x, x.sum(-1, keepdim=True), torch.ones(3, 10, dtype=torch.bool))
        >>> mean, std = gp.predict(x[:, :4])
        >>> mean.shape, bool((std < 0.3).all())
        (torch.Size([3, 4, 1]), True)
    """

    def __init__(self, noise: float = 1e-2, lengthscale_factor: float = 1.0) -> None:
        if noise <= 0 or lengthscale_factor <= 0:
            raise ValueError(f"noise and lengthscale_factor must be > 0, got {noise} and {lengthscale_factor}")
        self.noise, self.factor = float(noise), float(lengthscale_factor)
        self.x: Tensor | None = None
        self.alpha = self.chol = self.ls = self.mu = self.sd = None

    def fit(self, x: Tensor, y: Tensor, valid: Tensor, lengthscale: Tensor | None = None) -> None:
        """Condition on ``x (R, n, d)``, ``y (R, n, T)`` where ``valid (R, n)`` (other points carry no
        information); ``lengthscale (R,)`` overrides the median heuristic."""
        x, y = x.double(), y.double()
        v = valid[..., None] & torch.isfinite(y)
        cnt = v.sum(1).clamp_min(1)
        mu = torch.where(v, y, 0.0).sum(1) / cnt
        var = torch.where(v, (y - mu[:, None]) ** 2, 0.0).sum(1) / cnt
        sd = torch.where(var > 0, var.sqrt().clamp_min(1e-9), torch.ones_like(var))
        z = torch.where(v, (y - mu[:, None]) / sd[:, None], 0.0)
        ls = median_lengthscale(x, valid) if lengthscale is None else lengthscale.double()
        self.ls = ls * self.factor
        n = x.shape[1]
        eye = torch.eye(n, dtype=x.dtype, device=x.device)
        jitter = torch.where(valid, self.noise, 1e6).double()  # invalid points: huge noise
        self.chol = torch.linalg.cholesky(self._kernel(x, x) + eye * jitter[:, :, None] + 1e-8 * eye)
        self.alpha = torch.cholesky_solve(z, self.chol)
        self.x, self.mu, self.sd = x, mu, sd

    def _kernel(self, a: Tensor, b: Tensor) -> Tensor:
        return torch.exp(-0.5 * torch.cdist(a, b) ** 2 / self.ls[:, None, None] ** 2)

    def predict(self, xs: Tensor) -> tuple[Tensor, Tensor]:
        """``xs (R, m, d)`` -> mean and standard deviation ``(R, m, T)`` in the outputs' units."""
        if self.x is None:
            raise RuntimeError("RowGP.predict before fit")
        ks = self._kernel(xs.double(), self.x)
        mean = ks @ self.alpha
        v = torch.cholesky_solve(ks.transpose(1, 2), self.chol)
        var = (1.0 - (ks * v.transpose(1, 2)).sum(-1)).clamp_min(1e-9)
        return mean * self.sd[:, None] + self.mu[:, None], var.sqrt()[..., None] * self.sd[:, None]


class RowArchive:
    """Per row: the most recent ``capacity`` scored points (features, outputs) and the feasible front of all.

    Args:
        rows: number of task rows.
        objectives: M, the leading output columns (minimisation form) that make up the front.
        capacity: most recent points per row kept for the surrogate.
    """

    def __init__(self, rows: int, objectives: int, capacity: int = 256) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.rows, self.m, self.capacity = rows, objectives, capacity
        self.x: list[Tensor | None] = [None] * rows
        self.y: list[Tensor | None] = [None] * rows
        self.front: list[Tensor] = [torch.zeros(0, objectives, dtype=torch.float64) for _ in range(rows)]

    @property
    def empty(self) -> bool:
        """Nothing scored yet."""
        return all(t is None for t in self.x)

    def add(self, row: Tensor, x: Tensor, y: Tensor, feasible: Tensor) -> None:
        """Fold in scored points: ``row (N,)``, ``x (N, d)``, ``y (N, T)``, ``feasible (N,)`` bool."""
        row, x, y, feasible = row.cpu().long(), x.detach().double().cpu(), y.detach().double().cpu(), feasible.cpu()
        for b in torch.unique(row).tolist():
            mine = row == b
            xb, yb = x[mine], y[mine]
            self.x[b] = xb if self.x[b] is None else torch.cat([self.x[b], xb])[-self.capacity:]
            self.y[b] = yb if self.y[b] is None else torch.cat([self.y[b], yb])[-self.capacity:]
            f = yb[feasible[mine], : self.m]
            f = f[torch.isfinite(f).all(1)]
            if len(f):
                pool = torch.cat([self.front[b], f])
                self.front[b] = pool[non_dominated(pool)] if self.m > 1 else pool[pool[:, 0].argmin()][None]

    def padded(self, rows: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """``(x (R, n, d), y (R, n, T), valid (R, n))`` of ``rows`` (default all), zero-padded to the longest."""
        idx = range(self.rows) if rows is None else rows.tolist()
        xs, ys = [self.x[b] for b in idx], [self.y[b] for b in idx]
        ref = next(t for t in xs if t is not None)
        n = max(len(t) for t in xs if t is not None)
        R, d, T = len(xs), ref.shape[1], next(t for t in ys if t is not None).shape[1]
        X = torch.zeros(R, n, d, dtype=torch.float64)
        Y = torch.full((R, n, T), math.nan, dtype=torch.float64)
        valid = torch.zeros(R, n, dtype=torch.bool)
        for i, (xb, yb) in enumerate(zip(xs, ys)):
            if xb is not None:
                X[i, : len(xb)], Y[i, : len(yb)], valid[i, : len(xb)] = xb, yb, True
        return X, Y, valid

    def padded_front(self) -> tuple[Tensor, Tensor]:
        """``(front (R, K, M), ok (R, K))``: each row's feasible non-dominated points, padded with +inf."""
        k = max(1, max(len(f) for f in self.front))
        F = torch.full((self.rows, k, self.m), math.inf, dtype=torch.float64)
        ok = torch.zeros(self.rows, k, dtype=torch.bool)
        for b, f in enumerate(self.front):
            F[b, : len(f)], ok[b, : len(f)] = f, True
        return F, ok

    def state_dict(self) -> dict[str, Any]:
        """Plain lists of tensors (checkpointed with the run)."""
        return {"x": list(self.x), "y": list(self.y), "front": list(self.front), "capacity": self.capacity}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (same number of rows)."""
        if len(state["x"]) != self.rows:
            raise ValueError(f"archive of {len(state['x'])} rows, this run has {self.rows}")
        self.x, self.y, self.front = list(state["x"]), list(state["y"]), list(state["front"])
        self.capacity = int(state["capacity"])
