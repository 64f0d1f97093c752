"""Make a small user data set for the bring-your-own-data tour: 16x16 images of one soft blob.

Class ``c`` (0..3) is the quadrant the blob sits in; the float condition ``v`` is its radius
in pixels. Writes ``OUT/blobs.npz`` (training: x uint8 (N, 16, 16), c, v, class_names) and
``OUT/blobs_sources.npz`` (a few fresh samples to edit).

Usage: python examples/make_blobs.py --out data [--n 1200] [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

SIZE = 16
CENTRES = np.array([[4.5, 4.5], [4.5, 10.5], [10.5, 4.5], [10.5, 10.5]])  # (row, col) per class
NAMES = np.array(["top-left", "top-right", "bottom-left", "bottom-right"])


def blobs(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` images ``(n, 16, 16)`` uint8, classes ``(n,)`` and radii ``(n,)``."""
    c = rng.integers(0, 4, n)
    v = rng.uniform(1.5, 3.5, n)
    centre = CENTRES[c] + rng.normal(0, 0.8, (n, 2))
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    d2 = (yy[None] - centre[:, 0, None, None]) ** 2 + (xx[None] - centre[:, 1, None, None]) ** 2
    img = np.exp(-d2 / (2 * v[:, None, None] ** 2)) * rng.uniform(0.7, 1.0, (n, 1, 1))
    return (img * 255).round().astype(np.uint8), c, v.astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("data"))
    ap.add_argument("--n", type=int, default=1200)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    x, c, v = blobs(args.n, rng)
    np.savez_compressed(args.out / "blobs.npz", x=x, c=c, v=v, class_names=NAMES)
    x, c, v = blobs(8, rng)
    np.savez_compressed(args.out / "blobs_sources.npz", x=x, c=c, v=v)
    print(f"wrote {args.out / 'blobs.npz'} ({args.n} images) and {args.out / 'blobs_sources.npz'} (8 sources)")


if __name__ == "__main__":
    main()
