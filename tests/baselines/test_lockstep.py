"""Lockstep: per-source programs that ask one fitness value at a time are evaluated in batches, in order."""

import numpy as np
import pytest

from flowevo.baselines.lockstep import Lockstep


def _programs(n, calls):
    def make(b):
        def run(fitness):
            for i in range(calls[b]):
                fitness((b, i, float(np.random.rand())))  # global RNG: same order every run

        return run

    return [make(b) for b in range(n)]


def test_rounds_hold_one_request_per_live_source_and_respect_the_budget():
    rounds = []
    np.random.seed(0)
    broker = Lockstep(_programs(3, [2, 5, 9]), budget=4)
    broker.run(lambda rows, xs: rounds.append((rows, xs)) or [x[1] for x in xs])
    assert [r[0] for r in rounds] == [[0, 1, 2], [0, 1, 2], [1, 2], [1, 2]]
    assert broker.calls == [2, 4, 4]
    np.random.seed(0)
    again = []
    Lockstep(_programs(3, [2, 5, 9]), budget=4).run(lambda rows, xs: again.append(xs) or [0.0] * len(xs))
    assert again == [r[1] for r in rounds]  # same interleaving, same global random draws


def test_values_reach_each_program_and_errors_propagate():
    seen = {}

    def program(b):
        def run(fitness):
            seen[b] = [fitness(b * 10 + i) for i in range(3)]

        return run

    Lockstep([program(0), program(1)], budget=3).run(lambda rows, xs: [2.0 * x for x in xs])
    assert seen == {0: [0.0, 2.0, 4.0], 1: [20.0, 22.0, 24.0]}

    def bad(fitness):
        fitness(1)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        Lockstep([bad, program(1)], budget=3).run(lambda rows, xs: [0.0] * len(xs))
