"""A user's flow, trained outside flowevo in plain torch, and the factory that plugs it in.

Their conventions differ from flowevo's on purpose: t = 0 is data and t = 1 noise
(``x_t = (1 - t) x + t noise``, velocity ``noise - x``), the class goes in by keyword (``y=``, with
class 2 as their "no class" token), and t comes as a column ``(N, 1)``.
"""

from pathlib import Path

import torch
from torch import nn

MEANS = torch.tensor([[-2.0, 0.0], [2.0, 0.0]])  # class 0 on the left, class 1 on the right
SPREAD = 0.35
WEIGHTS = "their_flow.pt"  # next to this file


def sample_data(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    y = torch.randint(0, 2, (n,), generator=generator)
    return MEANS[y] + SPREAD * torch.randn(n, 2, generator=generator), y


class TheirNet(nn.Module):
    def __init__(self, hidden: int = 64) -> None:
        super().__init__()
        self.embed = nn.Embedding(3, 16)
        self.net = nn.Sequential(nn.Linear(2 + 1 + 16, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, 2))

    def forward(self, x: torch.Tensor, t: torch.Tensor, *, y: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, t, self.embed(y)], dim=1))


def train(steps: int = 800, seed: int = 0) -> TheirNet:
    """Their training loop: rectified flow from data (t = 0) to noise (t = 1), 10% of labels dropped to token 2."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = TheirNet()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(steps):
        x, y = sample_data(256, g)
        y = torch.where(torch.rand(256, generator=g) < 0.1, torch.full_like(y, 2), y)
        noise, t = torch.randn(256, 2, generator=g), torch.rand(256, 1, generator=g)
        loss = ((net((1 - t) * x + t * noise, t, y=y) - (noise - x)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


@torch.no_grad()
def their_sampler(net: TheirNet, noise: torch.Tensor, y: torch.Tensor, steps: int = 400) -> torch.Tensor:
    """Their own sampler: Euler from t = 1 (noise) down to t = 0 (data)."""
    x, dt = noise.clone(), 1.0 / steps
    for i in range(steps):
        t = torch.full((len(x), 1), 1.0 - i * dt)
        x = x - dt * net(x, t, y=y)
    return x


def factory():
    """What ``flowevo optimize --model their_flow.py:factory`` calls."""
    from flowevo.domains.external import ExternalModel
    from flowevo.flow import VelocityAdapter

    net = TheirNet()
    net.load_state_dict(torch.load(Path(__file__).with_name(WEIGHTS), weights_only=True))
    velocity = VelocityAdapter(net, condition={"y": "labels"}, data_at=0, time="column", num_classes=2, null_label=2)
    return ExternalModel(velocity, shape=(2,), num_classes=2, class_names=["left", "right"])


def not_a_model():
    """A broken factory."""
    return "a string"


def to_right(candidates):
    """The user's objective: distance to the right class's centre (minimise)."""
    return (candidates.x - MEANS[1]).norm(dim=1).double()
