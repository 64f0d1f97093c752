"""Devices on a machine without CUDA: one-line errors, and resuming a checkpoint written on another device type.

- ``--device cuda`` where torch sees no CUDA device is a one-line error with exit code 2 on every command that
  runs a model, before any work; a misspelt device is one too; crystal parts say they run on the CPU only.
- A checkpoint written on "cpu" and resumed on "cpu" continues identically (``restore_run_state``).
- A checkpoint whose generator state is a CUDA generator's (16 bytes: seed and offset of the Philox generator,
  what ``torch.cuda.Generator.get_state()`` returns) resumes on the CPU with a re-seeded generator: the run
  completes, the restored population and counters are the checkpoint's, the continuation is deterministic
  (same resume, same result) and, as stated, not identical to the uninterrupted CPU run.
"""

import copy

import pytest
import torch
from typer.testing import CliRunner

from flowevo.cli import app
from flowevo.config import ConfigError, load_config
from flowevo.devices import require_cpu, resolve_device
from flowevo.evolve import Checkpointer, EditTask, Evolver, MaxGenerations
from flowevo.flow import Condition, FixedGrid, MLPVelocity, ResidualCodec
from flowevo.objectives import FunctionObjective, LocalEvaluator
from flowevo.workflows.devices import restore_run_state

runner = CliRunner()
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error where CUDA is absent")

COMMANDS = [
    ["optimize", "--model", "m", "--sources", "s.npz", "--target", "1", "--run-dir", "r"],
    ["train", "--data", "d.npz", "--out", "m"],
    ["sample", "--model", "m.pt", "--n", "2", "--out", "x.npz"],
    ["demo", "toy", "--run-dir", "r"],
    ["demo", "digits", "--run-dir", "r"],
    ["demo", "crystals", "--data", "d.csv", "--run-dir", "r"],
    ["benchmark", "toy", "--out", "o"],
    ["benchmark", "digits", "--out", "o"],
    ["benchmark", "crystals", "--data", "d.csv", "--out", "o"],
    ["benchmark", "throughput", "--out", "o"],
    ["benchmark", "cost", "--out", "o"],
    ["benchmark", "queries", "--out", "o"],
    ["benchmark", "profile", "--out", "o"],
    ["benchmark", "constrained", "--out", "o"],
    ["benchmark", "all", "--out", "o"],
    ["resume", "r"],
]


@no_cuda
@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_cuda_asked_for_without_cuda_is_one_line_exit_2(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing is written: the check comes first
    out = runner.invoke(app, [*args, "--device", "cuda"])
    assert out.exit_code == 2, out.output
    lines = out.output.strip().splitlines()
    assert len(lines) == 1 and "no CUDA device" in lines[0], out.output
    assert list(tmp_path.iterdir()) == []


def test_misspelt_device_and_crystal_parts():
    out = runner.invoke(app, ["benchmark", "toy", "--out", "o", "--device", "gpu"])
    assert out.exit_code == 2 and "use cpu, cuda, cuda:N or mps" in out.output
    with pytest.raises(ConfigError, match="optimize.device: device 'gpu'"):
        load_config(overrides=['optimize.device="gpu"'])
    assert load_config(overrides=['train.device="cuda:1"']).train.device == "cuda:1"  # checked when the run starts
    assert resolve_device("cpu") == torch.device("cpu")
    require_cpu("cpu", "x", "y")
    with pytest.raises(ValueError, match="the crystals demo runs on the CPU only"):
        require_cpu("cuda", "the crystals demo", "no device yet")


def _evolver(seed=0, generations=5):
    torch.manual_seed(0)
    net = MLPVelocity((3,), num_classes=2, hidden=16, depth=1).eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 3, generator=g)
    task = EditTask(x, Condition.from_labels([0] * 4), Condition.from_labels([1] * 4))
    goal = torch.tensor([1.0, -1.0, 0.5])
    ev = LocalEvaluator([FunctionObjective("goal", "min", lambda c: (c.x - goal).norm(dim=1))])
    return Evolver(ResidualCodec(net, FixedGrid("rk4", 4)), task, ev, population_size=6,
                   termination=[MaxGenerations(generations)], seed=seed)


class Killed(Exception):
    pass


def _kill_after(generation):
    def cb(evolver):
        if evolver.generation == generation:
            raise Killed

    return cb


def _final(evolver):
    return evolver.run().population.residuals


def test_checkpoint_on_cpu_resumed_on_cpu_is_identical(tmp_path):
    full = _final(_evolver())
    with pytest.raises(Killed):
        _evolver().run(callbacks=[Checkpointer(tmp_path / "ck.pt"), _kill_after(2)])
    resumed = _evolver()
    assert restore_run_state(resumed, tmp_path / "ck.pt", seed=0) is None
    assert torch.equal(_final(resumed), full)


def test_checkpoint_from_another_device_type_resumes_reseeded(tmp_path):
    full = _final(_evolver())
    with pytest.raises(Killed):
        _evolver().run(callbacks=[Checkpointer(tmp_path / "ck.pt"), _kill_after(2)])
    payload = torch.load(tmp_path / "ck.pt", weights_only=True)
    foreign = copy.deepcopy(payload)
    foreign["state"]["generator"] = torch.tensor([7, 0, 0, 0, 0, 0, 0, 0, 96, 0, 0, 0, 0, 0, 0, 0], dtype=torch.uint8)
    torch.save(foreign, tmp_path / "cuda_ck.pt")
    before = (tmp_path / "cuda_ck.pt").read_bytes()
    runs = []
    for _ in range(2):
        ev = _evolver()
        note = restore_run_state(ev, tmp_path / "cuda_ck.pt", seed=0)
        assert note and "re-seeded" in note and "after generation 2" in note
        assert torch.equal(ev.population.residuals, payload["state"]["population"]["residuals"])
        assert ev.evaluations == payload["state"]["evaluations"] and ev.generation == 2
        runs.append(_final(ev))
        assert ev.generation == 5 and ev.evaluations == 6 * 4 * 6
    assert (tmp_path / "cuda_ck.pt").read_bytes() == before  # the checkpoint file is left as it was
    assert torch.equal(runs[0], runs[1])  # the re-seeded continuation is deterministic
    assert not torch.equal(runs[0], full)  # and, as stated, not the uninterrupted run's draws
