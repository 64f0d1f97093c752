"""Exhaustive substitution: every A / B / anion-multiset edit within a budget, scored by the surrogate.

The ceiling reference of crystal editing: for each source (a canonical ABX3 Structure) enumerate
every substitution over a :class:`SiteVocabulary` (the A elements, B elements and anion multisets of
the training data) whose edit distance (:func:`~.validity.sites_changed`) is within the budget (and,
for the ``*_bkept`` budgets, that keeps B), score all of them with the surrogate in one grid, and keep
per source the best-scored *valid* one (:func:`~.validity.crystal_valid`). Edits are built by
:func:`substitute` (the source's geometry with the species replaced), never decoded.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from flowevo.evolve.population import SEED, Population
from flowevo.evolve.result import EditResult

from .objectives import BUDGETS
from .predictors import abx_sites
from .representation import CrystalRepresentation

__all__ = ["SiteVocabulary", "ExhaustiveSearch", "substitute"]


def _symbols(s: Any) -> list[str]:
    return [sp.symbol for sp in s.species]


@dataclass(frozen=True)
class SiteVocabulary:
    """The elements each site may take: ``a`` and ``b`` (sorted symbols) and ``x`` (sorted anion multisets)."""

    a: tuple[str, ...]
    b: tuple[str, ...]
    x: tuple[tuple[str, ...], ...]

    @classmethod
    def from_table(cls, table: Any) -> SiteVocabulary:
        """The A / B elements and anion multisets of a :class:`~.data.CrystalTable` (e.g. the training data)."""
        sites = abx_sites(table.structures, table.formulas)
        return cls(tuple(sorted({s[0] for s in sites})), tuple(sorted({s[1] for s in sites})),
                   tuple(sorted({tuple(s[2]) for s in sites})))


def substitute(src: Any, a: str, b: str, anions: Sequence[str]) -> Any:
    """The canonical source Structure ``src`` ([A, B, X, X, X]) with A, B and the anion multiset replaced;
    anions that stay keep their sites, new ones fill the others in order."""
    s = src.copy()
    sym = _symbols(src)
    if sym[0] != a:
        s.replace(0, a)
    if sym[1] != b:
        s.replace(1, b)
    remaining = Counter(anions)
    keep = []
    for i in (2, 3, 4):
        if remaining[sym[i]] > 0:
            remaining[sym[i]] -= 1
            keep.append(i)
    new = list(remaining.elements())
    for i in (2, 3, 4):
        if i not in keep:
            s.replace(i, new.pop(0))
    return s


class ExhaustiveSearch:
    """Exhaustive substitution over a vocabulary with one surrogate (its score grid is computed once).

    Args:
        surrogate: ``surrogate.predict(items) -> (N,)`` over ``(A, B, anions)`` site tuples (a
            :class:`~.predictors.PropertyPredictor`), minimised.
        vocabulary: the substitutions' elements.
        representation: encodes the kept Structures into the result's ``decoded`` tensors.
    """

    def __init__(self, surrogate: Any, vocabulary: SiteVocabulary, representation: CrystalRepresentation) -> None:
        self.surrogate, self.vocabulary, self.representation = surrogate, vocabulary, representation
        self._scores: np.ndarray | None = None

    @property
    def scores(self) -> np.ndarray:
        """The surrogate on every (A, B, anion multiset): ``(|A|, |B|, |X|)``."""
        if self._scores is None:
            v = self.vocabulary
            items = [(a, b, x) for a in v.a for b in v.b for x in v.x]
            self._scores = np.asarray(self.surrogate.predict(items)).reshape(len(v.a), len(v.b), len(v.x))
        return self._scores

    def __call__(self, sources: Sequence[Any], budget: str, valid: Callable[[Any], bool]) -> EditResult:
        """Per source, the best-scored substitution within ``budget`` that ``valid`` accepts.

        Returns an :class:`~flowevo.evolve.EditResult` (``"exhaustive"``) with one individual per row: the
        kept edit (violation 0), else the best-scored invalid one (violation 1), else (nothing within the
        budget) the source with violation inf. ``info["structures"]`` holds them as Structures
        (``None`` for the last case); ``evaluations_per_row`` counts the substitutions scored.
        """
        if budget not in BUDGETS:
            raise ValueError(f"unknown budget {budget!r}; use one of {sorted(BUDGETS)}")
        scores, voc = self.scores, self.vocabulary
        k, keep_b = BUDGETS[budget]
        va, vb = np.array(voc.a), np.array(voc.b)
        kept: list[Any] = []
        values, violation, counts = [], [], []
        for src in sources:
            sym = _symbols(src)
            a, b, xs = sym[0], sym[1], tuple(sorted(sym[2:]))
            ov = np.array([sum((Counter(xs) & Counter(m)).values()) for m in voc.x])
            changed = (va != a)[:, None, None].astype(int) + (vb != b)[None, :, None] + (3 - ov)[None, None, :]
            mask = changed <= k
            if keep_b:
                mask &= (vb == b)[None, :, None]
            idx = np.flatnonzero(mask)
            counts.append(len(idx))
            best, value, viol = None, math.nan, math.inf
            for i in idx[np.argsort(scores.reshape(-1)[idx], kind="stable")]:
                ia, ib, ix = np.unravel_index(i, scores.shape)
                s = substitute(src, va[ia], vb[ib], voc.x[ix])
                if best is None:
                    best, value, viol = s, float(scores[ia, ib, ix]), 1.0
                if valid(s):
                    best, value, viol = s, float(scores[ia, ib, ix]), 0.0
                    break
            kept.append(best)
            values.append(value)
            violation.append(viol)
        x = torch.from_numpy(self.representation.encode([s if s is not None else src for s, src in zip(kept, sources)],
                                                        ordered=True))
        n = len(sources)
        row = torch.arange(n)
        pop = Population(residuals=x, row=row, origin=torch.full_like(row, SEED), donor_row=torch.full_like(row, -1),
                         values=torch.tensor(values, dtype=torch.float64)[:, None],
                         violation=torch.tensor(violation, dtype=torch.float64), decoded=x, born=torch.zeros_like(row))
        return EditResult(method="exhaustive", population=pop, objective_names=["surrogate"], senses=["min"], rows=n,
                          evaluations_per_row=torch.tensor(counts, dtype=torch.float64), stop_reason="enumerated",
                          info={"structures": kept})
