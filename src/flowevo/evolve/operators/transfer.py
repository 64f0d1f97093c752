"""Transfer between rows: reuse what worked for other sources with the same target.

Rows that share a target condition decode through the same function of the residual, so a move
that made one source succeed is worth trying on another (as differential evolution adds scaled
difference vectors of population members). :class:`Transfer` wraps any residual-space strategy
and replaces a share ``rate`` of the children it makes by transfers from another row ``b'`` of
the same group (default: the same target condition) that has a feasible scored edit:

- ``mode="difference"``: ``r_b + F (e_b' - r_b')``: row ``b``'s own residual moved by ``b'``'s
  successful move (its best edit ``e_b'`` minus its own residual ``r_b'``), ``F ~ U(scale)``;
- ``mode="elite"``: the child slerped toward the group's best edit by ``w ~ U(0, 1)`` (``w = 1``: a copy).

"Best edit" is feasible first, then the first objective in its sense. Children move only once the
group has a feasible edit; under :class:`~flowevo.evolve.operators.PreScreen` only the promising
transfers are ever scored.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from flowevo.evolve.operators.cross_pollination import Slerp
from flowevo.evolve.operators.repair import ShellRepair
from flowevo.evolve.operators.strategy import SearchContext, VariationStrategy, bind_strategy
from flowevo.evolve.population import CROSS, SEED, Population

__all__ = ["Transfer", "condition_groups"]

MODES = ("difference", "elite")


def condition_groups(condition) -> Tensor:
    """``(B,)`` long group id per row of a :class:`~flowevo.flow.Condition`: rows with equal class label,
    equal value vector and equal null flag share an id."""
    parts = []
    if condition.labels is not None:
        parts.append(condition.labels.detach().cpu().double()[:, None])
    if condition.values is not None:
        parts.append(condition.values.detach().cpu().double())
    parts.append(condition.null_mask().detach().cpu().double()[:, None])
    key = torch.cat(parts, dim=1)
    return torch.unique(key, dim=0, return_inverse=True)[1].long()


class Transfer:
    """Wrap a strategy: a share of its children become moves that worked for other rows of the same group.

    Args:
        inner: the strategy making the children (default :class:`~flowevo.evolve.operators.Variation`).
        rate: share of children replaced by a transfer (once the group has a feasible edit).
        mode: ``"difference"`` or ``"elite"`` (see the module doc).
        scale: ``(low, high)`` of the uniform step ``F`` of ``"difference"``.
        repair: applied to moved children (None: off).
        groups: optional ``(rows,)`` group ids (default: from the task's target conditions at ``bind``).
    """

    def __init__(self, inner: VariationStrategy | None = None, rate: float = 0.3, mode: str = "difference",
                 scale: tuple[float, float] = (0.5, 1.0), repair: ShellRepair | None = ShellRepair(),
                 groups: Tensor | None = None) -> None:
        from flowevo.evolve.operators.variation import Variation

        if not 0 <= rate <= 1:
            raise ValueError(f"rate must be in [0, 1], got {rate}")
        if mode not in MODES:
            raise ValueError(f"unknown transfer mode {mode!r}; use one of {MODES}")
        if not 0 <= scale[0] <= scale[1]:
            raise ValueError(f"scale must be (low, high) with 0 <= low <= high, got {scale}")
        self.inner = inner if inner is not None else Variation()
        self.rate, self.mode, self.scale, self.repair = float(rate), mode, (float(scale[0]), float(scale[1])), repair
        self.groups = None if groups is None else groups.detach().cpu().long()
        self._fixed_groups = groups is not None
        self.sign: Tensor | None = None
        self.start: Tensor | None = None  # (R, *S) each row's own residual (its first generation-0 individual)
        self.elite: Tensor | None = None  # (R, *S) each row's best scored residual
        self.key: Tensor | None = None  # (R, 2): violation, first objective (min form) of the elite

    # -- run ------------------------------------------------------------------------------------------
    def bind(self, context: SearchContext) -> None:
        """Read the run's rows, target groups and objective senses; pass ``bind`` on to the inner strategy."""
        from flowevo.objectives import sense_sign

        bind_strategy(self.inner, context)
        rows = len(context.task)
        if not self._fixed_groups:
            self.groups = condition_groups(context.task.target_condition)
        elif len(self.groups) != rows:
            raise ValueError(f"groups must hold one id per row ({rows}), got {len(self.groups)}")
        self.sign = sense_sign(context.objectives)
        self.start = self.elite = self.key = None

    def initial(self, residuals: Tensor, count: int, generator: torch.Generator) -> Tensor:
        """The inner strategy's generation-0 variants."""
        return self.inner.initial(residuals, count, generator)

    def observe(self, evaluated: Population) -> None:
        """Pass the scored batch on; update each row's own residual (generation 0) and best edit."""
        self.inner.observe(evaluated)
        rows = len(self.groups) if self.groups is not None else int(evaluated.row.max()) + 1
        res = evaluated.residuals.detach()
        row = evaluated.row.cpu().long()
        if self.elite is None:
            self.elite = torch.zeros(rows, *res.shape[1:], dtype=res.dtype, device=res.device)
            self.start = torch.zeros_like(self.elite)
            self.key = torch.full((rows, 2), math.inf, dtype=torch.float64)
            first = torch.full((rows,), -1, dtype=torch.long)
            own = torch.nonzero(evaluated.origin.cpu() == SEED).flatten().flip(0)  # first seed of each row wins
            first[row[own]] = own
            have = first >= 0
            self.start[have] = res[first[have].to(res.device)]
        sign = self.sign if self.sign is not None else torch.ones(evaluated.values.shape[1], dtype=torch.float64)
        f0 = torch.nan_to_num(evaluated.values[:, 0].double().cpu() * sign[0], nan=math.inf) if evaluated.values.shape[1] \
            else torch.zeros(len(row), dtype=torch.float64)
        v = torch.nan_to_num(evaluated.violation.double().cpu(), nan=math.inf)
        order = torch.argsort(f0, stable=True)
        order = order[torch.argsort(v[order], stable=True)]
        order = order[torch.argsort(row[order], stable=True)]  # per row: least violation, then best f0 first
        counts = torch.bincount(row, minlength=rows)
        best = order[(torch.cumsum(counts, 0) - counts)[counts > 0]]
        for i in best.tolist():
            b, cand = int(row[i]), (float(v[i]), float(f0[i]))
            if cand < (float(self.key[b, 0]), float(self.key[b, 1])):
                self.key[b] = torch.tensor(cand, dtype=torch.float64)
                self.elite[b] = res[i]

    def offspring(self, population: Population, rows: int, per_row: int, generator: torch.Generator,
                  step: Tensor | None = None) -> Population:
        """The inner strategy's children with a share ``rate`` replaced by transfers (origin cross, donor = ``b'``)."""
        kids = self.inner.offspring(population, rows, per_row, generator, step)
        if self.elite is None or self.rate == 0:
            return kids
        dev = kids.residuals.device
        n = len(kids)
        pick = torch.rand(n, generator=generator, device=dev).cpu() < self.rate
        feasible = self.key[:, 0] == 0
        row = kids.row.cpu()
        donor = self._donors(row, feasible, generator)
        pick &= donor >= 0
        if not pick.any():
            return kids
        idx = torch.nonzero(pick).flatten()
        b, d = row[idx], donor[idx]
        out = kids.residuals.clone()
        if self.mode == "difference":
            shape = (len(idx),) + (1,) * (out.dim() - 1)
            lo, hi = self.scale
            f = (lo + (hi - lo) * torch.rand(len(idx), generator=generator, device=dev)).reshape(shape).to(out.dtype)
            moved = self.start[b.to(dev)] + f * (self.elite[d.to(dev)] - self.start[d.to(dev)])
        else:
            flat = out[idx.to(dev)].reshape(len(idx), -1)
            moved = Slerp(1.0)(flat, self.elite[d.to(dev)].reshape(len(idx), -1).to(flat), generator)
            moved = moved.reshape(out[idx.to(dev)].shape)
        if self.repair is not None:
            moved = self.repair(moved)
        out[idx.to(dev)] = moved.to(out.dtype)
        origin, donor_row = kids.origin.clone(), kids.donor_row.clone()
        origin[idx.to(origin.device)] = CROSS
        donor_row[idx.to(donor_row.device)] = d.to(donor_row.device)
        return Population.new(out, kids.row, origin, donor_row, kids.values.shape[1], kids.generation)

    def _donors(self, row: Tensor, feasible: Tensor, generator: torch.Generator) -> Tensor:
        """``(N,)`` donor row per child: ``"elite"``: its group's best row; ``"difference"``: a random other row of
        its group with a feasible edit. -1 where none."""
        groups = self.groups
        score = self.key[:, 0] * 1e12 + torch.nan_to_num(self.key[:, 1], posinf=1e300)
        out = torch.full((len(row),), -1, dtype=torch.long)
        for g in torch.unique(groups[row]).tolist():
            members = torch.nonzero((groups == g) & feasible).flatten()
            mine = torch.nonzero(groups[row] == g).flatten()
            if not len(members):
                continue
            if self.mode == "elite":
                out[mine] = members[torch.argmin(score[members])]
                continue
            j = torch.randint(0, len(members), (len(mine),), generator=generator, device=generator.device).cpu()
            pick = members[j]
            alone = pick == row[mine]  # itself: try the next member (stays itself only when alone)
            pick[alone] = members[(j[alone] + 1) % len(members)]
            out[mine] = torch.where(pick == row[mine], torch.full_like(pick, -1), pick)
        return out

    # -- checkpoints ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The inner strategy's state, each row's own residual and best edit (with its key)."""
        return {"inner": self.inner.state_dict(), "start": self.start, "elite": self.elite, "key": self.key}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.inner.load_state_dict(state["inner"])
        self.start, self.elite, self.key = state["start"], state["elite"], state["key"]
