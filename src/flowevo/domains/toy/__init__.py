"""The toy domain: a class-conditional Gaussian mixture (2-D, 16-D, ...) and a trained flow for it."""

from flowevo.domains.toy.mixture import ToyMixture
from flowevo.domains.toy.model import train_toy_flow

__all__ = ["ToyMixture", "train_toy_flow"]
