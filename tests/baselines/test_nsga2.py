"""NSGA-II (pymoo ask/tell per source) on the shared codec: budget, determinism, Pareto sets, constraints."""

import math

import pytest
import torch

from flowevo.baselines import nsga2_search
from flowevo.objectives import Candidates, FunctionObjective, LocalEvaluator


def test_two_objectives_with_a_constraint(toy_task):
    codec, task, _, two, _ = toy_task
    res = nsga2_search(codec, task, two, budget_per_row=64, popsize=8, seed=0)
    assert res.method == "nsga2" and res.evaluations_per_row.tolist() == [64.0] * 4 and len(res.history) == 8
    hv = [h.hypervolume for h in res.history]
    assert all(b >= a - 1e-12 for a, b in zip(hv, hv[1:])) and hv[-1] > hv[0]  # the archive's front only grows
    assert max(len(res.pareto_set(b)) for b in range(4)) > 1
    assert (res.best.violation == 0).all()
    again = nsga2_search(codec, task, two, budget_per_row=64, popsize=8, seed=0)
    assert torch.equal(res.population.values, again.population.values)
    other = nsga2_search(codec, task, two, budget_per_row=64, popsize=8, seed=1)
    assert not torch.equal(res.population.values, other.population.values)


def test_one_objective_improves_on_the_start_and_failures_do_not_stop_it(toy_task):
    codec, task, one, _, centre = toy_task
    with torch.inference_mode():
        swap = codec.decode(codec.invert(task.sources, task.source_condition), task.target_condition)
    start = one(Candidates(x=swap, source_index=torch.arange(4))).values[:, 0]
    flaky = LocalEvaluator([FunctionObjective(
        "to_goal", "min", lambda b: torch.where(b.x[:, 2] > 0, math.nan, (b.x - centre).norm(dim=1)))])
    res = nsga2_search(codec, task, flaky, budget_per_row=80, popsize=8, seed=0)
    assert res.failures and (res.best.violation == 0).all()
    clean = nsga2_search(codec, task, one, budget_per_row=80, popsize=8, seed=0)
    assert (clean.best.values[:, 0] <= start + 1e-6).all() and clean.best.values[:, 0].mean() < start.mean() - 0.1


def test_bad_settings_are_clear_errors(toy_task):
    codec, task, one, _, _ = toy_task
    with pytest.raises(ValueError, match="popsize"):
        nsga2_search(codec, task, one, budget_per_row=8, popsize=1)
    with pytest.raises(ValueError, match="smaller than one batch"):
        nsga2_search(codec, task, one, budget_per_row=4, popsize=8)
