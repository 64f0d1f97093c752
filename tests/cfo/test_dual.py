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
