"""Baselines search the same residual space, improve on the source and return one EditResult type."""

import torch

from flowevo.baselines import cma_search, gradient_search, leap, random_search
from flowevo.evolve import EditResult, EditTask
from flowevo.flow import Condition, FixedGrid, ResidualCodec
from flowevo.objectives import Candidates, FunctionObjective, LocalEvaluator, QueryCounter


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
    assert isinstance(a, EditResult) and a.method == "random"
    assert a.evaluations_per_row.tolist() == [40] * 4 and a.best.values.shape == (4, 1)
    assert torch.equal(a.best.values, b.best.values)
    assert len(a.history) == 5 and a.history[-1].evaluations == 160
    # the best kept is the best of everything scored: no candidate of the run beats it
    counter = QueryCounter(ev, 4, {"beats_best": lambda e, c: e.values[:, 0] < a.best.values[c.source_index.cpu(), 0]})
    random_search(codec, task, counter, budget_per_row=40, batch=8, seed=1)
    assert torch.isinf(counter.first["beats_best"]).all() and counter.spent.tolist() == [40] * 4


def test_cma_improves_on_the_swap(toy16):
    codec, task, ev = setup(toy16)
    with torch.inference_mode():
        swap = codec.decode(codec.invert(task.sources, task.source_condition), task.target_condition)
    swap_score = ev(Candidates(x=swap, source_index=torch.arange(4))).values[:, 0]
    res = cma_search(codec, task, ev, budget_per_row=96, popsize=8, sigma0=0.3, seed=0)
    assert res.method == "cma" and res.evaluations == 4 * 96
    assert res.best.values[:, 0].mean() < swap_score.mean()
    assert [h.best[0] for h in res.history] == sorted((h.best[0] for h in res.history), reverse=True)  # never worse


def test_leap_moves_until_the_label_reads_target(toy16):
    toy, model = toy16
    codec = ResidualCodec(model, FixedGrid("rk4", 8))
    centres = toy.centres
    label_fn = lambda x: torch.cdist(x, centres.reshape(-1, 16)).argmin(dim=1) // toy.modes
    src, lab = toy.sample(16, torch.Generator().manual_seed(2), labels=torch.zeros(16, dtype=torch.long))
    tgt = torch.ones(16, dtype=torch.long)
    res = leap(codec, src, lab, tgt, label_fn, gamma=0.5, rounds=10)
    labels, queries, x = res.info["labels"], res.evaluations_per_row, res.best.decoded
    assert res.method == "leap" and (labels == 1).double().mean() >= 0.9
    assert ((queries >= 1) & (queries <= 10)).all()
    done = labels == 1
    # rows that flipped stopped querying: a second call from the edits does nothing to them
    again = leap(codec, x[done], tgt[done], tgt[done], label_fn, gamma=0.5, rounds=3)
    assert (again.evaluations_per_row == 0).all() and torch.equal(again.best.decoded, x[done])


def test_gradient_search_reaches_a_differentiable_goal(toy16):
    toy, model = toy16
    goal = toy.centres[1, 0]
    z0 = torch.zeros(4, 16)
    res = gradient_search(z0, decode=lambda z: z, loss=lambda x: (x - goal).pow(2).sum(dim=1),
                          done=lambda x: (x - goal).norm(dim=1) < 0.5, steps=500, lr=0.1, weight=0.0)
    x = res.best.decoded
    assert res.method == "gradient" and ((x - goal).norm(dim=1) < 0.5).all() and (res.evaluations_per_row < 500).all()
