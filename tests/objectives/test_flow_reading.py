"""The flow's reading of a candidate's class: energies per class and the cheap constraint built on them."""

import pytest
import torch

from flowevo.domains.digits.data import load_source_digits
from flowevo.domains.digits.models import load_digit_models
from flowevo.flow import Condition, FixedGrid
from flowevo.objectives import class_energies, target_margin


@pytest.fixture(scope="module")
def digits():
    x, labels = load_source_digits(None, 40)
    return load_digit_models().codec(FixedGrid("rk4", 5)), x, labels


def test_the_flow_reads_real_digits_as_their_own_class(digits):
    codec, x, labels = digits
    e = class_energies(codec, x, 10)
    assert e.shape == (40, 10) and bool((e >= 0).all())
    with torch.inference_mode():  # one batched call gives the same energies as one class at a time
        r3 = codec.invert(x[:5], Condition.from_labels(torch.full((5,), 3)))
    assert torch.allclose(e[:5, 3], 0.5 * r3.flatten(1).double().pow(2).sum(1), rtol=1e-4)
    assert (e.argmin(1) == labels).double().mean() >= 0.8  # a generative classifier, not a coin


def test_target_margin_is_the_best_other_class_energy_minus_the_targets(digits):
    codec, x, labels = digits
    e = class_energies(codec, x, 10)
    own = target_margin(codec, x, labels, 10)
    others = e.scatter(1, labels[:, None], torch.inf).min(1).values
    assert torch.allclose(own, others - e.gather(1, labels[:, None]).squeeze(1))
    wrong = target_margin(codec, x, (labels + 1) % 10, 10)
    assert (own > 0).double().mean() > (wrong > 0).double().mean()  # its own class passes far more often
