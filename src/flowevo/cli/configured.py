"""Config file + ``--set`` overrides + explicit flags -> a validated Config (shared by train and optimize)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from flowevo.cli.common import fail

CONFIG_HELP = "A configuration file (.toml, .yaml or .json) with [train] / [optimize] sections; flags override it."
SET_HELP = "Override any key: --set optimize.generations=20 (repeatable; values are TOML literals)."


def config_option() -> Any:
    return typer.Option(None, "--config", help=CONFIG_HELP)


def set_option() -> Any:
    return typer.Option(None, "--set", help=SET_HELP, metavar="KEY.PATH=VALUE")


def load(config_file: Optional[Path], sets: Optional[list[str]], flags: dict[str, Any]):
    """Load and validate, turning configuration errors into a one-line exit 2."""
    from flowevo.config import ConfigError, load_config

    try:
        return load_config(config_file, sets or (), flags)
    except ConfigError as exc:
        fail(str(exc))
