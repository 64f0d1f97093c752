"""Constraint handling: dual-ascent multipliers, the penalised survival, per-generation satisfaction, resume."""

import math

import pytest
import torch

from flowevo.evolve import EditTask, Elitist, Evolver, LagrangianPenalty, MaxGenerations, Multipliers
from flowevo.evolve.checkpoint import Checkpointer, load_run_state
from flowevo.evolve.constraints import violation_rate
from flowevo.flow import Condition, FixedGrid, ResidualCodec
from flowevo.objectives import Constraint, FunctionObjective, LocalEvaluator


def test_multiplier_rises_under_violation_and_falls_when_satisfied():
    m = Multipliers.full(2, lam=1.0, rho=0.5)
    for _ in range(3):
        m.update(torch.tensor([0.4, -0.2]))
    assert m.lam[0] == pytest.approx(1.6) and m.lam[1] == pytest.approx(0.7)
    for _ in range(10):
        m.update(torch.tensor([-0.2, -0.2]))
    assert m.lam.tolist() == pytest.approx([0.6, 0.0]) and m.lam[1] == 0  # never below zero
    m.update(torch.tensor([float("nan"), 0.0]))  # not measured: unchanged
    assert m.lam.tolist() == pytest.approx([0.6, 0.0])


def test_rho_grows_only_while_the_violation_does_not_shrink():
    m = Multipliers.full(1, lam=0.0, rho=1.0, growth=2.0)
    m.update(torch.tensor([0.5]))   # first measurement: nothing to compare with
    assert m.rho.item() == 1.0
    m.update(torch.tensor([0.5]))   # did not shrink -> grow
    assert m.rho.item() == 2.0
    m.update(torch.tensor([0.1]))   # shrank -> keep
    assert m.rho.item() == 2.0
    m.update(torch.tensor([-0.3]))  # satisfied -> keep
    assert m.rho.item() == 2.0


def test_violation_rate_ignores_failures():
    g = torch.tensor([[0.5, 2.0], [1.5, float("nan")], [2.0, 0.0], [float("nan"), 3.0]], dtype=torch.float64)
    rate = violation_rate(g, torch.tensor([1.0, 1.0]))
    assert rate.tolist() == pytest.approx([2 / 3, 2 / 3])


def _penalty(lam: float, elites: int = 1) -> LagrangianPenalty:
    pen = LagrangianPenalty(lam0=lam, elites=elites)
    F = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    pen.setup(["c"], torch.tensor([0.0]), F, torch.tensor([[1.0], [-1.0]], dtype=torch.float64))
    return pen


def test_penalised_survival_keeps_the_best_feasible_and_admits_near_feasible():
    # one row, k = 2: feasible individuals with poor objective, an infeasible one with a good objective
    F = torch.tensor([[5.0], [6.0], [7.0], [1.0], [0.5]], dtype=torch.float64)  # minimisation form
    g = torch.tensor([[-1.0], [-1.0], [-1.0], [0.05], [3.0]], dtype=torch.float64)  # bound 0
    v = g.clamp_min(0).squeeze(1)
    row = torch.zeros(5, dtype=torch.long)
    plain = Elitist()(F, v, row, 1, 2)
    assert plain.tolist() == [0, 1]                       # feasibility first
    low = _penalty(lam=0.5).select(Elitist(), F, v, g, row, 1, 2)
    assert low.tolist() == [0, 3]                         # best feasible kept, then the near-feasible good one
    high = _penalty(lam=1e4).select(Elitist(), F, v, g, row, 1, 2)
    assert high.tolist() == [0, 1]                        # a large multiplier is feasibility first again
    all_elite = _penalty(lam=0.5, elites=2).select(Elitist(), F, v, g, row, 1, 2)
    assert all_elite.tolist() == plain.tolist()


