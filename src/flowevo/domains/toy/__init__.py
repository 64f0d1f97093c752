"""The toy domain: a class-conditional Gaussian mixture (2-D, 16-D, ...) and a trained flow for it.

Names are imported on first use.
"""

from flowevo.lazy import lazy_exports

_EXPORTS = {"ToyMixture": "flowevo.domains.toy.mixture", "train_toy_flow": "flowevo.domains.toy.model"}

__all__ = [
    "ToyMixture", "train_toy_flow",
]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
