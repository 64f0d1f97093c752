"""Shared toy task of the per-source baseline tests: 16-D residuals, goal = distance to a class-1 mode centre."""

import pytest
import torch

from flowevo.evolve import EditTask
from flowevo.flow import Condition, FixedGrid, ResidualCodec
from flowevo.objectives import Constraint, FunctionObjective, LocalEvaluator


@pytest.fixture(scope="module")
def toy_task(toy16):
    """``(codec, task, one-objective evaluator, two-objective constrained evaluator, goal centre)`` for 4 rows."""
    toy, model = toy16
    rows = 4
    src, lab = toy.sample(rows, torch.Generator().manual_seed(5), labels=torch.zeros(rows, dtype=torch.long))
    task = EditTask(src, Condition.from_labels(lab), Condition.from_labels(torch.ones(rows, dtype=torch.long)))
    centre = toy.centres[1, 0]
    to_goal = FunctionObjective("to_goal", "min", lambda b: (b.x - centre).norm(dim=1))
    one = LocalEvaluator([to_goal])
    two = LocalEvaluator([to_goal, FunctionObjective("x0", "max", lambda b: b.x[:, 0])],
                         [Constraint("x1", lambda b: b.x[:, 1], float(centre[1]) + 0.5)])
    return ResidualCodec(model, FixedGrid("rk4", 6)), task, one, two, centre
