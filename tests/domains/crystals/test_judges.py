"""The element-statistics judge (other features, family and rows than the surrogate) and judge_trust."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("pymatgen")
pytest.importorskip("sklearn")

from flowevo.domains.crystals.judges import JUDGE_KINDS, ElementStatsFeaturizer, fit_element_judge, judge_trust  # noqa: E402


def test_features_are_finite_site_order_free_and_read_structures_like_tuples(perovskite):
    feat = ElementStatsFeaturizer().fit([("Sr", "Ti", ("O", "O", "O")), ("Ba", "Zr", ("O", "O", "N"))])
    a = feat([("Sr", "Ti", ("O", "O", "O"))])
    from flowevo.domains.crystals.predictors import abx_sites

    b = feat(abx_sites([perovskite("Sr", "Ti", ("O", "O", "O"))]))
    assert a.shape == b.shape and np.isfinite(a).all() and np.allclose(a, b)
    swapped = feat([("Ti", "Sr", ("O", "O", "O"))])  # the statistics ignore sites; the chemistry does not
    from flowevo.domains.crystals.judges import ELEMENT_STATS

    stats = 4 * len(ELEMENT_STATS)
    assert np.allclose(a[0, :stats], swapped[0, :stats]) and not np.allclose(a[0, stats:], swapped[0, stats:])
    tolerance = a[0, stats + 2]
    assert 0.8 < tolerance < 1.1  # SrTiO3 is close to the ideal cubic perovskite (t ~ 1)


@pytest.mark.parametrize("kind", JUDGE_KINDS)
def test_each_family_learns_the_synthetic_trend_on_rows_it_never_saw(site_table, spearman, kind):
    y = site_table.properties["heat_ref"]
    fit_rows, test_rows = np.arange(0, 48), np.arange(48, 64)
    judge = fit_element_judge([site_table.structures[i] for i in fit_rows], y[fit_rows], kind, seed=0,
                              formulas=[site_table.formulas[i] for i in fit_rows])
    pred = judge.predict([site_table.structures[i] for i in test_rows], [site_table.formulas[i] for i in test_rows])
    assert pred.shape == (16,) and judge.rows == 48 and judge.kind == kind
    assert spearman(pred, y[test_rows]) > 0.5
    assert judge.predict([]).shape == (0,)


def test_bad_judge_arguments_raise():
    with pytest.raises(ValueError, match="unknown judge kind"):
        fit_element_judge([("Sr", "Ti", ("O", "O", "O"))] * 3, [0.1, 0.2, 0.3], kind="svm")
    with pytest.raises(ValueError, match="one value per item"):
        fit_element_judge([("Sr", "Ti", ("O", "O", "O"))] * 3, [0.1, 0.2])


def test_judge_trust_has_one_row_per_judge_with_exact_precision_and_recall():
    truth = np.array([0.0, 0.1, 0.5, 0.9, 1.2, math.nan])
    rows = judge_trust({"perfect": truth.copy(), "optimist": np.array([0.0, 0.1, 0.2, 0.3, 1.2, 0.0]),
                        "silent": np.full(6, 2.0)}, truth, threshold=0.4)
    assert [r["judge"] for r in rows] == ["perfect", "optimist", "silent"]
    perfect, optimist, silent = rows
    assert perfect["n"] == 5 and perfect["mae"] == 0 and perfect["precision_below"] == 1
    assert perfect["spearman"] == pytest.approx(1)
    assert optimist["predicted_below"] == 4 and optimist["true_below"] == 2  # calls 0.5 and 0.9 low: wrong twice
    assert optimist["precision_below"] == 0.5 and optimist["recall_below"] == 1
    assert math.isnan(silent["precision_below"]) and silent["recall_below"] == 0 and math.isnan(silent["spearman"])
    with pytest.raises(ValueError, match="predictions"):
        judge_trust({"short": np.zeros(3)}, truth, 0.4)
