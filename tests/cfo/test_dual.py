"""The per-round constrained reweighting: multipliers that just meet each constraint's target."""

import pytest
import torch

from flowevo.cfo import trust_region_weights
from flowevo.cfo.dual import constrained_weights, weighted_rates


def _problem(n=400, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 2, generator=g, dtype=torch.float64)
    reward = 4 * x[:, 0]                                  # the reward pulls toward violations of constraint 0
    violated = torch.stack([x[:, 0] > 0.7, x[:, 1] > 0.9], 1)
    return reward, violated.double(), violated


def test_multipliers_just_meet_the_targets():
    reward, pen, violated = _problem()
    target = torch.tensor([0.05, 0.15], dtype=torch.float64)               # constraint 1: 10% violate anyway
    w0, _ = trust_region_weights(reward, 1.0, 0.25)
    assert weighted_rates(w0, violated)[0] > 0.3                       # unconstrained weights violate
    w, lam, temp = constrained_weights(reward, pen, violated, target, 1.0, 0.25)
    rates = weighted_rates(w, violated)
    assert rates[0] <= 0.05 + 1e-3 and rates[1] <= 0.15 + 1e-3
    assert lam[0] > 0 and lam[1] == 0                                  # constraint 1 holds without a multiplier
    smaller = lam.clone()
    smaller[0] *= 0.9                                                  # the smallest multiplier that meets it
    ws, _ = trust_region_weights(reward - (pen * smaller).sum(1), 1.0, 0.25)
    assert weighted_rates(ws, violated)[0] > 0.05
    assert w.sum() == pytest.approx(1.0) and temp >= 1.0


def test_unmeetable_target_ends_at_the_cap_and_keeps_the_trust_region():
    from flowevo.cfo import effective_sample_size

    reward, pen, violated = _problem()
    w, lam, _ = constrained_weights(reward, pen, violated, torch.tensor([0.0, 0.0], dtype=torch.float64), 1.0, 0.9,
                                    lam_max=50.0)
    assert lam[0] == 50.0 and effective_sample_size(w) >= 0.9 * 400 * (1 - 1e-6)
    with pytest.raises(ValueError, match="shapes"):
        constrained_weights(reward, pen, violated, torch.zeros(3, dtype=torch.float64), 1.0, 0.25)


def test_effective_group_count_counts_distinct_keys_not_samples():
    from flowevo.cfo import effective_group_count, effective_sample_size

    assert effective_group_count(torch.full((4,), 0.25, dtype=torch.float64), torch.tensor([0, 0, 1, 1])) == \
        pytest.approx(2.0)
    w = torch.rand(30, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert effective_group_count(w, torch.arange(30)) == pytest.approx(effective_sample_size(w))


def test_out_of_reach_feasible_weights_the_reward_over_feasible_samples_only():
    """A target out of reach: the penalty at lam_max makes the trust region ignore the reward; with
    out_of_reach="feasible" the round weights the satisfying samples alone, by reward, with the trust region's floor
    counted over them (lexicographic: feasibility first, then the reward). Where every target is in reach it changes
    nothing."""
    from flowevo.cfo import effective_sample_size

    reward, pen, violated = _problem()
    feasible = ~violated.any(1)
    target = torch.tensor([0.0, 0.0], dtype=torch.float64)     # 37% of the samples violate: out of reach at ESS 80%
    w_pen, lam_pen, t_pen = constrained_weights(reward, pen, violated, target, 0.2, 0.8)
    w, lam, t = constrained_weights(reward, pen, violated, target, 0.2, 0.8, out_of_reach="feasible",
                                    feasible=feasible)
    assert lam_pen[0] == 1e3 and lam[0] == 1e3
    assert float(w[~feasible].sum()) == 0.0 and float(w_pen[~feasible].sum()) > 0
    assert effective_sample_size(w) >= 0.8 * int(feasible.sum()) * (1 - 1e-6) and t < t_pen
    mean = lambda v: float((v[feasible] * reward[feasible]).sum() / v[feasible].sum())  # noqa: E731
    assert mean(w) > mean(w_pen) + 0.1                                 # among the feasible, the reward counts
    reach = torch.tensor([0.05, 0.15], dtype=torch.float64)
    w_a, lam_a, t_a = constrained_weights(reward, pen, violated, reach, 1.0, 0.25)
    w_b, lam_b, t_b = constrained_weights(reward, pen, violated, reach, 1.0, 0.25, out_of_reach="feasible",
                                          feasible=feasible)
    assert torch.equal(w_a, w_b) and torch.equal(lam_a, lam_b) and t_a == t_b
    with pytest.raises(ValueError, match="out_of_reach"):
        constrained_weights(reward, pen, violated, target, 0.2, 0.8, out_of_reach="hard")
    with pytest.raises(ValueError, match="feasible mask"):
        constrained_weights(reward, pen, violated, target, 0.2, 0.8, out_of_reach="feasible")
