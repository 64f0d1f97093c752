"""Random search and CMA-ES search the same residual space and improve on the source."""

import torch

from flowevo.baselines import cma_search, gradient_search, leap, random_search
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


def test_leap_moves_until_the_label_reads_target(toy16):
    toy, model = toy16
    codec = ResidualCodec(model, FixedGrid("rk4", 8))
    centres = toy.centres
    label_fn = lambda x: torch.cdist(x, centres.reshape(-1, 16)).argmin(dim=1) // toy.modes
    src, lab = toy.sample(16, torch.Generator().manual_seed(2), labels=torch.zeros(16, dtype=torch.long))
    tgt = torch.ones(16, dtype=torch.long)
    res = leap(codec, src, lab, tgt, label_fn, gamma=0.5, rounds=10)
    assert (res.labels == 1).double().mean() >= 0.9
    assert ((res.queries >= 1) & (res.queries <= 10)).all()
    done = res.labels == 1
    # rows that flipped stopped querying: a second call from the edits does nothing to them
    again = leap(codec, res.x[done], tgt[done], tgt[done], label_fn, gamma=0.5, rounds=3)
    assert (again.queries == 0).all() and torch.equal(again.x, res.x[done])


def test_gradient_search_reaches_a_differentiable_goal(toy16):
    toy, model = toy16
    goal = toy.centres[1, 0]
    z0 = torch.zeros(4, 16)
    res = gradient_search(z0, decode=lambda z: z, loss=lambda x: (x - goal).pow(2).sum(dim=1),
                          done=lambda x: (x - goal).norm(dim=1) < 0.5, steps=500, lr=0.1, weight=0.0)
    assert ((res.x - goal).norm(dim=1) < 0.5).all() and (res.steps < 500).all()
