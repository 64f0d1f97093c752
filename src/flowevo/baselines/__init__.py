"""Baselines searching the same residual space on the same models: random search and CMA-ES."""

from flowevo.baselines.budgeted import BestTracker, SearchResult, decode_and_score, run_budgeted
from flowevo.baselines.cma_search import cma_search
from flowevo.baselines.random_search import random_search

__all__ = ["BestTracker", "SearchResult", "cma_search", "decode_and_score", "random_search", "run_budgeted"]
