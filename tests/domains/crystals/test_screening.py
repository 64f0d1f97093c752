"""Pre-screened site-masked REO: composition features, cheap crystal constraints, the scored-only archive,
fewer infeasible evaluations than unscreened REO, same seed same result, and an exact resume."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("pymatgen")

from edit_inputs import edit_inputs  # noqa: E402

from flowevo.domains.crystals.editing import site_masked_evolver, site_masked_reo  # noqa: E402
from flowevo.domains.crystals.screening import composition_features  # noqa: E402
from flowevo.domains.crystals.site_edit import SiteMaskedCodec, SiteVariation, composition_keys  # noqa: E402
from flowevo.evolve import PreScreen, load_run_state, save_run_state  # noqa: E402
from flowevo.flow import FixedGrid  # noqa: E402
from flowevo.objectives import QueryCounter, is_cheap  # noqa: E402

GRID = FixedGrid("rk4", 6)


def _inputs(model, table, surrogate, n=6, budget="k2"):
    return edit_inputs(model, table, surrogate, n, budget)


def test_every_crystal_edit_constraint_is_cheap(site_surrogate, site_table, site_model):
    _, _, _, ev = _inputs(site_model, site_table, site_surrogate, budget="k2_bkept")
    assert [c.name for c in ev.constraints] == ["structure_valid", "composition_valid", "budget_k2_bkept"]
    assert all(is_cheap(c) for c in ev.constraints) and not any(is_cheap(o) for o in ev.objectives)


@pytest.mark.parametrize("kind", ["codes", "onehot"])
def test_composition_features_depend_on_the_composition_only(site_model, site_table, kind):
    rep = site_model.representation
    s = site_table.structures[:8]
    x = torch.as_tensor(rep.encode(s, site_table.formulas[:8]), dtype=torch.float32)
    f = composition_features(site_model, kind)(torch.zeros(8, 3), x)
    assert f.shape[0] == 8 and f.dtype == torch.float64 and torch.isfinite(f).all()
    keys = composition_keys(site_model, x)
    for i in range(8):
        for j in range(8):
            assert torch.equal(f[i], f[j]) == (keys[i] == keys[j])  # same composition <=> same features
    # the anion sites permuted (and the lattice moved): the same features
    perm = x.clone()
    sl = [rep.species_slice(s) for s in (2, 3, 4)]
    perm[:, sl[0]], perm[:, sl[1]] = x[:, sl[1]], x[:, sl[0]]
    perm[:, :3] += 0.5
    assert torch.equal(composition_features(site_model, kind)(torch.zeros(8, 3), perm), f)
    if kind == "onehot":
        assert torch.all(f.sum(1) == 5)  # A, B and three anions
    with pytest.raises(ValueError, match="unknown composition features"):
        composition_features(site_model, "element_stats")


def test_scored_archive_holds_only_what_was_scored(site_model, site_table):
    from flowevo.evolve.population import SEED, Population

    src = site_table.subset(range(3))
    codec = SiteMaskedCodec(site_model, GRID)
    x = site_model.encode(src.structures, src.formulas)
    target = site_model.condition([-1.0] * 3)
    with torch.inference_mode():
        g = codec.invert(x, site_model.condition(src.properties["heat_ref"]))
    with pytest.raises(ValueError, match="archive"):
        SiteVariation(codec, target, archive="all")
    var = SiteVariation(codec, target, archive="scored")
    row = torch.arange(3)
    pop = Population.new(g, row, torch.full_like(row, SEED), torch.full_like(row, -1), 1, 0)
    with torch.inference_mode():
        pop = pop.__class__(**{**pop.__dict__, "decoded": codec.decode(g, target)})
    var.observe(pop)
    before = {r: set(k) for r, k in var.seen.items()}
    kids = var.offspring(pop, 3, 6, torch.Generator().manual_seed(0))
    assert var.seen == before  # proposing does not archive
    keys = var._keys(kids.residuals, kids.row)
    for r in range(3):
        mine = [k for k, b in zip(keys, kids.row.tolist()) if b == r]
        assert len(set(mine)) >= len(mine) - 1  # siblings distinct (the last retry may repeat)
    with torch.inference_mode():
        kids = kids.__class__(**{**kids.__dict__, "decoded": codec.decode(kids.residuals, target[kids.row])})
    var.observe(kids)  # scoring archives
    assert all(set(k for k, b in zip(keys, kids.row.tolist()) if b == r) <= var.seen[r] for r in range(3))


def _scored(model, table, surrogate, screen, seed=0):
    src, x, structures, ev = _inputs(model, table, surrogate)
    counter = QueryCounter(ev, len(structures), {}, keep=lambda c: c.extra["structures"])
    res = site_masked_reo(model, x, src.properties["heat_ref"], -1.0, counter, population=4, generations=4,
                          seed=seed, discretisation=GRID, screen=screen)
    return res, counter


def test_screening_spends_fewer_evaluations_on_infeasible_edits(site_model, site_table, site_surrogate):
    plain, pc = _scored(site_model, site_table, site_surrogate, 1)
    screened, sc = _scored(site_model, site_table, site_surrogate, 8)
    assert plain.evaluations == screened.evaluations == 6 * 4 * 5  # the same budget
    feasible = lambda r: sum(h.feasible_fraction for h in r.history[1:]) / 4  # noqa: E731  after generation 0
    assert feasible(screened) > feasible(plain) and feasible(screened) >= 0.9, (feasible(plain), feasible(screened))
    assert screened.best.values.mean() <= plain.best.values.mean()
    again, _ = _scored(site_model, site_table, site_surrogate, 8)
    assert torch.equal(again.population.values, screened.population.values)  # same seed, same result
    src, x, _, ev = _inputs(site_model, site_table, site_surrogate)
    evo = site_masked_evolver(site_model, x, src.properties["heat_ref"], -1.0, ev, screen=8, discretisation=GRID)
    assert isinstance(evo.variation, PreScreen) and evo.variation.inner.archive == "scored"
    assert evo.variation.pool and evo.variation.factor == 8
    with pytest.raises(ValueError, match="screen"):
        site_masked_evolver(site_model, x, src.properties["heat_ref"], -1.0, ev, screen=0)


def test_a_screened_run_resumes_exactly(site_model, site_table, site_surrogate, tmp_path):
    src, x, _, ev = _inputs(site_model, site_table, site_surrogate)
    args = (site_model, x, src.properties["heat_ref"], -1.0, ev)
    kw = dict(population=4, generations=3, seed=2, discretisation=GRID, screen=4)
    full = site_masked_evolver(*args, **kw).run()
    first = site_masked_evolver(*args, **kw)
    for _ in range(2):
        first.step()
    save_run_state(first, tmp_path / "run.pt")
    resumed = site_masked_evolver(*args, **kw)
    load_run_state(resumed, tmp_path / "run.pt")
    res = resumed.run()
    assert torch.equal(res.population.values, full.population.values)
    assert torch.equal(res.population.residuals, full.population.residuals)


def test_feasible_seeds_pass_the_cheap_checks_with_new_compositions(site_model, site_table, site_surrogate):
    from flowevo.domains.crystals.objectives import structures_payload
    from flowevo.domains.crystals.screening import feasible_seeds
    from flowevo.domains.crystals.site_edit import seed_masks
    from flowevo.evolve import EditTask

    src, x, structures, ev = _inputs(site_model, site_table, site_surrogate, budget="k1_bkept")
    codec = SiteMaskedCodec(site_model, GRID)
    task = EditTask(x, site_model.condition(src.properties["heat_ref"]), site_model.condition([-1.0] * 6))
    payload = structures_payload(site_model.representation)
    seeds = feasible_seeds(codec, task, ev.constraints, payload, seed_masks(), 3)
    assert seeds.shape == (6, 3, codec.layout.size)
    row = torch.arange(6).repeat_interleave(3)
    with torch.inference_mode():
        dec = codec.decode(seeds.reshape(18, -1), task.target_condition[row])
    from flowevo.objectives import Candidates

    out = ev(Candidates(x=dec, source_index=row, sources=x[row], target=task.target_condition[row], extra=payload(dec)))
    keys = composition_keys(site_model, dec)
    src_keys = composition_keys(site_model, x)
    from flowevo.domains.crystals.site_edit import seed_genomes

    plain = seed_genomes(codec, task.sources, task.source_condition, seed_masks())[:, :3]
    with torch.inference_mode():
        dec0 = codec.decode(plain.reshape(18, -1), task.target_condition[row])
    out0 = ev(Candidates(x=dec0, source_index=row, sources=x[row], target=task.target_condition[row],
                         extra=payload(dec0)))
    keys0 = composition_keys(site_model, dec0)

    def new(o, k, b):  # distinct feasible compositions other than the source's among row b's seeds
        return len({k[i] for i in range(3 * b, 3 * b + 3) if o.feasible[i] and k[i] != src_keys[b]})

    assert out.feasible.sum() >= out0.feasible.sum()  # feasible first
    assert all(new(out, keys, b) >= new(out0, keys0, b) for b in range(6))
    assert sum(new(out, keys, b) for b in range(6)) > sum(new(out0, keys0, b) for b in range(6))
    same = feasible_seeds(codec, task, ev.constraints, payload, seed_masks(), 3)
    assert torch.equal(same, seeds)  # deterministic
    with pytest.raises(ValueError, match="count"):
        feasible_seeds(codec, task, ev.constraints, payload, seed_masks(), -1)
