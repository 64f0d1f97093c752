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


def test_trust_region_over_keys_counts_distinct_keys_not_samples():
    """Half the samples share one key and hold the best reward: a sample-level floor lets that key take almost all
    the weight, a key-level floor (effective number of keys) does not (with the diversity term, so each key's mass
    can be evened out)."""
    from flowevo.cfo import diversity_offset, effective_group_count, effective_sample_size

    reward = torch.cat([torch.ones(50), torch.zeros(50)]).double()
    groups = torch.cat([torch.zeros(50, dtype=torch.long), torch.arange(1, 51)])
    assert effective_group_count(torch.full((4,), 0.25, dtype=torch.float64), torch.tensor([0, 0, 1, 1])) == \
        pytest.approx(2.0)
    w = torch.rand(30, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert effective_group_count(w, torch.arange(30)) == pytest.approx(effective_sample_size(w))
    ws, ts = trust_region_weights(reward, 0.01, 0.25)
    assert ts == 0.01 and effective_sample_size(ws) >= 25 and effective_group_count(ws, groups) < 1.01
    offset = diversity_offset(groups.tolist(), 1.0)
    wk, tk = trust_region_weights(reward, 0.01, 0.25, offset, groups=groups)
    assert tk > 0.01 and effective_group_count(wk, groups) == pytest.approx(25.0, rel=1e-3)
    assert wk[:50].sum() > 5 * wk[50:].max()                             # the best key still leads
    wc, lam, tc = constrained_weights(reward, torch.zeros(100, 1, dtype=torch.float64),
                                      torch.zeros(100, 1, dtype=torch.bool), torch.zeros(1, dtype=torch.float64),
                                      0.01, 0.25, offset=offset, groups=groups)
    assert tc == pytest.approx(tk) and torch.allclose(wc, wk)
    with pytest.raises(ValueError, match="groups"):
        trust_region_weights(reward, 0.01, 0.25, groups=groups[:10])


def test_unmet_target_takes_the_clipped_multiplier_and_keeps_the_reward():
    """A target out of reach: at lam_max the penalty swamps the reward (the trust region raises the temperature);
    with lam_unmet the multiplier stops there, the temperature stays lower and the weights still follow the reward
    (among the satisfying samples too), while still violating less than the reward's weights alone."""
    reward, pen, violated = _problem()
    target = torch.tensor([0.0, 0.2], dtype=torch.float64)    # constraint 0: out of reach with 90% of the samples
    w_max, lam_max, t_max = constrained_weights(reward, pen, violated, target, 0.2, 0.9, lam_max=1e3)
    w, lam, t = constrained_weights(reward, pen, violated, target, 0.2, 0.9, lam_max=1e3, lam_unmet=2.0)
    assert lam_max[0] == 1e3 and lam[0] == 2.0 and lam[1] == 0 and t < t_max
    ok = ~violated[:, 0]
    assert (w[ok] * reward[ok]).sum() / w[ok].sum() > (w_max[ok] * reward[ok]).sum() / w_max[ok].sum() + 0.1
    assert weighted_rates(w, violated)[0] < weighted_rates(trust_region_weights(reward, 0.2, 0.9)[0], violated)[0]
    with pytest.raises(ValueError, match="lam_unmet"):
        constrained_weights(reward, pen, violated, target, 1.0, 0.25, lam_max=10.0, lam_unmet=20.0)


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


def test_reach_temperature_also_takes_over_where_the_constraints_raise_the_temperature():
    """A target met at a finite multiplier, but only at a higher temperature than the reward's weights alone need: with
    reach="temperature" the feasibility-first weights take over; where the constraints leave the temperature alone
    (a narrower trust region) nothing changes."""
    reward, pen, violated = _problem()
    feasible = ~violated.any(1)
    target = torch.tensor([0.02, 0.15], dtype=torch.float64)
    free = trust_region_weights(reward, 0.2, 0.6)[1]
    w, lam, t = constrained_weights(reward, pen, violated, target, 0.2, 0.6)
    assert 0 < lam[0] < 1e3 and t > free
    kw = dict(out_of_reach="feasible", feasible=feasible)
    w_l, lam_l, _ = constrained_weights(reward, pen, violated, target, 0.2, 0.6, reach="lam_max", **kw)
    assert torch.equal(w_l, w) and torch.equal(lam_l, lam)
    w_t, lam_t, t_t = constrained_weights(reward, pen, violated, target, 0.2, 0.6, reach="temperature", **kw)
    assert float(w_t[~feasible].sum()) == 0.0 and lam_t[0] == 1e3 and lam_t[1] == 0 and t_t < t
    w_n, lam_n, t_n = constrained_weights(reward, pen, violated, target, 0.2, 0.3)
    w_m, lam_m, t_m = constrained_weights(reward, pen, violated, target, 0.2, 0.3, reach="temperature", **kw)
    assert torch.equal(w_n, w_m) and torch.equal(lam_n, lam_m) and t_n == t_m
    with pytest.raises(ValueError, match="reach"):
        constrained_weights(reward, pen, violated, target, 0.2, 0.6, reach="always", **kw)
