"""The generic domain's registration: judge built-ins, the ``model.json`` MODEL_DIR loader and the ``.npz`` trainer.

==================  =====  ============  ======================================================
built-in            sense  role          what
==================  =====  ============  ======================================================
distance_to_source  min    preservation  L2 distance to the source in data space
target_probability  max    alignment     the model's judge: p(target class)
target_label        min    alignment     the judge: 1 if its label is not the target, else 0
target_value_error  min    alignment     the judge: |predicted values - target values|
==================  =====  ============  ======================================================

The judge built-ins read ``BuiltinContext.judge``, so any domain whose loader supplies a
:class:`~flowevo.domains.generic.judge.ConditionPredictor` can use them. Imports here are light;
torch and the model code load when a run does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowevo.domains.plugin import (
    BatchFn,
    Builtin,
    BuiltinContext,
    Domain,
    DomainFlow,
    DomainRun,
    FlowRequest,
    RunRequest,
    Trained,
    TrainRequest,
)

if TYPE_CHECKING:
    from flowevo.domains.generic import GenericModel, GenericTrainConfig, UserData
    from flowevo.flow import Condition

__all__ = ["DOMAIN", "MODEL_FILE", "generic_train_config", "train_summary"]

MODEL_FILE = "model.json"

# the [train] settings the generic trainer reads (GenericTrainConfig fields)
_TRAIN_KEYS = ("encoder", "latent", "steps", "batch_size", "lr", "hidden", "depth", "condition_dropout",
               "encoder_steps", "judge", "judge_steps", "holdout", "device")


# ------------------------------------------------------------------------------------- built-ins
def _judge(ctx: BuiltinContext, name: str) -> Any:
    if ctx.judge is None:
        why = "this model was trained with judge = false" if ctx.kind == "generic" else \
            f"{ctx.kind} models have none (use the {ctx.kind}.* built-ins)"
        raise ValueError(f"built-in {name!r} needs the model's judge; {why}")
    return ctx.judge


def _distance(ctx: BuiltinContext) -> BatchFn:
    from flowevo.domains.generic.objectives import distance_to_source

    return distance_to_source


def _judged(name: str, factory_name: str) -> Callable[[BuiltinContext], BatchFn]:
    def factory(ctx: BuiltinContext) -> BatchFn:
        from flowevo.domains.generic import objectives

        return getattr(objectives, factory_name)(_judge(ctx, name))

    return factory


BUILTINS: dict[str, Builtin] = {
    "distance_to_source": Builtin(_distance, "min", "preservation", "L2 distance to the source in data space"),
    "target_probability": Builtin(_judged("target_probability", "target_probability"), "max", "alignment",
                                  "the model's judge: probability of the target class"),
    "target_label": Builtin(_judged("target_label", "target_label_mismatch"), "min", "alignment",
                            "the judge: 1 where its label is not the target class"),
    "target_value_error": Builtin(_judged("target_value_error", "target_value_error"), "min", "alignment",
                                  "the judge: distance of its predicted values to the target values"),
}


def default_objectives(ctx: BuiltinContext, has_class: bool, has_values: bool) -> list[str]:
    """The judge's alignment for each part of the target, plus ``distance_to_source``.

    Raises:
        ValueError: the model has no judge.
    """
    if ctx.judge is None:
        raise ValueError("no objectives given and the model has no judge: pass --objective (a built-in, "
                         "package.module:function or path/file.py:function)")
    out = []
    if has_class and ctx.judge.config["num_classes"]:
        out.append("target_probability")
    if has_values and ctx.judge.config["value_dim"]:
        out.append("target_value_error")
    return [*out, "distance_to_source"]


# ------------------------------------------------------------------------------------- model loader
def _recognises_model(folder: Path) -> bool:
    return (folder / MODEL_FILE).is_file()


def _source_condition(model: GenericModel, src: UserData) -> Condition:
    for key, what, need, have in (("c", "class ids", model.num_classes, src.labels),
                                  ("v", "float values", model.value_dim, src.values)):
        if need and have is None:
            raise ValueError(f"{src.path}: missing key {key!r}: the sources' own {what} are needed to invert them "
                             "(the model is conditioned on them)")
    try:
        return model.condition(labels=src.labels, values=src.values)
    except ValueError as exc:
        key = "c" if "class" in str(exc) else "v"
        raise ValueError(f"{src.path}: key {key!r}: {exc}") from None


def load_run(request: RunRequest) -> DomainRun:
    """A generic MODEL_DIR and an ``.npz`` of sources -> the run's sources, conditions and codec.

    Raises:
        ValueError: sources that do not fit the model, or a target it is not conditioned on.
    """
    from flowevo.domains.generic import load_model, load_npz

    r = request
    model = load_model(r.model_dir, device=r.device)
    src = load_npz(r.sources, require_condition=False)
    if src.shape != model.shape:
        raise ValueError(f"{src.path}: key 'x' holds samples of shape {src.shape}, but the model at {r.model_dir} "
                         f"was trained on {model.shape}")
    if r.rows is not None:
        src = src.subset(list(range(min(r.rows, len(src)))))
    source = _source_condition(model, src)
    if r.target_class is not None and not model.num_classes:
        raise ValueError(f"optimize.target.class: this model has no classes (it is conditioned on "
                         f"{model.value_dim} float value(s)); give values=...")
    if r.target_values is not None and not model.value_dim:
        raise ValueError("optimize.target.values: this model has no float conditions; give a class")
    b = len(src)
    try:
        target = model.condition(labels=None if r.target_class is None else [r.target_class] * b,
                                 values=None if r.target_values is None else [list(r.target_values)] * b)
    except ValueError as exc:
        raise ValueError(f"optimize.target: {exc}") from None
    codec = model.codec(steps=r.solver_steps, method=r.solver, strength=r.strength, guidance=r.guidance)
    return DomainRun("generic", model.kind, model.shape, src.x, src.labels, src.values, source, target, codec, model,
                     judge=model.judge, class_names=model.class_names, num_classes=model.num_classes)


def load_flow(request: FlowRequest) -> DomainFlow:
    """A generic MODEL_DIR's flow for constrained fine-tuning: its velocity (float conditions in data units), encoder
    and judge; conditions from a class id and / or values (data units)."""
    from flowevo.domains.generic import load_model

    model = load_model(request.model_dir, device=request.device)

    def condition(label: int | None, values: Any) -> Condition:
        return model.condition(labels=None if label is None else [label],
                               values=None if values is None else [list(values)])

    return DomainFlow("generic", model.kind, model.shape, tuple(model.info["flow_shape"]), model.velocity,
                      model.num_classes, model.value_dim, condition, encoder=model.encoder, judge=model.judge,
                      class_names=model.class_names)


# ------------------------------------------------------------------------------------- trainer
def _recognises_data(path: Path) -> bool:
    return path.suffix.lower() == ".npz"


def generic_train_config(settings: Mapping[str, Any], seed: int = 0) -> GenericTrainConfig:
    """The generic trainer's settings from ``[train]`` values (keys it does not use are ignored) and the seed."""
    from flowevo.domains.generic import GenericTrainConfig

    return GenericTrainConfig(**{k: settings[k] for k in _TRAIN_KEYS if k in settings}, seed=seed)


