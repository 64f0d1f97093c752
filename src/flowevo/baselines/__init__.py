"""Baselines on the same models and residual space: random search, CMA-ES (plain and surrogate-assisted),
NSGA-II, TuRBO-style Bayesian optimisation, LeapFactual-style lift/land, and gradient latent optimisation (a
white-box reference). Every one returns an :class:`~flowevo.evolve.EditResult`.

``bo_search`` needs the optional botorch extra (``pip install flowevo[bo]``); it imports botorch when it runs."""

from flowevo.baselines.bo import bo_search
from flowevo.baselines.budgeted import Archive, Recorder, decode_and_score, final_edits, run_budgeted, scored_population
from flowevo.baselines.cma_search import cma_search
from flowevo.baselines.gradient import gradient_search
from flowevo.baselines.leap import leap
from flowevo.baselines.nsga2 import nsga2_search
from flowevo.baselines.random_search import random_search
from flowevo.baselines.space import SearchSpace

__all__ = ["Archive", "Recorder", "SearchSpace", "bo_search", "cma_search", "decode_and_score", "final_edits",
           "gradient_search", "leap", "nsga2_search", "random_search", "run_budgeted", "scored_population"]
