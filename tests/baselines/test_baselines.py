"""Random search and CMA-ES search the same residual space and improve on the source."""

import torch

from flowevo.baselines import cma_search, random_search
from flowevo.evolve import EditTask
from flowevo.flow import Condition, FixedGrid, ResidualCodec
from flowevo.objectives import Candidates, FunctionObjective, LocalEvaluator


def setup(toy16, rows=4):
    toy, model = toy16
    src, lab = toy.sample(rows, torch.Generator().manual_seed(5), labels=torch.zeros(rows, dtype=torch.long))
    task = EditTask(src, Condition.from_labels(lab), Condition.from_labels(torch.ones(rows, dtype=torch.long)))
    centre = toy.centres[1, 0]
    ev = LocalEvaluator([FunctionObjective("to_goal", "min", lambda b: (b.x - centre).norm(dim=1))])
    return ResidualCodec(model, FixedGrid("rk4", 6)), task, ev


def test_random_search_budget_and_determinism(toy16):
    codec, task, ev = setup(toy16)
    a = random_search(codec, task, ev, budget_per_row=40, batch=8, seed=1)
    b = random_search(codec, task, ev, budget_per_row=40, batch=8, seed=1)
    assert a.evaluations_per_row == 40 and a.best_values.shape == (4, 1)
    assert torch.equal(a.best_values, b.best_values)
    success = lambda e, c: e.values[:, 0] < 1e9
    assert (random_search(codec, task, ev, 16, batch=8, success=success).first_success == 8).all()


def test_cma_improves_on_the_swap(toy16):
    codec, task, ev = setup(toy16)
    with torch.inference_mode():
        swap = codec.decode(codec.invert(task.sources, task.source_condition), task.target_condition)
    swap_score = ev(Candidates(x=swap, source_index=torch.arange(4))).values[:, 0]
    res = cma_search(codec, task, ev, budget_per_row=96, popsize=8, sigma0=0.3, seed=0)
    assert res.evaluations_per_row == 96
    assert res.best_values[:, 0].mean() < swap_score.mean()
