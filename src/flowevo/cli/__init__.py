"""The ``flowevo`` command line (typer + rich).

Usage and input errors exit with code 2 and a one-line message (no traceback). Each command
group lives in its own module and registers on the apps in :mod:`flowevo.cli.app`.
"""

from flowevo.cli import benchmark, benchmark_all, benchmark_perf, cfo, constrained, demo, optimize, report, resume, sample, train  # noqa: F401  (registers the commands)  # noqa: F401  (bring-your-own-data commands)  # noqa: F401  (benchmark all / cost / queries)  # noqa: F401  (CFO command and benchmark, sampling saved flows)
from flowevo.cli.app import app

__all__ = ["app"]
