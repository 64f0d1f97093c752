"""fit_crystal_models: one call fits the flow, the surrogate, the judge and the thresholds, reproducibly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("pymatgen")

from flowevo.domains.crystals import fitting  # noqa: E402

PERCENTILES, fit_crystal_models = fitting.PERCENTILES, fitting.fit_crystal_models
load_crystal_models, save_crystal_models = fitting.load_crystal_models, fitting.save_crystal_models


def test_fits_every_part_from_one_seed(site_table):
    table = site_table.subset(range(48))
    table.properties["gap"] = -table.properties["heat_ref"]
    kw = dict(cfm_steps=40, surrogate_steps=40, gbr_estimators=20, chgnet_rows=0, log=lambda s: None)
    m = fit_crystal_models(table, "heat_ref", seed=1, **kw)
    assert m.formation is None and m.chgnet_rows == 0 and m.independent is not None and m.setup_s > 0
    assert m.model.property == "heat_ref" and m.model.info["train_config"]["steps"] == 40
    y = table.properties["heat_ref"]
    assert set(m.thresholds) == set(PERCENTILES) and m.thresholds["sr10"] == pytest.approx(np.percentile(y, 10))
    again = fit_crystal_models(table, "heat_ref", seed=1, **kw)
    probe = site_table.structures[48:]
    assert np.array_equal(m.surrogate.predict(probe), again.surrogate.predict(probe))  # same seed, same models
    assert np.array_equal(m.independent.predict(probe), again.independent.predict(probe))
    assert m.payload()(m.model.encode(probe[:2], site_table.formulas[48:50]))["structures"][0] is not None

    other = fit_crystal_models(table, "heat_ref", seed=1, surrogate_property="gap", **{**kw, "gbr_estimators": None})
    assert other.independent is None and other.surrogate.property == "gap"
    assert np.corrcoef(other.surrogate.predict(table.structures), -y)[0, 1] > 0.5  # it predicts the other column
    with pytest.raises(KeyError, match="nope"):
        fit_crystal_models(table, "heat_ref", surrogate_property="nope", **kw)


def test_saved_models_load_back_the_same(site_table, tmp_path):
    table = site_table.subset(range(48))
    m = fit_crystal_models(table, "heat_ref", seed=0, cfm_steps=30, surrogate_steps=30, gbr_estimators=10,
                           chgnet_rows=0, log=lambda s: None)
    assert m.lowest == table.properties["heat_ref"].min() and m.percentiles == PERCENTILES
    save_crystal_models(m, tmp_path / "M", {"seed": 0, "note": "x"})
    back = load_crystal_models(tmp_path / "M")
    probe = site_table.structures[48:]
    assert np.array_equal(back.surrogate.predict(probe), m.surrogate.predict(probe))
    assert np.array_equal(back.independent.predict(probe), m.independent.predict(probe))
    assert back.thresholds == m.thresholds and back.lowest == m.lowest and back.percentiles == m.percentiles
    assert back.formation is None and back.info["note"] == "x" and "losses" not in back.model.info
    x = m.model.encode(probe[:3], site_table.formulas[48:51])
    c = m.model.condition([0.1, 0.2, 0.3])
    with torch.inference_mode():
        assert torch.allclose(back.model.codec().invert(x, c), m.model.codec().invert(x, c))
    (tmp_path / "M" / "judge.json").unlink()
    (tmp_path / "M" / "training.json").unlink()  # an older MODEL_DIR: no judge, no thresholds, no default target
    old = load_crystal_models(tmp_path / "M")
    assert old.independent is None and old.thresholds == {} and old.lowest is None
    with pytest.raises(FileNotFoundError, match="crystal_flow.pt"):
        load_crystal_models(tmp_path)
