"""Command-line shorthands for objectives, constraints and targets, parsed into configuration dicts.

- ``--objective SPEC[@OPTIONS]``: SPEC is a built-in name, ``package.module:function``,
  ``path/to/file.py:function`` or ``cmd:PROGRAM ARGS...`` (``{input}`` = the candidate file).
  OPTIONS, comma-separated: ``min`` / ``max`` (the sense), ``per_item``, ``cheap``, ``name=NAME``,
  ``role=alignment|preservation|other``, ``timeout_s=S``, any other ``key=value`` goes to params.
  Example: ``--objective "scores.py:brightness@max,name=bright"``.
- ``--constraint SPEC[@OPTIONS](<=|>=)BOUND``, e.g. ``--constraint "distance_to_source<=4"``.
- ``--target 2`` (a class id), ``--target values=0.5,1.0``, ``--target "class=2 values=0.5"``.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from flowevo.config.loading import ConfigError, parse_value

__all__ = ["parse_constraint_flag", "parse_objective_flag", "parse_target_flag"]

_SPEC_KEYS = {"name", "role", "timeout_s", "payload_format", "max_parallel"}


def _spec(text: str, flag: str) -> dict[str, Any]:
    text = text.strip()
    spec, sep, opts = text.rpartition("@")
    if not sep:
        spec, opts = text, ""
    if not spec:
        raise ConfigError(f"{flag} {text!r}: nothing before '@'")
    out: dict[str, Any] = {}
    argv: list[str] = []
    if spec.startswith("cmd:"):
        argv = shlex.split(spec[4:])
        if not argv:
            raise ConfigError(f"{flag} {text!r}: 'cmd:' needs a program, e.g. cmd:python score.py {{input}}")
        out["command"] = argv
    else:
        out["use"] = spec
    params: dict[str, Any] = {}
    for opt in filter(None, (o.strip() for o in opts.split(","))):
        if opt in ("min", "max"):
            out["sense"] = opt
        elif opt in ("per_item", "per-item"):
            out["per_item"] = True
        elif opt == "cheap":
            out["cheap"] = True
        elif "=" in opt:
            k, _, v = opt.partition("=")
            (out if k.strip() in _SPEC_KEYS else params)[k.strip()] = parse_value(v.strip())
        else:
            raise ConfigError(f"{flag} {text!r}: unknown option {opt!r} (expected min, max, per_item, cheap or key=value)")
    if argv and "name" not in out:  # the script before {input}, e.g. "python score.py {input}" -> "score"
        out["name"] = argv[-2 if len(argv) > 1 else -1].rsplit("/", 1)[-1].split(".")[0]
    if params:
        out["params"] = params
    return out


def parse_objective_flag(text: str) -> dict[str, Any]:
    """``"pkg.mod:fn@max,per_item"`` -> ``{"use": "pkg.mod:fn", "sense": "max", "per_item": True}``.

    Example:
        >>> parse_objective_flag("distance_to_source@min")
        {'use': 'distance_to_source', 'sense': 'min'}
    """
    return _spec(text, "--objective")


def parse_constraint_flag(text: str) -> dict[str, Any]:
    """``"SPEC<=4"`` -> ``{"use": SPEC, "upper": 4.0}``; ``>=`` gives ``lower``.

    Example:
        >>> parse_constraint_flag("target_probability>=0.9")
        {'use': 'target_probability', 'lower': 0.9}
    """
    m = re.match(r"^(.*?)(<=|>=)\s*([^<>=]+)$", text.strip())
    if not m:
        raise ConfigError(f"--constraint {text!r}: expected SPEC<=BOUND or SPEC>=BOUND, e.g. distance_to_source<=4")
    try:
        bound = float(m.group(3))
    except ValueError:
        raise ConfigError(f"--constraint {text!r}: bound {m.group(3)!r} is not a number") from None
    out = _spec(m.group(1), "--constraint")
    out.pop("sense", None)
    out["upper" if m.group(2) == "<=" else "lower"] = bound
    return out


def parse_target_flag(text: str) -> dict[str, Any]:
    """``"2"`` -> ``{"class": 2}``; ``"values=0.5,1"`` -> ``{"values": [0.5, 1.0]}``; both separated by spaces or ';'.

    Example:
        >>> parse_target_flag("class=3 values=0.5")
        {'class': 3, 'values': [0.5]}
    """
    text = text.strip()
    if re.fullmatch(r"[+-]?\d+", text):
        return {"class": int(text)}
    out: dict[str, Any] = {}
    for part in filter(None, re.split(r"[;\s]+", text)):
        key, sep, value = part.partition("=")
        if not sep:
            raise ConfigError(f"--target {text!r}: expected a class id (e.g. 2), class=ID and/or values=V1,V2")
        key = key.strip()
        try:
            if key == "class":
                out["class"] = int(value)
            elif key in ("values", "value", "v"):
                out["values"] = [float(v) for v in value.split(",") if v.strip()]
            else:
                raise ConfigError(f"--target {text!r}: unknown part {key!r} (expected class or values)")
        except ValueError:
            raise ConfigError(f"--target {text!r}: {key}={value!r} is not a number") from None
    return out
