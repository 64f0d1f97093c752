"""Read a configuration file (TOML, YAML if pyyaml is installed, or JSON), apply overrides, validate.

Precedence, lowest first: the models' defaults, the file, ``--set key.path=value`` overrides,
then explicit command-line flags. Every problem is a :class:`ConfigError` with one line
naming the file, the key path and what was expected.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import tomllib
from pydantic import BaseModel, ValidationError

from flowevo.config.models import Config
from flowevo.jsonio import write_json

__all__ = ["ConfigError", "apply_overrides", "config_to_dict", "load_config", "parse_value", "read_config_file",
           "set_key", "validate_config", "write_resolved", "RESOLVED_NAME"]

RESOLVED_NAME = "config.resolved.json"


class ConfigError(ValueError):
    """A configuration problem; the message is one line naming the key and what was expected."""


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Parse ``.toml``, ``.yaml`` / ``.yml`` (needs pyyaml) or ``.json`` into a dict."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    suffix = p.suffix.lower()
    text = p.read_text(encoding="utf-8")
    try:
        if suffix == ".toml":
            data = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise ConfigError(f"{p}: YAML needs pyyaml (pip install pyyaml), or use a .toml file") from None
            data = yaml.safe_load(text) or {}
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise ConfigError(f"{p}: unknown config format {suffix!r}; use .toml, .yaml/.yml or .json")
    except ConfigError:
        raise
    except Exception as exc:  # tomllib.TOMLDecodeError, yaml.YAMLError, json.JSONDecodeError
        raise ConfigError(f"{p}: cannot parse: {' '.join(str(exc).split())}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level must be a table of keys, got {type(data).__name__}")
    return data


def parse_value(text: str) -> Any:
    """A ``--set`` value: a TOML literal (``3``, ``0.5``, ``true``, ``[1, 2]``, ``"s"``, ``{class = 2}``), else the raw string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def set_key(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``data["a"]["b"] = value`` for ``dotted = "a.b"`` (intermediate tables are created)."""
    parts = dotted.split(".")
    if not all(parts):
        raise ConfigError(f"bad key path {dotted!r}: expected names joined by dots, e.g. optimize.generations")
    node = data
    for i, part in enumerate(parts[:-1]):
        nxt = node.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"cannot set {dotted!r}: {'.'.join(parts[:i + 1])} is a value, not a table")
        node = nxt
    node[parts[-1]] = value


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``key.path=value`` strings in order (values parsed by :func:`parse_value`)."""
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"bad override {item!r}: expected KEY.PATH=VALUE, e.g. optimize.generations=20")
        set_key(data, key.strip(), parse_value(value.strip()))
    return data


def _fields_at(loc: tuple, model: type[BaseModel] = Config) -> list[str] | None:
    """The keys allowed in the table at ``loc`` (for 'unknown key' messages)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(part) or next(
            (f for f in current.model_fields.values() if f.alias == part), None)
        if field is None:
            return None
        current = _model_in(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or name for name, f in current.model_fields.items()]
    return None


def _model_in(annotation: Any) -> Any:
    """The pydantic model inside ``annotation`` (``X``, ``X | None``, ``list[X]``), or None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        inner = _model_in(arg)
        if inner is not None:
            return inner
    return None


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _describe(err: Mapping[str, Any]) -> str:
    loc = tuple(p for p in err["loc"] if p not in ("function-after",))
    key = _path(loc)
    if err["type"] == "extra_forbidden":
        allowed = _fields_at(loc[:-1])
        hint = f" (expected one of: {', '.join(allowed)})" if allowed else ""
        return f"{key}: unknown key{hint}"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "missing":
        return f"{key}: required"
    got = err.get("input")
    shown = "" if isinstance(got, (dict, list)) or err["type"].startswith("value_error") else f" (got {got!r})"
    return f"{key}: {msg}{shown}"


def validate_config(data: dict[str, Any], source: str = "configuration") -> Config:
    """Validate a dict into :class:`Config`; raise :class:`ConfigError` naming every bad key on one line."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors())
        raise ConfigError(f"{source}: {problems}") from None


def load_config(path: str | Path | None = None, overrides: Iterable[str] = (),
                flags: Mapping[str, Any] | None = None) -> Config:
    """File (optional) -> ``--set`` overrides -> explicit flags (``{"optimize.generations": 20}``) -> :class:`Config`.

    Example:
        >>> cfg = load_config(overrides=["optimize.generations=5"], flags={"seed": 3})
        >>> cfg.optimize.generations, cfg.seed
        (5, 3)
    """
    data = read_config_file(path) if path is not None else {}
    source = str(path) if path is not None else "configuration"
    try:
        apply_overrides(data, overrides)
    except ConfigError as exc:
        raise ConfigError(f"--set: {exc}") from None
    for key, value in (flags or {}).items():
        if value is not None:
            set_key(data, key, value)
    return validate_config(data, source)


def config_to_dict(config: Config) -> dict[str, Any]:
    """Plain JSON-able dict (paths as strings, aliases such as ``class`` as keys)."""
    return config.model_dump(mode="json", by_alias=True)


def write_resolved(config: Config, directory: str | Path) -> Path:
    """Write ``directory/config.resolved.json`` (the full configuration after defaults and overrides)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    return write_json(out / RESOLVED_NAME, config_to_dict(config))
