"""Constraint handling: adaptive Lagrange multipliers and a penalised survival for the Evolver.

Constraints are black boxes ``g(x) <= b`` (:class:`~flowevo.objectives.Constraint`); the user
sets the bound ``b``, never a weight. The weight of each constraint is a Lagrange multiplier
learned by dual ascent on the **measured** violation:

    lambda_j <- max(0, lambda_j + rho_j * d_j)

where ``d_j`` is the measured excess of constraint ``j`` over what is allowed: here the share of
individuals that violate it minus the share allowed to (a chance constraint, ``E[1{g_j > b_j}] <= eps``).
``rho_j`` grows by ``growth`` while the violation ``max(0, d_j)`` does not shrink (the
augmented-Lagrangian rule). :class:`Multipliers` holds this state; the constrained flow optimiser
(``flowevo.cfo``) uses the same class.

:class:`LagrangianPenalty` is the Evolver's strategy object (``Evolver(..., penalty=LagrangianPenalty())``;
``None`` keeps plain feasibility-first survival). Each row keeps its ``elites`` best individuals
feasibility-first (so the best feasible edit is never lost); the other slots are ranked by the
penalised objectives ``F + scale_F * sum_j lambda_j * v_j / scale_j`` (``v_j = max(0, g_j - b_j)``),
so near-feasible candidates with good objectives survive and the search can approach a boundary
optimum from both sides. Failed candidates (violation inf) still rank last.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

SurvivalFn = Callable[[Tensor, Tensor, Tensor, int, int], Tensor]


@dataclass
class Multipliers:
    """Lagrange multipliers ``lam (C,)`` and penalty parameters ``rho (C,)``, updated by dual ascent.

    Args:
        lam: initial multipliers ``(C,)`` (>= 0).
        rho: initial dual step / penalty parameters ``(C,)`` (> 0).
        growth: factor applied to ``rho_j`` while constraint ``j``'s violation does not shrink (1 = never grow).
        rho_max: cap on ``rho``.
        lam_max: cap on ``lam`` (keeps a run numerically sane when a constraint cannot be met).

    Example:
        >>> m = Multipliers.full(1, lam=0.0, rho=1.0)
        >>> m.update(torch.tensor([0.5])).tolist()    # violated: the multiplier rises
        [0.5]
        >>> m.update(torch.tensor([-2.0])).tolist()   # slack: it falls (not below 0)
        [0.0]
    """

    lam: Tensor
    rho: Tensor
    growth: float = 1.0
    rho_max: float = 1e3
    lam_max: float = 1e6
    last_violation: Tensor = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.lam = torch.as_tensor(self.lam, dtype=torch.float64).clone()
        self.rho = torch.as_tensor(self.rho, dtype=torch.float64).clone()
        if self.lam.ndim != 1 or self.rho.shape != self.lam.shape:
            raise ValueError("lam and rho must be (C,) tensors of one size, "
                             f"got {tuple(self.lam.shape)}, {tuple(self.rho.shape)}")
        if (self.lam < 0).any() or (self.rho <= 0).any():
            raise ValueError("multipliers must be >= 0 and rho > 0")
        if self.growth < 1:
            raise ValueError(f"growth must be >= 1, got {self.growth}")
        if self.last_violation is None:
            self.last_violation = torch.full_like(self.lam, math.inf)

    @classmethod
    def full(cls, n: int, lam: float = 0.0, rho: float = 1.0, **kwargs) -> Multipliers:
        """``n`` constraints, all starting at ``lam`` and ``rho``."""
        return cls(torch.full((n,), float(lam), dtype=torch.float64), torch.full((n,), float(rho), dtype=torch.float64), **kwargs)

    def __len__(self) -> int:
        return int(self.lam.shape[0])

    def update(self, excess: Tensor) -> Tensor:
        """Dual step on the measured ``excess (C,)`` (``E[g] - b``, scaled; NaN = not measured, no change).

        Returns the new multipliers ``(C,)``.
        """
        d = torch.as_tensor(excess, dtype=torch.float64)
        if d.shape != self.lam.shape:
            raise ValueError(f"excess has shape {tuple(d.shape)}, expected {tuple(self.lam.shape)}")
        ok = torch.isfinite(d)
        d0 = torch.where(ok, d, torch.zeros_like(d))
        self.lam = (self.lam + self.rho * d0).clamp(0.0, self.lam_max)
        violation = d0.clamp_min(0.0)
        stuck = ok & (violation > 0) & (violation >= self.last_violation)
        self.rho = torch.where(stuck, (self.rho * self.growth).clamp(max=self.rho_max), self.rho)
        self.last_violation = torch.where(ok, violation, self.last_violation)
        return self.lam.clone()

    def state_dict(self) -> dict:
        """Plain tensors and numbers (loads with ``torch.load(weights_only=True)``)."""
        return {"lam": self.lam.clone(), "rho": self.rho.clone(), "last_violation": self.last_violation.clone(),
                "growth": self.growth, "rho_max": self.rho_max, "lam_max": self.lam_max}

    def load_state_dict(self, state: dict) -> None:
        """Restore from :meth:`state_dict`."""
        if state["lam"].shape != self.lam.shape:
            raise ValueError(f"checkpoint has {state['lam'].shape[0]} multipliers; this run has {len(self)}")
        self.lam, self.rho = state["lam"].double().clone(), state["rho"].double().clone()
        self.last_violation = state["last_violation"].double().clone()
        self.growth, self.rho_max, self.lam_max = state["growth"], state["rho_max"], state["lam_max"]


def violation_rate(g: Tensor, bounds: Tensor) -> Tensor:
    """Per constraint, the share of finite ``g (N, C)`` above ``bounds (C,)``: ``(C,)`` (NaN where none is finite)."""
    ok = torch.isfinite(g)
    bad = ok & (g.double() > bounds.double())
    n = ok.sum(0)
    return torch.where(n > 0, bad.double().sum(0) / n.clamp_min(1), torch.full((g.shape[1],), math.nan, dtype=torch.float64))


def _scale(x: Tensor) -> Tensor:
    """Per column of ``x (N, C)``: mean absolute value over finite entries (1 where none or 0)."""
    ok = torch.isfinite(x)
    s = torch.where(ok, x.abs(), torch.zeros_like(x)).sum(0) / ok.sum(0).clamp_min(1)
    return torch.where(s > 0, s, torch.ones_like(s))


def finite_std(x: Tensor) -> Tensor:
    """Per column of ``x (N, M)``: std over finite entries, ``(M,)`` (1 where undefined or 0)."""
    out = []
    for j in range(x.shape[1]):
        col = x[:, j][torch.isfinite(x[:, j])]
        s = float(col.std()) if col.numel() > 1 else 0.0
        out.append(s if s > 0 and math.isfinite(s) else 1.0)
    return torch.tensor(out, dtype=torch.float64)


class LagrangianPenalty:
    """Adaptive Lagrangian penalty for constrained survival (a strategy object the Evolver takes).

    Units: each constraint's excess is divided by its typical magnitude ``scale_j`` (mean
    ``|g_j - b_j|`` of generation 0) and the penalty is multiplied by each objective's spread
    ``scale_F`` (std of generation 0), so ``lambda = 1`` means "one typical violation costs one
    typical objective difference"; ``lambda`` is learned, the user only sets bounds.

    After every generation ``lambda_j`` takes a dual step on the measured violation rate: the share
    of survivors violating constraint ``j`` minus ``infeasible_share``. It rises while more survivors
    violate than allowed and falls (to 0) while fewer do, so the population keeps a controlled
    share of near-feasible individuals around a boundary optimum.

    Measured on a 16-D toy edit (goal objective, distance-to-source budget, 16 rows x 8, 20
    generations, 8 seeds; docs/benchmarks.md): with a tight budget the mean best feasible distance
    to the goal was 1.84 against 1.95 with plain feasibility-first survival (se 0.03), but rows
    with a feasible edit were 0.92 against 0.95; with a loose budget 1.51 against 1.53.

    Args:
        lam0: initial multiplier (all constraints).
        rho: dual step size.
        growth: ``rho`` grows by this factor while a violation does not shrink (1: constant step).
        elites: per row, survivors chosen feasibility-first before the penalised ranking (>= 1 keeps
            each row's best feasible individual; ``population_size`` = plain feasibility-first).
        infeasible_share: the share of survivors allowed to violate each constraint before its
            multiplier rises.

    Example::

        evolver = Evolver(codec, task, LocalEvaluator([objective], [Constraint("g", fn, bound=1.0)]),
                          penalty=LagrangianPenalty())
    """

    def __init__(self, lam0: float = 1.0, rho: float = 0.5, growth: float = 1.0, elites: int = 1,
                 infeasible_share: float = 0.25) -> None:
        if lam0 < 0 or rho <= 0 or elites < 0 or not 0 <= infeasible_share < 1:
            raise ValueError(f"need lam0 >= 0, rho > 0, elites >= 0, 0 <= infeasible_share < 1; "
                             f"got {lam0}, {rho}, {elites}, {infeasible_share}")
        self.lam0, self.rho0, self.growth, self.elites = float(lam0), float(rho), float(growth), int(elites)
        self.infeasible_share = float(infeasible_share)
        self.multipliers: Multipliers | None = None
        self.names: list[str] = []
        self.bounds: Tensor | None = None
        self.g_scale: Tensor | None = None
        self.f_scale: Tensor | None = None

    # -- setup ----------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """True once :meth:`setup` has fixed the units (after generation 0)."""
        return self.multipliers is not None

    def setup(self, names: list[str], bounds: Tensor, F: Tensor, g: Tensor) -> None:
        """Fix units from generation 0: ``F (N, M)`` minimisation-form values, ``g (N, C)`` raw constraint values."""
        self.names = list(names)
        self.bounds = torch.as_tensor(bounds, dtype=torch.float64)
        self.g_scale = _scale(g.double() - self.bounds)
        self.f_scale = finite_std(F.double())
        self.multipliers = Multipliers.full(len(names), self.lam0, self.rho0, growth=self.growth)

    # -- use ------------------------------------------------------------------------------------
    def violations(self, g: Tensor) -> Tensor:
        """``g (N, C)`` -> scaled violations ``max(0, g - b) / scale`` ``(N, C)`` (NaN where failed)."""
        return (g.double() - self.bounds).clamp_min(0.0) / self.g_scale

    def penalised(self, F: Tensor, g: Tensor) -> Tensor:
        """Penalised objectives ``(N, M)`` (minimisation form) from ``F (N, M)`` and ``g (N, C)``."""
        pen = (self.violations(g) * self.multipliers.lam).sum(1)  # NaN for failed rows
        return F.double() + pen[:, None] * self.f_scale

    def select(self, survival: SurvivalFn, F: Tensor, violation: Tensor, g: Tensor, row: Tensor,
               rows: int, k: int) -> Tensor:
        """Survivor indices ``(rows * k,)`` in row blocks, best first: ``elites`` feasibility-first, then penalised.

        ``F (N, M)`` minimisation form, ``violation (N,)`` total (inf = failed), ``g (N, C)``, ``row (N,)``.
        """
        e = min(self.elites, k)
        if not self.ready or g.shape[1] == 0 or e == k:
            return survival(F, violation, row, rows, k)
        row = row.cpu()
        parts = []
        taken = torch.zeros(len(row), dtype=torch.bool)
        if e > 0:
            elite = survival(F, violation, row, rows, e)
            taken[elite] = True
            parts.append(elite.view(rows, e))
        rest_idx = torch.nonzero(~taken).flatten()
        failed = torch.isinf(violation.double().cpu())
        Fp = self.penalised(F.cpu(), g.cpu())
        Fp = torch.where(failed[:, None], torch.full_like(Fp, math.inf), Fp)
        v_rank = torch.where(failed, torch.full_like(violation.double().cpu(), math.inf),
                             torch.zeros(len(row), dtype=torch.float64))
        rest = survival(Fp[rest_idx], v_rank[rest_idx], row[rest_idx], rows, k - e)
        parts.append(rest_idx[rest].view(rows, k - e))
        return torch.cat(parts, dim=1).flatten()

    def update(self, g: Tensor) -> Tensor:
        """Dual step on the survivors' constraint values ``g (N, C)`` (NaN = failed, not counted).

        Returns the new multipliers ``(C,)``.
        """
        excess = violation_rate(g, self.bounds) - self.infeasible_share
        return self.multipliers.update(excess)

    def as_dict(self) -> dict[str, float]:
        """``{constraint name: multiplier}`` (empty before setup)."""
        return {} if not self.ready else dict(zip(self.names, self.multipliers.lam.tolist()))

    # -- checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything learned so far (units and multipliers)."""
        if not self.ready:
            return {"ready": False}
        return {"ready": True, "names": list(self.names), "bounds": self.bounds.clone(), "g_scale": self.g_scale.clone(),
                "f_scale": self.f_scale.clone(), "multipliers": self.multipliers.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Restore from :meth:`state_dict`."""
        if not state["ready"]:
            self.multipliers = None
            return
        self.names, self.bounds = list(state["names"]), state["bounds"].double()
        self.g_scale, self.f_scale = state["g_scale"].double(), state["f_scale"].double()
        self.multipliers = Multipliers.full(len(self.names), self.lam0, self.rho0, growth=self.growth)
        self.multipliers.load_state_dict(state["multipliers"])
