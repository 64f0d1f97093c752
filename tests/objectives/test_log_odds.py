"""LogOdds: a probability objective reported as its log-odds; the inner evaluator still records p."""

import math

import pytest
import torch

from flowevo.objectives import (
    Candidates,
    Constraint,
    FunctionObjective,
    LocalEvaluator,
    LogOdds,
    QueryCounter,
    is_cheap,
    log_odds,
)


def _batch(p):
    p = torch.as_tensor(p, dtype=torch.float64)
    return Candidates(x=torch.stack([p, 1 - p], dim=1), source_index=torch.zeros(len(p), dtype=torch.long))


def _evaluator():
    return LocalEvaluator([FunctionObjective("dist", "min", lambda c: c.x[:, 1], cheap=True),
                           FunctionObjective("p", "max", lambda c: c.x[:, 0])],
                          [Constraint("p>=0.5", lambda c: 0.5 - c.x[:, 0])])


def test_log_odds_is_monotone_finite_and_inverts_to_p():
    p = torch.tensor([0.0, 1e-9, 0.1, 0.5, 0.9, 0.99, 0.99999, 1.0], dtype=torch.float64)
    z = log_odds(p)
    assert torch.isfinite(z).all() and (z.diff() >= 0).all()
    assert z[3] == 0 and float(z[-1]) == pytest.approx(-float(z[0])) and z[-1] < 16.2
    inner = slice(2, 7)
    assert torch.allclose(torch.sigmoid(z[inner]), p[inner], rtol=1e-12)
    assert torch.isnan(log_odds(torch.tensor([float("nan")]))).all()
    with pytest.raises(ValueError, match="not a probability"):
        log_odds(torch.tensor([0.5, 1.5]))


def test_wrapper_replaces_one_column_and_the_inner_counter_still_records_p():
    counter = QueryCounter(_evaluator(), rows=1, goals={})
    ev = LogOdds(counter, "p")
    assert [o.name for o in ev.objectives] == ["dist", "p_log_odds"]
    assert [o.sense for o in ev.objectives] == ["min", "max"] and is_cheap(ev.objectives[0])
    assert ev.constraints == counter.constraints
    p = [0.3, 0.9, 0.999]
    out = ev(_batch(p))
    assert torch.allclose(out.values[:, 1], torch.log(torch.tensor(p) / (1 - torch.tensor(p))).double())
    assert torch.equal(out.values[:, 0], 1 - torch.tensor(p, dtype=torch.float64))
    assert out.feasible.tolist() == [False, True, True]
    assert torch.allclose(counter.scored().values[:, 1], torch.tensor(p, dtype=torch.float64))  # p, not log-odds
    assert ev.objectives[1](_batch([0.9])).item() == pytest.approx(math.log(9))
    assert LogOdds.threshold(0.9) == pytest.approx(math.log(9))


def test_unknown_objective_and_bad_threshold_are_clear_errors():
    with pytest.raises(ValueError, match="no objective named 'q'"):
        LogOdds(_evaluator(), "q")
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        LogOdds.threshold(1.0)
