"""The digits demo's constrained thickness edit (a band as a bound, optional adaptive penalty)."""

import pytest


@pytest.mark.parametrize("penalty", [False, True])
def test_thickness_band_is_a_constraint(tmp_path, penalty):
    from flowevo.benchmarks.digits import load_sources
    from flowevo.demos.digits import _thickness_task
    from flowevo.domains.digits.models import load_digit_models

    models = load_digit_models(None)
    x, labels = load_sources(None, 2)
    out = _thickness_task(models, x, labels, 0, tmp_path, band=0.4, penalty=penalty)
    for r in out["rows"]:
        assert set(r["satisfaction"]) == {"thickness_band", "keeps_class"}
        assert set(r["multipliers"]) == ({"thickness_band", "keeps_class"} if penalty else set())
        if r["feasible"]:  # the kept edit is within the band (Morpho-MNIST thickness, re-measured)
            assert abs(r["edit"] - r["target"]) <= 0.4 + 0.05 and r["keeps_class"]
    assert (tmp_path / "thickness.png").is_file()
