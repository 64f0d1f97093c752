"""Site-masked genomes: inpainting keeps the kept sites, variation never repeats a composition,
the Evolver runs on genomes under a black-box edit budget; leap / gradient wrappers; soft surrogate."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("pymatgen")

from flowevo.domains.crystals.differentiable import SoftSurrogate  # noqa: E402
from flowevo.domains.crystals.objectives import (  # noqa: E402
    budget_constraint,
    property_objective,
    structure_validity_constraint,
    structures_payload,
)
from flowevo.domains.crystals.search import gradient_edit, leap_edit  # noqa: E402
from flowevo.domains.crystals.site_edit import N_SITES, SiteMaskedCodec, SiteVariation, composition_keys, seed_genomes, seed_masks  # noqa: E402
from flowevo.domains.crystals.validity import sites_changed  # noqa: E402
from flowevo.evolve import EditTask, Evolver, MaxGenerations  # noqa: E402
from flowevo.flow import FixedGrid  # noqa: E402
from flowevo.objectives import LocalEvaluator  # noqa: E402


@pytest.fixture
def table(site_table):
    return site_table


@pytest.fixture
def model(site_model):
    return site_model


@pytest.fixture
def surrogate(site_surrogate):
    return site_surrogate


def _task(model, table, n=6, target=-1.0):
    x = model.encode(table.structures[:n], table.formulas[:n])
    return EditTask(x, model.condition(table.properties["heat_ref"][:n]), model.condition([target] * n))


def test_kept_sites_decode_to_the_anchor_and_all_free_is_the_plain_decoder(model, table):
    codec = SiteMaskedCodec(model, FixedGrid("rk4", 6))
    task = _task(model, table)
    g = codec.invert(task.sources, task.source_condition)
    lay = codec.layout
    assert g.shape == (6, lay.size) and lay.mask(g).all()
    assert torch.allclose(lay.anchor(g), model.encoder.encode(task.sources))
    plain = model.codec(FixedGrid("rk4", 6))
    assert torch.allclose(codec.decode(g, task.target_condition), plain.decode(lay.residual(g), task.target_condition), atol=1e-5)

    gen = torch.Generator().manual_seed(0)
    src = composition_keys(model, task.sources)
    n = 64
    masks = torch.rand(n, N_SITES, generator=gen) < 0.4
    rows = torch.arange(n) % 6
    genomes = lay.pack(torch.randn(n, lay.dim, generator=gen) * 1.5, masks, lay.anchor(g)[rows])
    keys = composition_keys(model, codec.decode(genomes, task.target_condition[rows]))
    moved = 0
    for key, m, r in zip(keys, masks.tolist(), rows.tolist()):
        new, old = [key[0], key[1]], [src[r][0], src[r][1]]
        for s in (0, 1):
            if not m[s]:
                assert new[s] == old[s]  # a kept cation site keeps the anchor's element
        if not any(m[2:]):
            assert key[2] == src[r][2]
        moved += key != src[r]
    assert moved > n // 4  # free sites do change


def _repeats(model, table, retries):
    codec = SiteMaskedCodec(model, FixedGrid("rk4", 6))
    task = _task(model, table, n=3)
    var = SiteVariation(codec, task.target_condition, retries=retries)
    assert var.layout is codec.layout
    evaluator = LocalEvaluator([property_objective(_AtomicNumberA())], [])
    extra = seed_genomes(codec, task.sources, task.source_condition, seed_masks())
    assert extra.shape == (3, len(seed_masks()), codec.layout.size)
    evo = Evolver(codec, task, evaluator, population_size=4, variation=var, termination=[MaxGenerations(4)],
                  seed=0, extra_seeds=extra, payload=structures_payload(model.representation))
    src = composition_keys(model, task.sources)
    proposed = {r: [src[r]] for r in range(3)}
    while not evo.stop():
        cands = evo.ask()
        assert codec.layout.mask(evo.pending.residuals).any(dim=1).all()  # never an empty edit region
        for r, k in zip(cands.source_index.tolist(), composition_keys(model, cands.x)):
            proposed[r].append(k)
        evo.tell(evaluator(cands))
    # offspring (after the source and the 4 seeds of generation 0) that repeat a composition of their row
    return sum(k in keys[:i] for keys in proposed.values() for i, k in enumerate(keys) if i >= 5)


def test_variation_avoids_compositions_the_row_already_proposed(model, table):
    blind, careful = _repeats(model, table, 0), _repeats(model, table, 6)
    assert blind >= 10 and careful <= blind // 3, (blind, careful)


class _AtomicNumberA:
    """Black box: atomic number of the A site (lower is 'better')."""

    def predict(self, structures):
        return np.array([s.species[0].Z for s in structures], dtype=float)


def test_evolver_on_genomes_respects_a_black_box_budget(model, table):
    codec = SiteMaskedCodec(model, FixedGrid("rk4", 6))
    task = _task(model, table)
    sources = model.decode_structures(task.sources)
    payload = structures_payload(model.representation)
    evaluator = LocalEvaluator([property_objective(_AtomicNumberA())],
                               [structure_validity_constraint()] + budget_constraint("k1_bkept", sources=sources))
    extra = seed_genomes(codec, task.sources, task.source_condition, seed_masks())
    evo = Evolver(codec, task, evaluator, population_size=4, variation=SiteVariation(codec, task.target_condition),
                  termination=[MaxGenerations(3)], seed=0, extra_seeds=extra, payload=payload)
    res = evo.run()
    assert res.evaluations == 6 * 4 * 4
    best = res.best
    kept = payload(best.decoded)["structures"]
    for s, src, v in zip(kept, sources, best.violation.tolist()):
        if v == 0:
            assert sites_changed(src, s) <= 1 and s.species[1] == src.species[1]
    assert (best.violation == 0).float().mean() >= 0.5
    again = Evolver(codec, task, evaluator, population_size=4, variation=SiteVariation(codec, task.target_condition),
                    termination=[MaxGenerations(3)], seed=0, extra_seeds=extra, payload=payload).run()
    assert torch.equal(again.best.values, best.values)  # same seed, same result


def test_soft_surrogate_matches_the_predictor_and_has_gradients(model, table, surrogate):
    x = model.encode(table.structures[:20], table.formulas[:20])
    hard = surrogate.predict(model.decode_structures(x))
    assert np.allclose(SoftSurrogate(surrogate, model.representation, 1e-4)(x).detach().numpy(), hard, atol=1e-4)
    soft = SoftSurrogate(surrogate, model.representation, 0.05)
    xg = x.clone().requires_grad_(True)
    soft(xg).sum().backward()
    assert torch.isfinite(xg.grad).all() and xg.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="temperature"):
        SoftSurrogate(surrogate, model.representation, 0.0)


def test_leap_and_gradient_score_every_round(model, table, surrogate):
    task = _task(model, table, n=4, target=0.0)
    codec = model.codec(FixedGrid("rk4", 6))
    sources = model.decode_structures(task.sources)
    payload = structures_payload(model.representation)
    evaluator = LocalEvaluator([property_objective(surrogate)], budget_constraint("k2", sources=sources))
    vals = torch.as_tensor(table.properties["heat_ref"][:4])
    res = leap_edit(model, codec, task, vals, torch.zeros(4, dtype=torch.float64), evaluator, payload, rounds=3, gamma=0.5)
    assert res.method == "leap" and res.evaluations_per_row.tolist() == [3.0] * 4 and len(res.history) == 3
    assert res.best.decoded.shape == task.sources.shape and res.best.residuals.shape == (4, model.residual_dim)
    res = gradient_edit(model, codec, task, SoftSurrogate(surrogate, model.representation), evaluator, None, steps=4)
    assert res.method == "gradient" and res.evaluations_per_row.tolist() == [4.0] * 4
    best = res.best
    for s, src, v in zip(payload(best.decoded)["structures"], sources, best.violation.tolist()):
        assert v > 0 or sites_changed(src, s) <= 2
    assert [h.evaluations for h in res.history] == [4, 8, 12, 16]  # one scored edit per row and step
