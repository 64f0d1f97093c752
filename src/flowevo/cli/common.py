"""Helpers shared by the command modules: one-line errors (exit 2), devices, metric tables."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

console = Console(stderr=True)


def fail(message: str) -> None:
    """Print ``error: message`` on stderr and exit with code 2."""
    console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)  # one line, however long
    raise typer.Exit(code=2)


def guarded(fn: Callable[[], dict], quiet: bool) -> dict:
    """Run ``fn``; turn input errors into a one-line message with exit code 2."""
    if quiet:
        os.environ["FLOWEVO_QUIET"] = "1"
    try:
        return fn()
    except (ValueError, FileNotFoundError, TypeError) as exc:
        fail(str(exc))
        raise  # unreachable


DEVICE_HELP = "cpu, cuda or cuda:N: where models, data and random draws live (results come back to the CPU)."


def device_option(default: str | None = "cpu") -> Any:
    """The ``--device`` option every command that runs a model takes."""
    return typer.Option(default, "--device", help=DEVICE_HELP if default else DEVICE_HELP + " Default: as configured.")


def device_or_fail(device: str) -> str:
    """``device`` if torch can use it, else a one-line usage error (exit 2), e.g. CUDA asked for but absent."""
    from flowevo.devices import resolve_device

    try:
        resolve_device(device)
    except ValueError as exc:
        fail(f"--device: {exc}")
    return device


def logger(quiet: bool) -> Callable[[str], None]:
    """A dim stderr line printer, silent when ``quiet``."""
    return (lambda s: None) if quiet else (lambda s: console.print(f"[dim]{s}[/dim]"))


def invoked_command() -> str | None:
    """The command line as typed (``flowevo ...``), recorded in benchmark metrics."""
    return "flowevo " + " ".join(sys.argv[1:]) if len(sys.argv) > 1 else None


def print_metrics(metrics: dict, as_json: bool, title: str, rows: list[tuple[str, str]]) -> None:
    """JSON on stdout (``--json``) or a two-column rich table."""
    if as_json:
        sys.stdout.write(json.dumps(metrics, indent=2) + "\n")
        return
    table = Table(title=title)
    table.add_column("what")
    table.add_column("value", justify="right")
    for k, v in rows:
        table.add_row(k, v)
    Console().print(table)
