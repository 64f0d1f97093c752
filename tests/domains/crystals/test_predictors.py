"""Composition-only property predictors (surrogate MLP, independent GBR)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")

from flowevo.domains.crystals.predictors import abx_sites, fit_independent, fit_predictor, fit_surrogate, load_predictor  # noqa: E402


def test_abx_sites_accepts_tuples_lists_and_structures(perovskite):
    s = perovskite("Ba", "Zr", ("S", "O", "O"))
    assert abx_sites([s]) == [("Ba", "Zr", ("O", "O", "S"))]
    assert abx_sites([("Ba", "Zr", ("O", "S", "O"))]) == abx_sites([["Ba", "Zr", "O", "O", "S"]])
    from pymatgen.core import Structure

    scrambled = Structure(s.lattice, s.species[::-1], s.frac_coords[::-1])  # [O, O, S, Zr, Ba]
    assert abx_sites([scrambled], formulas=["BaZrSO2"]) == [("Ba", "Zr", ("O", "O", "S"))]
    with pytest.raises(ValueError):
        abx_sites([["Ba", "Zr", "O"]])


def test_gbr_export_matches_sklearn_and_json_round_trip(tmp_path):
    from sklearn.ensemble import GradientBoostingRegressor

    rng = np.random.default_rng(0)
    els_a, els_b, anions = ["Sr", "Ba", "Ca", "K"], ["Ti", "Zr", "Nb", "Ta"], ["O", "N", "F"]
    items = [(str(rng.choice(els_a)), str(rng.choice(els_b)), tuple(rng.choice(anions, 3))) for _ in range(60)]
    y = rng.normal(size=60)
    p = fit_predictor(items, y, "gbr", seed=3, n_estimators=20)
    ref = GradientBoostingRegressor(
        n_estimators=20, max_depth=5, learning_rate=0.03, subsample=0.7, max_features=0.3, random_state=3
    ).fit(p.features(items), (y - p.y_mean) / p.y_std)
    assert np.allclose(p.predict(items), ref.predict(p.features(items)) * p.y_std + p.y_mean, atol=1e-10)
    q = load_predictor(p.save(tmp_path / "gbr.json"))
    assert np.array_equal(q.predict(items), p.predict(items))
    m = fit_predictor(items, y, "mlp", seed=0, steps=50, hidden=16)
    assert np.array_equal(load_predictor(m.save(tmp_path / "mlp.json")).predict(items), m.predict(items))
    assert np.array_equal(fit_predictor(items, y, "mlp", seed=0, steps=50, hidden=16).predict(items), m.predict(items))
    with pytest.raises(ValueError, match="kind"):
        fit_predictor(items, y, "svm")  # type: ignore[arg-type]


def test_predictors_beat_mean_baseline_on_held_out(perov_split, spearman):
    train, test = perov_split
    y = test.properties["heat_ref"]
    baseline = np.abs(y - train.properties["heat_ref"].mean()).mean()  # ~0.53 eV/atom
    surrogate = fit_surrogate(train, seed=0, steps=1000)
    independent = fit_independent(train, seed=1, n_estimators=300)
    for p in (surrogate, independent):
        pred = p.predict(test.structures, test.formulas)
        assert pred.shape == (len(test),)
        assert np.abs(pred - y).mean() < 0.45 * baseline, p.kind
        assert spearman(pred, y) > 0.85, p.kind
    # canonical (decoded-style) structures give the same answer as formula-resolved ones
    from flowevo.domains.crystals.representation import CrystalRepresentation

    canon = CrystalRepresentation().canonicalize(test.structures[:20], test.formulas[:20])
    assert np.allclose(surrogate.predict(canon), surrogate.predict(test.structures[:20], test.formulas[:20]))
