"""Digit objectives and counterfactual metrics."""

import numpy as np
import pytest
import torch

from flowevo.domains.digits.metrics import diversity, morph_mean, morph_rel_change, slant_abs_change
from flowevo.domains.digits.morphometrics import METRICS
from flowevo.domains.digits.objectives import (
    ClassifierOracle,
    counterfactual_objectives,
    gaussian_blur,
    keep_class_constraint,
    pixel_distance,
    shape_distance,
    target_confidence_constraint,
    target_probability,
    thickness_objective,
)
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


def bar(col, width=2, rows=(4, 24)):
    x = torch.zeros(28, 28)
    x[rows[0]:rows[1], col:col + width] = 1
    return x


def test_gaussian_blur_keeps_ink_and_spreads_it():
    x = bar(12)[None]
    b = gaussian_blur(x, 2.0)
    assert b.shape == x.shape and float(b.sum()) == pytest.approx(float(x.sum()), rel=1e-4)
    assert float(b.max()) < 1 and float(b[0, 14, 15]) > 0  # ink spread to the neighbouring column


def test_shape_distance_prefers_a_nearby_stroke_and_counts_ink():
    ref = torch.stack([bar(12, 1)] * 3 + [bar(12)])
    x = torch.stack([bar(12, 1), bar(13, 1), bar(20, 1), bar(12, width=4)])
    d = shape_distance(x, ref)
    assert d[0] == pytest.approx(0.0, abs=1e-6)
    assert d[1] < d[2]  # shifted by one pixel vs moved far: plain L2 calls both the same
    assert pixel_distance(Candidates(x=x[1:3], source_index=torch.tensor([0, 1])), ref).tolist() == pytest.approx([
        float((x[1] - ref[0]).norm()), float((x[2] - ref[0]).norm())])
    assert float((x[1] - ref[0]).norm()) == pytest.approx(float((x[2] - ref[0]).norm()))
    no_ink = shape_distance(x[3:], ref[3:], ink_weight=0.0)
    assert d[3] == pytest.approx(float(no_ink[0]) + 3.0 * 1.0)  # twice the ink: relative change 1


def test_counterfactual_objectives_read_the_row_reference_and_the_black_box():
    refs = torch.stack([bar(3, 1), bar(12, 1)])
    oracle = ClassifierOracle(Fixed())
    objs = counterfactual_objectives(refs, oracle)
    assert [(o.name, o.sense) for o in objs] == [("shape_distance", "min"), ("p_target", "max")]
    c = Candidates(x=refs.flip(0), source_index=torch.tensor([1, 0]), target=Condition.from_labels([3, 3]))
    assert objs[0](c).tolist() == pytest.approx([0.0, 0.0], abs=1e-6)
    p = objs[1](c)
    assert torch.equal(p, target_probability(oracle, c)) and p[1] > 0.9 > p[0]
    assert len(counterfactual_objectives(refs)) == 1


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


def test_oracle_answers_the_same_batch_once_and_chunks_do_not_change_answers():
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    x = torch.rand(7, 28, 28)
    oracle = ClassifierOracle(model, batch_size=3)
    p = oracle.probs(x)
    assert oracle.probs(x) is p and oracle.queries == 7  # objective and constraint of one evaluation: one query each
    assert torch.allclose(oracle.probs(x.clone()), p) and oracle.queries == 14  # another batch is asked again
    assert torch.allclose(ClassifierOracle(model, batch_size=4096).probs(x), p, atol=1e-6)
