"""Objectives layer: the Objective protocol, constraints, and evaluators that isolate failures."""

from flowevo.objectives.base import Candidates, Constraint, FunctionObjective, Objective, Sense, sense_sign
from flowevo.objectives.evaluator import Evaluation, Failure, LocalEvaluator, evaluate_callable

__all__ = [
    "Candidates", "Constraint", "Evaluation", "Failure", "FunctionObjective", "LocalEvaluator", "Objective",
    "Sense", "evaluate_callable", "sense_sign",
]
