"""Bayesian optimisation in residual space (botorch): a TuRBO-style trust-region GP per source.

Every source (task row) has its own Gaussian process (botorch ``SingleTaskGP``, float64, inputs
in the unit cube of the box ``start +- radius * scale`` around the row's own residual, outputs
standardised per row) over the objectives and the constraints' excess ``g - bound``. The GPs of a
chunk of rows are one batched model, so one fit and one posterior call serve them all, and every
step decodes all rows' candidates in one codec call (:func:`~flowevo.baselines.budgeted.run_budgeted`).

Each step, per row (TuRBO, :mod:`~flowevo.baselines.trust_region`): candidates in a trust region
around the incumbent, ``batch`` picked by **Thompson sampling** (joint posterior samples over the
candidate set, no gradient-based acquisition optimisation), constraints as in SCBO (a sample's
pick is the best among candidates its constraint samples call feasible, else the least violating);
the region grows after successes and shrinks after failures.

- One objective (or ``acquisition="ts"``): the first objective (the rule CMA-ES uses).
- Several objectives: ``"parego"`` (default): each pick maximises its own random augmented-Chebyshev
  scalarisation (botorch's ``get_chebyshev_scalarization``, weights from ``sample_simplex``) of a
  Thompson sample: qNParEGO's scalarisations with Thompson sampling in place of qNEI;
  ``"qnehvi"``: botorch's ``qLogNoisyExpectedHypervolumeImprovement`` on the candidate set
  (``optimize_acqf_discrete``, sequential greedy), one row at a time: much slower.

Cost controls: at most ``window`` points per row (the incumbent and the most recent), hyperparameters
refitted every ``refit_every`` steps by ``fit_steps`` Adam steps (between refits the GP is only
re-conditioned on the new data), ``candidates`` per row and step. botorch is an optional
dependency (``pip install flowevo[bo]``), imported when ``bo_search`` runs.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from flowevo.baselines.budgeted import Payload, run_budgeted
from flowevo.baselines.per_source import constraint_bounds, start_genomes
from flowevo.baselines.space import SearchSpace
from flowevo.baselines.trust_region import TrustRegions, trust_region_candidates
from flowevo.evolve.result import EditResult
from flowevo.evolve.task import EditTask
from flowevo.flow.codec import Codec
from flowevo.objectives import Evaluation, Evaluator, sense_sign

__all__ = ["ACQUISITIONS", "bo_search", "require_botorch"]

ACQUISITIONS = ("auto", "ts", "parego", "qnehvi")


def require_botorch() -> None:
    """Import botorch or raise a clear error naming the extra to install."""
    try:
        import botorch  # noqa: F401
        import gpytorch  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("bo_search needs botorch and gpytorch: pip install 'flowevo[bo]' "
                          f"(or pip install botorch), then run again ({exc})") from exc


@dataclass
class _Data:
    """Everything scored so far: ``u (B, n, d)`` unit-cube points, ``f (B, n, M)`` objectives in
    minimisation form, ``g (B, n, C)`` constraint excess (NaN where failed), ``v (B, n)`` violation."""

    u: Tensor
    f: Tensor
    g: Tensor
    v: Tensor

    def add(self, u: Tensor, f: Tensor, g: Tensor, v: Tensor) -> None:
        self.u, self.f = torch.cat([self.u, u], 1), torch.cat([self.f, f], 1)
        self.g, self.v = torch.cat([self.g, g], 1), torch.cat([self.v, v], 1)


def _incumbent(f: Tensor, v: Tensor) -> Tensor:
    """``(B,)`` index of each row's best point: feasible by the first objective, else least violation."""
    feasible = v == 0
    key = torch.where(feasible, torch.nan_to_num(f[..., 0], nan=math.inf), torch.full_like(v, math.inf))
    best_f = key.argmin(dim=1)
    least_v = torch.nan_to_num(v, nan=math.inf).argmin(dim=1)
    return torch.where(feasible.any(dim=1), best_f, least_v)


def _clean(y: Tensor, worst_high: bool) -> Tensor:
    """Failed (non-finite) entries of ``y (B, n, k)`` -> the row's worst finite value of that column (0 if none);
    worst is the highest when ``worst_high``."""
    finite = torch.isfinite(y)
    fill = torch.where(finite, y, torch.full_like(y, -math.inf if worst_high else math.inf))
    worst = fill.amax(dim=1, keepdim=True) if worst_high else fill.amin(dim=1, keepdim=True)
    worst = torch.where(torch.isfinite(worst), worst, torch.zeros_like(worst))
    return torch.where(finite, y, worst.expand_as(y))


