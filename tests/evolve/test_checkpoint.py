"""Checkpoint and resume: a resumed run ends exactly where an uninterrupted one does."""

import pytest
import torch

from flowevo.evolve import Checkpointer, EditTask, Evolver, MaxGenerations, load_run_state, save_run_state
from flowevo.flow import Condition, FixedGrid, MLPVelocity, ResidualCodec, weights_identity
from flowevo.objectives import FunctionObjective, LocalEvaluator


def make(toy16, gens):
    toy, model = toy16
    src, lab = toy.sample(4, torch.Generator().manual_seed(3), labels=torch.zeros(4, dtype=torch.long))
    task = EditTask(src, Condition.from_labels(lab), Condition.from_labels(torch.ones(4, dtype=torch.long)))
    centre = toy.centres[1, 0]
    objs = [FunctionObjective("goal", "min", lambda b: (b.x - centre).norm(dim=1)),
            FunctionObjective("moved", "min", lambda b: (b.x - b.sources).norm(dim=1))]
    return Evolver(ResidualCodec(model, FixedGrid("rk4", 4)), task, LocalEvaluator(objs), population_size=6,
                   termination=[MaxGenerations(gens)], seed=7)


def test_resume_equals_uninterrupted(toy16, tmp_path):
    full = make(toy16, 6).run()
    first = make(toy16, 3)
    first.run(callbacks=[Checkpointer(tmp_path / "state.pt")])
    resumed = make(toy16, 6)
    load_run_state(resumed, tmp_path / "state.pt")
    res = resumed.run()
    for f in ("residuals", "values", "violation", "decoded", "row", "origin", "born"):
        assert torch.equal(getattr(res.population, f), getattr(full.population, f)), f
    assert [h.best for h in res.history] == [h.best for h in full.history]
    assert res.evaluations == full.evaluations


def test_corrupt_or_foreign_checkpoint_is_a_clear_error(toy16, tmp_path):
    ev = make(toy16, 1)
    ev.run()
    path = save_run_state(ev, tmp_path / "s.pt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt checkpoint"):
        load_run_state(make(toy16, 2), path)
    with pytest.raises(FileNotFoundError):
        load_run_state(make(toy16, 2), tmp_path / "missing.pt")
    ok = save_run_state(ev, tmp_path / "ok.pt")
    other = make(toy16, 2)
    other.codec.model = MLPVelocity((16,), num_classes=3, hidden=8, depth=1)
    with pytest.raises(ValueError, match="different model"):
        load_run_state(other, ok)


def test_weights_identity_tracks_weights_and_the_codec_reports_it():
    a = MLPVelocity((2,), num_classes=2, hidden=8, depth=1)
    h = weights_identity(a)
    assert h == weights_identity(a) == ResidualCodec(a).identity()
    with torch.no_grad():
        next(a.parameters()).add_(1e-3)
    assert weights_identity(a) != h
