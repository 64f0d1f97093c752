"""The Evolver on a trained toy flow: it improves, survives failing objectives, is reproducible."""


import pytest
import torch

from flowevo.evolve import SEED, EditTask, Evolver, MaxEvaluations, MaxGenerations, Population, Stagnation, non_dominated
from flowevo.flow import Condition, FixedGrid, ResidualCodec
from flowevo.objectives import Constraint, FunctionObjective, LocalEvaluator


def make(toy16, rows=8):
    toy, model = toy16
    src, lab = toy.sample(rows, torch.Generator().manual_seed(11), labels=torch.zeros(rows, dtype=torch.long))
    task = EditTask(src, Condition.from_labels(lab), Condition.from_labels(torch.ones(rows, dtype=torch.long)))
    return toy, ResidualCodec(model, FixedGrid("rk4", 6)), task


def goal_objective(toy):
    centre = toy.centres[1, 0]
    return FunctionObjective("to_goal", "min", lambda b: (b.x - centre).norm(dim=1))


def test_evolution_improves_a_toy_objective(toy16):
    toy, codec, task = make(toy16)
    res = Evolver(codec, task, LocalEvaluator([goal_objective(toy)]), population_size=8,
                  termination=[MaxGenerations(8)]).run()
    first, last = res.history[0].best[0], res.history[-1].best[0]
    assert last < 0.7 * first
    assert all(b.best[0] <= a.best[0] + 1e-9 for a, b in zip(res.history, res.history[1:]))  # elitism
    assert res.evaluations == 9 * 8 * 8 and len(res.population) == 64
    assert res.best.values.shape == (8, 1)


def test_generation_zero_contains_the_source_residual(toy16):
    toy, codec, task = make(toy16, rows=3)
    ev = Evolver(codec, task, LocalEvaluator([goal_objective(toy)]), population_size=4)
    cands = ev.ask()
    with torch.inference_mode():
        r = codec.invert(task.sources, task.source_condition)
    assert torch.allclose(ev.pending.residuals[::4], r)
    assert (ev.pending.origin == SEED).all() and cands.source_index.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert torch.equal(cands.sources, task.sources[cands.source_index])


def test_same_seed_same_result_other_seed_differs(toy16):
    toy, codec, task = make(toy16, rows=4)
    run = lambda s: Evolver(codec, task, LocalEvaluator([goal_objective(toy)]), population_size=6,
                            termination=[MaxGenerations(4)], seed=s).run()
    a, b, c = run(1), run(1), run(2)
    assert torch.equal(a.population.residuals, b.population.residuals)
    assert torch.equal(a.population.values, b.population.values)
    assert not torch.equal(a.population.residuals, c.population.residuals)


def test_failing_objective_does_not_stop_the_run(toy16):
    toy, codec, task = make(toy16, rows=4)

    def flaky(batch):
        if (batch.source_index == 2).any():
            raise RuntimeError("simulator crashed")
        return batch.x[:, 0]

    def nan_for_row_1(batch):
        out = batch.x[:, 1].clone()
        out[batch.source_index == 1] = float("nan")
        return out

    objs = [goal_objective(toy), FunctionObjective("flaky", "max", flaky), FunctionObjective("nan", "min", nan_for_row_1)]
    res = Evolver(codec, task, LocalEvaluator(objs), population_size=4, termination=[MaxGenerations(3)]).run()
    assert res.history[-1].generation == 3
    names = {f.name for f in res.failures}
    assert names == {"flaky", "nan"}
    assert {f.row for f in res.failures if f.name == "flaky"} == {2}
    assert {f.row for f in res.failures if f.name == "nan"} == {1}
    assert any("simulator crashed" in f.error for f in res.failures)
    feasible_rows = set(res.population.row[res.population.feasible].tolist())
    assert feasible_rows == {0, 3}
    assert res.history[-1].rows_feasible == 0.5


def test_constraints_steer_survival(toy16):
    toy, codec, task = make(toy16, rows=4)
    stay = Constraint("stay_near_x0_positive", lambda b: -b.x[:, 0], bound=0.0)  # wants x[0] >= 0
    res = Evolver(codec, task, LocalEvaluator([goal_objective(toy)], [stay]), population_size=8,
                  termination=[MaxGenerations(5)]).run()
    best = res.best
    assert ((best.violation == 0) == (best.decoded[:, 0] >= 0)).all()
    assert res.history[-1].rows_feasible >= res.history[0].rows_feasible