def _dominated(new: Tensor, old: Tensor) -> Tensor:
    """``new (k, M)`` each dominated by some point of ``old (j, M)`` (minimisation)? ``(k,)`` bool."""
    if len(old) == 0:
        return torch.zeros(len(new), dtype=torch.bool)
    le = (old[None] <= new[:, None]).all(-1)
    lt = (old[None] < new[:, None]).any(-1)
    return (le & lt).any(-1)


class _Chunk:
    """The batched GP of a chunk of rows and its hyperparameters (kept between refits)."""

    def __init__(self) -> None:
        self.state: dict[str, Tensor] | None = None
        self.model: Any = None

    def build(self, x: Tensor, y: Tensor, refit: bool, fit_steps: int) -> Any:
        from botorch.exceptions.warnings import InputDataWarning, OptimizationWarning
        from botorch.fit import fit_gpytorch_mll
        from botorch.models import SingleTaskGP
        from botorch.optim.fit import fit_gpytorch_mll_torch
        from gpytorch.mlls import ExactMarginalLogLikelihood

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InputDataWarning)
            warnings.simplefilter("ignore", OptimizationWarning)
            model = SingleTaskGP(x, y)
            if self.state is not None:
                model.load_state_dict(self.state, strict=False)
            if refit or self.state is None:
                mll = ExactMarginalLogLikelihood(model.likelihood, model)
                fit_gpytorch_mll(mll, optimizer=fit_gpytorch_mll_torch, optimizer_kwargs={"step_limit": fit_steps})
                self.state = {k: v.detach().clone() for k, v in model.state_dict().items() if "train" not in k}
        model.eval()
        self.model = model
        return model


def _row_model(chunk_model: Any, i: int, x: Tensor, y: Tensor) -> Any:
    """Row ``i`` of a batched GP as its own ``SingleTaskGP`` on ``x (n, d)``, ``y (n, o)`` (same hyperparameters)."""
    from botorch.models import SingleTaskGP

    model = SingleTaskGP(x, y)
    own = model.state_dict()
    state = {k: (v[i] if v.dim() and v.shape[1:] == own[k].shape else v)
             for k, v in chunk_model.state_dict().items() if k in own}
    model.load_state_dict({k: v for k, v in state.items() if v.shape == own[k].shape}, strict=False)
    return model.eval()


