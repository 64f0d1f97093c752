"""Config file + ``--set`` overrides + explicit flags -> a validated Config (shared by train, optimize and cfo)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from flowevo.cli.common import fail

CONFIG_HELP = ("A configuration file (.toml, .yaml or .json) with [train] / [optimize] / [cfo] sections; flags "
               "override it.")
SET_HELP = "Override any key: --set optimize.generations=20 (repeatable; values are TOML literals)."


def config_option() -> Any:
    return typer.Option(None, "--config", help=CONFIG_HELP)


def set_option() -> Any:
    return typer.Option(None, "--set", help=SET_HELP, metavar="KEY.PATH=VALUE")


def load(config_file: Path | None, sets: list[str] | None, flags: dict[str, Any]):
    """Load and validate, turning configuration errors into a one-line exit 2."""
    from flowevo.config import ConfigError, load_config

    try:
        return load_config(config_file, sets or (), flags)
    except ConfigError as exc:
        fail(str(exc))


BACKEND_HELP = ("Where objectives run: local (this process), processes (--workers local processes) or dask (a local "
                "cluster on 127.0.0.1 with --workers processes, or the scheduler at --address).")


def evaluation_options() -> dict[str, Any]:
    """The ``[optimize.evaluation]`` / ``[cfo.evaluation]`` flags shared by optimize, cfo and resume
    (typer option objects by parameter name)."""
    return {
        "backend": typer.Option(None, "--backend", help=BACKEND_HELP),
        "workers": typer.Option(None, "--workers", min=1, help="Worker processes (processes; dask without --address)."),
        "address": typer.Option(None, "--address",
                                help="Dask scheduler to join, e.g. tcp://host:8786 (with --backend dask)."),
        "timeout_s": typer.Option(None, "--timeout-s", help="Per-candidate limit in seconds (processes / dask): the "
                                                            "worker is killed and the candidate fails."),
        "cache": typer.Option(None, "--cache/--no-cache", help="Score each distinct candidate once (RUN_DIR/cache)."),
    }


def evaluation_flags(backend: str | None, workers: int | None, address: str | None,
                     timeout_s: float | None, cache: bool | None, section: str = "optimize") -> dict[str, Any]:
    """Config keys for the evaluation flags of ``[<section>.evaluation]`` (None: not given)."""
    return {f"{section}.evaluation.backend": backend, f"{section}.evaluation.workers": workers,
            f"{section}.evaluation.address": address, f"{section}.evaluation.timeout_s": timeout_s,
            f"{section}.evaluation.cache": cache}
