"""Objectives layer: the Objective protocol, constraints, and evaluators that isolate failures.

Evaluators (all ``evaluator(candidates) -> Evaluation`` with ``objectives`` / ``constraints``):
:class:`LocalEvaluator` (in process), :class:`ProcessPoolEvaluator` (local processes),
:class:`DaskEvaluator` (Dask distributed), and :class:`CachedEvaluator` around any of them.
"""

from flowevo.objectives.base import (
    Candidates,
    Constraint,
    FunctionObjective,
    Objective,
    PartialFailure,
    Sense,
    is_cheap,
    sense_sign,
)
from flowevo.objectives.cache import CachedEvaluator, EvaluationCache, candidate_keys
from flowevo.objectives.command import CommandObjective, parse_score
from flowevo.objectives.counting import Goal, QueryCounter, ScoredPoints, best_within, evaluations_to_rate, success_curve
from flowevo.objectives.dask_backend import DaskEvaluator
from flowevo.objectives.dispatch import ChunkedEvaluator
from flowevo.objectives.evaluator import (
    Evaluation,
    Evaluator,
    Failure,
    LocalEvaluator,
    assemble,
    check_callables,
    evaluate_all,
    evaluate_callable,
)
from flowevo.objectives.flow_reading import class_energies, target_margin
from flowevo.objectives.log_odds import LOG_ODDS_EPS, LogOdds, log_odds
from flowevo.objectives.process_pool import ProcessPoolEvaluator

__all__ = [
    "CachedEvaluator", "Candidates", "ChunkedEvaluator", "CommandObjective", "Constraint", "DaskEvaluator",
    "Evaluation", "EvaluationCache", "Evaluator", "Failure", "FunctionObjective", "Goal", "LOG_ODDS_EPS",
    "LocalEvaluator", "LogOdds", "Objective", "PartialFailure", "ProcessPoolEvaluator", "QueryCounter",
    "ScoredPoints", "Sense", "assemble", "candidate_keys", "check_callables", "class_energies", "evaluate_all",
    "evaluate_callable", "evaluations_to_rate", "best_within", "is_cheap", "log_odds", "parse_score", "sense_sign",
    "success_curve", "target_margin",
]
