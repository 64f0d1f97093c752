"""Surrogate pre-screening: propose many children, decode them (cheap), send only the most promising.

:class:`PreScreen` wraps any :class:`~flowevo.evolve.operators.VariationStrategy`. For each row it
asks the wrapped strategy for ``factor`` times the children the Evolver wants, decodes all of them
under the row's target (decoding is cheap next to the black box), and ranks them by an
acquisition computed from

- the **cheap** objectives and constraints (``cheap=True``, e.g. a preservation distance, an edit
  budget, a validity check), called exactly on the decoded children: these calls are not
  black-box evaluations;
- an online **surrogate** (:class:`~flowevo.evolve.surrogate.RowGP`) of every other column,
  conditioned on the row's most recent scored points (a local window, ``capacity``; optionally pooled
  over rows of the same target, ``pool=True``).

The acquisition is the probability of feasibility times the expected improvement of the row's
best value (one objective), the expected hypervolume improvement of its feasible front (two
objectives) or the probability of not being dominated by it (more); while a row has nothing
feasible, the probability of feasibility alone. The ``per_row`` best children of each row are
returned, best first (a black box that scores a batch in order meets the most promising first),
with their decoded candidates (an inner strategy that hands its children over decoded, under their rows'
targets, is not decoded again), which the Evolver scores without decoding them again. Every
candidate the black box scores is an evaluation; screened-out children cost decoding and the
cheap calls only. Wall time spent here (decoding included) is in ``stats["screen_s"]`` and in the
run's wall time.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor

from flowevo.evolve.operators.strategy import SearchContext, VariationStrategy, bind_strategy
from flowevo.evolve.operators.transfer import condition_groups
from flowevo.evolve.population import Population
from flowevo.evolve.surrogate import RowArchive, RowGP, median_lengthscale

__all__ = ["PreScreen", "hypervolume_improvement_2d"]

Features = Callable[[Tensor, Tensor], Tensor]  # (residuals (N, *S), decoded (N, *D)) -> (N, d)


def flat_residuals(residuals: Tensor, decoded: Tensor) -> Tensor:
    """The default surrogate input: residuals flattened to ``(N, prod(S))``."""
    return residuals.reshape(residuals.shape[0], -1)


def hypervolume_improvement_2d(points: Tensor, front: Tensor, front_ok: Tensor, ref: Tensor) -> Tensor:
    """Exact 2-D hypervolume improvement (minimisation) of each point over its row's front.

    Args:
        points: ``(R, m, S, 2)`` candidate points (e.g. ``S`` samples each).
        front: ``(R, K, 2)`` each row's front; ``front_ok (R, K)`` marks real points.
        ref: ``(R, 2)`` reference point per row.

    Returns:
        ``(R, m, S)`` area added to the front's dominated region (0 for dominated points).
    """
    R, K = front.shape[:2]
    big = ref[:, None, :].expand(R, K, 2)
    f = torch.where(front_ok[..., None], torch.minimum(front, big), big)
    order = torch.argsort(f[..., 0], dim=1)
    f = torch.gather(f, 1, order[..., None].expand(R, K, 2))
    stair = torch.cummin(f[..., 1], dim=1).values  # for f1 in [x0_i, x1_i) the front covers f2 >= stair_i
    x0 = f[..., 0]
    x1 = torch.cat([x0[:, 1:], ref[:, :1]], dim=1)
    a = points[..., 0].clamp(max=ref[:, 0, None, None])
    b = points[..., 1].clamp(max=ref[:, 1, None, None])
    total = (ref[:, 0, None, None] - a) * (ref[:, 1, None, None] - b)
    lo = torch.maximum(x0[:, None, None, :], a[..., None])
    width = (x1[:, None, None, :] - lo).clamp_min(0)
    height = (ref[:, 1, None, None, None] - torch.maximum(stair[:, None, None, :], b[..., None])).clamp_min(0)
    return (total - (width * height).sum(-1)).clamp_min(0)


class PreScreen:
    """Wrap a strategy: ``factor`` times more children, decoded and ranked; the ``per_row`` best are sent.

    Args:
        inner: the strategy proposing children (default :class:`~flowevo.evolve.operators.Variation`).
        factor: children proposed per child sent (1: no screening, the inner strategy alone).
        surrogate: the model of the non-cheap columns (default :class:`~flowevo.evolve.surrogate.RowGP`);
            needs ``fit(x (R, n, d), y (R, n, T), valid (R, n), lengthscale=None)`` and
            ``predict(xs (R, m, d)) -> (mean, std)``, each ``(R, m, T)``.
        features: ``(residuals, decoded) -> (N, d)`` surrogate inputs (default: flat residuals).
        pool: fit the surrogate per group of rows with the same target condition on their pooled
            archives (assumes the non-cheap columns depend on the candidate alone, not its source;
            right for a black box scoring the decoded candidate with features that determine it).
        capacity: the surrogate's window: the most recent scored points per row it is conditioned on (the front
            keeps every point). A small window keeps the GP local, as TuRBO's: its median-heuristic lengthscale
            follows the search's current scale instead of the spread of early, far-apart points (32 since
            issue 15's sixth pass, 256 before; docs/benchmarks.md).
        pool_capacity: most recent pooled points per group.
        samples: Monte-Carlo samples of the expected hypervolume improvement (two or more objectives).
        seed: seed of those samples.

    Example::

        evolver = Evolver(codec, task, evaluator, population_size=4,
                          variation=PreScreen(Variation(cross_rate=0.3), factor=8))
    """

    def __init__(self, inner: VariationStrategy | None = None, factor: int = 8, surrogate: Any | None = None,
                 features: Features | None = None, pool: bool = False, capacity: int = 32, pool_capacity: int = 512,
                 samples: int = 32, seed: int = 0) -> None:
        from flowevo.evolve.operators.variation import Variation

        if factor < 1:
            raise ValueError(f"factor must be >= 1, got {factor}")
        if samples < 1 or capacity < 1 or pool_capacity < 1:
            raise ValueError("samples, capacity and pool_capacity must be >= 1")
        self.inner = inner if inner is not None else Variation()
        self.factor, self.surrogate = int(factor), surrogate if surrogate is not None else RowGP()
        self.features = features or flat_residuals
        self.pool, self.capacity, self.pool_capacity = bool(pool), int(capacity), int(pool_capacity)
        self.samples, self.seed = int(samples), int(seed)
        self.context: SearchContext | None = None
        self.archive: RowArchive | None = None
        self.sample_gen = torch.Generator().manual_seed(self.seed)
        self.stats = {"screen_s": 0.0, "screened": 0, "sent": 0}

    # -- binding ----------------------------------------------------------------------------------
    def bind(self, context: SearchContext) -> None:
        """Read the run (codec, rows, targets, objectives and constraints); start an empty archive."""
        from flowevo.objectives import is_cheap, sense_sign

        bind_strategy(self.inner, context)
        self.context = context
        self.rows = len(context.task)
        self.sign = sense_sign(context.objectives)
        self.m = len(self.sign)
        self.bounds = torch.tensor([float(c.bound) for c in context.constraints], dtype=torch.float64)
        self.cheap_columns = [(j, o, True) for j, o in enumerate(context.objectives) if is_cheap(o)]
        self.cheap_columns += [(self.m + j, c, False) for j, c in enumerate(context.constraints) if is_cheap(c)]
        self.groups = condition_groups(context.task.target_condition) if self.pool else None
        self.archive = RowArchive(self.rows, self.m, self.capacity)
        self.sample_gen = torch.Generator().manual_seed(self.seed)
        self.stats = {"screen_s": 0.0, "screened": 0, "sent": 0}

    def _need_context(self) -> SearchContext:
        if self.context is None:
            raise RuntimeError("PreScreen is not bound to a run: pass it to an Evolver (which calls bind) first")
        return self.context

    # -- strategy ---------------------------------------------------------------------------------
    def initial(self, residuals: Tensor, count: int, generator: torch.Generator) -> Tensor:
        """The inner strategy's generation-0 variants (nothing is scored yet to screen by)."""
        return self.inner.initial(residuals, count, generator)

    def observe(self, evaluated: Population) -> None:
        """Pass the scored batch on and add it to the rows' archives."""
        self.inner.observe(evaluated)
        if self.archive is None or evaluated.decoded is None:
            return
        x = self.features(evaluated.residuals, evaluated.decoded).double().cpu()
        self.archive.add(evaluated.row, x, self._outputs(evaluated.values, evaluated.constraint_values),
                         evaluated.feasible)

    def _outputs(self, values: Tensor, g: Tensor | None) -> Tensor:
        f = values.double().cpu() * self.sign
        g = torch.zeros(len(f), 0, dtype=torch.float64) if g is None else g.double().cpu()
        return torch.cat([f, g], dim=1)

    def offspring(self, population: Population, rows: int, per_row: int, generator: torch.Generator,
                  step: Tensor | None = None) -> Population:
        """``per_row`` screened children per row, in row blocks, best first, with ``decoded`` filled in."""
        ctx = self._need_context()
        if self.factor == 1 or self.archive is None or self.archive.empty:
            return self.inner.offspring(population, rows, per_row, generator, step)
        m = self.factor * per_row
        kids = self.inner.offspring(population, rows, m, generator, step)
        if len(kids) != rows * m:
            raise ValueError(f"the inner strategy made {len(kids)} children, expected {rows} rows x {m}")
        t0 = time.perf_counter()
        row = kids.row
        dev = ctx.codec.device
        target = ctx.task.target_condition.to(dev)[row.to(dev)]
        if kids.decoded is not None:  # the inner strategy decoded its children under their targets already
            decoded = kids.decoded.to(dev)
        else:
            with torch.inference_mode():
                decoded = ctx.codec.decode(kids.residuals.to(dev), target)
        mean, std = self._predict(kids.residuals, decoded, row, target, rows, m)
        acq = self._acquisition(mean, std)  # (rows, m)
        best = torch.argsort(-acq, dim=1, stable=True)[:, :per_row]
        keep = (torch.arange(rows)[:, None] * m + best).flatten()
        out = replace(kids.take(keep.to(kids.row.device)), decoded=decoded[keep.to(decoded.device)])
        self.stats["screen_s"] += time.perf_counter() - t0
        self.stats["screened"] += rows * m
        self.stats["sent"] += rows * per_row
        return out

    # -- surrogate --------------------------------------------------------------------------------
    def _cheap(self, residuals: Tensor, decoded: Tensor, row: Tensor, target) -> tuple[Tensor, Tensor]:
        """Exact cheap columns ``(N, M + C)`` (NaN elsewhere) and which columns they are ``(M + C,)``."""
        from flowevo.objectives import Candidates, evaluate_callable

        ctx = self.context
        T = self.m + len(self.bounds)
        known = torch.zeros(T, dtype=torch.bool)
        out = torch.full((len(decoded), T), math.nan, dtype=torch.float64)
        if not self.cheap_columns:
            return out, known
        dev = decoded.device
        extra = ctx.payload(decoded) if ctx.payload is not None else {}
        cands = Candidates(x=decoded, source_index=row.to(dev), sources=ctx.task.sources.to(dev)[row.to(dev)],
                           target=target, extra=extra)
        for j, fn, objective in self.cheap_columns:
            v = evaluate_callable(fn, fn.name, cands, [])
            if objective:
                v = torch.nan_to_num(v * self.sign[j], nan=math.inf)  # a failed cheap objective: as bad as it gets
            else:
                v = torch.nan_to_num(v, nan=math.inf)  # a failed cheap constraint: violated
            out[:, j], known[j] = v, True
        return out, known

    def _predict(self, residuals: Tensor, decoded: Tensor, row: Tensor, target, rows: int, m: int
                 ) -> tuple[Tensor, Tensor]:
        """Mean and std ``(rows, m, M + C)`` of every column: exact (std 0) where cheap, else the surrogate's."""
        exact, known = self._cheap(residuals, decoded, row, target)
        T = len(known)
        mean = exact.reshape(rows, m, T).clone()
        std = torch.zeros(rows, m, T, dtype=torch.float64)
        todo = ~known
        if todo.any():
            xs = self.features(residuals, decoded).double().cpu().reshape(rows, m, -1)
            X, Y, valid = self.archive.padded()
            Y = Y[..., todo]
            valid = valid & torch.isfinite(Y).all(-1)
            if self.pool:
                pm, ps = self._pooled(X, Y, valid, xs)
            else:
                self.surrogate.fit(X, Y, valid)
                pm, ps = self.surrogate.predict(xs)
            mean[..., todo], std[..., todo] = pm, ps
        return mean, std

    def _pooled(self, X: Tensor, Y: Tensor, valid: Tensor, xs: Tensor) -> tuple[Tensor, Tensor]:
        """One surrogate per group on its rows' pooled points (most recent first kept), lengthscale from within rows."""
        ids, inverse = torch.unique(self.groups, return_inverse=True)
        R, n, d = X.shape
        G, m, T = len(ids), xs.shape[1], Y.shape[-1]
        size = torch.bincount(inverse, minlength=G)
        P = min(int(size.max()) * n, self.pool_capacity)
        within = median_lengthscale(X, valid)  # (R,) each row's own spread
        gx = torch.zeros(G, P, d, dtype=torch.float64)
        gy = torch.full((G, P, T), math.nan, dtype=torch.float64)
        ok = torch.zeros(G, P, dtype=torch.bool)
        ls = torch.ones(G, dtype=torch.float64)
        q = torch.zeros(G, int(size.max()) * m, d, dtype=torch.float64)
        members = []
        for g in range(G):
            mine = torch.nonzero(inverse == g).flatten()
            members.append(mine)
            keep = valid[mine].transpose(0, 1).reshape(-1)  # time-major: most recent last
            px = X[mine].transpose(0, 1).reshape(-1, d)[keep][-P:]
            py = Y[mine].transpose(0, 1).reshape(-1, T)[keep][-P:]
            gx[g, : len(px)], gy[g, : len(py)], ok[g, : len(px)] = px, py, True
            ls[g] = within[mine].median()
            q[g, : len(mine) * m] = xs[mine].reshape(-1, d)
        self.surrogate.fit(gx, gy, ok, lengthscale=ls)
        gm, gs = self.surrogate.predict(q)
        mean = torch.empty(R, m, T, dtype=torch.float64)
        std = torch.empty_like(mean)
        for g, mine in enumerate(members):
            mean[mine] = gm[g, : len(mine) * m].reshape(len(mine), m, T)
            std[mine] = gs[g, : len(mine) * m].reshape(len(mine), m, T)
        return mean, std

    def _acquisition(self, mean: Tensor, std: Tensor) -> Tensor:
        """``(R, m)``: P(feasible) x improvement (see the module doc); larger is better."""
        M = self.m
        zero = torch.tensor(0.0, dtype=torch.float64)
        normal = torch.distributions.Normal(zero, torch.ones_like(zero))
        if len(self.bounds):
            gm, gs = mean[..., M:], std[..., M:]
            exact = (gm <= self.bounds).double()
            pred = normal.cdf((self.bounds - gm) / gs.clamp_min(1e-12))
            pf = torch.where(gs > 0, pred, exact).prod(-1)
            shortfall = (gm - self.bounds).clamp_min(0).sum(-1)  # tie-break while nothing is likely feasible
        else:
            pf = torch.ones(mean.shape[:2], dtype=torch.float64)
            shortfall = torch.zeros(mean.shape[:2], dtype=torch.float64)
        front, ok = self.archive.padded_front()
        any_feasible = ok.any(1)
        f_mean, f_std = mean[..., :M], std[..., :M].clamp_min(0)
        f_mean = torch.nan_to_num(f_mean, nan=math.inf, posinf=1e300)
        if M == 1:
            best = torch.where(ok, front[..., 0], torch.full_like(front[..., 0], math.inf)).min(1).values
            s = f_std[..., 0]
            gap = best[:, None] - f_mean[..., 0]
            u = gap / s.clamp_min(1e-12)
            ei = torch.where(s > 0, s * (u * normal.cdf(u) + normal.log_prob(u).exp()), gap.clamp_min(0))
            improvement = torch.where(torch.isfinite(best)[:, None], ei, torch.zeros_like(ei))
        else:
            eps = torch.randn((*mean.shape[:2], self.samples, M), generator=self.sample_gen, dtype=torch.float64)
            pts = f_mean[..., None, :] + f_std[..., None, :] * eps
            if M == 2:
                improvement = hypervolume_improvement_2d(pts, front, ok, self._reference(front, ok)).mean(-1)
            else:
                dom = ((front[:, None, None] <= pts[:, :, :, None]).all(-1) & ok[:, None, None]).any(-1)
                improvement = (~dom).double().mean(-1)
        score = torch.where(any_feasible[:, None], pf * improvement + 1e-9 * pf, pf)
        return score - 1e-12 * shortfall

    def _reference(self, front: Tensor, ok: Tensor) -> Tensor:
        """``(R, 2)`` per-row reference: the worst finite value each row has had scored (plus 10% of the range)."""
        _, Y, valid = self.archive.padded()
        F = Y[..., :2]
        good = valid[..., None] & torch.isfinite(F)
        hi = torch.where(good, F, torch.full_like(F, -math.inf)).max(1).values
        lo = torch.where(good, F, torch.full_like(F, math.inf)).min(1).values
        span = torch.where(torch.isfinite(hi - lo), hi - lo, torch.ones_like(hi)).clamp_min(1e-6)
        return torch.where(torch.isfinite(hi), hi + 0.1 * span, torch.zeros_like(hi))

    # -- checkpoints ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The inner strategy's state, the archive, the sampler state and the counters."""
        archive = None if self.archive is None else self.archive.state_dict()
        return {"inner": self.inner.state_dict(), "archive": archive,
                "sample_gen": self.sample_gen.get_state(), "stats": dict(self.stats)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (after ``bind``)."""
        self.inner.load_state_dict(state["inner"])
        if state.get("archive") is not None:
            self._need_context()
            self.archive.load_state_dict(state["archive"])
        self.sample_gen.set_state(state["sample_gen"])
        self.stats = dict(state.get("stats", self.stats))
