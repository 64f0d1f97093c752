"""``flowevo resume RUN_DIR``: continue a killed run from its last checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer

from flowevo.cli.app import app
from flowevo.cli.common import guarded, logger, print_metrics


@app.command("resume", epilog="Example: flowevo resume runs/toy")
def resume(
    run_dir: Path = typer.Argument(..., help="A run directory of flowevo optimize or demo toy (with its checkpoint.pt)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics as JSON on stdout."),
) -> None:
    """Continue a killed run from its last checkpoint (optimize and toy demo runs); results equal an uninterrupted run."""
    from flowevo.demos.toy import resume_toy_demo
    from flowevo.workflows import is_optimize_run, resume_optimize

    if is_optimize_run(run_dir):
        m = guarded(lambda: resume_optimize(run_dir, show_progress=not quiet, log=logger(quiet)), quiet)
    else:
        m = guarded(lambda: resume_toy_demo(run_dir, show_progress=not quiet), quiet)
    print_metrics(m, as_json, f"resumed -> {run_dir}", [("evaluations", str(m["evaluations"])),
                                                         ("generations", str(m["generations"]))])
