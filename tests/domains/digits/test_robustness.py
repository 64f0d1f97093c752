"""ShiftCheck: the black box's least target probability over shifted copies, one query per copy."""

import pytest
import torch
from torch import nn

from flowevo.domains.digits.objectives import ClassifierOracle
from flowevo.domains.digits.robustness import DIAGONAL_2PX, ShiftCheck, shift_images


class CentrePixel(nn.Module):
    """Class 1 iff the centre pixel is inked (logit 20 x ink), class 0 otherwise."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        ink = x[:, 14, 14]
        return torch.stack([torch.zeros_like(ink), 20 * ink - 10], dim=1)


def test_shift_images_moves_content_and_fills_with_zeros():
    im = torch.zeros(1, 28, 28)
    im[0, 10, 5] = 1.0
    moved = shift_images(im, 2, -3)  # 2 right, 3 up
    assert moved.shape == (1, 28, 28)
    assert moved[0, 7, 7] == 1.0 and moved.sum() == 1.0
    assert shift_images(im, -6, 0).sum() == 0.0  # moved off the left edge
    assert torch.equal(shift_images(im, 0, 0), im)


def test_worst_is_the_least_target_probability_over_the_copies_and_counts_one_query_each():
    oracle = ClassifierOracle(CentrePixel())
    dot = torch.zeros(28, 28)
    dot[14, 14] = 1.0
    block = torch.zeros(28, 28)
    block[11:18, 11:18] = 1.0  # still covers the centre after any 2-px diagonal shift
    images, targets = torch.stack([dot, block]), torch.tensor([1, 1])
    assert (oracle.probs(images)[:, 1] > 0.99).all()  # both read as class 1 where they are
    check = ShiftCheck()
    before = oracle.queries
    worst = check.worst(oracle, images, targets)
    assert oracle.queries - before == 2 * len(DIAGONAL_2PX) == 2 * check.cost
    assert worst[0] < 0.01 and worst[1] > 0.99  # the dot fails once moved, the block holds


def test_shift_check_rejects_bad_settings():
    with pytest.raises(ValueError, match="offset"):
        ShiftCheck(offsets=())
    with pytest.raises(ValueError, match="level"):
        ShiftCheck(level=1.5)
    with pytest.raises(ValueError, match="candidates"):
        ShiftCheck(candidates=0)
