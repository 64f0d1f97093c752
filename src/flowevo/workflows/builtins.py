"""Configuration specs -> objectives and constraints, over the built-ins the domains register.

A spec's ``use`` is a built-in name (any registered domain's, see
:func:`flowevo.domains.builtins`: each entry builds a batch function ``fn(candidates) -> (N,)``
from a :class:`~flowevo.domains.BuiltinContext` and keyword ``params``) or an import string;
``command`` runs an external program. Any built-in can serve as an objective (with its default
sense or the one given) or as a constraint (with bounds).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from flowevo.config.models import CallableSpec, ConstraintSpec, ObjectiveSpec
from flowevo.domains import BatchFn, BuiltinContext, Domain, builtins
from flowevo.objectives import Candidates, CommandObjective, Constraint, FunctionObjective
from flowevo.objectives.resolve import callable_objective, is_import_string

__all__ = ["build_constraint", "build_objective", "default_objectives", "objective_role"]


def _batch_fn(spec: CallableSpec, ctx: BuiltinContext, base_dir: Path | None) -> tuple[BatchFn, str | None, str]:
    """(batch function, default sense, default role) for a ``use`` spec."""
    assert spec.use is not None
    table = builtins()
    if spec.use in table:
        b = table[spec.use]
        if spec.per_item:
            raise ValueError(f"built-in {spec.use!r} is vectorised; remove per_item")
        try:
            return b.factory(ctx, **spec.params), b.sense, b.role
        except TypeError as exc:
            raise ValueError(f"built-in {spec.use!r}: bad params {sorted(spec.params)} ({exc})") from exc
    if is_import_string(spec.use):
        obj = callable_objective(spec.use, "min", per_item=spec.per_item, params=spec.params or None, base_dir=base_dir)
        return obj.fn, None, "alignment"
    raise ValueError(f"unknown objective {spec.use!r}: not a built-in ({', '.join(sorted(table))}) and not an "
                     f"import string (package.module:function or path/to/file.py:function)")


def _command(spec: CallableSpec, sense: str) -> CommandObjective:
    assert spec.command is not None
    return CommandObjective(spec.label, sense, list(spec.command), timeout_s=spec.timeout_s,
                            payload_format=spec.payload_format, max_parallel=spec.max_parallel)


def objective_role(spec: ObjectiveSpec) -> str:
    """The spec's role for reports: given, else the built-in's, else ``alignment``."""
    if spec.role:
        return spec.role
    table = builtins()
    return table[spec.use].role if spec.use in table else "alignment"


def build_objective(spec: ObjectiveSpec, ctx: BuiltinContext, base_dir: Path | None = None) -> FunctionObjective | CommandObjective:
    """An objective from a configuration spec (built-in, import string or command).

    Raises:
        ValueError: unknown name, import failure, or no sense where none is implied.
    """
    if spec.command is not None:
        if spec.sense is None:
            raise ValueError(f"objective {spec.label!r}: a command needs a sense ('min' or 'max')")
        return _command(spec, spec.sense)
    fn, sense, _ = _batch_fn(spec, ctx, base_dir)
    sense = spec.sense or sense
    if sense is None:
        raise ValueError(f"objective {spec.label!r}: give a sense ('min' or 'max')")
    return FunctionObjective(spec.label, sense, fn)


def build_constraint(spec: ConstraintSpec, ctx: BuiltinContext, base_dir: Path | None = None) -> Constraint:
    """A constraint from a spec: ``g <= upper``, ``g >= lower`` or ``lower <= g <= upper`` (violation: distance outside)."""
    fn: BatchFn
    if spec.command is not None:
        fn = _command(spec, "min")
    else:
        fn = _batch_fn(spec, ctx, base_dir)[0]
    lo, hi = spec.lower, spec.upper
    if lo is None:
        return Constraint(spec.label, fn, bound=float(hi))
    if hi is None:
        return Constraint(spec.label, lambda c: -torch.as_tensor(fn(c), dtype=torch.float64), bound=-float(lo))

    def band(c: Candidates) -> Tensor:
        g = torch.as_tensor(fn(c), dtype=torch.float64)
        return torch.maximum(g - hi, lo - g)

    return Constraint(spec.label, band, bound=0.0)


def default_objectives(domain: Domain, ctx: BuiltinContext, has_class: bool, has_values: bool) -> list[ObjectiveSpec]:
    """What to optimise when the configuration names nothing: the built-ins ``domain`` proposes
    (e.g. the judge's alignment plus preservation).

    Raises:
        ValueError: the domain proposes none (the message says what to pass).
    """
    names = domain.default_objectives(ctx, has_class, has_values) if domain.default_objectives else []
    if not names:
        raise ValueError(f"no objectives given and the {domain.name} model offers no default: pass --objective "
                         "(a built-in, package.module:function or path/file.py:function)")
    return [ObjectiveSpec(use=n) for n in names]
