"""The typer applications every command module registers on (root, ``demo``, ``benchmark``)."""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer.core import TyperGroup

from flowevo import __version__


class OneLineErrors(TyperGroup):
    """Usage errors (unknown option, bad value, missing argument) as one line with exit code 2."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            rv = super().main(*args, standalone_mode=False, **kwargs)
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        except Exception as exc:  # click's exceptions (typer may vendor click): format_message + exit_code
            if not (hasattr(exc, "format_message") and hasattr(exc, "exit_code")):
                raise
            if not exc.format_message().strip():  # no_args_is_help: show the help itself
                exc.show()
                sys.exit(exc.exit_code)
            ctx = getattr(exc, "ctx", None)
            hint = f" (see {ctx.command_path} --help)" if ctx is not None and exc.exit_code == 2 else ""
            typer.echo(f"error: {exc.format_message()}{hint}", err=True)
            sys.exit(exc.exit_code)
        sys.exit(rv if isinstance(rv, int) else 0)


app = typer.Typer(
    cls=OneLineErrors,
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
def main(version: bool | None = typer.Option(None, "--version", callback=_version, is_eager=True,
                                                help="Show the version and exit.")) -> None:
    """flowevo: edit data toward black-box goals by evolving flow residuals."""
