"""What a domain's loader may add to a run, generically: its own variation strategy and generation-0 seeds,
constraints it always applies, suggested [optimize] values, a default target, and figures for metrics.json."""

import dataclasses
import json

import numpy as np
import pytest
import rings_plugin
import torch

from flowevo.config import ConfigError, load_config
from flowevo.domains import Domain, RunRequest, TrainRequest, register_domain, unregister_domain
from flowevo.evolve import Variation
from flowevo.workflows import resume_optimize, run_optimize


class Recording:
    """A VariationStrategy that counts its calls and keeps the generation-0 batch it observed."""

    def __init__(self) -> None:
        self.inner, self.calls, self.first = Variation(cross_rate=0.0), {"initial": 0, "offspring": 0}, None

    def initial(self, residuals, count, generator):
        self.calls["initial"] += 1
        return self.inner.initial(residuals, count, generator)

    def offspring(self, population, rows, per_row, generator, step=None):
        self.calls["offspring"] += 1
        return self.inner.offspring(population, rows, per_row, generator, step)

    def observe(self, evaluated):
        if self.first is None:
            self.first = evaluated.residuals.clone()

    def state_dict(self):
        return {"offspring": self.calls["offspring"]}

    def load_state_dict(self, state):
        self.calls["offspring"] = int(state.get("offspring", 0))


SEEN: dict = {}


def _load_run(request: RunRequest):
    if request.target_class is None:  # the default target: ring 1
        request = dataclasses.replace(request, target_class=1)
    run = dataclasses.replace(rings_plugin.load_run(request), kind="ringsx")
    SEEN["variation"] = Recording()
    run.variation = SEEN["variation"]
    run.extra_seeds = torch.full((len(run.x), 2, 2), 3.0)  # two extra seeds per row
    run.default_constraints = [{"use": "distance_to_source", "name": "near", "upper": 50.0}]
    run.optimize_defaults = {"population": 5, "generations": 2}
    return run


def _write_outputs(run, run_dir, best, violation):
    return {"ring_rows": len(best)} if not SEEN.get("clash") else {"rows": 0}


DOMAIN = Domain("ringsx", {}, recognises_model=lambda d: (d / rings_plugin.CHECKPOINT).is_file(), load_run=_load_run,
                model_hint=rings_plugin.CHECKPOINT, write_outputs=_write_outputs,
                default_objectives=lambda ctx, has_class, has_values: ["distance_to_source"],
                default_target="ring 1")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("ringsx")
    np.savetxt(root / "train.rings", rings_plugin.make_rings(400))
    np.savetxt(root / "sources.rings", rings_plugin.make_rings(6, seed=1)[::2])
    rings_plugin.train(TrainRequest(root / "train.rings", root / "model", 0, {"steps": 100}), False, lambda s: None)
    register_domain(DOMAIN)
    yield root
    unregister_domain("ringsx")


def _config(root, run_dir, **flags):
    return load_config(flags={"optimize.model": str(root / "model"), "optimize.sources": str(root / "sources.rings"),
                              "optimize.run_dir": str(run_dir), "optimize.report": False, **flags})


def test_loader_fields_shape_the_run(model, tmp_path):
    m = run_optimize(_config(model, tmp_path / "a"), show_progress=False)  # no target, population or generations
    resolved = json.loads((tmp_path / "a" / "config.resolved.json").read_text())["optimize"]
    assert (resolved["population"], resolved["generations"], resolved["target"]) == (5, 2, None)
    assert resolved["constraints"] == [{**resolved["constraints"][0], "use": "distance_to_source", "name": "near",
                                        "upper": 50.0}]
    assert m["constraints"] == ["near"] and m["evaluations"] == 3 * 5 * 3 and m["ring_rows"] == 3
    v = SEEN["variation"]
    assert v.calls == {"initial": 1, "offspring": 2}  # generation 0: own residual, 2 extra seeds, 2 variants
    first = v.first.reshape(3, 5, 2)
    assert torch.equal(first[:, 1:3], torch.full((3, 2, 2), 3.0)) and not torch.equal(first[:, 3:], first[:, 1:3])

    m = run_optimize(_config(model, tmp_path / "b", **{
        "optimize.population": 4, "optimize.generations": 1,
        "optimize.constraints": [{"use": "distance_to_source", "name": "near", "upper": 0.5}]}), show_progress=False)
    resolved = json.loads((tmp_path / "b" / "config.resolved.json").read_text())["optimize"]
    assert (resolved["population"], resolved["generations"]) == (4, 1) and m["evaluations"] == 3 * 4 * 2
    assert [c["upper"] for c in resolved["constraints"]] == [0.5]  # the configured one of the same name wins


def test_resume_and_figure_clashes(model, tmp_path):
    class Killed(Exception):
        pass

    def kill(evolver):
        if evolver.generation == 1:
            raise Killed

    full = run_optimize(_config(model, tmp_path / "full", seed=2), show_progress=False)
    with pytest.raises(Killed):
        run_optimize(_config(model, tmp_path / "k", seed=2), show_progress=False, callbacks=[kill])
    resumed = resume_optimize(tmp_path / "k", show_progress=False)
    assert resumed["best_values"] == full["best_values"] and SEEN["variation"].calls["offspring"] == 2
    SEEN["clash"] = True
    try:
        with pytest.raises(ValueError, match="'rows'"):
            run_optimize(_config(model, tmp_path / "c"), show_progress=False)
    finally:
        SEEN.pop("clash")


def test_a_domain_without_default_target_still_requires_one(model, tmp_path):
    register_domain(dataclasses.replace(DOMAIN, name="ringsy", default_target=""))
    unregister_domain("ringsx")
    try:
        with pytest.raises(ConfigError, match="optimize.target: required"):
            run_optimize(_config(model, tmp_path / "r"), show_progress=False)
    finally:
        unregister_domain("ringsy")
        register_domain(DOMAIN)
