"""Workflows behind the command line (top layer): train a model, run an optimisation, resume it.

Each takes a validated :class:`~flowevo.config.Config`, so the Python API, config files and
the CLI run the same code. The domain that trains on a data file, loads a MODEL_DIR, provides
built-ins and writes its own outputs is looked up in the domain registry
(:mod:`flowevo.domains.registry`); nothing here names a domain.
"""

from flowevo.workflows.optimize import is_optimize_run, prepare, resume_optimize, run_optimize
from flowevo.workflows.train import run_train, train_request

__all__ = ["is_optimize_run", "prepare", "resume_optimize", "run_optimize", "run_train", "train_request"]
