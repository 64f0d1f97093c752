"""Your own trained flow: a flow trained outside flowevo (plain torch, t = 0 data, class by keyword, t as a column)
goes through ``VelocityAdapter``: it round-trips, decodes where their own sampler does (and not with the wrong
time convention), evolves from Python, and runs from ``flowevo optimize --model their_flow.py:factory`` (and
resumes)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import their_flow
import torch
from typer.testing import CliRunner

from flowevo.cli import app
from flowevo.evolve import EditTask, Evolver, MaxGenerations
from flowevo.flow import Condition, FixedGrid, ResidualCodec, VelocityAdapter
from flowevo.objectives import FunctionObjective, LocalEvaluator

runner = CliRunner()
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Their net, trained by their loop, saved with a copy of their file (so the factory finds its weights)."""
    root = tmp_path_factory.mktemp("external")
    net = their_flow.train().requires_grad_(False)
    torch.save(net.state_dict(), root / their_flow.WEIGHTS)
    shutil.copy(HERE / "their_flow.py", root / "their_flow.py")
    x = their_flow.MEANS[0] + their_flow.SPREAD * torch.randn(4, 2, generator=torch.Generator().manual_seed(5))
    np.savez(root / "sources.npz", x=x.numpy().astype(np.float32), c=np.zeros(len(x), dtype=np.int64))
    return root, net


def _adapted(net, **kw):
    return VelocityAdapter(net, condition={"y": "labels"}, data_at=kw.pop("data_at", 0), time="column", num_classes=2,
                           null_label=2, **kw)


def test_round_trip_and_time_convention(trained):
    _, net = trained
    g = torch.Generator().manual_seed(0)
    x, y = their_flow.sample_data(128, g)
    codec = ResidualCodec(_adapted(net), FixedGrid("rk4", 20))
    err = codec.roundtrip_error(x, Condition.from_labels(y))
    assert float(err.median()) < 1e-4, float(err.median())
    noise = torch.randn(256, 2, generator=g)
    label = torch.ones(256, dtype=torch.long)
    ours = codec.decode(noise, Condition.from_labels(label))
    theirs = their_flow.their_sampler(net, noise, label)
    assert float((ours - theirs).abs().max()) < 0.05  # our rk4 in our time = their Euler in theirs
    assert float((ours.mean(0) - their_flow.MEANS[1]).norm()) < 0.3
    wrong = ResidualCodec(_adapted(net, data_at=1), FixedGrid("rk4", 20)).decode(noise, Condition.from_labels(label))
    assert float((wrong.mean(0) - their_flow.MEANS[1]).norm()) > 1.0  # the convention matters


def test_adapter_checks_conditions(trained):
    _, net = trained
    v = _adapted(net)
    with pytest.raises(ValueError, match=r"unknown class id\(s\) \[5\]"):
        v(torch.zeros(2, 2), torch.zeros(2), Condition.from_labels([0, 5]))
    with pytest.raises(ValueError, match="takes class ids"):
        v(torch.zeros(1, 2), torch.zeros(1), Condition.from_values(torch.zeros(1, 1)))
    no_null = VelocityAdapter(net, condition={"y": "labels"}, data_at=0, time="column")
    with pytest.raises(ValueError, match="no null class"):
        no_null(torch.zeros(1, 2), torch.zeros(1), Condition.null_like(Condition.from_labels([1])))
    with pytest.raises(ValueError, match="condition 'kwargs'"):
        VelocityAdapter(net, condition="kwargs")
    out = v(torch.zeros(2, 2), torch.zeros(2), Condition.null_like(Condition.from_labels([0, 1])))  # token 2
    assert torch.allclose(out, -net(torch.zeros(2, 2), torch.ones(2, 1), y=torch.tensor([2, 2])))


def test_evolution_from_python_moves_left_sources_right(trained):
    root, net = trained
    src = np.load(root / "sources.npz")
    x = torch.from_numpy(src["x"])
    task = EditTask(x, Condition.from_labels([0] * len(x)), Condition.from_labels([1] * len(x)))
    codec = ResidualCodec(_adapted(net), FixedGrid("rk4", 10))
    objective = FunctionObjective("to_right", "min", their_flow.to_right)
    result = Evolver(codec, task, LocalEvaluator([objective]), population_size=8, termination=[MaxGenerations(4)],
                     seed=0).run()
    first, last = result.history[0].best[0], result.history[-1].best[0]
    assert last < first and last < 1.0, (first, last)  # from ~4 (class 0) toward the right centre
    assert (result.best.decoded[:, 0] > 0).all()


