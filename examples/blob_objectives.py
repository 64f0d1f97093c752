"""User objectives for the blobs example: one vectorised, one per item.

- ``brightness(candidates)``: vectorised; ``candidates.x`` is ``(N, 16, 16)`` in [0, 1]; returns ``(N,)``.
- ``peak_offset(x)``: per item (declare ``per_item``); ``x`` is one ``(16, 16)`` numpy image; returns a float:
  how far (in pixels) the brightest pixel is from the image centre.
"""

import numpy as np


def brightness(candidates):
    """Mean pixel value of each candidate, ``(N,)``."""
    return candidates.x.flatten(1).mean(dim=1)


def peak_offset(x):
    """Distance of the brightest pixel from the centre of one image."""
    r, c = np.unravel_index(np.argmax(x), x.shape)
    return float(np.hypot(r - 7.5, c - 7.5))
