"""``flowevo report RUN_DIR``: (re)write report.html for an optimize run directory."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from flowevo.cli.app import app
from flowevo.cli.common import guarded


@app.command("report", epilog="Example: flowevo report runs/blobs")
def report(
    run_dir: Path = typer.Argument(..., help="A run directory written by flowevo optimize."),
    quiet: bool = typer.Option(False, "--quiet", help="Print nothing but errors."),
    as_json: bool = typer.Option(False, "--json", help='Print {"report": PATH} as JSON on stdout.'),
) -> None:
    """Write RUN_DIR/report.html: objective curves, Pareto front, lineage, edits, configuration (static, opens from disk)."""
    from flowevo.report.run_report import write_run_report

    path = guarded(lambda: {"report": str(write_run_report(run_dir))}, quiet)
    if as_json:
        sys.stdout.write(json.dumps(path) + "\n")
    elif not quiet:
        typer.echo(f"report -> {path['report']}")