def test_optimize_with_a_factory_from_the_command_line_and_resume(trained):
    root, _ = trained
    spec = f"{root / 'their_flow.py'}:factory"
    args = ["optimize", "--model", spec, "--sources", root / "sources.npz", "--target", "1", "--run-dir", root / "run",
            "--objective", f"{HERE / 'their_flow.py'}:to_right@min", "--objective", "distance_to_source",
            "--generations", 3, "--population", 8, "--seed", 2, "--no-report", "--quiet", "--json"]
    out = runner.invoke(app, [str(a) for a in args])
    assert out.exit_code == 0, out.output
    m = json.loads(out.stdout)
    assert m["final_mean_best"][0] < m["initial_mean_best"][0] and m["failures"] == 0
    info = json.loads((root / "run" / "run.json").read_text())
    assert info["domain"] == "external" and info["class_names"] == ["left", "right"]
    assert json.loads((root / "run" / "config.resolved.json").read_text())["optimize"]["model"] == spec
    first = np.load(root / "run" / "population.npz")["residuals"]
    out = runner.invoke(app, ["resume", str(root / "run"), "--quiet", "--json"])  # nothing left: same result
    assert out.exit_code == 0, out.output
    assert np.array_equal(np.load(root / "run" / "population.npz")["residuals"], first)


def test_factory_errors_are_one_line(trained):
    root, _ = trained
    base = ["optimize", "--sources", str(root / "sources.npz"), "--target", "1", "--run-dir", str(root / "bad"),
            "--objective", "distance_to_source", "--quiet"]
    out = runner.invoke(app, [*base, "--model", f"{root / 'their_flow.py'}:not_a_model"])
    assert out.exit_code == 2 and "returned a str" in out.output and len(out.output.strip().splitlines()) == 1
    out = runner.invoke(app, [*base, "--model", f"{root / 'their_flow.py'}:factory", "--target", "7"])
    assert out.exit_code == 2 and "unknown class id(s) [7]" in out.output


def y_above(candidates):
    """A constraint for fine-tuning: the second coordinate (class 0's samples straddle 0)."""
    return candidates.x[:, 1].double()


def test_cfo_fine_tunes_their_flow_from_the_command_line(trained, tmp_path):
    """``flowevo cfo --model their_flow.py:factory``: their velocity is trained (a copy), rounds sample back."""
    root, _ = trained
    run = tmp_path / "cfo"
    args = ["cfo", "--model", f"{root / 'their_flow.py'}:factory", "--condition", "0", "--run-dir", run,
            "--reward", f"{HERE / 'their_flow.py'}:to_right@min", "--constraint", f"{Path(__file__)}:y_above<=0.3",
            "--rounds", 2, "--samples", 128, "--finetune-steps", 40, "--set", "cfo.batch_size=64",
            "--set", "cfo.kl_samples=32", "--set", "cfo.solver_steps=6", "--seed", 1, "--quiet", "--json"]
    out = runner.invoke(app, [str(a) for a in args])
    assert out.exit_code == 0, out.output
    m = json.loads(out.stdout)
    assert m["domain"] == "external" and m["failed_samples"] == 0
    assert m["final"]["reward_mean"] < m["pretrained"]["reward_mean"]  # closer to the right class's centre
    first, last = (torch.load(run / "checkpoints" / f"round_{k:03d}.pt", weights_only=True)["state_dict"]
                   for k in (0, 2))
    assert any(not torch.equal(first[k], last[k]) for k in first)  # their weights were fine-tuned (a copy)
    out = runner.invoke(app, ["sample", "--model", str(run / "checkpoints" / "round_002.pt"), "--n", "50", "--out",
                              str(tmp_path / "s.npz"), "--quiet", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["domain"] == "external" and np.load(tmp_path / "s.npz")["x"].shape == (50, 2)