def test_failed_candidates_still_rank_last_under_the_penalty():
    F = torch.tensor([[1.0], [float("nan")], [2.0], [3.0]], dtype=torch.float64)
    g = torch.tensor([[2.0], [float("nan")], [0.5], [-1.0]], dtype=torch.float64)
    v = torch.tensor([2.0, math.inf, 0.5, 0.0], dtype=torch.float64)
    keep = _penalty(lam=0.0, elites=1).select(Elitist(), F, v, g, torch.zeros(4, dtype=torch.long), 1, 4)
    assert keep.tolist()[0] == 3 and keep.tolist()[-1] == 1


def _make(toy16, penalty, gens, bound=3.3, seed=5):
    toy, model = toy16
    rows = 6
    src, lab = toy.sample(rows, torch.Generator().manual_seed(11), labels=torch.zeros(rows, dtype=torch.long))
    task = EditTask(src, Condition.from_labels(lab), Condition.from_labels(torch.ones(rows, dtype=torch.long)))
    goal = toy.centres[1, 0]
    ev = LocalEvaluator([FunctionObjective("to_goal", "min", lambda b: (b.x - goal).norm(dim=1))],
                        [Constraint("budget", lambda b: (b.x - b.sources).norm(dim=1), bound=bound),
                         Constraint("x0_small", lambda b: b.x[:, 0], bound=10.0)])
    return Evolver(ResidualCodec(model, FixedGrid("rk4", 4)), task, ev, population_size=6,
                   termination=[MaxGenerations(gens)], seed=seed, penalty=penalty)


def test_default_is_plain_feasibility_first_and_records_satisfaction(toy16):
    a = _make(toy16, None, 3).run()
    b = _make(toy16, LagrangianPenalty(elites=6), 3).run()  # every slot feasibility-first: identical survivors
    assert torch.equal(a.population.residuals, b.population.residuals)
    for h in a.history:
        assert set(h.satisfaction) == {"budget", "x0_small"} and h.multipliers == {}
        assert h.satisfaction["x0_small"] == 1.0
        assert h.feasible_fraction <= min(h.satisfaction.values())
    assert 0 < a.history[0].satisfaction["budget"] < 1  # the budget is active
    assert b.history[-1].multipliers["budget"] >= 0


def test_penalty_run_keeps_best_feasible_and_adapts_multipliers(toy16):
    res = _make(toy16, LagrangianPenalty(), 6).run()
    lam = [h.multipliers["budget"] for h in res.history]
    sat = [h.survivors_feasible for h in res.history]
    # the never-violated constraint's multiplier falls from its start value 1.0 by rho * 0.25 per generation
    assert [h.multipliers["x0_small"] for h in res.history] == pytest.approx([1 - 0.125 * (i + 1) for i in range(7)])
    # each step is the dual step on the survivors' measured violation rate (allowed share 0.25, rho 0.5)
    for prev, cur, s in zip([1.0] + lam, lam, sat):
        assert cur == pytest.approx(max(0.0, prev + 0.5 * ((1 - s) - 0.25)))
    assert any(1 - s > 0.25 for s in sat) and max(lam) > 1.0  # the budget was violated and its multiplier rose
    for a, b in zip(res.history, res.history[1:]):  # each row's best feasible edit is never lost (elites=1)
        assert b.rows_feasible >= a.rows_feasible
        if b.rows_feasible == a.rows_feasible:
            assert b.best[0] <= a.best[0] + 1e-9
    best = res.best
    assert (best.violation == 0).float().mean() >= 0.5


def test_resume_with_penalty_equals_uninterrupted(toy16, tmp_path):
    full = _make(toy16, LagrangianPenalty(), 5).run()
    first = _make(toy16, LagrangianPenalty(), 2)
    first.run(callbacks=[Checkpointer(tmp_path / "s.pt")])
    resumed = _make(toy16, LagrangianPenalty(), 5)
    load_run_state(resumed, tmp_path / "s.pt")
    assert resumed.penalty.multipliers.lam.tolist() == first.penalty.multipliers.lam.tolist()
    res = resumed.run()
    assert torch.equal(res.population.residuals, full.population.residuals)
    assert [h.multipliers for h in res.history] == [h.multipliers for h in full.history]
    with pytest.raises(ValueError, match="constraint handling"):
        load_run_state(_make(toy16, None, 5), tmp_path / "s.pt")