def bo_search(codec: Codec, task: EditTask, evaluator: Evaluator, budget_per_row: int, batch: int = 4, seed: int = 0,
              payload: Payload | None = None, space: SearchSpace | None = None, *, radius: float = 3.0,
              init_steps: int = 2, length_init: float = 0.8, length_min: float = 0.5**7, length_max: float = 1.6,
              candidates: int = 256, window: int = 64, refit_every: int = 4, fit_steps: int = 50,
              acquisition: str = "auto", ref_point: Sequence[float] | None = None, row_chunk: int = 50,
              qnehvi_samples: int = 64) -> EditResult:
    """TuRBO-style Bayesian optimisation per row (see the module doc), all rows decoded together.

    Args:
        codec, task, evaluator: the shared codec, edit task and black box. To run BO on a subset of the
            sources, give it the sub-task: every row it is given is edited.
        budget_per_row: black-box evaluations per row (``budget_per_row // batch`` steps).
        batch: candidates per row and step (``q``).
        seed: the run's seed (same seed, same result).
        payload: the domain's ``payload`` hook.
        space: which genome coordinates to search (default: all).
        radius: the box ``start +- radius * scale`` that is the GP's unit cube.
        init_steps: steps of the initial design: the start point, then scrambled Sobol points in the initial
            trust region around it.
        length_init, length_min, length_max: trust-region sides in the unit cube (TuRBO's 0.8, 2^-7, 1.6).
        candidates: candidates per row and step (Thompson sampling / acquisition set).
        window: at most this many points per row in its GP (the incumbent and the most recent).
        refit_every: refit the hyperparameters every this many model steps (and at the first).
        fit_steps: Adam steps per refit (botorch's ``fit_gpytorch_mll_torch``).
        acquisition: ``"auto"`` (``"ts"`` for one objective, else ``"parego"``), ``"ts"``, ``"parego"`` or ``"qnehvi"``.
        ref_point: the hypervolume reference point for ``"qnehvi"``, in the objectives' own units and senses
            (default: botorch's ``infer_reference_point`` per row).
        row_chunk: rows per batched GP (bounds memory: ``row_chunk * outputs * candidates^2`` floats).
        qnehvi_samples: quasi-Monte-Carlo samples of qLogNEHVI.

    Returns:
        an :class:`~flowevo.evolve.EditResult` (``"bo"``); ``info`` holds the settings and the seconds spent
        fitting GPs and choosing candidates (``fit_s``, ``acquisition_s``).
    """
    require_botorch()
    if acquisition not in ACQUISITIONS:
        raise ValueError(f"unknown acquisition {acquisition!r}; use one of {list(ACQUISITIONS)}")
    if batch < 1 or init_steps < 1 or candidates < batch or window < 2 or refit_every < 1 or row_chunk < 1:
        raise ValueError("bo_search needs batch >= 1, init_steps >= 1, candidates >= batch, window >= 2, "
                         "refit_every >= 1 and row_chunk >= 1")
    if radius <= 0:
        raise ValueError(f"bo_search: radius must be > 0, got {radius}")
    sign = sense_sign(evaluator.objectives)
    m_all = len(sign)
    mode = ("ts" if m_all == 1 else "parego") if acquisition == "auto" else acquisition
    if mode in ("parego", "qnehvi") and m_all < 2:
        raise ValueError(f"acquisition {mode!r} needs at least two objectives; this evaluator has {m_all}")
    m = 1 if mode == "ts" else m_all
    if ref_point is not None and len(ref_point) != m:
        raise ValueError(f"ref_point has {len(ref_point)} values for {m} objectives")
    bounds = constraint_bounds(evaluator)
    space = space or SearchSpace()
    r0 = start_genomes(codec, task)
    size = int(np.prod(r0.shape[1:]))
    y0, scale = space.vectors(r0), space.scales(size)
    rows, d = y0.shape
    lo, width = y0 - radius * scale, 2 * radius * scale
    base = r0.repeat_interleave(batch, dim=0)
    gen = torch.Generator().manual_seed(seed)
    regions = TrustRegions(rows, d, batch, length_init, length_min, length_max)
    init = _initial_design(rows, d, batch * init_steps, length_init, gen)  # (B, init, d)
    data = _Data(torch.zeros(rows, 0, d, dtype=torch.float64), torch.zeros(rows, 0, m_all, dtype=torch.float64),
                 torch.zeros(rows, 0, len(bounds), dtype=torch.float64), torch.zeros(rows, 0, dtype=torch.float64))
    chunks = [_Chunk() for _ in range(0, rows, row_chunk)]
    clock = {"fit_s": 0.0, "acquisition_s": 0.0, "model_steps": 0}
    proposed: list[Tensor] = []
    ref = None if ref_point is None else -sign[:m] * torch.as_tensor(ref_point, dtype=torch.float64)  # max form

    def propose(step: int) -> Tensor:
        if step < init_steps:
            u = init[:, step * batch:(step + 1) * batch]
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed * 1_000_003 + step)
                u = _model_step(step - init_steps)
        proposed[:] = [u]
        y = lo[:, None] + width * u  # (B, q, d)
        return space.genomes(y.reshape(rows * batch, d).float(), base)

    def _model_step(k: int) -> Tensor:
        refit = k % refit_every == 0
        clock["model_steps"] += 1
        idx = _window(data, window)
        x = torch.gather(data.u, 1, idx[..., None].expand(-1, -1, d))
        f = torch.gather(data.f[..., :m], 1, idx[..., None].expand(-1, -1, m))
        g = torch.gather(data.g, 1, idx[..., None].expand(-1, -1, data.g.shape[2]))
        y = torch.cat([_clean(-f, worst_high=False), _clean(g, worst_high=True)], dim=2)  # objectives to maximise
        mu, sd = y.mean(dim=1, keepdim=True), y.std(dim=1, keepdim=True)
        sd = torch.where(sd > 1e-9, sd, torch.ones_like(sd))
        ys = (y - mu) / sd
        thr = ((0.0 - mu) / sd)[:, 0, m:]  # (B, C): feasible when the standardised excess <= thr
        centre_idx = _centres(data, m, gen)
        centre = torch.gather(data.u, 1, centre_idx[:, None, None].expand(-1, 1, d))[:, 0]
        out = torch.empty(rows, batch, d, dtype=torch.float64)
        for c, chunk in enumerate(chunks):
            sl = slice(c * row_chunk, min(rows, (c + 1) * row_chunk))
            t0 = time.perf_counter()
            model = chunk.build(x[sl], ys[sl], refit, fit_steps)
            t1 = time.perf_counter()
            clock["fit_s"] += t1 - t0
            ls = model.covar_module.lengthscale.detach().reshape(sl.stop - sl.start, -1, d)[:, 0]
            weights = ls / ls.log().mean(dim=1, keepdim=True).exp()
            cand = trust_region_candidates(centre[sl], regions.length[sl], weights, candidates, gen)
            if mode == "qnehvi":
                out[sl] = _qnehvi(model, x[sl], ys[sl], cand, thr[sl], m, batch, ref, mu[sl, 0, :m], sd[sl, 0, :m],
                                  qnehvi_samples, seed + k)
            else:
                out[sl] = _thompson(model, cand, ys[sl], thr[sl], m, batch, mode, gen)
            clock["acquisition_s"] += time.perf_counter() - t1
        return out

    def observe(genomes: Tensor, ev: Evaluation) -> None:
        f = (ev.values.double().cpu() * sign).reshape(rows, batch, m_all)
        g = (ev.constraint_values.double().cpu() - bounds).reshape(rows, batch, len(bounds))
        v = ev.violation.double().cpu().reshape(rows, batch)
        f = torch.where(torch.isfinite(f), f, torch.full_like(f, math.nan))
        improved = _improved(data, f[..., :m], v) if data.u.shape[1] else torch.zeros(rows, dtype=torch.bool)
        data.add(proposed[0], f, g, v)
        if data.u.shape[1] > batch * init_steps:  # the trust regions adapt once the model proposes
            regions.update(improved)

    result = run_budgeted("bo", propose, observe, codec, task, evaluator, budget_per_row, batch, payload)
    result.info.update({
        "acquisition": mode, "batch": batch, "radius": radius, "init_steps": init_steps, "length_init": length_init,
        "candidates": candidates, "window": window, "refit_every": refit_every, "fit_steps": fit_steps,
        "row_chunk": row_chunk, "space": space.describe(size), "restarts": regions.restarts.tolist(), **clock,
    })
    return result


