"""Variation operators: self-pollination, cross-pollination (slerp / masks), shell repair, and the
:class:`VariationStrategy` interface the Evolver drives (:class:`Variation` composes the operators;
:class:`Transfer` and :class:`PreScreen` wrap any strategy; :func:`default_strategy` is the Evolver's default)."""

from flowevo.evolve.operators.cross_pollination import BlockMask, CrossPollination, Mixing, Slerp, UniformMask
from flowevo.evolve.operators.prescreen import PreScreen, hypervolume_improvement_2d
from flowevo.evolve.operators.repair import ShellRepair
from flowevo.evolve.operators.self_pollination import SelfPollination
from flowevo.evolve.operators.strategy import SearchContext, VariationStrategy, bind_strategy
from flowevo.evolve.operators.transfer import Transfer, condition_groups
from flowevo.evolve.operators.variation import Variation

__all__ = ["BlockMask", "CrossPollination", "Mixing", "SelfPollination", "ShellRepair", "Slerp", "UniformMask", "Variation",
           "VariationStrategy", "SearchContext", "bind_strategy", "Transfer", "condition_groups", "PreScreen",
           "hypervolume_improvement_2d"]
