"""The part of a codec's genome a per-source baseline searches (CMA-ES, NSGA-II, BO).

Most codecs' residuals are searched whole. A domain codec's genome can hold parts that must stay
fixed (e.g. the site-masked crystal genome ``[residual | free-site mask | anchor]``: the anchor is
the source and never moves) or that start elsewhere than the inverted source (the mask). A
:class:`SearchSpace` names the flattened genome coordinates a baseline varies, where they start
and their relative step; every other coordinate keeps the row's own genome value (``codec.invert``
of the source).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["SearchSpace"]


def _vector(v: Sequence[float] | Tensor | None, name: str) -> Tensor | None:
    if v is None:
        return None
    t = torch.as_tensor(v, dtype=torch.float64).flatten()
    if name == "index":
        return t.long()
    return t


@dataclass(frozen=True, eq=False)
class SearchSpace:
    """Searched coordinates of a flattened genome.

    Args:
        index: ``(d,)`` flattened genome coordinates a baseline varies; None: every coordinate.
        start: ``(d,)`` start values of those coordinates; NaN (or None for all) keeps the row's own
            genome value (its inverted source).
        scale: ``(d,)`` relative step of each searched coordinate (positive; None: all 1): CMA-ES' per-
            coordinate standard deviations, NSGA-II's and BO's box half-widths in units of ``radius``.

    Example:
        >>> space = SearchSpace(index=[0, 1], start=[float("nan"), 0.0])
        >>> g = torch.tensor([[1.0, 1.0, 5.0]])
        >>> space.vectors(g)
        tensor([[1., 0.]], dtype=torch.float64)
        >>> space.genomes(torch.tensor([[2.0, 3.0]]), g)
        tensor([[2., 3., 5.]])
    """

    index: Sequence[int] | Tensor | None = None
    start: Sequence[float] | Tensor | None = None
    scale: Sequence[float] | Tensor | None = None

    def __post_init__(self) -> None:
        idx, start, scale = _vector(self.index, "index"), _vector(self.start, "start"), _vector(self.scale, "scale")
        if idx is not None and (len(idx) == 0 or len(set(idx.tolist())) != len(idx) or (idx < 0).any()):
            raise ValueError("SearchSpace.index must hold distinct non-negative coordinates (at least one)")
        for name, v in (("start", start), ("scale", scale)):
            if v is not None and idx is not None and len(v) != len(idx):
                raise ValueError(f"SearchSpace.{name} has {len(v)} values for {len(idx)} searched coordinates")
        if scale is not None and not (torch.isfinite(scale).all() and (scale > 0).all()):
            raise ValueError("SearchSpace.scale must be finite and positive")
        object.__setattr__(self, "_idx", idx)
        object.__setattr__(self, "_start", start)
        object.__setattr__(self, "_scale", scale)

    def dim(self, genome_size: int) -> int:
        """``d``: searched coordinates of a genome of ``genome_size`` flattened coordinates."""
        self._check(genome_size)
        return genome_size if self._idx is None else len(self._idx)

    def _check(self, size: int) -> None:
        if self._idx is not None and int(self._idx.max()) >= size:
            raise ValueError(f"SearchSpace.index reaches coordinate {int(self._idx.max())} of a genome with {size}")
        n = size if self._idx is None else len(self._idx)
        for name, v in (("start", self._start), ("scale", self._scale)):
            if v is not None and len(v) != n:
                raise ValueError(f"SearchSpace.{name} has {len(v)} values for {n} searched coordinates")

    def vectors(self, genomes: Tensor) -> Tensor:
        """Start points ``(B, d)`` float64 of rows whose own genomes are ``(B, *S)``."""
        flat = genomes.detach().cpu().double().reshape(len(genomes), -1)
        self._check(flat.shape[1])
        y = flat if self._idx is None else flat[:, self._idx]
        if self._start is not None:
            y = torch.where(torch.isnan(self._start), y, self._start.expand_as(y))
        return y.clone()

    def scales(self, genome_size: int) -> Tensor:
        """``(d,)`` relative steps (ones unless given)."""
        d = self.dim(genome_size)
        return torch.ones(d, dtype=torch.float64) if self._scale is None else self._scale.clone()

    def genomes(self, y: Tensor, base: Tensor) -> Tensor:
        """Search points ``y (N, d)`` into genomes ``(N, *S)``: ``base (N, *S)`` (each point's row genome) with the
        searched coordinates replaced; dtype and device of ``base``."""
        n = len(base)
        flat = base.reshape(n, -1).clone()
        self._check(flat.shape[1])
        y = torch.as_tensor(y).to(flat)
        if self._idx is None:
            flat = y.reshape(n, -1).clone()
        else:
            flat[:, self._idx.to(flat.device)] = y
        return flat.reshape(base.shape)

    def describe(self, genome_size: int) -> dict:
        """Plain-data summary (for a result's ``info``)."""
        d = self.dim(genome_size)
        start = None if self._start is None else [None if math.isnan(v) else v for v in self._start.tolist()]
        return {"searched": d, "of": genome_size, "start": start,
                "scale": None if self._scale is None else self._scale.tolist()}
