"""The site-masked genome as a per-source baseline's search space (CMA-ES, NSGA-II, BO on crystals).

REO edits crystals on site-masked genomes ``[residual r (L) | free-site mask m (5) | anchor z (L)]``
(:mod:`~.site_edit`). For the baselines to search the same space, they vary the residual and the
mask and never the anchor (the source): :func:`site_masked_space` is that
:class:`~flowevo.baselines.SearchSpace`. The mask coordinates are continuous for the optimiser;
the codec reads a site as free where its coordinate is above 0.5. They start at ``mask_start`` (default
0: every site kept, so the first moves free one or two sites at a time) with step ``mask_scale``
relative to the residual's.

Example (a trained :class:`~.model.CrystalModel` ``model``)::

    codec = SiteMaskedCodec(model)
    result = cma_search(codec, task, evaluator, 16, popsize=4, sigma0=0.3, space=site_masked_space(codec),
                        payload=structures_payload(model.representation))
"""

from __future__ import annotations

import math

from flowevo.baselines.space import SearchSpace

from .site_edit import N_SITES, SiteMaskedCodec

__all__ = ["site_masked_space"]


def site_masked_space(codec: SiteMaskedCodec, mask_start: float = 0.0, mask_scale: float = 2.0) -> SearchSpace:
    """The residual and free-site mask of ``codec``'s genomes (not the anchor) as a :class:`SearchSpace`.

    Args:
        codec: the :class:`~.site_edit.SiteMaskedCodec` the baseline decodes with.
        mask_start: start value of every mask coordinate (a site is free above 0.5).
        mask_scale: step of the mask coordinates relative to the residual's (CMA-ES' per-coordinate
            standard deviation, NSGA-II's and BO's box half-width factor).
    """
    if not math.isfinite(mask_start) or not (math.isfinite(mask_scale) and mask_scale > 0):
        raise ValueError(f"mask_start must be finite and mask_scale positive, got {mask_start} and {mask_scale}")
    dim = codec.layout.dim
    return SearchSpace(index=list(range(dim + N_SITES)), start=[math.nan] * dim + [mask_start] * N_SITES,
                       scale=[1.0] * dim + [mask_scale] * N_SITES)
