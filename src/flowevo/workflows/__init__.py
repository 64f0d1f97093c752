"""Workflows behind the command line (top layer): train a generic model, run an optimisation, resume it.

Each takes a validated :class:`~flowevo.config.Config`, so the Python API, config files and
the CLI run the same code.
"""

from flowevo.workflows.optimize import is_optimize_run, prepare, resume_optimize, run_optimize
from flowevo.workflows.train import run_train, train_config

__all__ = ["is_optimize_run", "prepare", "resume_optimize", "run_optimize", "run_train", "train_config"]
