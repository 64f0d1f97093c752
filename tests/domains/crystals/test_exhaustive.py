"""Exhaustive substitution: substitute keeps the geometry, the search keeps per source the best-scored valid edit
within the budget (checked against a brute force), and its EditResult carries the Structures it built."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

pytest.importorskip("pymatgen")

from flowevo.domains.crystals.editing import best_structures  # noqa: E402
from flowevo.domains.crystals.exhaustive import ExhaustiveSearch, SiteVocabulary, substitute  # noqa: E402
from flowevo.domains.crystals.objectives import budget_violation  # noqa: E402
from flowevo.domains.crystals.representation import CrystalRepresentation  # noqa: E402


class _Score:
    """Surrogate over (A, B, anions) items: a fixed arbitrary value per item (the sum of its letters' codes mod 97)."""

    def __init__(self) -> None:
        self.calls = 0

    def value(self, a, b, x) -> float:
        return float(sum(map(ord, a + b + "".join(x))) % 97)

    def predict(self, items):
        self.calls += 1
        return np.array([self.value(*it) for it in items])


def _symbols(s):
    return [sp.symbol for sp in s.species]


def test_substitute_keeps_geometry_and_the_anions_that_stay(perovskite):
    src = perovskite("Sr", "Ti", ("O", "N", "O"), 3.95)
    new = substitute(src, "Ba", "Ti", ("F", "O", "O"))
    assert _symbols(new) == ["Ba", "Ti", "O", "F", "O"]  # the N site became F, both O stayed in place
    assert np.allclose(new.frac_coords, src.frac_coords) and np.allclose(new.lattice.matrix, src.lattice.matrix)
    assert _symbols(src) == ["Sr", "Ti", "O", "N", "O"]  # the source is not modified


@pytest.mark.parametrize("budget", ["k1", "k2_bkept"])
def test_exhaustive_keeps_the_best_valid_edit_within_the_budget(perovskite, site_table, budget):
    rep = CrystalRepresentation().fit(site_table.structures, site_table.formulas)
    voc = SiteVocabulary.from_table(site_table)
    assert set(voc.a) <= {"Sr", "Ba", "Ca", "K", "La"} and all(tuple(sorted(x)) == x for x in voc.x)
    sources = rep.canonicalize(site_table.structures[:3], site_table.formulas[:3])
    surrogate = _Score()
    search = ExhaustiveSearch(surrogate, voc, rep)

    def valid(s):  # reject every composition holding N
        return "N" not in _symbols(s)

    res = search(sources, budget, valid)
    res_again = search(sources, budget, valid)
    assert surrogate.calls == 1 and res_again.evaluations_per_row.tolist() == res.evaluations_per_row.tolist()
    assert res.method == "exhaustive" and res.rows == 3
    kept = best_structures(res, rep)
    for i, src in enumerate(sources):
        cands = [(surrogate.value(a, b, x), a, b, x) for a, b, x in itertools.product(voc.a, voc.b, voc.x)
                 if budget_violation(src, [a, b, *x], budget) == 0]
        assert res.evaluations_per_row[i] == len(cands)
        ok = sorted((v, a, b, x) for v, a, b, x in cands if "N" not in (a, b, *x))
        if ok:
            assert res.population.violation[i] == 0 and math.isclose(res.population.values[i, 0], ok[0][0])
            sym = _symbols(kept[i])
            assert surrogate.value(sym[0], sym[1], sorted(sym[2:])) == ok[0][0]
            assert budget_violation(src, kept[i], budget) == 0 and valid(kept[i])
        else:
            assert res.population.violation[i] == 1
    assert res.best.decoded.shape == (3, rep.dim)


def test_nothing_valid_keeps_the_best_scored_edit_as_infeasible(site_table):
    rep = CrystalRepresentation().fit(site_table.structures, site_table.formulas)
    sources = rep.canonicalize(site_table.structures[:2], site_table.formulas[:2])
    res = ExhaustiveSearch(_Score(), SiteVocabulary.from_table(site_table), rep)(sources, "k1_bkept", lambda s: False)
    assert res.population.violation.tolist() == [1.0, 1.0] and not res.best.feasible.any()
    assert all(s is not None for s in res.info["structures"])
    with pytest.raises(ValueError, match="budget"):
        ExhaustiveSearch(_Score(), SiteVocabulary.from_table(site_table), rep)(sources, "k3", lambda s: True)
