"""Query-efficiency benchmark: summaries over seeds (the counting itself is tested in tests/objectives)."""

import math

import torch

from flowevo.benchmarks.query_digits import hv_reference, hypervolume_at
from flowevo.benchmarks.query_efficiency import _digits_panels, quality_summary, summarise
from flowevo.evolve import hypervolume
from flowevo.objectives import Candidates, Evaluation, FunctionObjective, QueryCounter


def test_summarise_medians_spread_and_ratio():
    per_seed = {"reo": [[2, 4], [4, 8], [6, math.inf]], "cma": [[8, 8], [16, 16], [8, 32]]}
    s = summarise(per_seed, budget=32, rates=(0.5, 1.0))
    assert s["methods"]["reo"]["median"] == {"0.5": 4, "1.0": 8} and s["methods"]["reo"]["max"]["1.0"] is None
    assert s["methods"]["cma"]["min"]["0.5"] == 8 and s["ratios"]["reo"]["cma"]["0.5"]["ratio"] == 0.5
    curve = s["methods"]["reo"]["curve_median"]
    assert all(a <= b for a, b in zip(curve, curve[1:])) and s["grid"][-1] == 32


class _Scores:
    """A two-objective black box returning preset values per batch (all feasible but marked rows)."""

    objectives = [FunctionObjective("d", "min", lambda c: c.x[:, 0]), FunctionObjective("p", "max", lambda c: c.x[:, 1])]
    constraints = []

    def __call__(self, c):
        bad = c.x[:, 2].double()
        return Evaluation(c.x[:, :2].double(), torch.zeros(len(c), 0), bad)


def test_hypervolume_at_counts_only_each_rows_first_evaluations_and_feasible_points():
    counter = QueryCounter(_Scores(), rows=2, goals={})
    x1 = torch.tensor([[1.0, 0.95, 0], [2.0, 0.99, 0], [0.5, 0.97, 1]])  # row 0, row 0, row 1 (infeasible)
    counter(Candidates(x=x1, source_index=torch.tensor([0, 0, 1])))
    x2 = torch.tensor([[0.5, 0.99, 0], [3.0, 0.92, 0]])  # row 0's third, row 1's second
    counter(Candidates(x=x2, source_index=torch.tensor([0, 1])))
    ref = hv_reference(2.0, 0.9)  # (4.0, -0.9) in minimisation form
    sign = torch.tensor([1.0, -1.0], dtype=torch.float64)
    hv = hypervolume_at([counter], sign, ref, [1, 2, 3])
    one = hypervolume(torch.tensor([[1.0, -0.95]]), ref)
    assert math.isclose(hv["1"][0], one) and hv["1"][1] == 0.0  # row 1's first point is infeasible
    assert math.isclose(hv["2"][0], hypervolume(torch.tensor([[1.0, -0.95], [2.0, -0.99]]), ref))
    assert math.isclose(hv["2"][1], hypervolume(torch.tensor([[3.0, -0.92]]), ref)) and hv["3"][0] > hv["2"][0]


def test_subset_panels_compare_every_method_on_the_subset_rows():
    raw = {"rows": 4, "budget": 8, "evaluators": {"reo": {"rows": 4}, "bo": {"rows": 2}},
           "goals": {"close": {"reo": [[1, 2, 8, math.inf]], "bo": [[4, 4]]}}}
    panels = _digits_panels(raw)
    assert set(panels["close"]["methods"]) == {"reo"}  # bo ran on 2 of the 4 sources: not in the all-rows panel
    sub = panels["close, first 2 sources"]["methods"]
    assert sub["reo"]["median"]["1.0"] == 2 and sub["bo"]["median"]["1.0"] == 4
    final = {"reo": [{"acc": 1.0, "hypervolume_rows": {"16": [1.0, 0.0, 3.0, 3.0]}},
                     {"acc": 0.5, "hypervolume_rows": {"16": [2.0, 0.0, 0.0, 0.0]}}]}
    q = quality_summary(final)["reo"]
    assert q["acc"] == {"median": 0.75, "min": 0.5, "max": 1.0} and q["hypervolume"]["16"]["max"] == 1.75
    assert quality_summary(final, rows=2)["reo"]["hypervolume"]["16"] == {"median": 0.75, "min": 0.5, "max": 1.0}
