"""Objectives and constraints from import strings: ``package.module:function`` or ``path/to/file.py:function``.

How a user function is called:

- **vectorised** (the default): ``fn(candidates) -> (N,)``, with ``candidates`` a
  :class:`~flowevo.objectives.Candidates` batch (``x (N, *D)``, ``sources (N, *D)``,
  ``source_index (N,)``, ``target`` a ``Condition``); return a tensor, array or list of N floats.
- **per item** (``per_item=True``): ``fn(x)`` or ``fn(x, source)`` with numpy arrays of one
  sample's shape ``D``; return one float. The batch is looped over here (for black boxes that
  cannot take a batch); a raising item fails only that candidate.

A function may be a factory instead: with ``params`` given, ``fn(**params)`` is called once and
must return the scoring function.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from flowevo.objectives.base import Candidates, Constraint, FunctionObjective, PartialFailure, Sense

__all__ = ["is_import_string", "resolve_callable", "per_item", "callable_objective", "callable_constraint"]


def is_import_string(spec: str) -> bool:
    """True for ``module.path:attr`` or ``file.py:attr`` (a colon with something on both sides)."""
    head, sep, tail = spec.rpartition(":")
    return bool(sep and head and tail and tail.replace("_", "a").replace(".", "a").isalnum())


def _load_file(path: Path) -> Any:
    name = "flowevo_user_" + "_".join(path.with_suffix("").parts[-3:]).replace("-", "_").replace(".", "_")
    if name in sys.modules and getattr(sys.modules[name], "__file__", None) == str(path):
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot import {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise ValueError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
    return module


def resolve_callable(spec: str, base_dir: str | Path | None = None) -> Callable[..., Any]:
    """Import ``spec`` (``pkg.mod:func``, ``pkg.mod:Class.method`` or ``path/file.py:func``) and return the callable.

    Relative file paths are taken from ``base_dir`` (default: the working directory).

    Raises:
        ValueError: malformed spec, module or file not importable, attribute missing, not callable.

    Example:
        >>> resolve_callable("math:sqrt")(9.0)
        3.0
    """
    if not is_import_string(spec):
        raise ValueError(f"{spec!r} is not an import string: expected 'package.module:function' or 'path/to/file.py:function'")
    target, _, attr = spec.rpartition(":")
    if target.endswith(".py") or "/" in target or "\\" in target:
        path = Path(target)
        if not path.is_absolute():
            path = Path(base_dir or Path.cwd()) / path
        path = path.resolve()
        if not path.is_file():
            raise ValueError(f"{spec!r}: no such file {path}")
        module = _load_file(path)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise ValueError(f"{spec!r}: cannot import module {target!r} ({exc}); is it installed or on PYTHONPATH?") from exc
        except Exception as exc:
            raise ValueError(f"{spec!r}: importing {target!r} failed: {type(exc).__name__}: {exc}") from exc
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{spec!r}: {target!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"{spec!r}: {attr!r} is a {type(obj).__name__}, not a function")
    return obj


def per_item(fn: Callable[..., Any]) -> Callable[[Candidates], Tensor]:
    """Turn ``fn(x)`` / ``fn(x, source)`` (numpy arrays of one sample, returns a float) into a batch function.

    Candidates whose call raises or returns a non-number fail alone (a :class:`PartialFailure`).

    Example:
        >>> f = per_item(lambda x: float(x.sum()))
        >>> f(Candidates(x=torch.ones(2, 3), source_index=torch.arange(2))).tolist()
        [3.0, 3.0]
    """
    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
        takes_source = len(params) >= 2
    except (TypeError, ValueError):  # builtins without a signature
        takes_source = False

    def batch(c: Candidates) -> Tensor:
        xs = c.x.detach().cpu().numpy()
        srcs = None if c.sources is None else c.sources.detach().cpu().numpy()
        out = torch.full((len(c),), math.nan, dtype=torch.float64)
        errors: dict[int, str] = {}
        for i in range(len(c)):
            try:
                args = (xs[i], None if srcs is None else srcs[i]) if takes_source else (xs[i],)
                out[i] = float(fn(*args))
            except Exception as exc:
                errors[i] = f"{type(exc).__name__}: {exc}"
        if errors:
            raise PartialFailure(out, errors)
        return out

    return batch


def _as_tensor(result: Any) -> Tensor:
    if isinstance(result, Tensor):
        return result.detach().to("cpu", torch.float64)
    return torch.as_tensor(np.asarray(result, dtype=np.float64))


def _function(spec: str, per_item_: bool, params: dict[str, Any] | None, base_dir: str | Path | None) -> Callable:
    fn = resolve_callable(spec, base_dir)
    if params:
        try:
            fn = fn(**params)
        except TypeError as exc:
            raise ValueError(f"{spec!r}: calling it with params {sorted(params)} failed ({exc})") from exc
        if not callable(fn):
            raise ValueError(f"{spec!r}(**params) returned a {type(fn).__name__}, not a function")
    if per_item_:
        return per_item(fn)
    return lambda c: _as_tensor(fn(c))


def callable_objective(spec: str, sense: Sense, name: str | None = None, per_item: bool = False,
                       params: dict[str, Any] | None = None, base_dir: str | Path | None = None) -> FunctionObjective:
    """An :class:`~flowevo.objectives.Objective` from an import string (see the module docstring).

    Example:
        >>> obj = callable_objective("flowevo.objectives.resolve:_demo_norm", "min")
        >>> obj(Candidates(x=torch.ones(2, 4), source_index=torch.arange(2))).tolist()
        [2.0, 2.0]
    """
    return FunctionObjective(name or spec.rpartition(":")[2], sense, _function(spec, per_item, params, base_dir))


def callable_constraint(spec: str, bound: float = 0.0, name: str | None = None, per_item: bool = False,
                        params: dict[str, Any] | None = None, base_dir: str | Path | None = None,
                        lower: bool = False) -> Constraint:
    """A :class:`~flowevo.objectives.Constraint` ``g <= bound`` (``lower=True``: ``g >= bound``) from an import string."""
    fn = _function(spec, per_item, params, base_dir)
    label = name or spec.rpartition(":")[2]
    if lower:
        return Constraint(label, lambda c: -fn(c), bound=-float(bound))
    return Constraint(label, fn, bound=float(bound))


def _demo_norm(c: Candidates) -> Tensor:
    """Example objective for the docstrings: the L2 norm of each candidate."""
    return c.x.flatten(1).norm(dim=1)