def _initial_design(rows: int, d: int, count: int, length: float, gen: torch.Generator) -> Tensor:
    """``(rows, count, d)``: the start point (the cube's centre) then scrambled Sobol points of the initial region."""
    out = torch.full((rows, count, d), 0.5, dtype=torch.float64)
    if count > 1:
        seeds = torch.randint(0, 2**31 - 1, (rows,), generator=gen).tolist()
        sob = torch.stack([torch.quasirandom.SobolEngine(d, scramble=True, seed=s).draw(count - 1, dtype=torch.float64)
                           for s in seeds])
        out[:, 1:] = 0.5 + length * (sob - 0.5)
    return out.clamp(0.0, 1.0)


def _window(data: _Data, window: int) -> Tensor:
    """``(B, n)`` indices of each row's GP data: every point, or the incumbent and the ``window - 1`` most recent."""
    b, n = data.v.shape
    if n <= window:
        return torch.arange(n).expand(b, n)
    best = _incumbent(data.f, data.v)
    recent = torch.arange(n - window + 1, n).expand(b, -1)
    keep_best = best < n - window + 1
    first = torch.where(keep_best, best, torch.full_like(best, n - window))
    return torch.cat([first[:, None], recent], dim=1)


def _centres(data: _Data, m: int, gen: torch.Generator) -> Tensor:
    """``(B,)`` each row's trust-region centre: the incumbent (one objective) or, for several, the best feasible point
    under a random augmented-Chebyshev scalarisation (least violation when none is feasible)."""
    if m == 1:
        return _incumbent(data.f, data.v)
    from botorch.utils.multi_objective.scalarization import get_chebyshev_scalarization
    from botorch.utils.sampling import sample_simplex

    out = _incumbent(data.f, data.v)
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
    w = sample_simplex(m, len(out), seed=seed, dtype=torch.float64)
    for b in range(len(out)):
        feasible = data.v[b] == 0
        if not feasible.any():
            continue
        y = -_clean(data.f[b:b + 1, :, :m], worst_high=True)[0]  # maximise
        score = get_chebyshev_scalarization(w[b], y[feasible])(y)
        out[b] = torch.where(feasible, score, torch.full_like(score, -math.inf)).argmax()
    return out


