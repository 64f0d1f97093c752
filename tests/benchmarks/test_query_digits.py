"""Digits query counting: every evaluator the digits benchmark builds is counted; the anchor ladder."""

from types import SimpleNamespace

import pytest
import torch

from flowevo.benchmarks.query_digits import _counting_run, anchor_ladder
from flowevo.flow import Condition, FixedGrid, MLPVelocity, ResidualCodec
from flowevo.objectives import Candidates, FunctionObjective, LocalEvaluator

GOALS = {"big": lambda ev, c: ev.values[:, 0] > 2}


class FakeBench:
    """The shape of DigitsBench that counting needs: ``x`` and ``evaluator(tau)``."""

    x = torch.zeros(2, 3)

    def evaluator(self, tau: float) -> LocalEvaluator:
        return LocalEvaluator([FunctionObjective("sum", "min", lambda c: c.x.sum(1))])


def test_counting_run_wraps_every_evaluator_the_bench_builds():
    bench = FakeBench()

    def run(b):  # as a benchmark method would: build an evaluator through the bench, score two batches
        ev = b.evaluator(0.9)
        ev(Candidates(x=torch.ones(4, 3) * torch.tensor([0.0, 0.0, 0.0, 1.0])[:, None], source_index=torch.tensor([0, 0, 1, 1])))
        ev(Candidates(x=torch.ones(4, 3), source_index=torch.tensor([0, 0, 1, 1])))
        return {"acc": 1.0}

    result, counters = _counting_run(bench, run, GOALS)
    assert result == {"acc": 1.0} and len(counters) == 1
    assert counters[0].spent.tolist() == [4, 4] and counters[0].first["big"].tolist() == [3, 2]
    assert type(bench.evaluator(0.9)) is LocalEvaluator  # put back
    with pytest.raises(RuntimeError, match="no evaluator"):
        _counting_run(bench, lambda b: {}, GOALS)


def test_anchor_ladder_runs_from_the_target_anchor_to_the_source_residual():
    torch.manual_seed(0)
    codec = ResidualCodec(MLPVelocity((4,), num_classes=2, hidden=8, depth=1, time_dim=4), FixedGrid("rk4", 2))
    x, src_c, anchor = torch.randn(3, 4), Condition.from_labels([0, 1, 0]), torch.randn(3, 1, 4)
    ladder = anchor_ladder(SimpleNamespace(codec=codec, x=x, src_c=src_c, target_seeds=anchor), weights=(0.5, 1.0))
    r_src = codec.invert(x, src_c)
    assert ladder.shape == (3, 3, 4) and torch.allclose(ladder[:, 0], anchor[:, 0])
    assert torch.allclose(ladder[:, 2], r_src, atol=1e-4)  # weight 1 is the source's own residual
    assert torch.allclose(ladder[:, 1].norm(dim=1), (anchor[:, 0].norm(dim=1) + r_src.norm(dim=1)) / 2, atol=1e-4)
