"""A helper shared by the crystal editing tests (not a test module): sources, their encodings and the edit evaluator."""

from __future__ import annotations

from flowevo.domains.crystals.editing import edit_evaluator
from flowevo.domains.crystals.objectives import canonical_sources


def edit_inputs(model, table, surrogate, n: int = 4, budget: str = "k2"):
    """``(sources, encodings (n, D), canonical structures, evaluator)`` for the first ``n`` rows of ``table``."""
    src = table.subset(range(n))
    x = model.encode(src.structures, src.formulas)
    structures = canonical_sources(src, model.representation)
    return src, x, structures, edit_evaluator(surrogate, structures, budget)
