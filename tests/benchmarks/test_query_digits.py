"""Digits query counting: every evaluator the task builds is counted; the slerp ladder of seeds; a development split."""

import pytest
import torch

from flowevo.benchmarks.query_digits import _counting_run
from flowevo.evolve import slerp_ladder
from flowevo.objectives import Candidates, FunctionObjective, LocalEvaluator

GOALS = {"big": lambda ev, c: ev.values[:, 0] > 2}


class FakeTask:
    """The shape of DigitCounterfactuals that counting needs: ``x`` and ``evaluator(tau)`` through ``wrap_evaluator``."""

    x = torch.zeros(2, 3)

    def __init__(self, wrap_evaluator=None):
        self.wrap = wrap_evaluator

    def evaluator(self, tau: float):
        return self.wrap(LocalEvaluator([FunctionObjective("sum", "min", lambda c: c.x.sum(1))]))


def test_counting_run_wraps_every_evaluator_the_task_builds():
    def run(b):  # as a benchmark method would: build an evaluator through the bench, score two batches
        ev = b.evaluator(0.9)
        ev(Candidates(x=torch.ones(4, 3) * torch.tensor([0.0, 0.0, 0.0, 1.0])[:, None], source_index=torch.tensor([0, 0, 1, 1])))
        ev(Candidates(x=torch.ones(4, 3), source_index=torch.tensor([0, 0, 1, 1])))
        return {"acc": 1.0}

    result, counters = _counting_run(FakeTask, run, GOALS)
    assert result == {"acc": 1.0} and len(counters) == 1
    assert counters[0].spent.tolist() == [4, 4] and counters[0].first["big"].tolist() == [3, 2]
    with pytest.raises(RuntimeError, match="no evaluator"):
        _counting_run(FakeTask, lambda b: {}, GOALS)


def test_slerp_ladder_runs_from_start_to_end():
    torch.manual_seed(0)
    start, end = torch.randn(3, 4), torch.randn(3, 4)
    ladder = slerp_ladder(start, end, weights=(0.5, 1.0))
    assert ladder.shape == (3, 3, 4) and torch.allclose(ladder[:, 0], start)
    assert torch.allclose(ladder[:, 2], end, atol=1e-4)  # weight 1 is the end
    assert torch.allclose(ladder[:, 1].norm(dim=1), (start.norm(dim=1) + end.norm(dim=1)) / 2, atol=1e-4)
    with pytest.raises(ValueError, match="same shape"):
        slerp_ladder(start, end[:2])


def test_a_development_split_runs_the_query_benchmarks_goals_on_training_digits():
    from flowevo.benchmarks.query_digits import kept_scores, run_on_training_digits

    rows = slice(1200, 1203)
    run = run_on_training_digits({"random": kept_scores(0.9, lambda cf: cf.search("random", 0.9))}, seeds=(100,), rows=rows)
    assert run["rows"] == "training digits 1200-1202" and run["close"]["threshold"] > 0
    assert set(run["first"]) == {"valid", "close"} and len(run["first"]["close"]["random"][0]) == 3
    final = run["final"]["random"][0]
    assert {"64", "384"} <= set(final["hypervolume_rows"]) and final["hypervolume"]["384"] >= final["hypervolume"]["64"]
