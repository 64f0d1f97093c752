"""Morpho-MNIST perturbations of 28x28 digit images.

Every perturbation works on the 112x112 hi-res binary digit produced by
:func:`flowevo.domains.digits.morphometrics.analyse` (4x upsampling, binarising at half
the intensity range, medial-axis skeleton with seed 0), then returns to 28x28 with
``pyramid_reduce`` (factor 4, bicubic) clipped to [0, 1]:

``plain``
    the binarised, re-smoothed original.
``thin`` / ``thicken``
    erode / dilate with a disk of radius ``int(amount * 4 * thickness / 2)``.
``swell``
    radial inverse warp around a random skeleton pixel that magnifies a disk of radius
    ``radius * sqrt(thickness) / 2 * 4`` hi-res px (a local bulge of the stroke).
``fracture``
    ``num_frac`` cuts across the stroke at random skeleton pixels away from tips and
    forks, each perpendicular to the local stroke direction.

``thickness`` is the digit's mean stroke thickness in 28-px units.  A digit with no
foreground (all zero / constant) is returned as an all-zero image by every function.
Labels of the released Morpho-MNIST data: :data:`PERTURBATIONS` in label order.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.draw import line
from skimage.morphology import disk
from skimage.transform import pyramid_reduce, warp

from flowevo.domains.digits.morphometrics import SCALE, Morphology, analyse

PERTURBATIONS: tuple[str, ...] = ("plain", "thin", "thick", "swollen", "fractured")
_ANGLE_HALF_WINDOW = 2  # in 28-px units: 17x17 hi-res window for the local stroke angle
_FRACTURE_EXTENSION = 0.5  # cut half-length beyond the stroke, 28-px units


def downscale(hi: np.ndarray, scale: int = SCALE) -> np.ndarray:
    """Reduce a hi-res (binary or grey) image with ``pyramid_reduce`` (bicubic).

    Parameters
    ----------
    hi : np.ndarray, shape (28*scale, 28*scale)

    Returns
    -------
    np.ndarray, shape (28, 28), float64 in [0, 1].
    """
    low = pyramid_reduce(hi.astype(np.float64), downscale=scale, order=3)
    return np.clip(low, 0.0, 1.0)


def _finish(morph: Morphology, hi: np.ndarray) -> np.ndarray:
    if morph.empty:
        return np.zeros((28, 28))
    return downscale(hi, morph.scale)


def plain(image: np.ndarray) -> np.ndarray:
    """Binarised, re-smoothed digit.

    Parameters
    ----------
    image : np.ndarray, shape (28, 28), uint8 in 0..255 or float in [0, 1].

    Returns
    -------
    np.ndarray, shape (28, 28), float64 in [0, 1].
    """
    morph = analyse(image)
    return _finish(morph, morph.binary)


def _disk_radius(morph: Morphology, amount: float) -> int:
    return int(amount * morph.scale * morph.thickness / 2) if not morph.empty else 0


def thin(image: np.ndarray, amount: float = 0.7) -> np.ndarray:
    """Thin the strokes: erode by a disk of radius ``int(amount * 4 * thickness / 2)``.

    Parameters
    ----------
    image : np.ndarray, shape (28, 28), uint8 in 0..255 or float in [0, 1].
    amount : float
        fraction of the mean stroke thickness to remove.

    Returns
    -------
    np.ndarray, shape (28, 28), float64 in [0, 1].
    """
    morph = analyse(image)
    radius = _disk_radius(morph, amount)
    hi = ndimage.binary_erosion(morph.binary, disk(radius), border_value=1)
    return _finish(morph, hi)


def thicken(image: np.ndarray, amount: float = 1.0) -> np.ndarray:
    """Thicken the strokes: dilate by a disk of radius ``int(amount * 4 * thickness / 2)``.

    Parameters
    ----------
    image : np.ndarray, shape (28, 28), uint8 in 0..255 or float in [0, 1].
    amount : float
        fraction of the mean stroke thickness to add.

    Returns
    -------
    np.ndarray, shape (28, 28), float64 in [0, 1].
    """
    morph = analyse(image)
    radius = _disk_radius(morph, amount)
    hi = ndimage.binary_dilation(morph.binary, disk(radius))
    return _finish(morph, hi)


def swell(image: np.ndarray, rng: np.random.Generator, strength: float = 3,
          radius: float = 7) -> np.ndarray:
    """Local swelling around a random skeleton pixel ``c``.

    With ``R = radius * sqrt(thickness) / 2 * 4`` (hi-res px), output pixel ``p`` with
    ``|p - c| <= R`` samples the binary digit at ``c + (p - c) * (|p - c| / R)**(strength - 1)``
    (bilinear), other pixels are unchanged.

    Parameters
    ----------
    image : np.ndarray, shape (28, 28), uint8 in 0..255 or float in [0, 1].
    rng : np.random.Generator
        picks the centre; the result is deterministic given its state.
    strength : float
        warp exponent (> 1 swells).
    radius : float
        swelling radius relative to ``sqrt(thickness) / 2``, 28-px units.

    Returns
    -------
    np.ndarray, shape (28, 28), float64 in [0, 1].
    """
    morph = analyse(image)
    if morph.empty:
        return np.zeros((28, 28))
    rows, cols = np.nonzero(morph.skeleton)
    k = rng.integers(len(rows))
    centre = np.array([cols[k], rows[k]], dtype=np.float64)  # warp works in (x, y)
    big_r = radius * np.sqrt(morph.thickness) / 2 * morph.scale

    def inverse_map(xy: np.ndarray) -> np.ndarray:
        offsets = xy - centre
        dist = np.hypot(offsets[:, 0], offsets[:, 1])
        inside = dist <= big_r
        offsets[inside] *= ((dist[inside] / big_r) ** (strength - 1))[:, None]
        return centre + offsets

    hi = warp(morph.binary.astype(np.float64), inverse_map, order=1)
    return _finish(morph, hi)


def _fracture_centres(morph: Morphology, rng: np.random.Generator, prune: float,
                      num_frac: int) -> np.ndarray:
    """(num_frac, 2) (row, col) skeleton pixels farther than prune*4 from tips/forks."""
    skel = morph.skeleton
    neighbours = ndimage.correlate(skel.astype(int), np.ones((3, 3), int), mode="constant") - 1
    ends = skel & ((neighbours == 1) | (neighbours >= 3))
    candidates = skel.copy()
    if ends.any():
        near = ndimage.distance_transform_edt(~ends) <= prune * morph.scale
        candidates &= ~near
    if not candidates.any():  # tiny digit: everything is near a tip/fork
        candidates = skel
    points = np.argwhere(candidates)
    return points[rng.integers(len(points), size=num_frac)]


def _local_angle(skeleton: np.ndarray, centre: np.ndarray, half: int) -> float:
    """Principal-axis angle (radians, x = col, y = row) of the skeleton near ``centre``."""
    r, c = centre
    window = skeleton[max(r - half, 0):r + half + 1, max(c - half, 0):c + half + 1]
    ys, xs = np.nonzero(window)
    xs, ys = xs - xs.mean(), ys - ys.mean()
    return 0.5 * float(np.arctan2(2 * np.sum(xs * ys), np.sum(xs**2) - np.sum(ys**2)))


def fracture(image: np.ndarray, rng: np.random.Generator, thickness: float = 1.5,
             prune: float = 2, num_frac: int = 3) -> np.ndarray:
    """Cut ``num_frac`` gaps across the strokes.

    Skeleton pixels within ``prune * 4`` hi-res px of a tip (1 neighbour) or fork
    (3 or more neighbours) are excluded; ``num_frac`` centres are drawn with replacement
    from the rest (from the whole skeleton if nothing is left).  At each centre the
    stroke direction is the principal axis of the skeleton in a 17x17 window; the cut
    runs perpendicular to it with half-length ``distance(centre) + 2`` hi-res px and is
    cleared with a disk brush of radius ``ceil((thickness * 4 - 1) / 2)`` (3 by default).

    Parameters
    ----------
    image : np.ndarray, shape (28, 28), uint8 in 0..255 or float in [0, 1].
    rng : np.random.Generator
        picks the centres; the result is deterministic given its state.
    thickness : float
        cut thickness, 28-px units.
    prune : float
        exclusion distance around tips and forks, 28-px units.
    num_frac : int
        number of cuts.

    Returns
    -------
    np.ndarray, shape (28, 28), float64 in [0, 1].
    """
    morph = analyse(image)
    if morph.empty:
        return np.zeros((28, 28))
    s = morph.scale
    brush = disk(int(np.ceil((thickness * s - 1) / 2))).astype(bool)
    cuts = np.zeros_like(morph.binary)
    for centre in _fracture_centres(morph, rng, prune, num_frac):
        angle = _local_angle(morph.skeleton, centre, _ANGLE_HALF_WINDOW * s)
        normal = np.array([np.cos(angle), -np.sin(angle)])  # (row, col) across the stroke
        half = morph.distance[tuple(centre)] + _FRACTURE_EXTENSION * s
        p0 = np.rint(centre - half * normal).astype(int)
        p1 = np.rint(centre + half * normal).astype(int)
        rr, cc = line(p0[0], p0[1], p1[0], p1[1])
        keep = (rr >= 0) & (rr < cuts.shape[0]) & (cc >= 0) & (cc < cuts.shape[1])
        cuts[rr[keep], cc[keep]] = True
    hi = morph.binary & ~ndimage.binary_dilation(cuts, brush)
    return _finish(morph, hi)


def perturb(image: np.ndarray, kind: str, rng: np.random.Generator | None = None) -> np.ndarray:
    """Apply one perturbation by name (see :data:`PERTURBATIONS`) with default settings.

    Parameters
    ----------
    image : np.ndarray, shape (28, 28)
    kind : {"plain", "thin", "thick", "swollen", "fractured"}
    rng : np.random.Generator, required for "swollen" and "fractured".

    Returns
    -------
    np.ndarray, shape (28, 28), float64 in [0, 1].
    """
    if kind in ("swollen", "fractured") and rng is None:
        raise ValueError(f"perturbation {kind!r} needs an rng")
    funcs = {"plain": plain, "thin": thin, "thick": thicken}
    if kind in funcs:
        return funcs[kind](image)
    if kind == "swollen":
        return swell(image, rng)
    if kind == "fractured":
        return fracture(image, rng)
    raise ValueError(f"unknown perturbation {kind!r}; expected one of {PERTURBATIONS}")
