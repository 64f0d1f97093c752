"""Variation operators: self-pollination, cross-pollination (slerp / masks), shell repair, and the
:class:`VariationStrategy` interface the Evolver drives (:class:`Variation` composes the operators)."""

from flowevo.evolve.operators.cross_pollination import BlockMask, CrossPollination, Mixing, Slerp, UniformMask
from flowevo.evolve.operators.repair import ShellRepair
from flowevo.evolve.operators.self_pollination import SelfPollination
from flowevo.evolve.operators.strategy import VariationStrategy
from flowevo.evolve.operators.variation import Variation

__all__ = ["BlockMask", "CrossPollination", "Mixing", "SelfPollination", "ShellRepair", "Slerp", "UniformMask", "Variation",
           "VariationStrategy"]
