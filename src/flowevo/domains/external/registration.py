"""The external domain's registration: ``flowevo optimize --model path/to/file.py:factory`` runs your own flow.

The factory returns a :class:`~flowevo.domains.external.ExternalModel` (see :mod:`flowevo.domains.external.model`);
sources are an ``.npz`` with ``x`` and the sources' own ``c`` and / or ``v``. The domain has no built-ins of
its own (``distance_to_source`` and, with a judge, the judge built-ins apply) and no trainer: the flow
was trained elsewhere. Imports here are light; torch loads when a run does.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flowevo.domains.plugin import BuiltinContext, Domain, DomainFlow, DomainRun, FlowRequest, RunRequest

__all__ = ["DOMAIN", "load_flow", "load_run", "recognises_factory"]

HINT = "path/to/file.py:factory (your own flow)"
_FACTORY = re.compile(r"^(?P<target>.+\.py|[A-Za-z_][\w.]*):(?P<attr>[A-Za-z_][\w.]*)$")


def recognises_factory(spec: str | Path) -> bool:
    """True for ``path/to/file.py:factory`` or ``package.module:factory`` (that is not a folder)."""
    text = str(spec)
    return bool(_FACTORY.match(text)) and not Path(text).is_dir()


def load_run(request: RunRequest) -> DomainRun:
    """Your flow (from its factory) and an ``.npz`` of sources -> the run's sources, conditions and codec.

    Raises:
        ValueError: sources that do not fit the model, a target it is not conditioned on, a failing factory.
    """
    from flowevo.domains.external.model import load_external
    from flowevo.domains.generic import load_npz
    from flowevo.flow import FixedGrid, GuidedVelocity, ResidualCodec

    r = request
    model = load_external(r.model_dir, r.device)
    src = load_npz(r.sources, require_condition=False)
    if src.shape != model.shape:
        raise ValueError(f"{src.path}: key 'x' holds samples of shape {src.shape}, but the factory {r.model_dir} "
                         f"says its flow takes {model.shape}")
    if r.rows is not None:
        src = src.subset(list(range(min(r.rows, len(src)))))
    source = model.condition(src.labels, src.values, f"{src.path}: the sources' own condition (keys 'c' / 'v')")
    if r.target_class is not None and not model.num_classes:
        raise ValueError("optimize.target.class: this flow has no classes; give values=...")
    if r.target_values is not None and not model.value_dim:
        raise ValueError("optimize.target.values: this flow has no float conditions; give a class")
    b = len(src)
    target = model.condition(None if r.target_class is None else [r.target_class] * b,
                             None if r.target_values is None else [list(r.target_values)] * b, "optimize.target")
    velocity = model.velocity if r.guidance == 1.0 else GuidedVelocity(model.velocity, r.guidance)
    codec = ResidualCodec(velocity, FixedGrid(r.solver, r.solver_steps), encoder=model.encoder, strength=r.strength)
    return DomainRun("external", model.data_kind, model.shape, src.x, src.labels, src.values, source, target, codec,
                     model, judge=model.judge, class_names=model.class_names or (list(src.class_names)
                                                                                 if src.class_names else None))


def load_flow(request: FlowRequest) -> DomainFlow:
    """Your flow (from its factory) for constrained fine-tuning: its velocity must be a torch module with parameters
    (the fine-tuning trains a copy of them); the flow-space shape is what the encoder makes of one sample.

    Raises:
        ValueError: a failing factory, or a velocity without trainable parameters.
    """
    import torch
    from torch import nn

    from flowevo.domains.external.model import load_external

    model = load_external(request.model_dir, request.device)
    if not isinstance(model.velocity, nn.Module) or not any(True for _ in model.velocity.parameters()):
        raise ValueError(f"{request.model_dir}: the factory's velocity is not a torch module with parameters; "
                         "constrained fine-tuning trains its weights (wrap your network in "
                         "flowevo.flow.VelocityAdapter)")
    flow_shape = tuple(model.shape)
    if model.encoder is not None:
        with torch.no_grad():
            device = next(model.velocity.parameters()).device
            flow_shape = tuple(model.encoder.encode(torch.zeros(1, *model.shape, device=device)).shape[1:])

    def condition(label: int | None, values: Any):
        return model.condition(None if label is None else [label], None if values is None else [list(values)],
                               "cfo.condition")

    return DomainFlow("external", model.data_kind, tuple(model.shape), flow_shape, model.velocity,
                      model.num_classes, model.value_dim, condition, encoder=model.encoder, judge=model.judge,
                      class_names=model.class_names)


def _default_objectives(ctx: BuiltinContext, has_class: bool, has_values: bool) -> list[str]:
    if ctx.judge is None:
        raise ValueError("no objectives given and your flow's factory returned no judge: pass --objective (e.g. "
                         "distance_to_source and package.module:function or path/file.py:function)")
    out = []
    if has_class and ctx.judge.config.get("num_classes"):
        out.append("target_probability")
    if has_values and ctx.judge.config.get("value_dim"):
        out.append("target_value_error")
    return [*out, "distance_to_source"]


DOMAIN = Domain("external", {}, recognises_model=recognises_factory, load_run=load_run, model_hint=HINT,
                default_objectives=_default_objectives, load_flow=load_flow)
"""Your own flow: no built-ins, no trainer; ``load_run`` calls the factory named by ``--model``."""
