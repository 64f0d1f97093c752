"""FLOP counting for the throughput bound."""

from torch import nn

from flowevo.benchmarks.throughput import linear_flops_per_sample, matmul_rate
from flowevo.flow import MLPVelocity


def test_linear_flops_count_every_linear_layer():
    assert linear_flops_per_sample(nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))) == 2 * (15 + 10)
    net = MLPVelocity((4,), num_classes=2, hidden=8, depth=1, time_dim=4)
    # input (4 + 4 time features -> 8), one block of two (8 -> 8), output (8 -> 4); the label embedding has no Linear
    assert linear_flops_per_sample(net) == 2 * (8 * 8 + 2 * 8 * 8 + 8 * 4)


def test_matmul_rate_is_measured():
    assert matmul_rate(n=128, seconds=0.05) > 1e6
