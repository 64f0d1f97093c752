"""Survival: elitism, feasibility first, rank-and-crowding (pymoo), hypervolume (pymoo)."""

import numpy as np
import pytest
import torch
from pymoo.indicators.hv import HV

from flowevo.evolve import Elitist, HypervolumeContribution, RankAndCrowding, hypervolume, non_dominated


def test_elitist_keeps_best_per_row_feasible_first():
    F = torch.tensor([[5.0], [1.0], [3.0], [0.5], [2.0], [9.0]])
    viol = torch.tensor([0.0, 0.0, 0.0, 1.0, 0.0, 0.0])  # 0.5 is infeasible
    row = torch.tensor([0, 0, 0, 1, 1, 1])
    keep = Elitist()(F, viol, row, rows=2, k=2)
    assert keep.tolist() == [1, 2, 4, 5]


def test_failed_candidates_go_last():
    F = torch.tensor([[float("nan")], [3.0], [2.0]])
    viol = torch.tensor([float("inf"), 0.5, 0.0])
    assert Elitist()(F, viol, torch.zeros(3, dtype=torch.long), 1, 3).tolist() == [2, 1, 0]


def test_rank_and_crowding_keeps_the_front():
    # row 0: points on a front plus dominated ones
    F = torch.tensor([[0.0, 4.0], [1.0, 2.0], [2.0, 1.0], [4.0, 0.0], [3.0, 3.0], [5.0, 5.0]])
    keep = RankAndCrowding()(F, torch.zeros(6), torch.zeros(6, dtype=torch.long), 1, 4)
    assert sorted(keep.tolist()) == [0, 1, 2, 3]
    keep3 = RankAndCrowding()(F, torch.zeros(6), torch.zeros(6, dtype=torch.long), 1, 3)
    assert {0, 3} <= set(keep3.tolist())  # extremes have infinite crowding distance


def test_rank_and_crowding_infeasible_after_feasible():
    F = torch.tensor([[0.0, 0.0], [5.0, 5.0], [6.0, 6.0]])
    viol = torch.tensor([2.0, 0.0, 1.0])
    assert RankAndCrowding()(F, viol, torch.zeros(3, dtype=torch.long), 1, 3).tolist() == [1, 2, 0]


def test_hypervolume_contribution_drops_the_extreme_that_adds_least():
    # a front whose far extreme (4, 0.4) adds little area: crowding keeps it, hypervolume contribution drops it
    F = torch.tensor([[0.0, 4.0], [0.5, 1.0], [1.0, 0.5], [4.0, 0.4], [3.0, 3.0]])
    none, row = torch.zeros(5), torch.zeros(5, dtype=torch.long)
    keep = HypervolumeContribution()(F, none, row, 1, 3)
    assert sorted(keep.tolist()) == [0, 1, 2]
    assert keep.tolist() == [0, 1, 2]  # ordered by the first objective
    assert 3 in RankAndCrowding()(F, none, row, 1, 3).tolist()
    # the kept three dominate more than any other three of the front
    best = max(hypervolume(F[list(c)], torch.tensor([4.4, 4.4])) for c in [(0, 1, 3), (0, 2, 3), (1, 2, 3)])
    assert hypervolume(F[keep], torch.tensor([4.4, 4.4])) > best


def test_hypervolume_contribution_rows_and_infeasible():
    F = torch.tensor([[0.0, 0.0], [5.0, 5.0], [6.0, 6.0], [1.0, 2.0], [2.0, 1.0], [3.0, 3.0]])
    viol = torch.tensor([2.0, 0.0, 1.0, 0.0, 0.0, 0.0])
    row = torch.tensor([0, 0, 0, 1, 1, 1])
    keep = HypervolumeContribution()(F, viol, row, 2, 3)
    assert keep[:3].tolist() == [1, 2, 0]  # feasible first, then by violation
    assert keep[3:].tolist() == [3, 4, 5]  # the front by its first objective, then the dominated point


def test_survival_needs_enough_individuals():
    with pytest.raises(ValueError, match="at least 3"):
        Elitist()(torch.zeros(2, 1), torch.zeros(2), torch.zeros(2, dtype=torch.long), 1, 3)


def test_non_dominated_and_hypervolume_match_pymoo():
    rng = np.random.default_rng(0)
    F = torch.as_tensor(rng.random((40, 2)))
    mask = non_dominated(F)
    for i in range(40):  # brute-force definition of domination
        dominated = ((F <= F[i]).all(dim=1) & (F < F[i]).any(dim=1)).any()
        assert bool(mask[i]) == (not bool(dominated))
    ref = torch.tensor([1.1, 1.1], dtype=torch.float64)
    assert hypervolume(F, ref) == pytest.approx(HV(ref_point=ref.numpy())(F.numpy()))
    assert hypervolume(torch.tensor([[0.0, 0.0]]), torch.tensor([1.0, 2.0])) == pytest.approx(2.0)
