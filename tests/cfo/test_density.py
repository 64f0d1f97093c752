"""Flow log-densities and the Monte Carlo KL against closed forms."""

import math

import pytest
import torch
from torch import nn

from flowevo.cfo import kl_divergence, log_density, sample_with_log_density
from flowevo.flow import Condition


class Shift(nn.Module):
    """``v = mu``: maps N(0, I) to N(mu, I)."""

    def __init__(self, mu):
        super().__init__()
        self.mu = nn.Parameter(torch.as_tensor(mu, dtype=torch.float32))
        self.shape = (len(mu),)

    def forward(self, x, t, c):
        return self.mu.expand_as(x) + 0 * x


class Scale(nn.Module):
    """``z_t = (1 + t (s - 1)) z_0``: maps N(0, I) to N(0, s^2 I)."""

    def __init__(self, s, d):
        super().__init__()
        self.s, self.shape = s, (d,)
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, x, t, c):
        return ((self.s - 1) / (1 + t * (self.s - 1)))[:, None] * x


C = Condition.from_labels([0])


def test_log_density_of_a_scaled_gaussian():
    z = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    lp = log_density(Scale(2.0, 2), z, C.repeat_interleave(64))
    expected = -0.5 * (z ** 2).sum(1) / 4 - math.log(2 * math.pi * 4)
    assert torch.allclose(lp, expected, atol=1e-4)
    noise = torch.randn(32, 2, generator=torch.Generator().manual_seed(1))
    z2, lp2 = sample_with_log_density(Scale(2.0, 2), noise, C.repeat_interleave(32))
    assert torch.allclose(z2, 2 * noise, atol=1e-5)
    assert torch.allclose(lp2, -0.5 * (z2 ** 2).sum(1) / 4 - math.log(2 * math.pi * 4), atol=1e-4)


@pytest.mark.parametrize("d", [2, 12])  # exact divergence, and Hutchinson above 8 dimensions
def test_kl_matches_closed_forms(d):
    g = torch.Generator().manual_seed(0)
    shift = kl_divergence(Shift([0.5] * d), Shift([0.0] * d), 2000, C, g)
    assert shift.value == pytest.approx(0.125 * d, abs=4 * shift.stderr + 0.01)
    scale = kl_divergence(Scale(2.0, d), Shift([0.0] * d), 2000, C, g)
    assert scale.value == pytest.approx(d * (1.5 - math.log(2)), abs=4 * scale.stderr + 0.02)
    same = kl_divergence(Scale(2.0, d), Scale(2.0, d), 256, C, g)
    assert abs(same.value) < 1e-4
