"""The per-round constrained reweighting: the multipliers that make the round's weights meet each constraint.

One fine-tuning round moves the flow toward the reweighted samples ``q_i ∝ exp(a_i / T)`` with
``a_i = r_i / s_r - sum_j lambda_j pen_ij``. :func:`constrained_weights` chooses ``lambda >= 0`` so
that the **reweighted** violation rate of each constraint, ``sum_i q_i v_ij``, is at most its
target, while the weights keep the trust region of :func:`~flowevo.cfo.finetune.trust_region_weights`
(an effective sample size of at least ``min_ess`` of the samples). This is the exact dual of the
round's subproblem on the samples ("maximise the reweighted reward, stay within the trust region,
meet every constraint"), so the multiplier is found each round in the units of the reward at hand
instead of being stepped toward them: a reward whose spread grows as the flow moves cannot outrun it.

Each ``lambda_j`` is the smallest value that meets its target given the others (bisection on
``log(1 + lambda_j)``, a few coordinate sweeps). Where the target cannot be met within the trust
region (too few satisfying samples), ``lambda_j`` ends at ``lam_max``: the weights then favour
satisfying samples as far as the trust region allows. With ``out_of_reach="feasible"`` such a round's
weights are instead ``q_i ∝ exp(r_i / T)`` on the samples marked ``feasible`` (0 elsewhere), ``T`` set by the trust
region over those samples alone: lexicographic, feasibility first and then the reward, so the round moves toward
samples that are both feasible and good rather than toward feasible ones whatever their reward.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from flowevo.cfo.finetune import trust_region_weights


def weighted_rates(w: Tensor, violated: Tensor) -> Tensor:
    """``sum_i w_i v_ij / sum_i w_i`` per constraint: ``w (N,)``, ``violated (N, C)`` -> ``(C,)``."""
    w = w.double()
    return (w[:, None] * violated.double()).sum(0) / w.sum().clamp_min(1e-300)


def constrained_weights(reward: Tensor, penalty: Tensor, violated: Tensor, target: Tensor, temperature: float,
                        min_ess: float, lam_max: float = 1e3, offset: Tensor | None = None, sweeps: int = 4,
                        iters: int = 30, tol: float = 1e-3, trust_region: str = "total",
                        cap: Callable[[Tensor], Tensor] | None = None, out_of_reach: str = "penalty",
                        feasible: Tensor | None = None) -> tuple[Tensor, Tensor, float]:
    """Weights and multipliers of one round.

    Args:
        reward: ``(N,)`` reward in its scaled units (NaN: failed sample, weight 0).
        penalty: ``(N, C)`` per-sample penalty shape (e.g. the smoothed violation indicator; 1 where failed).
        violated: ``(N, C)`` bool, the hard violation indicator the target is about.
        target: ``(C,)`` allowed reweighted violation rate per constraint.
        temperature: softmax temperature (raised where needed for the trust region).
        min_ess: the weights' effective sample size stays >= ``min_ess`` times the finite samples.
        lam_max: cap on each multiplier.
        offset: optional ``(N,)`` log-weight added after the temperature (e.g. a diversity term).
        cap: optional reshaping of the weights (e.g. :class:`~flowevo.cfo.diversity.GroupCap`).
        sweeps, iters: coordinate sweeps and bisection steps per multiplier.
        tol: slack on the target (the rates are shares of N samples).
        trust_region: ``"total"``: the effective sample size floor holds for the final weights (the constraint's
            reweighting and the reward's share one budget); ``"reward"``: the temperature is set by the reward's
            weights alone (``lambda = 0``) and the multipliers then move weight off violating samples on top (a
            projection after the reward step: the effective sample size may fall below the floor by the share
            the constraints remove).
        out_of_reach: what a round does when some target is out of reach even at ``lam_max``: ``"penalty"`` (the
            multiplier ``lam_max``) or ``"feasible"``: weights ``softmax(r / T + offset)``
            over the samples where ``feasible`` is true only (the trust region's floor counts those samples; the
            multipliers of the unmet constraints are reported as ``lam_max``); without a feasible sample, as
            ``"penalty"``.
        feasible: ``(N,)`` bool, the samples ``out_of_reach="feasible"`` keeps (e.g. those violating no constraint).

    Returns:
        ``(weights (N,), multipliers (C,), temperature used)``.
    """
    n, c = penalty.shape
    if reward.shape != (n,) or violated.shape != (n, c) or target.shape != (c,):
        raise ValueError(f"shapes: reward {tuple(reward.shape)}, penalty {tuple(penalty.shape)}, "
                         f"violated {tuple(violated.shape)}, target {tuple(target.shape)}")
    reward, penalty, target = reward.double(), penalty.double(), target.double()
    if trust_region not in ("total", "reward"):
        raise ValueError(f"trust_region must be 'total' or 'reward', got {trust_region!r}")
    if out_of_reach not in ("penalty", "feasible"):
        raise ValueError(f"out_of_reach must be 'penalty' or 'feasible', got {out_of_reach!r}")
    if out_of_reach == "feasible" and (feasible is None or feasible.shape != (n,)):
        raise ValueError(f"out_of_reach='feasible' needs a feasible mask of shape ({n},)")
    lam = torch.zeros(c, dtype=torch.float64)
    unmet = torch.zeros(c, dtype=torch.bool)
    if trust_region == "reward":
        temperature = trust_region_weights(reward, temperature, min_ess, offset, cap)[1]
        min_ess = 0.0

    def solve(lam: Tensor) -> tuple[Tensor, float]:
        return trust_region_weights(reward - (penalty * lam).sum(1), temperature, min_ess, offset, cap)

    def rate(lam: Tensor, j: int) -> float:
        return float(weighted_rates(solve(lam)[0], violated)[j])

    for _ in range(sweeps):
        changed = False
        for j in range(c):
            trial = lam.clone()
            trial[j] = 0.0
            unmet[j] = False
            if rate(trial, j) <= target[j] + tol:
                new = 0.0
            else:
                trial[j] = lam_max
                if rate(trial, j) > target[j] + tol:
                    new = lam_max
                    unmet[j] = True
                else:
                    lo, hi = 0.0, math.log1p(lam_max)
                    for _ in range(iters):
                        mid = (lo + hi) / 2
                        trial[j] = math.expm1(mid)
                        lo, hi = (mid, hi) if rate(trial, j) > target[j] + tol else (lo, mid)
                    new = math.expm1(hi)
            changed = changed or abs(new - float(lam[j])) > 1e-6 * (1 + abs(new))
            lam[j] = new
        if not changed:
            break
    w, temp = solve(lam)
    if out_of_reach == "feasible" and unmet.any() and feasible is not None:
        ok = feasible.bool() & torch.isfinite(reward)
        if ok.any():
            masked = torch.where(ok, reward, torch.full_like(reward, math.nan))
            w, temp = trust_region_weights(masked, temperature, min_ess, offset, cap)
            lam = torch.where(unmet, torch.full_like(lam, lam_max), lam)
    return w, lam, temp