def _improved(data: _Data, f: Tensor, v: Tensor) -> Tensor:
    """``(B,)`` did the new batch (``f (B, q, m)``, ``v (B, q)``) improve each row (TuRBO's success)? One objective:
    a better incumbent (by 1e-3 of its magnitude) or less violation; several: a new feasible point not dominated
    by the earlier feasible ones."""
    old_f, old_v = data.f[..., : f.shape[2]], data.v
    if f.shape[2] == 1:
        i = _incumbent(old_f, old_v)
        best_f = old_f[torch.arange(len(i)), i, 0]
        best_v = old_v[torch.arange(len(i)), i]
        new_v = torch.nan_to_num(v, nan=math.inf).min(dim=1).values
        feasible_f = torch.where(v == 0, torch.nan_to_num(f[..., 0], nan=math.inf), torch.full_like(v, math.inf))
        new_f = feasible_f.min(dim=1).values
        better_f = (best_v == 0) & (new_f < best_f - 1e-3 * best_f.abs())
        reached = (best_v > 0) & ((new_v < best_v) | (new_f < math.inf))
        return better_f | reached
    out = torch.zeros(len(f), dtype=torch.bool)
    for b in range(len(f)):
        new = f[b][(v[b] == 0) & torch.isfinite(f[b]).all(-1)]
        if len(new):
            old = old_f[b][(old_v[b] == 0) & torch.isfinite(old_f[b]).all(-1)]
            out[b] = bool((~_dominated(new, old)).any())
    return out


def _thompson(model: Any, cand: Tensor, ys: Tensor, thr: Tensor, m: int, q: int, mode: str,
              gen: torch.Generator) -> Tensor:
    """``q`` picks per row ``(B, q, d)`` by Thompson sampling over ``cand (B, k, d)`` (SCBO rule for constraints;
    ``parego``: each pick its own random Chebyshev scalarisation)."""
    from botorch.utils.multi_objective.scalarization import get_chebyshev_scalarization
    from botorch.utils.sampling import sample_simplex

    b, k, d = cand.shape
    with torch.no_grad():
        samples = model.posterior(cand).rsample(torch.Size([q]))  # (q, B, k, o)
    out = torch.empty(b, q, d, dtype=torch.float64)
    taken = torch.zeros(b, k, dtype=torch.bool)
    if mode == "parego":
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
        weights = sample_simplex(m, b * q, seed=seed, dtype=torch.float64).reshape(b, q, m)
    for j in range(q):
        s = samples[j]
        if mode == "parego":
            score = torch.stack([get_chebyshev_scalarization(weights[r, j], ys[r, :, :m])(s[r, :, :m])
                                 for r in range(b)])
        else:
            score = s[..., 0]
        excess = s[..., m:] - thr[:, None, :]
        feasible = (excess <= 0).all(dim=-1) & ~taken
        total = excess.clamp_min(0).sum(dim=-1).masked_fill(taken, math.inf)
        best = score.masked_fill(~feasible, -math.inf).argmax(dim=1)
        least = total.argmin(dim=1)
        pick = torch.where(feasible.any(dim=1), best, least)
        taken[torch.arange(b), pick] = True
        out[:, j] = cand[torch.arange(b), pick]
    return out


def _qnehvi(model: Any, x: Tensor, ys: Tensor, cand: Tensor, thr: Tensor, m: int, q: int, ref: Tensor | None,
            mu: Tensor, sd: Tensor, samples: int, seed: int) -> Tensor:
    """``q`` picks per row by botorch's qLogNEHVI over the row's candidates (sequential greedy), one row at a time."""
    from botorch.acquisition.multi_objective.logei import qLogNoisyExpectedHypervolumeImprovement
    from botorch.exceptions.warnings import BotorchWarning
    from botorch.optim import optimize_acqf_discrete
    from botorch.sampling import SobolQMCNormalSampler
    from botorch.utils.multi_objective.hypervolume import infer_reference_point
    from botorch.utils.multi_objective.pareto import is_non_dominated

    out = torch.empty(len(cand), q, cand.shape[2], dtype=torch.float64)
    for r in range(len(cand)):
        row = _row_model(model, r, x[r], ys[r])
        obj = ys[r, :, :m]
        if ref is not None:
            ref_r = (ref - mu[r]) / sd[r]
        else:
            feasible = (ys[r, :, m:] <= thr[r]).all(dim=-1)
            pts = obj[feasible] if feasible.any() else obj
            ref_r = infer_reference_point(pts[is_non_dominated(pts)])
        cons = [(lambda Z, j=j, t=float(thr[r, j]): Z[..., m + j] - t) for j in range(ys.shape[2] - m)]
        from botorch.acquisition.multi_objective.objective import IdentityMCMultiOutputObjective

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BotorchWarning)
            acq = qLogNoisyExpectedHypervolumeImprovement(
                row, ref_point=ref_r.tolist(), X_baseline=x[r], prune_baseline=True,
                objective=IdentityMCMultiOutputObjective(outcomes=list(range(m))), constraints=cons or None,
                sampler=SobolQMCNormalSampler(torch.Size([samples]), seed=seed * 1000 + r))
            pick, _ = optimize_acqf_discrete(acq, q, cand[r], unique=True)
        out[r] = pick
    return out
