"""A tiny property-conditioned crystal flow: training, round trips, save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("pymatgen")

from flowevo.domains.crystals.data import CrystalTable  # noqa: E402
from flowevo.domains.crystals.model import Whitening, load_crystal_model, save_crystal_model, train_crystal_flow  # noqa: E402
from flowevo.domains.crystals.validity import structure_valid  # noqa: E402
from flowevo.flow import FixedGrid  # noqa: E402


@pytest.fixture(scope="module")
def table(perovskite):
    rng = np.random.default_rng(0)
    structures, formulas = [], []
    for _ in range(48):
        a, b = str(rng.choice(["Sr", "Ba", "Ca", "K"])), str(rng.choice(["Ti", "Zr", "Nb", "Ta"]))
        x = tuple(str(e) for e in rng.choice(["O", "N", "F"], 3))
        structures.append(perovskite(a, b, x, float(rng.uniform(3.7, 4.3))))
        formulas.append(a + b + "".join(x))
    heat = rng.normal(1.0, 0.5, 48)
    return CrystalTable(structures, [f"m{i}" for i in range(48)], formulas, {"heat_ref": heat})


@pytest.fixture(scope="module")
def model(table):
    return train_crystal_flow(table, steps=400, batch_size=64, hidden=64, depth=2, seed=0)


def test_whitening_is_exact_on_the_data_subspace():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 3, generator=g) @ torch.randn(3, 8, generator=g) + 2.0  # rank 3 in 8-D
    w = Whitening.fit(x)
    z = w.encode(x)
    assert w.dim == 3 and z.shape == (200, 3)
    assert torch.allclose(z.std(0), torch.ones(3), atol=1e-3)
    assert torch.allclose(w.decode(z), x, atol=1e-4)
    assert torch.allclose(Whitening.from_state_dict(w.state_dict()).encode(x), z)


def test_tiny_flow_trains_and_round_trips(table, model, tmp_path):
    assert model.residual_dim < model.dim == 56  # the whitening dropped the constant columns
    assert model.info["final_loss"] < 1.8  # per-dimension CFM loss on whitened data starts near 2
    x = model.encode(table.structures, table.formulas)
    c = model.condition(table.properties["heat_ref"])
    codec = model.codec(FixedGrid("rk4", 20))
    with torch.no_grad():
        r = codec.invert(x, c)
        back = codec.decode(r, c)
        assert r.shape == (48, model.residual_dim)
        assert codec.roundtrip_error(x, c).max() < 1e-2
    canon = model.representation.canonicalize(table.structures, table.formulas)
    decoded = model.decode_structures(back)
    for s, d in zip(canon, decoded):
        assert [e.symbol for e in s.species] == [e.symbol for e in d.species]
        assert np.allclose(s.lattice.abc, d.lattice.abc, rtol=1e-2)
    # samples from N(0, I) decode to valid structures
    xs = model.sample([0.5] * 16, torch.Generator().manual_seed(1))
    assert xs.shape == (16, 56)
    assert np.mean([structure_valid(s) for s in model.decode_structures(xs)]) >= 0.9
    # save / load reproduces decoding exactly; training is deterministic
    clone = load_crystal_model(save_crystal_model(model, tmp_path / "cm").parent)
    assert clone.property == "heat_ref" and clone.prop_std == pytest.approx(model.prop_std)
    with torch.no_grad():
        assert torch.equal(clone.codec(FixedGrid("rk4", 20)).decode(r, c), back)
    one, two = (train_crystal_flow(table, steps=20, batch_size=32, hidden=32, depth=1, seed=5) for _ in range(2))
    assert all(torch.equal(p, q) for p, q in zip(one.velocity.parameters(), two.velocity.parameters()))


def test_rejects_unknown_property(table):
    with pytest.raises(KeyError, match="band_gap"):
        train_crystal_flow(table, property="band_gap", steps=1)


def test_evolver_runs_on_crystals(table, model):
    """Integration: payload hook + crystal objectives/constraints drive the Evolver."""
    from flowevo.domains.crystals.objectives import (
        budget_constraint,
        canonical_sources,
        property_objective,
        sites_changed_objective,
        structure_validity_constraint,
        structures_payload,
    )
    from flowevo.domains.crystals.predictors import fit_predictor
    from flowevo.evolve import EditTask, Evolver, MaxGenerations
    from flowevo.objectives import LocalEvaluator

    rows = list(range(4))
    sub = table.subset(rows)
    sources = canonical_sources(sub, model.representation)
    surrogate = fit_predictor(table.structures, table.properties["heat_ref"], "gbr", formulas=table.formulas, n_estimators=20)
    evaluator = LocalEvaluator(
        [property_objective(surrogate, "surrogate"), sites_changed_objective(sources=sources)],
        [structure_validity_constraint(), *budget_constraint("k2_bkept", sources=sources)],
    )
    task = EditTask(model.encode(sub.structures, sub.formulas), model.condition(sub.properties["heat_ref"]),
                    model.condition([0.0] * len(rows)))
    evolver = Evolver(model.codec(FixedGrid("rk4", 8)), task, evaluator, population_size=6,
                      termination=[MaxGenerations(2)], seed=0, payload=structures_payload(model.representation))
    result = evolver.run()
    assert result.evaluations > 0 and len(result.history) >= 2
