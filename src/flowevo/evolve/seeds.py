"""Generation-0 seeds beyond a source's own residual (passed to the Evolver as ``extra_seeds``).

:func:`slerp_ladder` interpolates between two residuals per row. :func:`seed_pool` gathers, per row, candidates
found without a black-box call (the own residual, a ladder from the target anchor, lift/land edits), and
:func:`rank_seeds` orders them by the flow's own reading of the decoded candidate
(:func:`~flowevo.objectives.target_margin`) and a cheap distance to the source, so that generation 0 starts from
the candidates most likely to be valid and least changed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from flowevo.evolve.task import EditTask
from flowevo.flow import Condition, ResidualCodec
from flowevo.objectives import target_margin

__all__ = ["LIFT_DEPTHS", "Distance", "rank_seeds", "seed_pool", "slerp_ladder"]

LIFT_DEPTHS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
"""Depths of :func:`seed_pool`'s lift/land edits (the share of the flow's time the source is lifted)."""

Distance = Callable[[Tensor, Tensor], Tensor]
"""``(decoded (N, *D), rows (N,)) -> (N,)``: how far a decoded candidate is from its row's source (cheap, no black
box)."""


def slerp_ladder(start: Tensor, end: Tensor, weights: Sequence[float] = (0.15, 0.3, 0.45, 0.6, 0.75, 0.9)) -> Tensor:
    """Per row ``(B, 1 + len(weights), *S)``: ``start`` and spherical interpolations from it toward ``end`` by
    ``weights`` (directions slerped, norms interpolated linearly).

    With ``start`` = the source inverted under the *target* condition (it decodes to ~the source, wrong
    class) and ``end`` = its own residual (the swap edit), the ladder crosses the decision boundary near
    the source.

    Args:
        start, end: ``(B, *S)`` residuals.
    """
    if start.shape != end.shape:
        raise ValueError(f"start and end must have the same shape, got {tuple(start.shape)} and {tuple(end.shape)}")
    a, b = start.flatten(1), end.flatten(1)
    na, nb = a.norm(dim=1, keepdim=True), b.norm(dim=1, keepdim=True)
    omega = ((a / na) * (b / nb)).sum(1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7).acos()
    rungs = [((torch.sin((1 - w) * omega) * a / na + torch.sin(w * omega) * b / nb) / omega.sin()) * ((1 - w) * na + w * nb)
             for w in weights]
    return torch.stack([a, *rungs], dim=1).reshape(len(start), len(weights) + 1, *start.shape[1:])


@torch.inference_mode()
def seed_pool(codec: ResidualCodec, task: EditTask, rungs: int = 20, depths: Sequence[float] = LIFT_DEPTHS) -> Tensor:
    """``(B, 2 + rungs + len(depths), *S)`` candidate generation-0 residuals per row, found without a black-box call.

    In order: the source's own residual (decoded under the target: the swap edit), the target anchor and
    ``rungs`` slerps from it (the source inverted under the *target*: it decodes to ~the source) toward the own
    residual, then lift/land edits: the source lifted to depth ``d`` under its own condition, landed under the
    target, and inverted under the target (a residual that decodes to that edit), for each of ``depths``.

    Args:
        codec: the run's :class:`~flowevo.flow.ResidualCodec` (full strength).
        task: the rows (sources, their own and their target conditions).
        rungs: ladder rungs strictly between the anchor and the own residual.
        depths: lift depths in (0, 1].
    """
    if rungs < 0 or any(not 0 < d <= 1 for d in depths):
        raise ValueError(f"rungs must be >= 0 and depths in (0, 1], got {rungs} and {tuple(depths)}")
    x = task.sources.to(codec.device)
    src, tgt = task.source_condition.to(codec.device), task.target_condition.to(codec.device)
    own = codec.invert(x, src)
    ladder = slerp_ladder(codec.invert(x, tgt), own, [i / (rungs + 1) for i in range(1, rungs + 1)])
    lifts = []
    for d in depths:
        partial = codec.with_strength(d)
        lifts.append(codec.invert(partial.decode(partial.invert(x, src), tgt), tgt))
    return torch.cat([own[:, None], ladder, *(r[:, None] for r in lifts)], dim=1)


def l2_distance(task: EditTask) -> Distance:
    """The default :data:`Distance`: Euclidean distance in data space to the row's source."""
    flat = task.sources.flatten(1).double()
    return lambda decoded, rows: (decoded.flatten(1).double().cpu() - flat.cpu()[rows.cpu()]).norm(dim=1)


@torch.inference_mode()
def rank_seeds(codec: ResidualCodec, task: EditTask, pool: Tensor, count: int, classes: int,
               distance: Distance | None = None, margin: float | None = 4.0) -> Tensor:
    """``(B, count, *S)``: the best ``count`` of each row's ``pool (B, P, *S)`` residuals, best first, ranked with
    no black-box call.

    Each candidate is decoded under its row's target once. Those the flow reads as the target class by an energy
    margin above ``margin`` (:func:`~flowevo.objectives.target_margin`: ``classes`` inversions per candidate) come
    first, least ``distance`` first; then the rest by decreasing margin. ``margin`` None: every candidate by
    distance alone.

    Args:
        codec: the run's class-conditional :class:`~flowevo.flow.ResidualCodec`.
        task: the rows; its target condition must hold class labels (batch B).
        pool: ``(B, P, *S)`` candidate residuals, e.g. :func:`seed_pool`.
        count: seeds kept per row (at most P).
        classes: number of classes of the flow's condition.
        distance: cheap distance of a decoded candidate to its row's source (default: data-space L2).
    """
    labels = task.target_condition.labels
    if labels is None or task.target_condition.values is not None:
        raise ValueError("rank_seeds reads the flow's class of a candidate: the task's targets need class labels "
                         "(and no float values)")
    n, p = pool.shape[:2]
    if n != len(task):
        raise ValueError(f"pool has {n} rows, the task {len(task)}")
    if not 1 <= count <= p:
        raise ValueError(f"{count} seeds asked from a pool of {p}")
    dev = codec.device
    pool = pool.to(dev)
    rows = torch.arange(n, device=dev).repeat_interleave(p)
    targets = labels.to(dev)[rows]
    decoded = codec.decode(pool.flatten(0, 1), Condition.from_labels(targets))
    dist = (distance or l2_distance(task))(decoded, rows).reshape(n, p).double().cpu()
    if margin is None:
        key = dist
    else:
        m = target_margin(codec, decoded, targets, classes).reshape(n, p)
        key = torch.where(m > margin, dist, dist.max() + 1.0 + (m.max() - m))  # read as the target first, by distance
    order = torch.argsort(key, dim=1, stable=True)[:, :count].to(dev)
    return pool[torch.arange(n, device=dev)[:, None], order]
