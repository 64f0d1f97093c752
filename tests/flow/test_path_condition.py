"""Probability path, conditions and velocity models."""

import pytest
import torch

from flowevo.flow import Condition, ConditionEmbedding, CondOTPath, GuidedVelocity, MLPVelocity


def test_cond_ot_path_closed_form():
    x0, x1 = torch.randn(5, 3), torch.randn(5, 3)
    t = torch.rand(5)
    s = CondOTPath().sample(x0, x1, t)
    assert torch.allclose(s.x_t, (1 - t[:, None]) * x0 + t[:, None] * x1)
    assert torch.allclose(s.u, x1 - x0)


def test_ot_coupling_is_a_permutation_that_lowers_cost():
    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(64, 4, generator=g), torch.randn(64, 4, generator=g) + 2
    paired = CondOTPath.couple(x0, x1)
    assert sorted(paired[:, 0].tolist()) == sorted(x0[:, 0].tolist())
    assert ((paired - x1) ** 2).sum() < ((x0 - x1) ** 2).sum()


def test_condition_validation_and_ops():
    c = Condition.from_labels([1, 2, 3])
    assert len(c[1:]) == 2 and c.repeat_interleave(2).labels.tolist() == [1, 1, 2, 2, 3, 3]
    both = Condition.cat([c, Condition.null_like(c)])
    assert both.null_mask().tolist() == [False] * 3 + [True] * 3
    with pytest.raises(ValueError, match="NaN"):
        Condition.from_values(torch.tensor([[float("nan")]]))
    with pytest.raises(ValueError, match="batch size"):
        Condition(labels=torch.tensor([1, 2]), values=torch.zeros(3, 1))


def test_unknown_class_is_a_clear_error():
    emb = ConditionEmbedding(num_classes=3, value_dim=0, dim=8)
    with pytest.raises(ValueError, match=r"unknown class id\(s\) \[5\]"):
        emb(Condition.from_labels([0, 5]))
    emb(Condition.null_like(Condition.from_labels([0, 5])))  # null rows may carry any label


def test_value_width_checked():
    emb = ConditionEmbedding(num_classes=0, value_dim=2, dim=8)
    assert emb(Condition.from_values(torch.zeros(4, 2))).shape == (4, 8)
    with pytest.raises(ValueError, match="width 2"):
        emb(Condition.from_values(torch.zeros(4, 3)))


def test_mlp_velocity_shapes_and_errors():
    net = MLPVelocity((2, 3), num_classes=4, value_dim=1, hidden=32, depth=1)
    c = Condition(labels=torch.tensor([0, 1]), values=torch.zeros(2, 1))
    assert net(torch.zeros(2, 2, 3), torch.rand(2), c).shape == (2, 2, 3)
    with pytest.raises(ValueError, match="shape"):
        net(torch.zeros(2, 6), torch.rand(2), c)


def test_guidance_scale_one_is_the_model_and_uses_one_call():
    net = MLPVelocity((2,), num_classes=3, hidden=16, depth=1)
    calls = []
    net.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    x, t, c = torch.randn(5, 2), torch.rand(5), Condition.from_labels([0, 1, 2, 0, 1])
    assert torch.allclose(GuidedVelocity(net, 1.0)(x, t, c), net(x, t, c))
    calls.clear()
    g = GuidedVelocity(net, 3.0)(x, t, c)
    assert calls == [10]  # conditional and null halves in one batched call
    v_c, v_n = net(x, t, c), net(x, t, Condition.null_like(c))
    assert torch.allclose(g, v_n + 3.0 * (v_c - v_n), atol=1e-6)
