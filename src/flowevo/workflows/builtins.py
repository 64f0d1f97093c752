"""Built-in objectives by name, and turning configuration specs into objectives and constraints.

The registry sits above the domains: each entry builds a batch function ``fn(candidates) ->
(N,)`` from a :class:`BuiltinContext` (the loaded model) and keyword ``params``, reusing the
domains' own objective code. Any entry can serve as an objective (with its default sense or
the one given) or as a constraint (with bounds).

=========================  =======  ============  ==================================================
name                       sense    role          what
=========================  =======  ============  ==================================================
distance_to_source         min      preservation  L2 distance to the source in data space
target_probability         max      alignment     the model's judge: p(target class)
target_label               min      alignment     the judge: 1 if its label is not the target, else 0
target_value_error         min      alignment     the judge: |predicted values - target values|
digits.target_probability  max      alignment     shipped MNIST CNN: p(target class) (28x28 images)
digits.target_label        min      alignment     shipped CNN: 1[label != target] + max(0, tau - p)
digits.keeps_class         min      other         shipped CNN: 1 if its label is not the target
digits.<morphometric>      given    other         Morpho-MNIST area/length/thickness/slant/width/
                                                  height; params target=T: abs(m - T)
crystals.surrogate         min      alignment     the model folder's surrogate: predicted property
crystals.surrogate_error   min      alignment     abs(surrogate - target value)
crystals.structure_valid   min      other         1 if distances/volume are unphysical (constraint)
crystals.composition_valid min      other         1 if SMACT rejects the composition (constraint)
crystals.space_group       max      other         spglib space-group number
crystals.space_group_...   min      preservation  (``_changed``) 1 if it differs from the source's
crystals.sites_changed     min      preservation  sites changed vs the source (0..5)
crystals.fingerprint_...   min      preservation  (``_distance``) lattice + species fingerprint distance
crystals.budget            min      other         edit-budget violation (params: budget=k1|k2|...)
=========================  =======  ============  ==================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from flowevo.config.models import CallableSpec, ConstraintSpec, ObjectiveSpec
from flowevo.domains.generic import objectives as generic
from flowevo.objectives import Candidates, CommandObjective, Constraint, FunctionObjective
from flowevo.objectives.resolve import callable_objective, is_import_string

__all__ = ["BUILTINS", "Builtin", "BuiltinContext", "build_constraint", "build_objective", "default_objectives",
           "objective_role"]

BatchFn = Callable[[Candidates], Tensor]


@dataclass
class BuiltinContext:
    """What built-ins may read: the domain kind, the sample shape, the judge and domain extras.

    ``extra`` (crystal runs): ``representation``, ``source_structures`` (canonical, per task row),
    ``surrogate`` (a property predictor or None), ``property`` and ``target_value``.
    """

    kind: str
    data_kind: str
    shape: tuple[int, ...]
    judge: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Builtin:
    """A named built-in: ``factory(context, **params) -> batch function``, default sense and role."""

    factory: Callable[..., BatchFn]
    sense: str | None
    role: str
    doc: str


def _judge(ctx: BuiltinContext, name: str):
    if ctx.judge is None:
        why = "crystal models have none (use crystals.* built-ins)" if ctx.kind == "crystals" else \
            "this model was trained with judge = false"
        raise ValueError(f"built-in {name!r} needs the model's judge; {why}")
    return ctx.judge


def _digit_images(ctx: BuiltinContext, name: str) -> None:
    if ctx.data_kind != "images" or tuple(ctx.shape) not in ((28, 28), (1, 28, 28)):
        raise ValueError(f"built-in {name!r} needs 28x28 grey images in [0, 1]; this model's samples have shape "
                         f"{tuple(ctx.shape)}")


def _crystal(ctx: BuiltinContext, name: str) -> dict[str, Any]:
    if ctx.kind != "crystals":
        raise ValueError(f"built-in {name!r} needs a crystal model (flowevo train --data crystals.csv)")
    return ctx.extra


def _crystal_surrogate(ctx: BuiltinContext, name: str):
    e = _crystal(ctx, name)
    if e.get("surrogate") is None:
        raise ValueError(f"built-in {name!r} needs the model folder's surrogate.json (written by flowevo train)")
    return e


def _c_surrogate(ctx: BuiltinContext) -> BatchFn:
    from flowevo.domains.crystals.objectives import property_objective

    e = _crystal_surrogate(ctx, "crystals.surrogate")
    return property_objective(e["surrogate"], representation=e["representation"]).fn


def _c_surrogate_error(ctx: BuiltinContext) -> BatchFn:
    from flowevo.domains.crystals.objectives import property_objective

    e = _crystal_surrogate(ctx, "crystals.surrogate_error")
    pred, target = property_objective(e["surrogate"], representation=e["representation"]).fn, float(e["target_value"])
    return lambda c: (pred(c) - target).abs()


def _c_constraint(factory_name: str) -> Callable[..., BatchFn]:
    def factory(ctx: BuiltinContext, **params: Any) -> BatchFn:
        from flowevo.domains.crystals import objectives as co

        e = _crystal(ctx, f"crystals.{factory_name}")
        return getattr(co, f"{factory_name}_constraint")(**params, representation=e["representation"]).fn

    return factory


def _c_space_group(compare: bool) -> Callable[..., BatchFn]:
    def factory(ctx: BuiltinContext, symprec: float = 0.1) -> BatchFn:
        from flowevo.domains.crystals.objectives import space_group_objective

        e = _crystal(ctx, "crystals.space_group")
        return space_group_objective(symprec, e["source_structures"], compare, e["representation"]).fn

    return factory


def _c_sites_changed(ctx: BuiltinContext) -> BatchFn:
    from flowevo.domains.crystals.objectives import sites_changed_objective

    e = _crystal(ctx, "crystals.sites_changed")
    return sites_changed_objective(e["source_structures"], e["representation"]).fn


def _c_fingerprint(ctx: BuiltinContext) -> BatchFn:
    from flowevo.domains.crystals.objectives import fingerprint_distance_objective

    e = _crystal(ctx, "crystals.fingerprint_distance")
    return fingerprint_distance_objective(e["representation"], e["source_structures"]).fn


def _c_budget(ctx: BuiltinContext, budget: str = "k2") -> BatchFn:
    from flowevo.domains.crystals.objectives import budget_constraint

    e = _crystal(ctx, "crystals.budget")
    if budget == "any":
        raise ValueError("crystals.budget with budget 'any' constrains nothing; leave it out")
    return budget_constraint(budget, e["source_structures"], e["representation"])[0].fn


@lru_cache(maxsize=1)
def _digits_oracle():
    from flowevo.domains.digits.models import load_digit_models
    from flowevo.domains.digits.objectives import ClassifierOracle

    return ClassifierOracle(load_digit_models().classifier)


def _flat28(c: Candidates) -> Candidates:
    return Candidates(c.x.reshape(-1, 28, 28), c.source_index, c.sources, c.target, c.extra)


def _digits_p_target(ctx: BuiltinContext) -> BatchFn:
    _digit_images(ctx, "digits.target_probability")
    oracle = _digits_oracle()
    return lambda c: oracle.probs(c.x.reshape(-1, 28, 28)).gather(1, c.target.labels.cpu()[:, None]).squeeze(1).double()


def _digits_target_label(ctx: BuiltinContext, tau: float = 0.9) -> BatchFn:
    from flowevo.domains.digits.objectives import target_confidence_constraint

    _digit_images(ctx, "digits.target_label")
    g = target_confidence_constraint(_digits_oracle(), float(tau))
    return lambda c: g(_flat28(c))


def _digits_keeps_class(ctx: BuiltinContext) -> BatchFn:
    from flowevo.domains.digits.objectives import keep_class_constraint

    _digit_images(ctx, "digits.keeps_class")
    g = keep_class_constraint(_digits_oracle())
    return lambda c: g(_flat28(c))


def _digits_morpho(metric: str) -> Callable[..., BatchFn]:
    def factory(ctx: BuiltinContext, target: float | None = None, processes: int | None = 1) -> BatchFn:
        from flowevo.domains.digits.morphometrics import METRICS, measure_batch
        from flowevo.domains.digits.objectives import thickness_objective

        _digit_images(ctx, f"digits.{metric}")
        if metric == "thickness" and target is not None:
            obj = thickness_objective(float(target), processes=processes)
            return lambda c: obj(_flat28(c))
        col = METRICS.index(metric)

        def fn(c: Candidates) -> Tensor:
            m = measure_batch(c.x.reshape(-1, 28, 28).detach().cpu().numpy(), processes=processes)[:, col]
            return torch.as_tensor(m if target is None else np.abs(m - float(target)), dtype=torch.float64)

        return fn

    return factory


BUILTINS: dict[str, Builtin] = {
    "distance_to_source": Builtin(lambda ctx: generic.distance_to_source, "min", "preservation",
                                  "L2 distance to the source in data space"),
    "target_probability": Builtin(lambda ctx: generic.target_probability(_judge(ctx, "target_probability")), "max",
                                  "alignment", "the model's judge: probability of the target class"),
    "target_label": Builtin(lambda ctx: generic.target_label_mismatch(_judge(ctx, "target_label")), "min",
                            "alignment", "the judge: 1 where its label is not the target class"),
    "target_value_error": Builtin(lambda ctx: generic.target_value_error(_judge(ctx, "target_value_error")), "min",
                                  "alignment", "the judge: distance of its predicted values to the target values"),
    "digits.target_probability": Builtin(_digits_p_target, "max", "alignment",
                                         "shipped MNIST CNN: probability of the target class"),
    "digits.target_label": Builtin(_digits_target_label, "min", "alignment",
                                   "shipped CNN: 1[label != target] + max(0, tau - p_target); params: tau (0.9)"),
    "digits.keeps_class": Builtin(_digits_keeps_class, "min", "other", "shipped CNN: 1 where its label is not the target"),
    **{f"digits.{m}": Builtin(_digits_morpho(m), None, "other",
                              f"Morpho-MNIST {m}; params: target (abs error to it), processes")
       for m in ("area", "length", "thickness", "slant", "width", "height")},
    "crystals.surrogate": Builtin(_c_surrogate, "min", "alignment", "the model folder's surrogate: predicted property"),
    "crystals.surrogate_error": Builtin(_c_surrogate_error, "min", "alignment",
                                        "|surrogate prediction - target value| of the property"),
    "crystals.structure_valid": Builtin(_c_constraint("structure_validity"), "min", "other",
                                        "1 where distances < min_dist or volume < min_volume (constraint: <= 0)"),
    "crystals.composition_valid": Builtin(_c_constraint("composition_validity"), "min", "other",
                                          "1 where SMACT rejects the composition (constraint: <= 0)"),
    "crystals.space_group": Builtin(_c_space_group(False), "max", "other", "spglib space-group number"),
    "crystals.space_group_changed": Builtin(_c_space_group(True), "min", "preservation",
                                            "1 where the space group differs from the source's"),
    "crystals.sites_changed": Builtin(_c_sites_changed, "min", "preservation", "sites changed vs the source (0..5)"),
    "crystals.fingerprint_distance": Builtin(_c_fingerprint, "min", "preservation",
                                             "distance of lattice + species fingerprints to the source"),
    "crystals.budget": Builtin(_c_budget, "min", "other", "edit-budget violation; params: budget (k1, k2, k1_bkept, "
                                                          "k2_bkept); constraint: <= 0"),
}


def _batch_fn(spec: CallableSpec, ctx: BuiltinContext, base_dir: Path | None) -> tuple[BatchFn, str | None, str]:
    """(batch function, default sense, default role) for a ``use`` spec."""
    assert spec.use is not None
    if spec.use in BUILTINS:
        b = BUILTINS[spec.use]
        if spec.per_item:
            raise ValueError(f"built-in {spec.use!r} is vectorised; remove per_item")
        try:
            return b.factory(ctx, **spec.params), b.sense, b.role
        except TypeError as exc:
            raise ValueError(f"built-in {spec.use!r}: bad params {sorted(spec.params)} ({exc})") from exc
    if is_import_string(spec.use):
        obj = callable_objective(spec.use, "min", per_item=spec.per_item, params=spec.params or None, base_dir=base_dir)
        return obj.fn, None, "alignment"
    raise ValueError(f"unknown objective {spec.use!r}: not a built-in ({', '.join(sorted(BUILTINS))}) and not an "
                     f"import string (package.module:function or path/to/file.py:function)")


def _command(spec: CallableSpec, sense: str) -> CommandObjective:
    assert spec.command is not None
    return CommandObjective(spec.label, sense, list(spec.command), timeout_s=spec.timeout_s,
                            payload_format=spec.payload_format, max_parallel=spec.max_parallel)


def objective_role(spec: ObjectiveSpec) -> str:
    """The spec's role for reports: given, else the built-in's, else ``alignment``."""
    if spec.role:
        return spec.role
    if spec.use in BUILTINS:
        return BUILTINS[spec.use].role
    return "alignment"


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


def default_objectives(ctx: BuiltinContext, has_class: bool, has_values: bool) -> list[ObjectiveSpec]:
    """What to optimise when the configuration names nothing: the judge's (or surrogate's) alignment plus preservation."""
    if ctx.kind == "crystals" and ctx.extra.get("surrogate") is not None:
        return [ObjectiveSpec(use="crystals.surrogate_error"), ObjectiveSpec(use="crystals.fingerprint_distance")]
    if ctx.judge is None:
        raise ValueError("no objectives given and the model has no judge: pass --objective (a built-in, "
                         "package.module:function or path/file.py:function)")
    out = []
    if has_class and ctx.judge.config["num_classes"]:
        out.append(ObjectiveSpec(use="target_probability"))
    if has_values and ctx.judge.config["value_dim"]:
        out.append(ObjectiveSpec(use="target_value_error"))
    out.append(ObjectiveSpec(use="distance_to_source"))
    return out

