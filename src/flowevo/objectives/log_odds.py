"""A probability objective seen as its log-odds: how a search ranks a confidence that saturates near 1.

A black box's probability ``p`` of the target class is a poor scale to search on once it passes ~0.9: edits at
0.99 and 0.99999 differ by 0.01 in ``p`` (next to nothing in a hypervolume, flat for a surrogate), by 9 in
``log(p / (1 - p))``. :class:`LogOdds` wraps any evaluator and reports one probability objective as its
log-odds, in the same sense; the inner evaluator (e.g. a :class:`~flowevo.objectives.QueryCounter`) still sees
and records ``p``, constraints are untouched, and nothing is called twice.

Measured (issue 15, eighth pass; ``docs/benchmarks.md``): REO on the digits task with its second objective
seen as log-odds (``DigitCounterfactuals.reo(confidence="log_odds")``) kept edits the independent classifier
confirmed more often at the same morphology change on development splits, and reached 90% of the benchmark's
sources sooner, but its front covered less hypervolume measured in p from 128 evaluations on: an option, not
the default.
"""

from __future__ import annotations

import torch
from torch import Tensor

from flowevo.objectives.base import Candidates, FunctionObjective, Objective, is_cheap
from flowevo.objectives.evaluator import Evaluation, Evaluator

__all__ = ["LOG_ODDS_EPS", "LogOdds", "log_odds"]

LOG_ODDS_EPS = 1e-7  # p within this of 0 or 1 counts as that bound (a float32 probability resolves ~6e-8 near 1)


def log_odds(p: Tensor) -> Tensor:
    """``(N,)`` probabilities in [0, 1] -> ``log(p / (1 - p))`` in float64, finite (``|.| <= 16.1``, see
    :data:`LOG_ODDS_EPS`); NaN stays NaN (a failed evaluation).

    Raises:
        ValueError: a value outside [0, 1]: the objective is not a probability.
    """
    p = torch.as_tensor(p, dtype=torch.float64)
    finite = p[~torch.isnan(p)]
    if len(finite) and (finite.min() < 0 or finite.max() > 1):
        raise ValueError(f"log-odds of a value outside [0, 1] (range {float(finite.min()):g}..{float(finite.max()):g}): "
                         "the objective is not a probability")
    return torch.logit(p, eps=LOG_ODDS_EPS)


class LogOdds:
    """An evaluator that reports the probability objective ``objective`` of ``inner`` as its log-odds.

    Args:
        inner: the evaluator that scores.
        objective: the name of one of ``inner``'s objectives whose values are probabilities.

    Attributes:
        objectives: ``inner``'s, that one replaced by ``"<objective>_log_odds"`` (same sense, same cheapness).
        constraints: ``inner``'s.
        column: the index of the replaced objective.

    Example:
        >>> from flowevo.objectives import LocalEvaluator
        >>> ev = LogOdds(LocalEvaluator([FunctionObjective("p", "max", lambda b: b.x[:, 0])]), "p")
        >>> [o.name for o in ev.objectives]
        ['p_log_odds']
    """

    def __init__(self, inner: Evaluator, objective: str) -> None:
        names = [o.name for o in inner.objectives]
        if objective not in names:
            raise ValueError(f"LogOdds: no objective named {objective!r}; the evaluator has {names}")
        self.inner, self.column = inner, names.index(objective)
        old: Objective = inner.objectives[self.column]
        new = FunctionObjective(f"{objective}_log_odds", old.sense, lambda c: log_odds(old(c)), cheap=is_cheap(old))
        self.objectives = [new if i == self.column else o for i, o in enumerate(inner.objectives)]
        self.constraints = list(inner.constraints)

    @staticmethod
    def threshold(p: float) -> float:
        """A probability threshold on the log-odds scale of :attr:`objectives` (e.g. for ``EditResult.kept``), clamped
        like the values (:data:`LOG_ODDS_EPS`)."""
        if not 0 < p < 1:
            raise ValueError(f"a probability threshold must lie in (0, 1), got {p}")
        return float(log_odds(torch.tensor([p]))[0])

    def __call__(self, batch: Candidates) -> Evaluation:
        ev = self.inner(batch)
        values = ev.values.clone()
        values[:, self.column] = log_odds(values[:, self.column])
        return Evaluation(values, ev.constraint_values, ev.violation, ev.failures)
