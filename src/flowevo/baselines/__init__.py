"""Baselines on the same models and residual space: random search, CMA-ES, LeapFactual-style
lift/land, and gradient latent optimisation (a white-box reference). Every one returns an
:class:`~flowevo.evolve.EditResult`."""

from flowevo.baselines.budgeted import (Archive, Recorder, decode_and_score, final_edits, run_budgeted,
                                        scored_population)
from flowevo.baselines.cma_search import cma_search
from flowevo.baselines.gradient import gradient_search
from flowevo.baselines.leap import leap
from flowevo.baselines.random_search import random_search

__all__ = ["Archive", "Recorder", "cma_search", "decode_and_score", "final_edits", "gradient_search", "leap",
           "random_search", "run_budgeted", "scored_population"]
