"""Digit objectives and counterfactual metrics."""

import numpy as np
import pytest
import torch

from flowevo.domains.digits.metrics import diversity, morph_mean, morph_rel_change, slant_abs_change
from flowevo.domains.digits.morphometrics import METRICS
from flowevo.domains.digits.objectives import (ClassifierOracle, keep_class_constraint, pixel_distance,
                                               target_confidence_constraint, thickness_objective)
from flowevo.flow import Condition
from flowevo.objectives import Candidates


class Fixed(torch.nn.Module):
    """A fake classifier whose logits are the mean of pixel columns 0..9 (decides by where the ink is)."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return x.reshape(-1, 28, 28)[:, :, :10].mean(dim=1) * 50


def cands(x, targets):
    return Candidates(x=x, source_index=torch.arange(len(x)), target=Condition.from_labels(targets))


def test_oracle_counts_queries_and_constraint_measures_confidence():
    oracle = ClassifierOracle(Fixed())
    x = torch.zeros(3, 28, 28)
    x[0, :, 3] = 1  # reads as 3, confidently
    x[1, :, 3] = 1
    x[1, :, 4] = 0.98  # 3 vs 4 nearly tied
    g = target_confidence_constraint(oracle, 0.9)(cands(x, [3, 3, 3]))
    assert g[0] == 0 and 0 < g[1] < 1 and g[2] >= 1  # blank image: label is not 3 -> >= 1
    assert oracle.queries == 3
    assert keep_class_constraint(oracle)(cands(x[:1], [3])).tolist() == [0.0]


def test_pixel_distance_uses_the_row_reference():
    refs = torch.zeros(2, 28, 28)
    refs[1] += 1
    x = torch.ones(2, 28, 28)
    c = Candidates(x=x, source_index=torch.tensor([1, 0]))
    assert pixel_distance(c, refs).tolist() == pytest.approx([0.0, 28.0])


def test_thickness_objective_is_a_measurement():
    x = torch.zeros(2, 28, 28)
    x[0, 4:24, 12:14] = 1  # thin bar
    x[1, 4:24, 10:16] = 1  # thick bar
    d = thickness_objective(2.0, processes=1)(cands(x, [1, 1]))
    assert d[0] < d[1]


def test_morph_changes_and_diversity():
    ref = np.ones((4, 6))
    edit = ref.copy()
    edit[:, METRICS.index("area")] = 1.5
    edit[:, METRICS.index("slant")] = 1.2
    rel = morph_rel_change(edit, ref)
    assert rel["area"] == pytest.approx(0.5) and rel["length"] == 0.0
    assert morph_mean(rel) == pytest.approx(0.1)
    assert slant_abs_change(edit, ref) == pytest.approx(0.2)
    a = torch.zeros(3, 28, 28)
    a[1, 5:20, 10:13] = 1
    a[2, 5:20, 14:18] = 1
    div = diversity([a[1:], a[:1]], processes=1)
    assert div["sources_with_several"] == 1 and div["pixel"] > 0
