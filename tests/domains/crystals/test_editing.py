"""Crystal editing as one library call: site-masked REO (and its masked_random ablation), its evaluator,
a resumed run equal to an uninterrupted one, and sources the model cannot encode."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

pytest.importorskip("pymatgen")

from edit_inputs import edit_inputs  # noqa: E402

from flowevo.domains.crystals.editing import (  # noqa: E402
    best_structures,
    edit_evaluator,
    encodable_sources,
    kept_edits,
    site_masked_evolver,
    site_masked_reo,
)
from flowevo.domains.crystals.site_edit import RandomRegions, seed_masks  # noqa: E402
from flowevo.domains.crystals.validity import CompositionCheck, crystal_valid, sites_changed  # noqa: E402
from flowevo.evolve import load_run_state, save_run_state  # noqa: E402
from flowevo.flow import FixedGrid  # noqa: E402
from flowevo.objectives import Candidates  # noqa: E402

GRID = FixedGrid("rk4", 6)


def _inputs(model, table, surrogate, n=4, budget="k2"):
    return edit_inputs(model, table, surrogate, n, budget)


def _same(a, b):
    pa, pb = a.population, b.population
    return (torch.equal(pa.residuals, pb.residuals) and torch.equal(pa.values, pb.values)
            and torch.equal(pa.violation, pb.violation) and torch.equal(pa.decoded, pb.decoded))


def test_site_masked_reo_is_one_call_and_keeps_edits_within_the_budget(site_model, site_table, site_surrogate):
    src, x, structures, evaluator = _inputs(site_model, site_table, site_surrogate)
    res = site_masked_reo(site_model, x, src.properties["heat_ref"], -1.0, evaluator, population=4, generations=3,
                          seed=0, discretisation=GRID)
    assert res.method == "reo" and res.rows == 4 and len(res.population) == 16
    assert res.evaluations_per_row.tolist() == [16.0] * 4 and len(res.history) == 4
    kept = kept_edits(res, site_model.representation)
    assert sum(s is not None for s in kept) >= 2
    for s, source in zip(kept, structures):
        if s is not None:  # every kept edit met the budget and both validity checks
            assert sites_changed(source, s) <= 2 and crystal_valid(s)
    assert best_structures(res, site_model.representation)[0] is not None
    again = site_masked_reo(site_model, x, src.properties["heat_ref"], -1.0, evaluator, population=4, generations=3,
                            seed=0, discretisation=GRID)
    assert _same(res, again)  # same seed, same result


def test_masked_random_is_the_same_call_with_random_regions(site_model, site_table, site_surrogate):
    src, x, _, evaluator = _inputs(site_model, site_table, site_surrogate)
    res = site_masked_reo(site_model, x, src.properties["heat_ref"], -1.0, evaluator, population=4, generations=2,
                          seed=0, move=RandomRegions(), discretisation=GRID)
    assert res.method == "masked_random" and res.evaluations_per_row.tolist() == [12.0] * 4
    lay_dim = site_model.residual_dim
    masks = {tuple(m) for m in seed_masks()}
    children = res.population.take(torch.nonzero(res.population.born > 0).flatten())
    assert len(children) > 0
    for m in (children.residuals[:, lay_dim : lay_dim + 5] > 0.5).tolist():
        assert tuple(m) in masks  # offspring edit regions are drawn from the seed regions


def test_a_resumed_run_equals_an_uninterrupted_one(site_model, site_table, site_surrogate, tmp_path):
    src, x, _, evaluator = _inputs(site_model, site_table, site_surrogate)
    args = (site_model, x, src.properties["heat_ref"], -1.0, evaluator)
    kw = dict(population=4, generations=4, seed=3, discretisation=GRID)
    full = site_masked_evolver(*args, **kw).run()

    first = site_masked_evolver(*args, **kw)
    for _ in range(3):  # generation 0, 1, 2
        first.step()
    save_run_state(first, tmp_path / "run.pt")
    resumed = site_masked_evolver(*args, **kw)
    load_run_state(resumed, tmp_path / "run.pt")
    seen = resumed.variation.inner.seen  # the default variation: SiteVariation, pre-screened
    assert resumed.generation == 2 and seen == first.variation.inner.seen  # the archive is checkpointed
    assert sum(len(v) for v in seen.values()) > 4 * 5
    res = resumed.run()
    assert _same(full, res) and res.evaluations == full.evaluations


def test_a_missing_structure_is_infeasible(perovskite):
    src = perovskite("Sr", "Ti", ("O", "O", "O"))

    class _Z:
        def predict(self, structures):
            return np.array([s.species[0].Z for s in structures], dtype=float)

    check = CompositionCheck()
    ev = edit_evaluator(_Z(), [src], "k1", composition=check)
    batch = Candidates(x=torch.zeros(3, 2), source_index=torch.zeros(3, dtype=torch.long),
                       extra={"structures": [perovskite("Ba", "Ti", ("O", "O", "O")), None, src]})
    out = ev(batch)
    assert out.feasible.tolist() == [True, False, True] and math.isinf(out.violation[1])
    g = dict(zip([c.name for c in ev.constraints], out.constraint_values[1].tolist()))
    assert g["structure_valid"] == 1.0 and g["composition_valid"] == 1.0  # both validity constraints violated
    assert set(check.cache) == {("Ba", "O", "O", "O", "Ti"), ("O", "O", "O", "Sr", "Ti")}  # cached by composition


def test_sources_the_model_cannot_encode_are_reported(site_model, site_table, perovskite):
    from flowevo.domains.crystals.data import CrystalTable

    table = CrystalTable([site_table.structures[0], perovskite("Hg", "Ti", ("O", "O", "O"))], ["ok", "bad"],
                         [site_table.formulas[0], "HgTiO3"], {"heat_ref": np.array([0.1, 0.2])})
    kept, skipped = encodable_sources(site_model, table)
    assert kept.ids == ["ok"] and [s["id"] for s in skipped] == ["bad"] and "Hg" in skipped[0]["reason"]
    with pytest.raises(ValueError, match="none of the 1 source"):
        encodable_sources(site_model, table.subset([1]))