def test_multi_objective_pareto_sets_and_hypervolume(toy16):
    toy, codec, task = make(toy16, rows=3)
    objs = [goal_objective(toy), FunctionObjective("moved", "min", lambda b: (b.x - b.sources).norm(dim=1))]
    res = Evolver(codec, task, LocalEvaluator(objs), population_size=8, termination=[MaxGenerations(5)]).run()
    assert res.history[-1].hypervolume >= res.history[0].hypervolume > 0
    ps = res.pareto_set(0)
    assert len(ps) >= 1 and (ps.row == 0).all()
    v = ps.values
    for i in range(len(ps)):  # nobody in the set dominates anybody else in it
        assert not ((v <= v[i]).all(dim=1) & (v < v[i]).any(dim=1)).any()


def test_the_result_holds_the_front_of_everything_scored_not_only_the_survivors(toy16):
    toy, codec, task = make(toy16, rows=3)
    objs = [goal_objective(toy), FunctionObjective("moved", "min", lambda b: (b.x - b.sources).norm(dim=1))]
    scored = []
    ev = Evolver(codec, task, LocalEvaluator(objs), population_size=4, termination=[MaxGenerations(6)])
    res = ev.run(callbacks=[lambda e: scored.append(e.last)])
    everything = Population.cat(scored)
    grew = False
    for b in range(3):
        mine = everything.take(torch.nonzero(everything.row == b).flatten())
        front = mine.values[non_dominated(mine.values)]
        got = res.pareto_set(b).values
        assert sorted(map(tuple, got.tolist())) == sorted(map(tuple, front.tolist()))
        grew |= len(got) > 4  # more than the survivors could hold
    assert grew
    survivors = ev.population
    assert torch.equal(res.population.residuals[: len(survivors)], survivors.residuals)  # survivors first
    n = len(res.population)
    same = (res.population.row[:, None] == res.population.row[None]) & (
        torch.cdist(res.population.residuals, res.population.residuals) == 0)
    assert int(same.sum()) == n  # nobody twice


def test_termination_criteria(toy16):
    toy, codec, task = make(toy16, rows=2)
    ev = LocalEvaluator([goal_objective(toy)])
    res = Evolver(codec, task, ev, population_size=5, termination=[MaxEvaluations(30)]).run()
    assert res.evaluations == 30 and "evaluations" in res.stop_reason
    const = LocalEvaluator([FunctionObjective("flat", "min", lambda b: torch.zeros(len(b)))])
    res = Evolver(codec, task, const, population_size=4, termination=[Stagnation(patience=2), MaxGenerations(50)]).run()
    assert res.history[-1].generation == 2 and "no improvement" in res.stop_reason


def test_ask_tell_protocol_errors(toy16):
    toy, codec, task = make(toy16, rows=2)
    ev = LocalEvaluator([goal_objective(toy)])
    evo = Evolver(codec, task, ev, population_size=3)
    with pytest.raises(RuntimeError, match="pending"):
        evo.tell(None)
    cands = evo.ask()
    with pytest.raises(RuntimeError, match="twice"):
        evo.ask()
    evo.tell(ev(cands))
    assert evo.generation == 0 and len(evo.history) == 1
    with pytest.raises(ValueError):
        Evolver(codec, task, ev, population_size=0)
    with pytest.raises(ValueError, match="extra_seeds"):
        Evolver(codec, task, ev, population_size=3, extra_seeds=torch.zeros(5, 1, 16)).ask()


def test_extra_seeds_enter_generation_zero(toy16):
    toy, codec, task = make(toy16, rows=2)
    seeds = torch.randn(2, 2, 16, generator=torch.Generator().manual_seed(0))
    evo = Evolver(codec, task, LocalEvaluator([goal_objective(toy)]), population_size=5, extra_seeds=seeds)
    evo.ask()
    res = evo.pending.residuals.reshape(2, 5, 16)
    assert torch.allclose(res[:, 1:3], seeds)


def test_generation_zero_without_the_source_residual_starts_with_the_seeds_in_order(toy16):
    toy, codec, task = make(toy16, rows=2)
    ev = LocalEvaluator([goal_objective(toy)])
    seeds = torch.randn(2, 3, 16, generator=torch.Generator().manual_seed(0))
    evo = Evolver(codec, task, ev, population_size=4, extra_seeds=seeds, include_source=False)
    evo.ask()
    res = evo.pending.residuals.reshape(2, 4, 16)
    assert torch.allclose(res[:, :3], seeds)
    own = codec.invert(task.sources, task.source_condition)
    assert not torch.allclose(res[:, 3], own)  # the fourth is a variant, not the own residual
    with pytest.raises(ValueError, match="include_source=False needs extra_seeds"):
        Evolver(codec, task, ev, population_size=4, include_source=False)
