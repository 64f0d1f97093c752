"""The local evaluator isolates failures per candidate and validates its inputs."""

import math

import pytest
import torch

from flowevo.objectives import Candidates, Constraint, FunctionObjective, LocalEvaluator


def batch(n=5):
    return Candidates(x=torch.arange(n, dtype=torch.float32)[:, None], source_index=torch.arange(n))


def test_values_senses_and_constraints():
    ev = LocalEvaluator([FunctionObjective("x", "max", lambda b: b.x[:, 0])], [Constraint("x_le_2", lambda b: b.x[:, 0], 2.0)])
    out = ev(batch())
    assert out.values[:, 0].tolist() == [0, 1, 2, 3, 4]
    assert out.violation.tolist() == [0, 0, 0, 1, 2]
    assert out.feasible.tolist() == [True, True, True, False, False]


def test_raising_objective_fails_only_the_offending_candidates():
    def picky(b):
        if (b.x[:, 0] == 3).any():
            raise ValueError("cannot score 3")
        return b.x[:, 0] * 2

    out = LocalEvaluator([FunctionObjective("picky", "min", picky)])(batch())
    assert out.failed.tolist() == [False, False, False, True, False]
    assert out.values[[0, 1, 2, 4], 0].tolist() == [0, 2, 4, 8] and math.isnan(out.values[3, 0])
    (f,) = out.failures
    assert f.index == 3 and f.row == 3 and f.name == "picky" and "cannot score 3" in f.error


def test_nan_and_wrong_shape_are_failures():
    nan = FunctionObjective("nan", "min", lambda b: torch.where(b.x[:, 0] == 1, float("nan"), b.x[:, 0]))
    out = LocalEvaluator([nan])(batch())
    assert out.failed.tolist() == [False, True, False, False, False]
    shape = FunctionObjective("shape", "min", lambda b: torch.zeros(len(b), 2))
    out = LocalEvaluator([shape])(batch(3))
    assert out.failed.all() and all("shape" in f.error for f in out.failures)


def test_constraint_failure_is_infeasible():
    bad = Constraint("boom", lambda b: 1 / 0)
    out = LocalEvaluator([FunctionObjective("x", "min", lambda b: b.x[:, 0])], [bad])(batch(2))
    assert out.failed.all() and len(out.failures) == 2


def test_evaluator_validation():
    with pytest.raises(ValueError, match="at least one"):
        LocalEvaluator([])
    with pytest.raises(ValueError, match="unique"):
        f = FunctionObjective("a", "min", lambda b: b.x[:, 0])
        LocalEvaluator([f, f])
    with pytest.raises(ValueError, match="sense"):
        FunctionObjective("a", "up", lambda b: b.x)
