"""The round weights' diversity tools: the per-key offset, the per-key cap (water-filling) and the feasible floor."""

import pytest
import torch

from flowevo.cfo.diversity import GroupCap, diversity_offset, feasible_floor, key_groups
from flowevo.cfo.finetune import softmax_weights


def test_key_groups_and_offset():
    keys = ["a", "b", "a", None, "a"]
    assert key_groups(keys).tolist() == [0, 1, 0, 2, 0]
    off = diversity_offset(keys, 1.0)
    assert torch.allclose(off.exp(), torch.tensor([1 / 3, 1, 1 / 3, 1, 1 / 3], dtype=torch.float64))
    w = softmax_weights(torch.zeros(5, dtype=torch.float64), 1.0, off)   # equal rewards: every key weighs the same
    totals = torch.zeros(3, dtype=torch.float64).index_add_(0, key_groups(keys), w)
    assert torch.allclose(totals, torch.full((3,), 1 / 3, dtype=torch.float64))


def test_group_cap_water_fills():
    g = key_groups(["a", "a", "b", "c", "d", "e"])
    w = torch.tensor([0.4, 0.3, 0.1, 0.1, 0.05, 0.05], dtype=torch.float64)
    out = GroupCap(g, 0.3)(w)
    totals = torch.zeros(5, dtype=torch.float64).index_add_(0, g, out)
    assert out.sum() == pytest.approx(1.0) and totals.max() <= 0.3 + 1e-9 and totals[0] == pytest.approx(0.3)
    assert out[0] / out[1] == pytest.approx(0.4 / 0.3)                 # order inside a key is kept
    assert totals[1] / totals[3] == pytest.approx(0.1 / 0.05)          # and among the uncapped keys
    # a cascade: capping "a" pushes "b" over the cap too
    w2 = torch.tensor([0.6, 0.25, 0.1, 0.05], dtype=torch.float64)
    out2 = GroupCap(torch.arange(4), 0.3)(w2)
    assert torch.allclose(out2[:2], torch.tensor([0.3, 0.3], dtype=torch.float64)) and out2.sum() == pytest.approx(1)
    # too few keys for the cap: the weights spread evenly over the keys
    out3 = GroupCap(key_groups(["a", "a", "b"]), 0.1)(torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64))
    assert out3[2] == pytest.approx(0.5) and out3[:2].sum() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="share"):
        GroupCap(g, 0.0)


def test_feasible_floor_spreads_a_share_evenly_over_feasible_keys():
    w = torch.tensor([0.7, 0.1, 0.1, 0.05, 0.05], dtype=torch.float64)
    feasible = torch.tensor([True, True, True, False, True])
    g = key_groups(["a", "a", "b", "c", "d"])
    out = feasible_floor(w, feasible, 0.3, g)
    # 0.3 over the feasible keys a, b, d (0.1 each), key a's share split over its two samples; c gets none
    expect = 0.7 * w + torch.tensor([0.05, 0.05, 0.1, 0.0, 0.1], dtype=torch.float64)
    assert torch.allclose(out, expect) and out.sum() == pytest.approx(1.0)
    per_sample = feasible_floor(w, feasible, 0.3)                        # no key: each sample its own
    assert torch.allclose(per_sample, 0.7 * w + 0.3 * feasible.double() / 4)
    assert torch.allclose(feasible_floor(w, torch.zeros(5, dtype=torch.bool), 0.3, g), w)   # nothing feasible
    with pytest.raises(ValueError, match="share"):
        feasible_floor(w, feasible, 1.5)
