"""Failure isolation details of evaluate_callable / LocalEvaluator shared by every backend."""

from __future__ import annotations

import math

import torch

from flowevo.objectives import Candidates, FunctionObjective, LocalEvaluator, PartialFailure


def _batch(n: int = 4) -> Candidates:
    return Candidates(x=torch.arange(n, dtype=torch.float32)[:, None], source_index=torch.arange(n) + 100)


def test_partial_failure_keeps_other_values_without_a_second_call():
    calls = []

    def fn(b: Candidates):
        calls.append(len(b))
        raise PartialFailure(b.x[:, 0].double() * 2, {1: "candidate 1: exploded"})

    ev = LocalEvaluator([FunctionObjective("p", "min", fn)])(_batch())
    assert calls == [4]
    assert ev.failed.tolist() == [False, True, False, False]
    assert ev.values[:, 0].tolist()[0] == 0.0 and math.isnan(ev.values[1, 0]) and ev.values[3, 0] == 6.0
    assert [(f.index, f.row, f.error) for f in ev.failures] == [(1, 101, "candidate 1: exploded")]


def test_nan_after_a_raising_batch_is_recorded():
    def fn(b: Candidates):
        if len(b) > 1:
            raise RuntimeError("batch path broken")
        return torch.tensor([math.nan if b.x[0, 0] == 2 else 1.0])

    ev = LocalEvaluator([FunctionObjective("f", "min", fn)])(_batch())
    assert ev.failed.tolist() == [False, False, True, False]
    assert [(f.index, f.error) for f in ev.failures] == [(2, "returned non-finite value nan")]
