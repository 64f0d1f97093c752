"""Composition diversity of generated crystals: what counts as "the same crystal" and how spread a batch is.

:func:`composition_key` is the key the constrained flow optimiser's diversity term counts
(``ConstrainedFlowOptimiser(..., diversity_key=composition_key)``): two samples with the same
reduced formula are the same composition, whatever their lattice. :func:`composition_spread`
reports a batch's distinct compositions and the share of the most common one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from flowevo.objectives import Candidates

__all__ = ["composition_key", "composition_spread", "reduced_formulas"]


def reduced_formulas(structures: Sequence[Any]) -> list[str | None]:
    """Reduced formula of each Structure (None where the structure is None, i.e. could not be decoded)."""
    return [None if s is None else s.composition.reduced_formula for s in structures]


def composition_key(candidates: Candidates) -> list[str | None]:
    """Per candidate, its reduced formula from ``candidates.extra["structures"]`` (None: undecodable)."""
    if "structures" not in candidates.extra:
        raise KeyError("candidates carry no extra['structures']; pass structures_payload(...) as the payload")
    return reduced_formulas(candidates.extra["structures"])


def composition_spread(structures: Sequence[Any], n: int | None = None) -> dict[str, Any]:
    """Distinct reduced formulas among ``structures`` (None entries skipped) and the most common one's share.

    Args:
        structures: pymatgen Structures (or None).
        n: the denominator of the shares (default: the decodable structures), e.g. the batch size.

    Returns:
        ``{"distinct": int, "top_share": float, "top": [formula, count] or None, "n": int}``;
        ``top_share`` is NaN for an empty batch.
    """
    keys = [k for k in reduced_formulas(structures) if k is not None]
    denom = len(keys) if n is None else int(n)
    counts = Counter(keys)
    top = counts.most_common(1)[0] if counts else None
    return {"distinct": len(counts), "top_share": top[1] / denom if top and denom else float("nan"),
            "top": list(top) if top else None, "n": denom}
