"""Crystal objectives/constraints over Candidates, and edit budgets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

pytest.importorskip("pymatgen")

from flowevo.domains.crystals.objectives import (  # noqa: E402
    budget_constraint,
    budget_violation,
    composition_validity_constraint,
    fingerprint,
    fingerprint_distance_objective,
    property_objective,
    sites_changed_objective,
    space_group_objective,
    structure_validity_constraint,
    structures_payload,
)
from flowevo.domains.crystals.representation import CrystalRepresentation  # noqa: E402
from flowevo.objectives import Candidates, LocalEvaluator  # noqa: E402


@pytest.fixture(scope="module")
def rep(perovskite):
    structures = [
        perovskite(a, b, x, length)
        for a, b, x, length in [
            ("Sr", "Ti", ("O", "O", "O"), 3.9), ("Ba", "Zr", ("O", "O", "N"), 4.2), ("Ca", "Ti", ("F", "O", "O"), 3.8),
            ("K", "Nb", ("O", "N", "O"), 4.0), ("Ba", "Ti", ("O", "O", "O"), 4.0), ("Sr", "Zr", ("N", "N", "O"), 4.1),
        ]
    ]
    return CrystalRepresentation().fit(structures)


def _candidates(rep, cands, sources):
    x = torch.from_numpy(rep.encode(cands, ordered=True))
    src = torch.from_numpy(rep.encode(sources, ordered=True))
    return Candidates(x=x, source_index=torch.arange(len(cands)), sources=src, extra=structures_payload(rep)(x))


def test_payload_decodes_and_survives_nan(rep, perovskite):
    s = [perovskite("Sr", "Ti"), perovskite("Ba", "Zr", ("O", "O", "N"), 4.2)]
    x = torch.from_numpy(rep.encode(s, ordered=True))
    out = structures_payload(rep)(x)["structures"]
    assert [[e.symbol for e in t.species] for t in out] == [["Sr", "Ti", "O", "O", "O"], ["Ba", "Zr", "O", "O", "N"]]
    x[1, 0] = math.nan
    out = structures_payload(rep)(x)["structures"]
    assert out[0] is not None and out[1] is None


def test_objective_shapes_validity_and_preservation(rep, perovskite):
    src = perovskite("Sr", "Ti")
    squashed = perovskite("Ba", "Ti", length=0.9)  # every periodic distance < 0.5 A
    cands = [perovskite("Sr", "Ti"), perovskite("Ba", "Zr", ("O", "O", "N"), 4.2), squashed]
    c = _candidates(rep, cands, [src] * 3)
    assert len(c.extra["structures"]) == 3
    sv = structure_validity_constraint()(c)
    assert sv.tolist() == [0.0, 0.0, 1.0]
    assert composition_validity_constraint()(c).shape == (3,)
    assert composition_validity_constraint()(c)[0] == 0.0  # SrTiO3 is SMACT-valid
    assert sites_changed_objective(representation=rep)(c).tolist() == [0.0, 3.0, 1.0]
    assert sites_changed_objective(sources=[src, src, src])(c).tolist() == [0.0, 3.0, 1.0]
    d = fingerprint_distance_objective(rep, sources=[src] * 3)(c)
    assert d.shape == (3,) and d[0] < 1e-5 and d[1] > d[0]
    assert space_group_objective()(c)[0] == 221
    assert space_group_objective(sources=[src] * 3, compare_to_source=True)(c)[0] == 0

    class Const:
        def predict(self, structures):
            return np.arange(len(structures), dtype=float)

    obj = property_objective(Const(), "surrogate")
    assert obj.sense == "min" and obj(c).tolist() == [0.0, 1.0, 2.0]
    # with the evaluator: the invalid structure is infeasible, the rest feasible
    ev = LocalEvaluator([obj], [structure_validity_constraint()])(c)
    assert ev.values.shape == (3, 1) and ev.feasible.tolist() == [True, True, False]


def test_missing_structure_fails_objective_and_violates_constraints(rep, perovskite):
    c = _candidates(rep, [perovskite(), perovskite("Ba", "Ti")], [perovskite()] * 2)
    c = Candidates(c.x, c.source_index, c.sources, extra={"structures": [c.extra["structures"][0], None]})
    assert structure_validity_constraint()(c).tolist() == [0.0, 1.0]
    assert composition_validity_constraint()(c).tolist() == [0.0, 1.0]  # missing: infeasible, as SMACT-invalid
    assert math.isnan(sites_changed_objective(representation=rep)(c)[1])


def test_fingerprint_ignores_anion_order(rep, perovskite):
    a = perovskite("Sr", "Ti", ("O", "N", "O"))
    b = perovskite("Sr", "Ti", ("N", "O", "O"))
    assert np.allclose(fingerprint([a], rep), fingerprint([b], rep))


@pytest.mark.parametrize(
    "source, cand, expected",
    [
        # source SrTiO3
        (["Sr", "Ti", "O", "O", "O"], ["Sr", "Ti", "O", "O", "O"], {"any": 0, "k1": 0, "k2": 0, "k1_bkept": 0, "k2_bkept": 0}),
        (["Sr", "Ti", "O", "O", "O"], ["Ba", "Ti", "O", "O", "O"], {"any": 0, "k1": 0, "k2": 0, "k1_bkept": 0, "k2_bkept": 0}),
        (["Sr", "Ti", "O", "O", "O"], ["Sr", "Zr", "O", "O", "O"], {"any": 0, "k1": 0, "k2": 0, "k1_bkept": 1, "k2_bkept": 1}),
        (["Sr", "Ti", "O", "O", "O"], ["Sr", "Ti", "O", "N", "O"], {"any": 0, "k1": 0, "k2": 0, "k1_bkept": 0, "k2_bkept": 0}),
        (["Sr", "Ti", "O", "O", "O"], ["Ba", "Ti", "N", "O", "O"], {"any": 0, "k1": 1, "k2": 0, "k1_bkept": 1, "k2_bkept": 0}),
        (["Sr", "Ti", "O", "O", "O"], ["Ba", "Zr", "O", "O", "O"], {"any": 0, "k1": 1, "k2": 0, "k1_bkept": 2, "k2_bkept": 1}),
        (["Sr", "Ti", "O", "O", "O"], ["Ba", "Zr", "N", "N", "F"], {"any": 0, "k1": 4, "k2": 3, "k1_bkept": 5, "k2_bkept": 4}),
        # anion reordering is free; two anions swapped for others count twice
        (["Sr", "Ti", "O", "N", "F"], ["Sr", "Ti", "F", "O", "N"], {"any": 0, "k1": 0, "k2": 0, "k1_bkept": 0, "k2_bkept": 0}),
        (["Sr", "Ti", "O", "N", "F"], ["Sr", "Ti", "O", "S", "S"], {"any": 0, "k1": 1, "k2": 0, "k1_bkept": 1, "k2_bkept": 0}),
    ],
)
def test_budget_violation_hand_made(source, cand, expected):
    for budget, v in expected.items():
        assert budget_violation(source, cand, budget) == v, budget


def test_budget_constraints_on_candidates(rep, perovskite):
    src = perovskite("Sr", "Ti")
    cands = [perovskite("Ba", "Ti"), perovskite("Sr", "Zr"), perovskite("Ba", "Zr", ("O", "O", "N"))]
    c = _candidates(rep, cands, [src] * 3)
    assert budget_constraint("any") == []
    g = {b: budget_constraint(b, sources=[src])[0] for b in ("k1", "k2", "k1_bkept", "k2_bkept")}
    c0 = Candidates(c.x, torch.zeros(3, dtype=torch.long), c.sources, extra=c.extra)  # all edit task row 0
    assert g["k1"](c0).tolist() == [0.0, 0.0, 2.0]
    assert g["k2"](c0).tolist() == [0.0, 0.0, 1.0]
    assert g["k1_bkept"](c0).tolist() == [0.0, 1.0, 3.0]
    assert g["k2_bkept"](c0).tolist() == [0.0, 1.0, 2.0]
    assert g["k1"].violation(g["k1"](c0)).tolist() == [0.0, 0.0, 2.0]
    with pytest.raises(ValueError, match="budget"):
        budget_constraint("k3")


def test_structure_projection_snaps_to_exact_species_codes(rep, perovskite):
    from flowevo.domains.crystals.objectives import structure_projection

    s = [perovskite("Sr", "Ti"), perovskite("Ba", "Zr", ("O", "O", "N"), 4.2)]
    x = torch.from_numpy(rep.encode(s, ordered=True))
    project = structure_projection(rep)
    noisy = x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    out = project(noisy)
    assert out.shape == x.shape and out.dtype == x.dtype
    for site in range(5):  # species columns: back on the exact codes; geometry: the decoded cell's
        assert torch.allclose(out[:, rep.species_slice(site)], x[:, rep.species_slice(site)], atol=1e-5)
    assert torch.allclose(project(out), out, atol=1e-5)  # idempotent
    noisy[1, 0] = math.nan
    out = project(noisy)
    assert torch.isfinite(out[0]).all() and torch.isnan(out[1]).all()
