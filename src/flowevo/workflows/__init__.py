"""Workflows behind the command line (top layer): train a model, run an optimisation or a constrained fine-tuning,
resume either.

Each takes a validated :class:`~flowevo.config.Config`, so the Python API, config files and
the CLI run the same code. The domain that trains on a data file, loads a MODEL_DIR, provides
built-ins and writes its own outputs is looked up in the domain registry
(:mod:`flowevo.domains.registry`); nothing here names a domain.
"""

from flowevo.workflows.cfo import is_cfo_run, resume_cfo, run_cfo
from flowevo.workflows.optimize import is_optimize_run, prepare, resume_optimize, run_optimize
from flowevo.workflows.train import run_train, train_request

__all__ = ["is_cfo_run", "is_optimize_run", "prepare", "resume_cfo", "resume_optimize", "run_cfo", "run_optimize",
           "run_train", "train_request"]
