"""The typer applications every command module registers on (root, ``demo``, ``benchmark``)."""

from __future__ import annotations

from typing import Optional

import typer

from flowevo import __version__

app = typer.Typer(
    help="Residual-space evolutionary optimisation with conditional flow-matching models.\n\n"
    "Example: flowevo demo digits --run-dir runs/digits",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
demo_app = typer.Typer(help="Short end-to-end runs that write a run directory with plots and results.\n\n"
                       "Example: flowevo demo digits --run-dir runs/digits", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks that write DIR/metrics.json.\n\nExample: flowevo benchmark toy --out out/toy",
                        no_args_is_help=True)
app.add_typer(demo_app, name="demo")
app.add_typer(bench_app, name="benchmark")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"flowevo {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True,
                                                help="Show the version and exit.")) -> None:
    """flowevo: edit data toward black-box goals by evolving flow residuals."""
