"""The digits domain's registration: built-ins over the shipped MNIST CNN and Morpho-MNIST morphometrics.

They score any model whose samples are 28x28 grey images in [0, 1] (e.g. a generic model
trained on digits); the domain has no MODEL_DIR format or trainer of its own.

==========================  =====  =========  =================================================
built-in                    sense  role       what
==========================  =====  =========  =================================================
digits.target_probability   max    alignment  shipped MNIST CNN: p(target class)
digits.target_label         min    alignment  shipped CNN: 1[label != target] + max(0, tau - p)
digits.keeps_class          min    other      shipped CNN: 1 if its label is not the target
digits.<morphometric>       given  other      Morpho-MNIST area/length/thickness/slant/width/
                                              height; params target=T: abs(m - T)
==========================  =====  =========  =================================================
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING

from flowevo.domains.plugin import BatchFn, Builtin, BuiltinContext, Domain

if TYPE_CHECKING:
    from torch import Tensor

    from flowevo.domains.digits.objectives import ClassifierOracle
    from flowevo.objectives import Candidates

__all__ = ["BUILTINS", "DOMAIN", "MORPHOMETRICS"]

MORPHOMETRICS = ("area", "length", "thickness", "slant", "width", "height")
"""The measurements of :mod:`~flowevo.domains.digits.morphometrics` (``METRICS``), named here so that registering
the domain does not import them (a test checks the two agree)."""


def _digit_images(ctx: BuiltinContext, name: str) -> None:
    if ctx.data_kind != "images" or tuple(ctx.shape) not in ((28, 28), (1, 28, 28)):
        raise ValueError(f"built-in {name!r} needs 28x28 grey images in [0, 1]; this model's samples have shape "
                         f"{tuple(ctx.shape)}")


@lru_cache(maxsize=1)
def _oracle() -> ClassifierOracle:
    from flowevo.domains.digits.models import load_digit_models
    from flowevo.domains.digits.objectives import ClassifierOracle

    return ClassifierOracle(load_digit_models().classifier)


def _flat28(c: Candidates) -> Candidates:
    from flowevo.objectives import Candidates

    return Candidates(c.x.reshape(-1, 28, 28), c.source_index, c.sources, c.target, c.extra)


def _p_target(ctx: BuiltinContext) -> BatchFn:
    _digit_images(ctx, "digits.target_probability")
    oracle = _oracle()
    return lambda c: oracle.probs(c.x.reshape(-1, 28, 28)).gather(1, c.target.labels.cpu()[:, None]).squeeze(1).double()


def _target_label(ctx: BuiltinContext, tau: float = 0.9) -> BatchFn:
    from flowevo.domains.digits.objectives import target_confidence_constraint

    _digit_images(ctx, "digits.target_label")
    g = target_confidence_constraint(_oracle(), float(tau))
    return lambda c: g(_flat28(c))


def _keeps_class(ctx: BuiltinContext) -> BatchFn:
    from flowevo.domains.digits.objectives import keep_class_constraint

    _digit_images(ctx, "digits.keeps_class")
    g = keep_class_constraint(_oracle())
    return lambda c: g(_flat28(c))


def _morpho(metric: str) -> Callable[..., BatchFn]:
    def factory(ctx: BuiltinContext, target: float | None = None, processes: int | None = 1) -> BatchFn:
        import numpy as np
        import torch

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
    "digits.target_probability": Builtin(_p_target, "max", "alignment",
                                         "shipped MNIST CNN: probability of the target class"),
    "digits.target_label": Builtin(_target_label, "min", "alignment",
                                   "shipped CNN: 1[label != target] + max(0, tau - p_target); params: tau (0.9)"),
    "digits.keeps_class": Builtin(_keeps_class, "min", "other", "shipped CNN: 1 where its label is not the target"),
    **{f"digits.{m}": Builtin(_morpho(m), None, "other", f"Morpho-MNIST {m}; params: target (abs error to it), processes")
       for m in MORPHOMETRICS},
}

DOMAIN = Domain("digits", BUILTINS)
"""The digits domain: built-ins only (its models are shipped; see :func:`~flowevo.domains.digits.load_digit_models`)."""

