"""Configuration specs -> objectives and constraints, over the built-ins the domains register.

A spec's ``use`` is a built-in name (any registered domain's, see
:func:`flowevo.domains.builtins`: each entry builds a batch function ``fn(candidates) -> (N,)``
from a :class:`~flowevo.domains.BuiltinContext` and keyword ``params``) or an import string;
``command`` runs an external program. Any built-in can serve as an objective (with its default
sense or the one given) or as a constraint (with bounds).

What is built can travel to other processes (the ``processes`` and ``dask`` backends of
``[optimize.evaluation]``): each batch function is a :class:`SpecFunction`, which pickles as its
spec and the built-ins' context (moved to the CPU) and rebuilds the function where it runs, so
built-ins, import strings (``pkg.mod:fn``, ``path/file.py:fn``) and ``cmd:`` programs need no code
of the user's to be picklable. Lambdas and closures inside factories never cross a process boundary.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from flowevo.config.models import CallableSpec, ConstraintSpec, ObjectiveSpec
from flowevo.domains import BatchFn, BuiltinContext, Domain, builtins
from flowevo.objectives import Candidates, CommandObjective, Constraint, FunctionObjective
from flowevo.objectives.resolve import callable_objective, is_import_string

__all__ = ["SpecFunction", "build_constraint", "build_objective", "default_objectives", "objective_role", "portable"]


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


def portable(obj: Any) -> Any:
    """``obj`` with every module and tensor inside it (dataclass fields, dicts, lists) on the CPU: what a
    worker process without the parent's GPU can unpickle. Objects already on the CPU are not copied."""
    if isinstance(obj, nn.Module):
        on_cpu = all(t.device.type == "cpu" for t in (*obj.parameters(), *obj.buffers()))
        return obj if on_cpu else copy.deepcopy(obj).cpu()
    if isinstance(obj, Tensor):
        return obj.detach().cpu()
    if isinstance(obj, BuiltinContext):
        return BuiltinContext(obj.kind, obj.data_kind, tuple(obj.shape), portable(obj.judge), portable(obj.extra))
    if isinstance(obj, dict):
        return {k: portable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(portable(v) for v in obj)
    return obj


Bound = Literal["none", "lower", "band"]


class SpecFunction:
    """The batch function ``fn(candidates) -> (N,)`` of a configuration spec, picklable by construction.

    Built in this process at once (so a bad spec fails before the run starts); pickled as the spec, the
    built-ins' context (on the CPU) and the bound transform, and rebuilt on first use in the process
    that unpickles it (a pool or Dask worker).

    Args:
        spec: the objective or constraint spec.
        ctx: what built-ins read about the model.
        bound: ``"none"`` (g as is), ``"lower"`` (``-g``: a ``g >= lower`` constraint) or ``"band"``
            (``max(g - upper, lower - g)``).
        lower, upper: the bounds used by ``"lower"`` / ``"band"``.
    """

    def __init__(self, spec: CallableSpec, ctx: BuiltinContext, bound: Bound = "none", lower: float | None = None,
                 upper: float | None = None) -> None:
        self.spec, self.ctx, self.bound, self.lower, self.upper = spec, ctx, bound, lower, upper
        self.sense: str | None = None  # the built-in's default sense, once built
        self.role = "alignment"
        self._fn: BatchFn | None = self._build()

    def _build(self) -> BatchFn:
        spec = self.spec
        if spec.command is not None:
            return _command(spec, "min")
        fn, sense, role = _batch_fn(spec, self.ctx, None)
        self.sense, self.role = sense, role
        return fn

    def __call__(self, candidates: Candidates) -> Tensor:
        if self._fn is None:
            self._fn = self._build()
        g = torch.as_tensor(self._fn(candidates), dtype=torch.float64)
        if self.bound == "lower":
            return -g
        if self.bound == "band":
            return torch.maximum(g - float(self.upper), float(self.lower) - g)
        return g

    def __getstate__(self) -> dict[str, Any]:
        return {"spec": self.spec.model_dump(mode="json", by_alias=True), "spec_type": type(self.spec),
                "ctx": portable(self.ctx), "bound": self.bound, "lower": self.lower, "upper": self.upper}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.spec = state["spec_type"].model_validate(state["spec"])
        self.ctx, self.bound, self.lower, self.upper = state["ctx"], state["bound"], state["lower"], state["upper"]
        self.sense, self.role = None, "alignment"
        self._fn = None  # rebuilt on first call, in this process

    def __repr__(self) -> str:
        return f"SpecFunction({self.spec.label!r})"


def objective_role(spec: ObjectiveSpec) -> str:
    """The spec's role for reports: given, else the built-in's, else ``alignment``."""
    if spec.role:
        return spec.role
    table = builtins()
    return table[spec.use].role if spec.use in table else "alignment"


def _cheap(spec: ObjectiveSpec | ConstraintSpec) -> bool:
    """``cheap`` as given, or the built-in's own marking."""
    table = builtins()
    return bool(spec.cheap or (spec.use in table and table[spec.use].cheap))


def build_objective(spec: ObjectiveSpec, ctx: BuiltinContext,
                    base_dir: Path | None = None) -> FunctionObjective | CommandObjective:
    """An objective from a configuration spec (built-in, import string or command); picklable (see the module
    docstring).

    ``base_dir`` resolves relative file paths in import strings (default: the working directory).

    Raises:
        ValueError: unknown name, import failure, or no sense where none is implied.
    """
    if spec.command is not None:
        if spec.sense is None:
            raise ValueError(f"objective {spec.label!r}: a command needs a sense ('min' or 'max')")
        return _command(spec, spec.sense)
    spec = _rooted(spec, base_dir)
    fn = SpecFunction(spec, ctx)
    sense = spec.sense or fn.sense
    if sense is None:
        raise ValueError(f"objective {spec.label!r}: give a sense ('min' or 'max')")
    return FunctionObjective(spec.label, sense, fn, cheap=_cheap(spec))


def build_constraint(spec: ConstraintSpec, ctx: BuiltinContext, base_dir: Path | None = None) -> Constraint:
    """A constraint from a spec: ``g <= upper``, ``g >= lower`` or ``lower <= g <= upper`` (violation: distance
    outside); picklable (see the module docstring)."""
    spec = _rooted(spec, base_dir)
    lo, hi = spec.lower, spec.upper
    if lo is None:
        return Constraint(spec.label, SpecFunction(spec, ctx), bound=float(hi), cheap=_cheap(spec))
    if hi is None:
        return Constraint(spec.label, SpecFunction(spec, ctx, "lower", lower=lo), bound=-float(lo), cheap=_cheap(spec))
    return Constraint(spec.label, SpecFunction(spec, ctx, "band", lower=lo, upper=hi), bound=0.0, cheap=_cheap(spec))


def _rooted(spec: Any, base_dir: Path | None) -> Any:
    """The spec with a relative ``path/file.py:fn`` made absolute (from ``base_dir`` or the working directory), so
    it resolves the same in any process."""
    use = spec.use
    if not use or not is_import_string(use):
        return spec
    head, _, tail = use.rpartition(":")
    if not (head.endswith(".py") or "/" in head or "\\" in head) or Path(head).is_absolute():
        return spec
    return spec.model_copy(update={"use": f"{(Path(base_dir or Path.cwd()) / head).resolve()}:{tail}"})


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
