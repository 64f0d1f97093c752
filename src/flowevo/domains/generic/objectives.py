"""Built-in objectives for the generic domain: preservation and the judge's verdicts.

Each function returns a batch function ``fn(candidates) -> (N,)`` (vectorised); wrap it in a
:class:`~flowevo.objectives.FunctionObjective` (with a sense) or a
:class:`~flowevo.objectives.Constraint` (with a bound). Targets are read from
``candidates.target`` (a ``Condition``: class ids, float values in data units).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from flowevo.domains.generic.judge import ConditionPredictor
from flowevo.objectives import Candidates

__all__ = ["distance_to_source", "target_label_mismatch", "target_probability", "target_value_error"]

BatchFn = Callable[[Candidates], Tensor]


def distance_to_source(candidates: Candidates) -> Tensor:
    """Preservation: L2 distance in data space between each candidate and its source, ``(N,)``."""
    if candidates.sources is None:
        raise ValueError("distance_to_source needs the candidates' sources")
    return (candidates.x - candidates.sources.to(candidates.x.device)).flatten(1).norm(dim=1).double()


def _target_labels(c: Candidates, what: str) -> Tensor:
    labels = getattr(c.target, "labels", None)
    if labels is None:
        raise ValueError(f"{what} needs a class target (this run's target has no class)")
    return labels.cpu()


def target_probability(judge: ConditionPredictor) -> BatchFn:
    """Alignment: the judge's probability of the target class, ``(N,)`` in [0, 1] (sense ``max``)."""
    if not judge.config["num_classes"]:
        raise ValueError("target_probability needs a judge with a class head (train data with key 'c')")

    def fn(c: Candidates) -> Tensor:
        probs, _ = judge.predict(c.x)
        return probs.gather(1, _target_labels(c, "target_probability")[:, None]).squeeze(1).double()

    return fn


def target_label_mismatch(judge: ConditionPredictor) -> BatchFn:
    """1 where the judge's label is not the target class, else 0 (a constraint with upper bound 0)."""
    if not judge.config["num_classes"]:
        raise ValueError("target_label needs a judge with a class head (train data with key 'c')")

    def fn(c: Candidates) -> Tensor:
        probs, _ = judge.predict(c.x)
        return (probs.argmax(1) != _target_labels(c, "target_label")).double()

    return fn


def target_value_error(judge: ConditionPredictor) -> BatchFn:
    """Alignment: L2 distance between the judge's predicted float conditions and the target values (sense ``min``)."""
    if not judge.config["value_dim"]:
        raise ValueError("target_value_error needs a judge with a value head (train data with key 'v')")

    def fn(c: Candidates) -> Tensor:
        target = getattr(c.target, "values", None)
        if target is None:
            raise ValueError("target_value_error needs target values (this run's target has none)")
        _, pred = judge.predict(c.x)
        return (pred - target.cpu()).norm(dim=1).double()

    return fn
