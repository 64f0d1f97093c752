"""TuRBO-style BO (botorch) per source, batched: trust regions, Thompson sampling, constraints, two objectives."""

import sys

import pytest
import torch

pytest.importorskip("botorch")

from flowevo.baselines import bo_search  # noqa: E402
from flowevo.baselines.trust_region import TrustRegions, trust_region_candidates  # noqa: E402

TINY = dict(batch=4, candidates=64, window=24, refit_every=2, fit_steps=15)


def test_trust_region_grows_shrinks_and_restarts():
    tr = TrustRegions(rows=2, dim=8, batch=4, length_init=0.8, length_min=0.1, success_tolerance=2)
    assert tr.failure_tolerance == 2  # ceil(max(4 / q, d / q))
    for _ in range(2):
        tr.update(torch.tensor([True, False]))
    assert tr.length.tolist() == [1.6, 0.4]
    for _ in range(6):
        tr.update(torch.tensor([True, False]))
    assert tr.length.tolist() == [1.6, 0.8] and tr.restarts.tolist() == [0, 1]  # 0.4 -> 0.2 -> 0.1 -> 0.05: restart


def test_candidates_stay_in_the_region_and_move_few_coordinates():
    centre = torch.full((3, 40), 0.5, dtype=torch.float64)
    length = torch.tensor([0.2, 0.4, 2.0], dtype=torch.float64)
    cand = trust_region_candidates(centre, length, torch.ones(3, 40, dtype=torch.float64), 100,
                                   torch.Generator().manual_seed(0))
    assert cand.shape == (3, 100, 40) and (cand >= 0).all() and (cand <= 1).all()
    assert ((cand[0] - 0.5).abs() <= 0.1 + 1e-12).all() and ((cand[1] - 0.5).abs() <= 0.2 + 1e-12).all()
    moved = (cand != 0.5).sum(dim=2).double()
    assert (moved >= 1).all() and 10 < moved.mean() < 30  # each coordinate with probability 20 / d


def test_single_objective_bo_improves_on_its_initial_design_and_is_deterministic(toy_task):
    codec, task, one, _, _ = toy_task
    res = bo_search(codec, task, one, budget_per_row=28, seed=0, init_steps=1, **TINY)
    assert res.method == "bo" and res.info["acquisition"] == "ts" and res.evaluations_per_row.tolist() == [28.0] * 4
    assert res.info["model_steps"] == 6 and res.info["fit_s"] > 0
    first = res.history[0].best[0]  # best of the initial design (mean over rows)
    assert res.history[-1].best[0] < first - 0.05
    again = bo_search(codec, task, one, budget_per_row=28, seed=0, init_steps=1, **TINY)
    assert torch.equal(res.population.values, again.population.values)


def test_constraints_and_two_objectives(toy_task):
    codec, task, _, two, _ = toy_task
    res = bo_search(codec, task, two, budget_per_row=24, seed=0, **TINY)
    assert res.info["acquisition"] == "parego" and (res.best.violation == 0).all()
    assert max(len(res.pareto_set(b)) for b in range(4)) > 1
    ts = bo_search(codec, task, two, budget_per_row=24, seed=0, acquisition="ts", **TINY)
    assert ts.info["acquisition"] == "ts" and (ts.best.violation == 0).all()


def test_qnehvi_acquisition_runs_per_row(toy_task):
    codec, task, _, two, _ = toy_task
    from flowevo.evolve import EditTask

    sub = EditTask(task.sources[:2], task.source_condition[:2], task.target_condition[:2])
    res = bo_search(codec, sub, two, budget_per_row=12, seed=0, acquisition="qnehvi", qnehvi_samples=16,
                    ref_point=[10.0, -10.0], **{**TINY, "candidates": 32})
    assert res.info["acquisition"] == "qnehvi" and res.rows == 2 and (res.best.violation == 0).all()


def test_bad_settings_and_missing_botorch_are_clear_errors(toy_task, monkeypatch):
    codec, task, one, _, _ = toy_task
    with pytest.raises(ValueError, match="two objectives"):
        bo_search(codec, task, one, budget_per_row=8, acquisition="parego")
    with pytest.raises(ValueError, match="unknown acquisition"):
        bo_search(codec, task, one, budget_per_row=8, acquisition="ei")
    monkeypatch.setitem(sys.modules, "botorch", None)
    with pytest.raises(ImportError, match=r"flowevo\[bo\]"):
        bo_search(codec, task, one, budget_per_row=8)
