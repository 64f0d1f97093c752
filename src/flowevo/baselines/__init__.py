"""Baselines on the same models and residual space: random search, CMA-ES, LeapFactual-style
lift/land, and gradient latent optimisation (a white-box reference)."""

from flowevo.baselines.budgeted import BestTracker, SearchResult, decode_and_score, run_budgeted
from flowevo.baselines.cma_search import cma_search
from flowevo.baselines.gradient import GradientResult, gradient_search
from flowevo.baselines.leap import LeapResult, leap
from flowevo.baselines.random_search import random_search

__all__ = ["BestTracker", "GradientResult", "LeapResult", "SearchResult", "cma_search", "decode_and_score",
           "gradient_search", "leap", "random_search", "run_budgeted"]