def train_summary(model: GenericModel, out: Path) -> dict[str, Any]:
    """The figures a user wants after training."""
    info = model.info
    return {"model_dir": str(out), "kind": info["kind"], "shape": info["shape"], "flow_shape": info["flow_shape"],
            "num_classes": info["num_classes"], "value_dim": info["value_dim"], "encoder": info["encoder"],
            "steps": info["train"]["steps"], "final_loss": info["flow"]["final_loss"], "judge": info["judge"],
            "roundtrip": info["roundtrip"], "wall_s": info["wall_s"]}


def train(request: TrainRequest, show_progress: bool = True, log: Callable[[str], None] = lambda s: None) -> Trained:
    """Fit encoder, flow and judge on an ``.npz`` (defaults scaled to the data) and write MODEL_DIR."""
    from flowevo.domains.generic import GenericTrainConfig, load_npz, save_model, train_generic

    data = load_npz(request.data)
    settings = generic_train_config(request.settings, request.seed).resolve(data)
    log(f"{len(data)} {data.kind} of shape {data.shape}; classes {data.num_classes}, float conditions "
        f"{data.value_dim}; encoder {settings.encoder}, {settings.steps} flow steps")
    model = train_generic(data, settings, show_progress=show_progress)
    save_model(model, request.out)
    resolved = {k: v for k, v in asdict(GenericTrainConfig(**model.info["train"])).items() if k != "seed"}
    return Trained(train_summary(model, Path(request.out)), resolved, list(model.info["flow"]["losses"]),
                   int(model.info["train"]["steps"]))


DOMAIN = Domain(
    "generic", BUILTINS,
    recognises_model=_recognises_model, load_run=load_run, model_hint=MODEL_FILE, load_flow=load_flow,
    recognises_data=_recognises_data, train=train, data_hint="an .npz (keys x, c and/or v)",
    default_objectives=default_objectives,
)
"""The generic domain: a user's ``.npz`` of vectors or images with class ids and/or float conditions."""
