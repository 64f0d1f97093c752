"""What a domain provides to the command-line workflows: the :class:`Domain` record and the types it speaks.

A domain (``generic``, ``digits``, ``crystals`` or a third party's) is one :class:`Domain` value:
its name, its built-in objectives and constraints (:class:`Builtin`, by name), and optionally

- a **model loader**: ``recognises_model(MODEL_DIR) -> bool`` and ``load_run(RunRequest) -> DomainRun``
  (sources, conditions, codec, payload hook, judge and extras for its built-ins; optionally its own
  variation strategy and generation-0 seeds, constraints it always applies and suggested ``[optimize]``
  values), and ``default_target``: what it decodes toward when no target is given (empty: a target is required);
- a **trainer**: ``recognises_data(FILE) -> bool`` and ``train(TrainRequest, show_progress, log) -> Trained``;
- an **output writer**: ``write_outputs(run, run_dir, best_decoded, best_violation)`` for the
  domain's own files next to the generic ones (e.g. CIFs), returning figures for ``metrics.json`` (or None);
- **default objectives**: built-in names to optimise when a configuration names none;
- a **flow loader** for constrained fine-tuning (``flowevo cfo``): ``load_flow(FlowRequest) -> DomainFlow``
  (the trainable velocity, its encoder, condition layout, payload hook and built-in context; no sources).

Every argument is plain data (paths, numbers, mappings): domains sit below ``config/`` and
``workflows/`` and never see their pydantic models. Nothing here imports torch, so registering
a domain is cheap; loaders and factories import what they need when called.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from torch import Tensor, nn

    from flowevo.flow import Codec, Condition
    from flowevo.objectives import Candidates

__all__ = ["BatchFn", "Builtin", "BuiltinContext", "Domain", "DomainFlow", "DomainRun", "FlowRequest", "RunRequest",
           "TrainRequest", "Trained"]

BatchFn = Callable[["Candidates"], "Tensor"]
"""A vectorised score: ``fn(candidates) -> (N,)``."""

Role = Literal["alignment", "preservation", "other"]


@dataclass
class BuiltinContext:
    """What a built-in's factory may read about the loaded model.

    Attributes:
        kind: the domain that loaded the model (``DomainRun.kind``), e.g. ``"generic"``.
        data_kind: what the samples are (``"vectors"``, ``"images"``, a domain's own word).
        shape: one sample's shape ``D``.
        judge: the model's condition predictor, or None.
        extra: the domain's things for its built-ins (e.g. source structures, a surrogate, the target value).
    """

    kind: str
    data_kind: str
    shape: tuple[int, ...]
    judge: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Builtin:
    """A named built-in objective or constraint.

    Attributes:
        factory: ``factory(context, **params) -> BatchFn``; raise ``ValueError`` when the model does not fit
            (the message names the built-in and what it needs).
        sense: default sense as an objective (``"min"`` / ``"max"``), or None when the user must give one.
        role: for reports: ``"alignment"`` (toward the target), ``"preservation"`` (stay near the source) or ``"other"``.
        doc: one line for listings.
        cheap: computable without the black box (e.g. a validity check or an edit budget): a spec that uses it is
            ``cheap`` (:class:`~flowevo.objectives.Constraint`), so pre-screening calls it exactly.
    """

    factory: Callable[..., BatchFn]
    sense: str | None
    role: Role
    doc: str
    cheap: bool = False


@dataclass(frozen=True)
class RunRequest:
    """What an optimisation asks of a domain's model loader (plain values from ``[optimize]``).

    Attributes:
        model_dir: the MODEL_DIR. sources: the file of samples to edit.
        target_class / target_values: the target condition (either may be None; both only when the domain has
            a ``default_target``).
        rows: edit only the first ``rows`` sources (None: all).
        solver / solver_steps / strength / guidance: how the codec integrates (``FixedGrid(solver, solver_steps)``).
        device: where the loader puts the model and the codec (``"cpu"``, ``"cuda"``, ``"cuda:N"``; checked to be
            available before the loader is called); sources and conditions may stay on the CPU.
        options: domain options by name (plain values; a loader reads the keys it knows, e.g. the crystal
            domain's ``budget``, and raises ``ValueError`` on others).
    """

    model_dir: Path
    sources: Path
    target_class: int | None = None
    target_values: Sequence[float] | None = None
    rows: int | None = None
    solver: str = "rk4"
    solver_steps: int = 10
    strength: float = 1.0
    guidance: float = 1.0
    device: str = "cpu"
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class DomainRun:
    """A domain's part of an optimisation run, as its model loader builds it.

    Attributes:
        kind: the domain's name. data_kind: ``"vectors"``, ``"images"`` or the domain's word (reports use it).
        shape: one sample's shape ``D``.
        x: ``(B, *D)`` sources in data space; labels ``(B,)`` / values ``(B, K)``: their own conditions as
            given (None when absent), written to ``sources.npz``.
        source / target: the sources' own and the target conditions (batch B).
        codec: data <-> residuals; model: the loaded model; judge: what judge built-ins read (or None).
        payload: the Evolver's payload hook (decoded ``(N, *D)`` -> ``Candidates.extra``), or None.
        class_names: names of the class ids, if any.
        num_classes: the number of class ids the flow's condition knows (0: not conditioned on a class).
        extra: domain things for built-ins and the output writer.
        variation: the Evolver's variation strategy (a :class:`~flowevo.evolve.VariationStrategy`, e.g. one
            that knows the domain's genome); None: the generic ``Variation(cross_rate)`` of ``[optimize]``.
        extra_seeds: ``(B, P, *S)`` residuals added to each row's generation 0 after its own, or None; or a
            function ``fn(constraints) -> (B, P, *S)`` called with the run's constraints once they are built
            (e.g. to keep seeds that pass the cheap ones).
        space: the per-source baselines' search space (a :class:`~flowevo.baselines.SearchSpace`, e.g. the
            crystals' site mask) for ``optimize.strategy`` other than ``"reo"``; None: the codec's residual space.
        default_constraints: constraint specs (plain dicts as in ``[[optimize.constraints]]``, e.g.
            ``{"use": "crystals.structure_valid", "upper": 0}``) the run applies unless the configuration
            has one of the same name; they are recorded in ``config.resolved.json``.
        optimize_defaults: ``[optimize]`` values the domain suggests (e.g. ``{"population": 8}``), used for the
            keys the configuration does not set; recorded in ``config.resolved.json``.
    """

    kind: str
    data_kind: str
    shape: tuple[int, ...]
    x: Tensor
    labels: Tensor | None
    values: Tensor | None
    source: Condition
    target: Condition
    codec: Codec
    model: Any
    judge: nn.Module | None = None
    payload: Callable[[Tensor], dict] | None = None
    class_names: list[str] | None = None
    num_classes: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    variation: Any = None
    extra_seeds: Tensor | Callable[[list[Any]], Tensor] | None = None
    space: Any = None
    default_constraints: list[dict[str, Any]] = field(default_factory=list)
    optimize_defaults: dict[str, Any] = field(default_factory=dict)

    def context(self) -> BuiltinContext:
        """The :class:`BuiltinContext` built-ins of this run see."""
        return BuiltinContext(self.kind, self.data_kind, tuple(self.shape), self.judge, dict(self.extra))


@dataclass(frozen=True)
class FlowRequest:
    """What constrained fine-tuning asks of a domain's flow loader: the model (MODEL_DIR or ``file.py:factory``)
    and the device to put its velocity and encoder on (checked to be available before the loader is called)."""

    model_dir: Path
    device: str = "cpu"


@dataclass
class DomainFlow:
    """A domain's flow as constrained fine-tuning sees it (no sources: it samples the flow itself).

    Attributes:
        kind: the domain's name. data_kind: as in :class:`DomainRun`. shape: one sample's shape ``D``.
        flow_shape: the flow-space (residual) shape ``S``.
        velocity: the trainable velocity model ``v(z (N, *S), t (N,), c) -> (N, *S)`` (a torch module with
            parameters, on the requested device; the fine-tuning copies it and never changes this one).
        num_classes / value_dim: the condition layout (class ids ``(N,)`` and / or float values ``(N, K)``).
        condition: ``fn(class_id | None, values | None) -> Condition`` of batch 1 in the domain's units (e.g. data
            units for float conditions); raises ``ValueError`` naming what the model needs.
        encoder: between data ``(N, *D)`` and flow space ``(N, *S)``, or None.
        payload: ``fn(x (N, *D)) -> Candidates.extra`` (e.g. crystal structures), or None.
        judge / extra: what the built-ins read (:class:`BuiltinContext`); built-ins that compare with a source do
            not apply (there is none).
        class_names: names of the class ids, if any.
        num_classes: the number of class ids the flow's condition knows (0: not conditioned on a class).
        project: ``fn(x (N, *D)) -> (N, *D)``: each sample replaced by the data it stands for (e.g. crystals: the
            decoded structure re-encoded with exact species codes), what fine-tuning then fits and where the
            penalty's neighbours are found; None: the samples. Used when ``[cfo] project = true``.
        diversity_key: ``fn(candidates) -> one hashable per sample``: what counts as the same sample (e.g. crystals:
            the reduced formula), so ``[cfo] replay`` keeps one elite per key and ``feasible_floor`` spreads its
            weight over keys; None: every sample is its own.
    """

    kind: str
    data_kind: str
    shape: tuple[int, ...]
    flow_shape: tuple[int, ...]
    velocity: nn.Module
    num_classes: int
    value_dim: int
    condition: Callable[[int | None, Sequence[float] | None], Condition]
    encoder: Any = None
    payload: Callable[[Tensor], dict] | None = None
    judge: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
    class_names: list[str] | None = None
    project: Callable[[Tensor], Tensor] | None = None
    diversity_key: Callable[[Any], Sequence[Any]] | None = None

    def context(self) -> BuiltinContext:
        """The :class:`BuiltinContext` built-ins see (no source structures / sources)."""
        return BuiltinContext(self.kind, self.data_kind, tuple(self.shape), self.judge, dict(self.extra))


@dataclass(frozen=True)
class TrainRequest:
    """What ``flowevo train`` asks of a domain's trainer.

    Attributes:
        data: the training file; out: the MODEL_DIR to write; seed: the run seed.
        settings: the ``[train]`` section as plain values (None = scaled to the data); a trainer reads the
            keys it uses and ignores the rest (``settings["device"]``: where to train, checked to be available).
    """

    data: Path
    out: Path
    seed: int = 0
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Trained:
    """What a trainer returns once MODEL_DIR is written.

    Attributes:
        summary: the figures shown to the user (``model_dir``, ``kind``, ``shape``, ``flow_shape``,
            ``num_classes``, ``value_dim``, ``encoder``, ``steps``, ``final_loss``, ``judge``, ``roundtrip``, ``wall_s``).
        resolved: ``[train]`` settings as actually used (recorded in ``config.resolved.json``).
        losses: the flow's training losses (plotted to ``training.png``; may be empty); loss_steps: the steps they span.
    """

    summary: dict[str, Any]
    resolved: dict[str, Any] = field(default_factory=dict)
    losses: list[float] = field(default_factory=list)
    loss_steps: int = 0


@dataclass(frozen=True)
class Domain:
    """A domain's registration: its name, built-ins, and the optional loader, trainer and writer.

    Attributes:
        name: unique name (``DomainRun.kind`` of the runs it loads); prefix its built-ins with ``name.``.
        builtins: built-in objectives / constraints by name (names are unique across domains).
        recognises_model: ``fn(model_dir) -> bool``: this domain's MODEL_DIR (cheap: look for a file); the path need
            not be a folder (e.g. ``path/file.py:factory``).
        load_run: ``fn(RunRequest) -> DomainRun``; raise ``ValueError`` / ``FileNotFoundError`` naming the file or key.
        model_hint: what marks its MODEL_DIR, for error messages (e.g. ``"model.json"``).
        recognises_data: ``fn(data_file) -> bool``: a file its trainer reads (cheap: suffix, header).
        train: ``fn(TrainRequest, show_progress, log) -> Trained``, writing ``request.out``.
        data_hint: what its trainer reads, for error messages (e.g. ``"an .npz (keys x, c and/or v)"``).
        write_outputs: ``fn(run, run_dir, best_decoded (B, *D), best_violation (B,)) -> figures | None``: domain
            files in RUN_DIR; the figures (a JSON-able mapping) join ``metrics.json`` (names must not clash).
        default_objectives: ``fn(context, has_class, has_values) -> built-in names`` when none are configured;
            raise ``ValueError`` saying what to pass when there are none.
        default_target: what the loader decodes toward when the configuration gives no target, in words (for
            messages and docs); empty (the default): a target is required.
        load_flow: ``fn(FlowRequest) -> DomainFlow``: the flow for constrained fine-tuning (``flowevo cfo``), for
            the models ``recognises_model`` claims; None: the domain's models cannot be fine-tuned.
    """

    name: str
    builtins: Mapping[str, Builtin] = field(default_factory=dict)
    recognises_model: Callable[[Path], bool] | None = None
    load_run: Callable[[RunRequest], DomainRun] | None = None
    model_hint: str = ""
    recognises_data: Callable[[Path], bool] | None = None
    train: Callable[[TrainRequest, bool, Callable[[str], None]], Trained] | None = None
    data_hint: str = ""
    write_outputs: Callable[[DomainRun, Path, Tensor, Tensor], Mapping[str, Any] | None] | None = None
    default_objectives: Callable[[BuiltinContext, bool, bool], list[str]] | None = None
    default_target: str = ""
    load_flow: Callable[[FlowRequest], DomainFlow] | None = None

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").isalnum():
            raise ValueError(f"domain name {self.name!r}: use letters, digits and '_'")
        if (self.recognises_model is None) != (self.load_run is None):
            raise ValueError(f"domain {self.name!r}: give both recognises_model and load_run, or neither")
        if self.load_flow is not None and self.recognises_model is None:
            raise ValueError(f"domain {self.name!r}: load_flow needs recognises_model (which models it reads)")
        if (self.recognises_data is None) != (self.train is None):
            raise ValueError(f"domain {self.name!r}: give both recognises_data and train, or neither")
        for key, b in self.builtins.items():
            if not isinstance(b, Builtin):
                raise TypeError(f"domain {self.name!r}: built-in {key!r} is a {type(b).__name__}, not a Builtin")
