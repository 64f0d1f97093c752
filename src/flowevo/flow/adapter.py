"""Use a velocity model trained outside flowevo: its call signature, its time convention, its encoder.

flowevo calls every velocity model as ``model(x, t, c)``: ``x (N, *S)``, ``t (N,)`` with **t = 0 noise
and t = 1 data**, ``c`` a :class:`~flowevo.flow.Condition` (class ids, float values, null rows). An
outside model (any ``nn.Module`` or function) usually differs; :class:`VelocityAdapter` says how:

- ``condition``: how a :class:`Condition` becomes its arguments after ``(x, t)``:

  ===================================  ===================================================================
  ``"labels"``                         ``f(x, t, labels)``: class ids ``(N,)`` long; null rows get ``null_label``
  ``"values"``                         ``f(x, t, values)``: float vectors ``(N, K)`` (no null rows)
  ``{"y": "labels", "p": "values"}``   ``f(x, t, y=labels, p=values)`` (a part may also be ``"null"``: the
                                       ``(N,)`` bool null mask)
  ``"condition"``                      ``f(x, t, c)`` with flowevo's own :class:`Condition`
  ``"none"``                           ``f(x, t)``: an unconditional model (the condition is ignored)
  a function ``c -> (args, kwargs)``   anything else, e.g. ``lambda c: ((c.labels, c.values), {})``
  ===================================  ===================================================================

- ``data_at``: ``1`` if its t = 1 is data (flowevo's convention), ``0`` if its t = 0 is data and t = 1
  noise (e.g. rectified flows written ``x_t = (1 - t) x_data + t noise``): then it is called at
  ``1 - t`` and its velocity is negated, so the adapted field moves toward data as t grows.
- ``time``: the shape it takes t in: ``"vector"`` ``(N,)``, ``"column"`` ``(N, 1)`` or ``"scalar"`` (a
  0-d tensor; all rows share one time in a solver step); ``time_scale`` multiplies t (e.g. 1000 for a
  model trained on t in [0, 1000]).

An encoder / decoder (a latent flow) goes to :class:`~flowevo.flow.ResidualCodec` as usual; wrap two
plain functions or modules in :class:`CallableEncoder`.

Example:
    >>> import torch
    >>> from torch import nn
    >>> class Theirs(nn.Module):                       # t = 0 is data, class ids by keyword
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.net, self.emb = nn.Linear(3, 2), nn.Embedding(2, 2)
    ...     def forward(self, x, t, *, y):
    ...         return self.net(torch.cat([x, t[:, None]], 1)) + self.emb(y)
    >>> from flowevo.flow import Condition, FixedGrid, ResidualCodec
    >>> v = VelocityAdapter(Theirs(), condition={"y": "labels"}, data_at=0, num_classes=2)
    >>> codec = ResidualCodec(v, FixedGrid("rk4", 8))
    >>> codec.decode(torch.randn(4, 2), Condition.from_labels([0, 1, 0, 1])).shape
    torch.Size([4, 2])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

import torch
from torch import Tensor, nn

from flowevo.flow.condition import Condition, condition_checks_enabled

__all__ = ["CallableEncoder", "ConditionArgs", "VelocityAdapter"]

ConditionArgs = Callable[[Condition], "tuple[tuple[Any, ...], dict[str, Any]]"]
"""A custom mapping: ``fn(c) -> (positional args after (x, t), keyword args)``."""

_PARTS = ("labels", "values", "null")
_NAMED = ("labels", "values", "condition", "none")


class VelocityAdapter(nn.Module):
    """An outside velocity model seen through flowevo's signature ``v(x, t, c)`` (t = 0 noise, t = 1 data).

    Args:
        model: the outside model: an ``nn.Module`` (moved with ``.to(device)``, hashed into checkpoint
            identities) or any callable.
        condition: how a :class:`Condition` maps to its arguments (see the module docstring).
        data_at: ``1``: its t = 1 is data (as flowevo); ``0``: its t = 0 is data, t = 1 noise.
        time: ``"vector"`` (N,), ``"column"`` (N, 1) or ``"scalar"``: the shape of t it takes.
        time_scale: factor applied to its t (after the convention is mapped).
        num_classes: if given, class ids are checked to lie in ``[0, num_classes)`` where conditions enter
            (the first call of each solve, not every solver stage).
        null_label: the class id the outside model uses for "no class" (classifier-free guidance, null rows);
            None: null rows are an error.

    Raises:
        ValueError: at construction for an unknown ``condition`` / ``data_at`` / ``time``; at call for a condition
            the model cannot take (missing part, null rows it has no token for, unknown class id) or an output
            whose shape is not ``x``'s.
    """

    def __init__(self, model: nn.Module | Callable[..., Tensor],
                 condition: str | Mapping[str, str] | ConditionArgs = "labels", data_at: Literal[0, 1] = 1,
                 time: Literal["vector", "column", "scalar"] = "vector",
                 time_scale: float = 1.0, num_classes: int | None = None, null_label: int | None = None) -> None:
        super().__init__()
        if isinstance(condition, str) and condition not in _NAMED:
            raise ValueError(f"condition {condition!r}: use one of {list(_NAMED)}, a mapping {{argument: part}} with "
                             f"parts in {list(_PARTS)}, or a function c -> (args, kwargs)")
        if isinstance(condition, Mapping):
            bad = {k: v for k, v in condition.items() if v not in _PARTS}
            if bad or not condition:
                raise ValueError(f"condition mapping {dict(condition)!r}: each argument maps to one of {list(_PARTS)}")
            condition = dict(condition)
        elif not isinstance(condition, str) and not callable(condition):
            raise TypeError(f"condition must be a name, a mapping or a function, got {type(condition).__name__}")
        if data_at not in (0, 1):
            raise ValueError(f"data_at must be 1 (t = 1 is data, as flowevo) or 0 (t = 0 is data), got {data_at!r}")
        if time not in ("vector", "column", "scalar"):
            raise ValueError(f"time must be 'vector', 'column' or 'scalar', got {time!r}")
        if isinstance(model, nn.Module):
            self.model = model
        elif callable(model):
            self.fn = model
        else:
            raise TypeError(f"model must be an nn.Module or a callable, got {type(model).__name__}")
        self.condition, self.data_at, self.time = condition, int(data_at), time
        self.time_scale, self.num_classes, self.null_label = float(time_scale), num_classes, null_label

    @property
    def outside(self) -> nn.Module | Callable[..., Tensor]:
        """The wrapped outside model."""
        return self.model if "model" in self._modules else self.fn

    def _labels(self, c: Condition) -> Tensor:
        if c.labels is None:
            raise ValueError("this velocity model takes class ids; the condition has none")
        null = c.null
        if condition_checks_enabled():  # where a condition enters; solver stages after the first skip this
            if null is not None and self.null_label is None and bool(null.any()):
                raise ValueError("the condition has null rows but the model has no null class: give null_label")
            if self.num_classes is not None:
                valid = c.labels if null is None else c.labels[~null]
                if valid.numel() and bool(((valid < 0) | (valid >= self.num_classes)).any()):
                    bad = valid[(valid < 0) | (valid >= self.num_classes)].unique().tolist()
                    raise ValueError(f"unknown class id(s) {bad}: the model knows classes 0..{self.num_classes - 1}")
        if null is None or self.null_label is None:
            return c.labels
        return torch.where(null, torch.full_like(c.labels, self.null_label), c.labels)

    def _values(self, c: Condition) -> Tensor:
        if c.values is None:
            raise ValueError("this velocity model takes float condition values; the condition has none")
        if c.null is not None and condition_checks_enabled() and bool(c.null.any()):
            raise ValueError("the condition has null rows but a 'values' model has no null condition")
        return c.values

    def _part(self, c: Condition, part: str) -> Tensor:
        return self._labels(c) if part == "labels" else self._values(c) if part == "values" else c.null_mask()

    def arguments(self, c: Condition) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The outside model's arguments after ``(x, t)`` for the condition batch ``c``."""
        cond = self.condition
        if cond == "none":
            return (), {}
        if cond == "condition":
            return (c,), {}
        if cond in ("labels", "values"):
            return (self._part(c, cond),), {}
        if isinstance(cond, dict):
            return (), {name: self._part(c, part) for name, part in cond.items()}
        args, kwargs = cond(c)
        return tuple(args), dict(kwargs)

    def forward(self, x: Tensor, t: Tensor, c: Condition) -> Tensor:
        """``x (N, *S)``, ``t (N,)`` (flowevo's time), ``c`` of batch N -> velocity ``(N, *S)`` in flowevo's time."""
        if c is None:
            if self.condition != "none":
                raise ValueError("this velocity model is conditional; give a Condition")
            args, kwargs = (), {}
        else:
            args, kwargs = self.arguments(c)
        s = t if self.data_at == 1 else 1.0 - t
        if self.time_scale != 1.0:
            s = s * self.time_scale
        if self.time == "column":
            s = s[:, None]
        elif self.time == "scalar":
            s = s[0]
        v = self.outside(x, s, *args, **kwargs)
        if not isinstance(v, Tensor) or v.shape != x.shape:
            got = tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__
            raise ValueError(f"the outside velocity model returned {got}, expected a tensor of x's shape "
                             f"{tuple(x.shape)}")
        return v if self.data_at == 1 else -v


class CallableEncoder(nn.Module):
    """An :class:`~flowevo.flow.codec.Encoder` from two functions or modules: ``encode (N, *D) -> (N, *L)`` and
    ``decode (N, *L) -> (N, *D)`` (modules among them move with ``.to(device)`` and count in checkpoint identities).

    Example:
        >>> enc = CallableEncoder(lambda x: 2 * x, lambda z: z / 2)
        >>> enc.decode(enc.encode(torch.ones(1, 3))).tolist()
        [[1.0, 1.0, 1.0]]
    """

    def __init__(self, encode: Callable[[Tensor], Tensor], decode: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        if not (callable(encode) and callable(decode)):
            raise TypeError("encode and decode must be callables (functions or modules)")
        self._encode, self._decode = encode, decode  # modules among them are registered as submodules

    def encode(self, x: Tensor) -> Tensor:
        """Data ``(N, *D)`` -> latent ``(N, *L)``."""
        return self._encode(x)

    def decode(self, z: Tensor) -> Tensor:
        """Latent ``(N, *L)`` -> data ``(N, *D)``."""
        return self._decode(z)
