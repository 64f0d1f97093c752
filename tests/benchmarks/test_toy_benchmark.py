"""Toy benchmark methods: each runs at its own settings (TOY_SETTINGS) and spends exactly the budget."""

import pytest
import torch

from flowevo.benchmarks import toy as toy_bench
from flowevo.flow import MLPVelocity
from flowevo.objectives import QueryCounter


@pytest.fixture
def setup(monkeypatch):
    untrained = lambda toy, config, device, show_progress: MLPVelocity((16,), num_classes=3).to(device)
    monkeypatch.setattr(toy_bench, "train_toy_flow", untrained)  # the search, not the flow, is under test
    torch.manual_seed(0)
    return toy_bench.toy_edit_task(0, rows=3)


@pytest.mark.parametrize("method", ["reo", "cma", "random"])
def test_each_method_spends_the_budget_in_batches_of_its_setting(setup, method):
    counter = QueryCounter(setup.evaluator, 3, {"success": setup.success})
    res = toy_bench.toy_search(setup, method, budget=16, seed=1, evaluator=counter)
    assert counter.spent.tolist() == [16] * 3 and res.evaluations_per_row.tolist() == [16] * 3
    batch = toy_bench.toy_batch(method)
    assert len(counter.scored().row) == 48 and 16 % batch == 0
    if method == "reo":  # pre-screened: 8 children decoded per child scored after generation 0
        assert res.info["variation"]["screened"] == 8 * res.info["variation"]["sent"] > 0
    with pytest.raises(ValueError, match="unknown toy method"):
        toy_bench.toy_search(setup, "tabu", budget=16)
