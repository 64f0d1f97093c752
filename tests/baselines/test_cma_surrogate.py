"""Surrogate-assisted CMA-ES (pycma's fitness_models) batched over sources; plain CMA-ES unchanged."""

import torch

from flowevo.baselines import cma_search
from flowevo.objectives import QueryCounter


class Spy:
    """An evaluator that records the rows of every batch it scores."""

    def __init__(self, inner):
        self.inner, self.objectives, self.constraints, self.rows = inner, inner.objectives, inner.constraints, []

    def __call__(self, cands):
        self.rows.append(cands.source_index.tolist())
        return self.inner(cands)


def test_surrogate_cma_spends_the_budget_exactly_and_beats_plain_cma_on_a_smooth_goal(toy_task):
    codec, task, one, _, _ = toy_task
    counter = QueryCounter(one, len(task), {})
    spy = Spy(counter)
    res = cma_search(codec, task, spy, budget_per_row=64, popsize=8, sigma0=0.3, seed=0, surrogate=True)
    assert res.method == "cma_surrogate" and res.evaluations_per_row.tolist() == [64.0] * 4
    assert counter.spent.tolist() == [64] * 4 and len(res.history) == res.info["rounds"] == len(spy.rows)
    assert all(len(set(r)) == len(r) for r in spy.rows)  # at most one candidate per source and round
    assert spy.rows[0] == [0, 1, 2, 3]  # every source in one decode and one black-box call
    plain = cma_search(codec, task, one, budget_per_row=64, popsize=8, sigma0=0.3, seed=0)
    assert res.best.values[:, 0].mean() < plain.best.values[:, 0].mean()
    again = cma_search(codec, task, one, budget_per_row=64, popsize=8, sigma0=0.3, seed=0, surrogate=True)
    assert torch.equal(res.population.values, again.population.values)  # same seed, same result


def test_plain_cma_is_unchanged_by_the_new_options(toy_task):
    codec, task, one, _, _ = toy_task
    a = cma_search(codec, task, one, budget_per_row=32, popsize=8, sigma0=0.3, seed=2)
    b = cma_search(codec, task, one, budget_per_row=32, popsize=8, sigma0=0.3, seed=2, surrogate=False, space=None)
    assert a.method == "cma" and len(a.history) == 4 and torch.equal(a.population.residuals, b.population.residuals)
