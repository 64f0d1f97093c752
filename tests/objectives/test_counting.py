"""QueryCounter: per-row first-success counting, the success curve, and the wrapper in real runs."""

import math

import torch

from flowevo.baselines import cma_search, random_search
from flowevo.evolve import EditTask, Evolver, MaxGenerations
from flowevo.flow import Condition, FixedGrid, MLPVelocity, ResidualCodec
from flowevo.objectives import (
    Candidates,
    Evaluation,
    FunctionObjective,
    LocalEvaluator,
    QueryCounter,
    evaluations_to_rate,
    success_curve,
)


class _Fixed:
    """A black box that marks given candidates of each batch as successes."""

    objectives = [FunctionObjective("f", "min", lambda c: c.x[:, 0])]
    constraints = []

    def __init__(self, hits):
        self.hits = list(hits)

    def __call__(self, c):
        n = len(c)
        ok = torch.zeros(n, dtype=torch.bool)
        ok[self.hits.pop(0)] = True
        return Evaluation(torch.zeros(n, 1), torch.zeros(n, 0), torch.where(ok, 0.0, 1.0).double())


def _batch(rows):
    rows = torch.tensor(rows)
    return Candidates(x=torch.zeros(len(rows), 2), source_index=rows)


def test_counter_counts_within_row_positions_across_batches():
    counter = QueryCounter(_Fixed([[3], [1, 4]]), rows=3, goals={"ok": lambda ev, c: ev.violation == 0})
    counter(_batch([0, 0, 1, 1, 0]))  # row 1's second candidate succeeds: 2 evaluations of row 1
    assert counter.first["ok"].tolist() == [math.inf, 2, math.inf]
    counter(_batch([0, 0, 1, 1, 0]))  # row 0's 2nd and 3rd of this batch: 3 earlier + 2 = 5; row 1 keeps 2
    assert counter.first["ok"].tolist() == [5, 2, math.inf]
    assert counter.spent.tolist() == [6, 4, 0]
    assert counter.objectives[0].name == "f" and counter.constraints == []  # the inner evaluator's callables


def test_success_curve_is_monotone_and_rates_match_it():
    first = [1, 3, math.inf, 5, 3, 40]
    grid = list(range(0, 50))
    curve = success_curve(first, grid)
    assert all(a <= b for a, b in zip(curve, curve[1:])) and curve[0] == 0 and curve[-1] == 5 / 6
    assert evaluations_to_rate(first, 0.5) == 3 and evaluations_to_rate(first, 4 / 6) == 5
    assert evaluations_to_rate(first, 5 / 6) == 40 and math.isinf(evaluations_to_rate(first, 1.0))
    for r in (0.2, 0.5, 0.8):  # the curve first reaches r where evaluations_to_rate says
        e = int(evaluations_to_rate(first, r))
        assert curve[e] >= r and curve[e - 1] < r


def test_counter_wraps_the_evolver_and_the_baselines():
    torch.manual_seed(0)
    codec = ResidualCodec(MLPVelocity((3,), num_classes=2, hidden=8, depth=1, time_dim=4), FixedGrid("euler", 2))
    task = EditTask(torch.randn(4, 3), Condition.from_labels([0, 1, 0, 1]), Condition.from_labels([1, 0, 1, 0]))
    evaluator = LocalEvaluator([FunctionObjective("norm", "min", lambda c: c.x.norm(dim=1))])
    goals = {"any": lambda ev, c: torch.ones(len(c), dtype=torch.bool),
             "never": lambda ev, c: torch.zeros(len(c), dtype=torch.bool)}
    c1 = QueryCounter(evaluator, 4, goals)
    Evolver(codec, task, c1, population_size=3, termination=[MaxGenerations(2)]).run()
    assert c1.spent.tolist() == [9] * 4 and c1.first["any"].tolist() == [1] * 4 and torch.isinf(c1.first["never"]).all()
    for search, kw in ((random_search, {"batch": 3}), (cma_search, {"popsize": 3})):
        c2 = QueryCounter(evaluator, 4, goals)
        search(codec, task, c2, 9, **kw)
        assert c2.spent.tolist() == [9] * 4 and c2.first["any"].tolist() == [1] * 4


def test_counter_keeps_every_scored_point_and_the_time_inside_the_black_box():
    counter = QueryCounter(_Fixed([[3], [1]]), rows=3, goals={})
    assert counter.scored().values.shape == (0, 1) and counter.inner_s == 0.0
    counter(_batch([0, 0, 1, 1, 0]))
    counter(_batch([0, 2]))
    pts = counter.scored()
    assert pts.row.tolist() == [0, 0, 1, 1, 0, 0, 2] and pts.position.tolist() == [1, 2, 1, 2, 3, 4, 1]
    assert pts.feasible.tolist() == [False, False, False, True, False, False, True] and pts.values.shape == (7, 1)
    assert counter.inner_s > 0


class _Scored:
    """A black box whose value is ``x[:, 0]`` and that is feasible where ``x[:, 1] == 0``."""

    objectives = [FunctionObjective("f", "min", lambda c: c.x[:, 0])]
    constraints = []

    def __call__(self, c):
        return Evaluation(c.x[:, :1].double(), torch.zeros(len(c), 0), c.x[:, 1].double())


def test_best_within_is_the_best_feasible_of_each_rows_prefix_and_keep_follows_scored_order():
    from flowevo.objectives import best_within

    counter = QueryCounter(_Scored(), rows=3, goals={}, keep=lambda c: [f"r{int(r)}v{float(v):g}" for r, v in
                                                                       zip(c.source_index, c.x[:, 0])])
    x1 = torch.tensor([[5.0, 0], [4.0, 1], [3.0, 0], [9.0, 0]])  # rows 0, 0, 1, 1; row 0's 4.0 infeasible
    counter(Candidates(x=x1, source_index=torch.tensor([0, 0, 1, 1])))
    x2 = torch.tensor([[1.0, 0], [2.0, 0], [0.5, 1]])  # rows 0, 1, 1
    counter(Candidates(x=x2, source_index=torch.tensor([0, 1, 1])))
    pts, items = counter.scored(), counter.items()
    assert len(items) == len(pts.row) == 7
    best = best_within(pts, 3, [1, 2, 3])
    name = lambda e: [None if i < 0 else items[i] for i in best[e].tolist()]  # noqa: E731
    assert name(1) == ["r0v5", "r1v3", None]  # row 2 never evaluated
    assert name(2) == ["r0v5", "r1v3", None]  # row 0's 2nd is infeasible, row 1's 2nd is worse
    assert name(3) == ["r0v1", "r1v2", None]  # row 1's 4th (0.5) is infeasible and beyond 3 anyway
    worst_first = best_within(pts, 3, [3], sign=-1.0)[3]
    assert [items[i] for i in worst_first[:2].tolist()] == ["r0v5", "r1v9"]
    try:
        QueryCounter(_Scored(), rows=1, goals={}).items()
    except ValueError as exc:
        assert "keep" in str(exc)
    else:
        raise AssertionError("items() without keep must raise")
